//! Which encoder a new stream gets for one client, decided as spice-server decides it
//! (`dcc_create_video_encoder`): the server's `encoder:codec` list, reordered by the
//! codecs the client said it prefers, filtered by what the client can decode; the
//! first entry whose encoder this host can run wins, else the built-in MJPEG encoder
//! if the client takes MJPEG at all.

use super::codecs::{Codec, CodecList, Encoder};
use super::encoder::{EncodeError, VideoEncoder};
use crate::proto::caps::Caps;
use crate::proto::msg::display as m;

/// `SpiceVideoCodecType` on the wire.
pub(crate) fn codec_type(codec: Codec) -> u8 {
    match codec {
        Codec::Mjpeg => 1,
        Codec::Vp8 => 2,
        Codec::H264 => 3,
        Codec::Vp9 => 4,
        Codec::H265 => 5,
    }
}

/// The display capability a client announces when it decodes `codec`.
fn decode_cap(codec: Codec) -> u32 {
    match codec {
        Codec::Mjpeg => m::CAP_CODEC_MJPEG,
        Codec::Vp8 => m::CAP_CODEC_VP8,
        Codec::H264 => m::CAP_CODEC_H264,
        Codec::Vp9 => m::CAP_CODEC_VP9,
        Codec::H265 => m::CAP_CODEC_H265,
    }
}

/// Whether a client with `caps` can decode `codec`. Clients without `MULTI_CODEC`
/// predate the codec caps and decode MJPEG only.
pub(crate) fn client_decodes(caps: &Caps, codec: Codec) -> bool {
    if caps.has(m::CAP_MULTI_CODEC) {
        caps.has(decode_cap(codec))
    } else {
        codec == Codec::Mjpeg
    }
}

/// The body of `PREFERRED_VIDEO_CODEC_TYPE` (u8 count, then count u8 codec types), as
/// sent; `None` when it is cut short or lists nothing (spice-server then keeps the
/// client's previous preference). Unknown types and repeats stay in the list;
/// [`rank`] ignores them.
pub(crate) fn parse_preferred_codecs(body: &[u8]) -> Option<Vec<u8>> {
    let (&count, rest) = body.split_first()?;
    if count == 0 {
        return None;
    }
    rest.get(..usize::from(count)).map(<[u8]>::to_vec)
}

/// A codec's place in the client's list: 1 for its first choice, `u32::MAX` when
/// not listed. Unknown codec types are skipped and only a type's first mention
/// counts, so later entries move up (as spice-server's
/// `video_stream_parse_preferred_codecs` numbers them).
fn rank(preference: &[u8], codec: Codec) -> u32 {
    let wanted = codec_type(codec);
    let mut seen: Vec<u8> = Vec::new();
    for &t in preference {
        if !(1..=5).contains(&t) || seen.contains(&t) {
            continue;
        }
        seen.push(t);
        if t == wanted {
            return seen.len() as u32;
        }
    }
    u32::MAX
}

/// Picks the encoder for a new stream to one client; `None` means the client gets no
/// stream (it decodes none of the codecs), so the area goes out as images.
///
/// `available(encoder, codec)` says whether this host can run that encoder now (the
/// GStreamer probe, see [`is_available`]); it is asked in preference order and only
/// for codecs the client decodes.
pub(crate) fn choose(
    server: &CodecList,
    client_caps: &Caps,
    client_preference: Option<&[u8]>,
    available: impl Fn(Encoder, Codec) -> bool,
) -> Option<(Encoder, Codec)> {
    let mut ordered: Vec<_> = server.choices().to_vec();
    if let Some(pref) = client_preference {
        // `sort_by_key` is stable: equal ranks keep the server's order.
        ordered.sort_by_key(|c| rank(pref, c.codec));
    }
    let picked = ordered
        .iter()
        .filter(|c| client_decodes(client_caps, c.codec))
        .find(|c| available(c.encoder, c.codec))
        .map(|c| (c.encoder, c.codec));
    picked.or_else(|| {
        client_decodes(client_caps, Codec::Mjpeg).then_some((Encoder::Spice, Codec::Mjpeg))
    })
}

/// Whether this host can run `encoder` for `codec`: the built-in encoder does MJPEG
/// only; the GStreamer ones are probed once per process (see `gst::is_available`).
pub(crate) fn is_available(encoder: Encoder, codec: Codec) -> bool {
    match encoder {
        Encoder::Spice => codec == Codec::Mjpeg,
        _ => super::gst::is_available(encoder, codec),
    }
}

/// Opens the encoder [`choose`] picked, for one stream.
pub(crate) fn open(encoder: Encoder, codec: Codec) -> Result<Box<dyn VideoEncoder>, EncodeError> {
    match (encoder, codec) {
        (Encoder::Spice, Codec::Mjpeg) => Ok(Box::new(super::mjpeg::MjpegEncoder::new()?)),
        (Encoder::Spice, other) => Err(EncodeError::Unsupported(format!(
            "the built-in encoder does not do {other:?}"
        ))),
        _ => super::gst::open(encoder, codec),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    fn caps(bits: &[u32]) -> Caps {
        Caps::from_bits(bits)
    }

    /// A recent client decoding every codec.
    fn modern() -> Caps {
        caps(&[
            m::CAP_MULTI_CODEC,
            m::CAP_CODEC_MJPEG,
            m::CAP_CODEC_VP8,
            m::CAP_CODEC_H264,
            m::CAP_CODEC_VP9,
            m::CAP_CODEC_H265,
        ])
    }

    fn all(_: Encoder, _: Codec) -> bool {
        true
    }

    fn list(text: &str) -> CodecList {
        CodecList::parse(text)
    }

    #[test]
    fn the_first_server_entry_wins_without_a_client_preference() {
        let l = list("gstreamer:h264;gstreamer:vp8;spice:mjpeg");
        let got = choose(&l, &modern(), None, all);
        assert_eq!(got, Some((Encoder::Gstreamer, Codec::H264)));
    }

    #[test]
    fn the_client_preference_reorders_the_server_list() {
        // spice-server's own example: host mjpeg, vp8, h264; client h264, vp9, mjpeg.
        let l = list("gstreamer:mjpeg;gstreamer:vp8;gstreamer:h264");
        let tried = RefCell::new(Vec::new());
        let none = |e, c| {
            tried.borrow_mut().push((e, c));
            false
        };
        let got = choose(&l, &modern(), Some(&[3, 4, 1]), none);
        assert_eq!(
            *tried.borrow(),
            vec![
                (Encoder::Gstreamer, Codec::H264),
                (Encoder::Gstreamer, Codec::Mjpeg),
                (Encoder::Gstreamer, Codec::Vp8),
            ],
            "listed codecs in the client's order, unlisted last"
        );
        assert_eq!(got, Some((Encoder::Spice, Codec::Mjpeg)), "fallback");
    }

    #[test]
    fn the_sort_is_stable_for_equal_ranks() {
        // Both h264 entries rank first and keep the server's order; vp8 and vp9 are
        // unlisted and keep theirs after them.
        let l = list("gstreamer:vp9;nvenc:h264;gstreamer:vp8;gstreamer:h264");
        let tried = RefCell::new(Vec::new());
        let none = |e, c| {
            tried.borrow_mut().push((e, c));
            false
        };
        choose(&l, &modern(), Some(&[3]), none);
        assert_eq!(
            *tried.borrow(),
            vec![
                (Encoder::Nvenc, Codec::H264),
                (Encoder::Gstreamer, Codec::H264),
                (Encoder::Gstreamer, Codec::Vp9),
                (Encoder::Gstreamer, Codec::Vp8),
            ]
        );
    }

    #[test]
    fn unknown_and_repeated_preferences_do_not_take_a_place() {
        // 9 is unknown and the second 2 repeats: vp9 is the client's second choice,
        // ahead of mjpeg (third).
        let pref = [2, 9, 2, 4, 1];
        assert_eq!(rank(&pref, Codec::Vp8), 1);
        assert_eq!(rank(&pref, Codec::Vp9), 2);
        assert_eq!(rank(&pref, Codec::Mjpeg), 3);
        assert_eq!(rank(&pref, Codec::H264), u32::MAX);
        let l = list("gstreamer:mjpeg;gstreamer:vp9");
        assert_eq!(
            choose(&l, &modern(), Some(&pref), all),
            Some((Encoder::Gstreamer, Codec::Vp9))
        );
    }

    #[test]
    fn codecs_the_client_cannot_decode_are_skipped() {
        let l = list("gstreamer:h264;gstreamer:vp8;gstreamer:mjpeg");
        let c = caps(&[m::CAP_MULTI_CODEC, m::CAP_CODEC_VP8, m::CAP_CODEC_MJPEG]);
        assert_eq!(
            choose(&l, &c, None, all),
            Some((Encoder::Gstreamer, Codec::Vp8))
        );
        // Preferring h264 does not help a client that cannot decode it.
        assert_eq!(
            choose(&l, &c, Some(&[3]), all),
            Some((Encoder::Gstreamer, Codec::Vp8))
        );
    }

    #[test]
    fn a_client_without_multi_codec_gets_mjpeg_only() {
        // Old clients predate the codec caps: their H264 bit means nothing.
        let old = caps(&[m::CAP_CODEC_H264]);
        let l = list("gstreamer:h264;gstreamer:mjpeg;gstreamer:vp8");
        assert_eq!(
            choose(&l, &old, None, all),
            Some((Encoder::Gstreamer, Codec::Mjpeg))
        );
        let only_h264 = list("gstreamer:h264");
        assert_eq!(
            choose(&only_h264, &old, None, all),
            Some((Encoder::Spice, Codec::Mjpeg)),
            "old clients always fall back to the built-in MJPEG"
        );
    }

    #[test]
    fn the_first_available_encoder_wins() {
        let l = list("nvenc:h264;vaapi:h264;gstreamer:h264;spice:mjpeg");
        let software_only = |e, _| e != Encoder::Nvenc && e != Encoder::Vaapi;
        assert_eq!(
            choose(&l, &modern(), None, software_only),
            Some((Encoder::Gstreamer, Codec::H264))
        );
    }

    #[test]
    fn the_builtin_mjpeg_is_the_fallback_only_for_mjpeg_clients() {
        let l = list("gstreamer:h264");
        let none = |_, _| false;
        assert_eq!(
            choose(&l, &modern(), None, none),
            Some((Encoder::Spice, Codec::Mjpeg))
        );
        let no_mjpeg = caps(&[m::CAP_MULTI_CODEC, m::CAP_CODEC_H264]);
        assert_eq!(choose(&l, &no_mjpeg, None, none), None);
        // ...even when the server list does not name mjpeg at all.
        assert_eq!(
            choose(&l, &no_mjpeg, None, all),
            Some((Encoder::Gstreamer, Codec::H264))
        );
    }

    #[test]
    fn an_empty_server_list_falls_back() {
        let empty = list("");
        assert_eq!(
            choose(&empty, &modern(), Some(&[3]), all),
            Some((Encoder::Spice, Codec::Mjpeg))
        );
    }

    #[test]
    fn the_preference_message_body_is_parsed() {
        assert_eq!(parse_preferred_codecs(&[2, 3, 2]), Some(vec![3, 2]));
        // Trailing bytes past the count are not codecs.
        assert_eq!(parse_preferred_codecs(&[1, 4, 9, 9]), Some(vec![4]));
        // Unknown types are kept as sent; ranking skips them.
        assert_eq!(parse_preferred_codecs(&[2, 0, 200]), Some(vec![0, 200]));
        assert_eq!(parse_preferred_codecs(&[]), None, "no count");
        assert_eq!(parse_preferred_codecs(&[0]), None, "empty list is ignored");
        assert_eq!(parse_preferred_codecs(&[3, 1, 2]), None, "cut short");
    }

    #[test]
    fn the_builtin_encoder_is_mjpeg_only() {
        assert!(is_available(Encoder::Spice, Codec::Mjpeg));
        assert!(!is_available(Encoder::Spice, Codec::H264));
        assert!(open(Encoder::Spice, Codec::Mjpeg).is_ok());
        assert!(open(Encoder::Spice, Codec::Vp8).is_err());
    }
}
