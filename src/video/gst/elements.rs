//! The GStreamer encoder elements we drive, and how each is set up for interactive
//! video: no B-frames and no look-ahead (every frame comes out before the next goes
//! in), the fastest realtime presets, threads for this machine, a constant bit rate
//! with a short VBV so no frame is much bigger than the budget, key frames on request
//! rather than often. Output is what spice-gtk 0.42 decodes (`channel-display-priv.h`):
//! H.264/H.265 Annex-B byte-stream, one access unit per buffer, with AUDs (the C
//! server's x264 settings); VP8/VP9 one raw frame per buffer; JPEG images.

use super::props::Value::{self, Number, Text};
use crate::video::codecs::{Codec, Encoder};

/// How long the encoder's VBV (CPB) buffer is: a frame may exceed its share of the
/// bit rate by this much (ms of the bit rate). Long enough for a key frame to be
/// ~7 average frames at 30 fps, short enough that a frame never queues much longer
/// than the link needs for it.
pub(super) const VBV_MS: u64 = 250;
/// Key frames come on request (stream start, new viewer); this periodic one only
/// bounds how long a damaged picture could last.
pub(super) const KEY_FRAME_EVERY: i64 = 600;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Family {
    Software,
    Nvenc,
    Vaapi,
}

/// How the rate control's target reaches the element.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Rate {
    /// `property` in kbit/s (`kbit`) or bit/s; `vbv_kbit` (if any) follows it with a
    /// buffer of `VBV_MS`, and `max_kbit` (if any) caps the peak at the target.
    Bitrate {
        property: &'static str,
        kbit: bool,
        vbv_kbit: Option<&'static str>,
        max_kbit: Option<&'static str>,
    },
    /// JPEG quality 1..=100.
    Quality(&'static str),
    /// `avenc_*`: bit/s, only read when the codec opens.
    BitrateAtStart(&'static str),
}

pub(crate) struct Spec {
    pub factory: &'static str,
    pub codec: Codec,
    pub family: Family,
    /// What the element is fed after one `videoconvert`; `None`: the BGRx as is.
    pub input: Option<&'static str>,
    /// Caps the appsink accepts: the byte format spice-gtk decodes.
    pub output: &'static str,
    pub rate: Rate,
    /// Fixed settings for `threads` threads, set once when the pipeline is built.
    pub settings: fn(threads: i64) -> Vec<(&'static str, Value<'static>)>,
    /// Where the element comes from, for the "not available" message.
    pub from: &'static str,
}

const H264_OUT: &str = "video/x-h264,stream-format=byte-stream,alignment=au";
const H265_OUT: &str = "video/x-h265,stream-format=byte-stream,alignment=au";

const fn kbit(property: &'static str) -> Rate {
    Rate::Bitrate {
        property,
        kbit: true,
        vbv_kbit: None,
        max_kbit: None,
    }
}

/// NVENC (`nvh264enc`/`nvh265enc`, gst-plugins-bad nvcodec; needs the NVIDIA driver's
/// libnvidia-encode). Each setting, and why:
/// - `preset=low-latency-hq`: NVENC's low-latency preset family (no reordering, small
///   look-ahead), the higher-quality one of it; `low-latency` where that is unknown.
/// - `rc-mode=cbr-ld-hq`: constant bit rate, low-delay, high quality: NVENC's mode for
///   streaming, with `bitrate`/`max-bitrate` at the target and `vbv-buffer-size`
///   (kbit) at `VBV_MS` of it, so frame sizes stay near the budget; plain `cbr` where
///   the low-delay mode is missing.
/// - `bframes=0`, `b-adapt=false`: no B-frames (they hold a frame back).
/// - `rc-lookahead=0`: look-ahead would delay every frame by its depth.
/// - `zerolatency=true`: no reordering delay in the output.
/// - `gop-size`: long GOP; key frames come on request (force-key-unit).
/// - `i-adapt=false`: no scene-cut I-frames, whose size spikes the link.
/// - `aud=true`: access unit delimiters, as the C server's x264 output has.
fn nvenc(_threads: i64) -> Vec<(&'static str, Value<'static>)> {
    vec![
        ("preset", Text("low-latency-hq,low-latency")),
        ("rc-mode", Text("cbr-ld-hq,cbr")),
        ("bframes", Number(0)),
        ("b-adapt", Text("false")),
        ("rc-lookahead", Number(0)),
        ("zerolatency", Text("true")),
        ("gop-size", Number(KEY_FRAME_EVERY)),
        ("i-adapt", Text("false")),
        ("aud", Text("true")),
    ]
}

/// VA-API through the `va` plugin (gst-plugins-bad, GStreamer ≥ 1.22): CBR with the
/// CPB at `VBV_MS`, no B-frames, one reference, the fastest target usage (7), AUDs.
fn va(_threads: i64) -> Vec<(&'static str, Value<'static>)> {
    vec![
        ("rate-control", Text("cbr")),
        ("b-frames", Number(0)),
        ("ref-frames", Number(1)),
        ("key-int-max", Number(KEY_FRAME_EVERY)),
        ("target-usage", Number(7)),
        ("aud", Text("true")),
    ]
}

/// VA-API through gstreamer-vaapi (`vaapih264enc`): the same choices in its names.
fn vaapi(_threads: i64) -> Vec<(&'static str, Value<'static>)> {
    vec![
        ("rate-control", Text("cbr")),
        ("max-bframes", Number(0)),
        ("refs", Number(1)),
        ("keyframe-period", Number(KEY_FRAME_EVERY)),
        ("quality-level", Number(7)),
        ("cpb-length", Number(VBV_MS as i64)),
        ("aud", Text("true")),
    ]
}

/// x264: the C server's settings (ultrafast, zerolatency, byte-stream with AUDs,
/// sliced threads) without its periodic intra refresh, so a requested key frame is a
/// real IDR a decoder can start from; VBV at `VBV_MS`. `threads` leaves a core free: on
/// two cores x264 runs one thread, which costs ~15% less CPU per frame than slices on
/// three threads (`video::gst::timing`: 6.1 vs 7.2 ms at 720p).
fn x264(threads: i64) -> Vec<(&'static str, Value<'static>)> {
    vec![
        ("threads", Number(threads)),
        ("speed-preset", Text("ultrafast")),
        ("tune", Text("zerolatency")),
        ("bframes", Number(0)),
        ("rc-lookahead", Number(0)),
        ("sync-lookahead", Number(0)),
        ("byte-stream", Text("true")),
        ("aud", Text("true")),
        ("intra-refresh", Text("false")),
        ("key-int-max", Number(KEY_FRAME_EVERY)),
        ("pass", Text("cbr")),
        ("vbv-buf-capacity", Number(VBV_MS as i64)),
        ("qp-min", Number(10)),
        (
            "sliced-threads",
            Text(if threads > 1 { "true" } else { "false" }),
        ),
    ]
}

/// x265: ultrafast, zerolatency (no B-frames, no look-ahead, one frame thread), SPS/PPS
/// on every key frame and AUDs through x265's own option string.
fn x265(_threads: i64) -> Vec<(&'static str, Value<'static>)> {
    vec![
        ("speed-preset", Text("ultrafast")),
        ("tune", Text("zerolatency")),
        ("key-int-max", Number(KEY_FRAME_EVERY)),
        (
            "option-string",
            Text("repeat-headers=1:aud=1:bframes=0:rc-lookahead=0"),
        ),
    ]
}

/// libvpx realtime, as the C server (`deadline=1`, CBR, no lag, error resilient) but
/// faster: `cpu-used` near the top of the realtime range and the free cores; the client
/// buffer model is WebRTC's (1 s, start 0.5 s, aim 0.6 s) rather than libvpx's 6 s.
fn vpx(threads: i64, cpu_used: i64) -> Vec<(&'static str, Value<'static>)> {
    vec![
        ("deadline", Number(1)),
        ("cpu-used", Number(cpu_used)),
        ("end-usage", Text("cbr")),
        ("lag-in-frames", Number(0)),
        ("auto-alt-ref", Text("false")),
        ("error-resilient", Text("default")),
        ("keyframe-max-dist", Number(KEY_FRAME_EVERY)),
        ("buffer-size", Number(1000)),
        ("buffer-initial-size", Number(500)),
        ("buffer-optimal-size", Number(600)),
        ("undershoot", Number(95)),
        ("min-quantizer", Number(4)),
        ("max-quantizer", Number(56)),
        ("threads", Number(threads)),
    ]
}

fn vp8(threads: i64) -> Vec<(&'static str, Value<'static>)> {
    let mut s = vpx(threads, 16);
    // Token partitions let libvpx spread entropy coding over threads. The property is
    // an enum whose nicks are the partition counts.
    let partitions = match threads {
        0..=1 => "1",
        2..=3 => "2",
        4..=7 => "4",
        _ => "8",
    };
    s.push(("token-partitions", Text(partitions)));
    s
}

fn vp9(threads: i64) -> Vec<(&'static str, Value<'static>)> {
    let mut s = vpx(threads, 9);
    // Row multithreading and tile columns: libvpx VP9's threads otherwise idle.
    s.push(("row-mt", Text("true")));
    s.push(("tile-columns", Number(2)));
    s.push(("aq-mode", Number(3)));
    s
}

fn jpeg(_threads: i64) -> Vec<(&'static str, Value<'static>)> {
    // The C server's DCT (`JDCT_IFAST`).
    vec![("idct-method", Text("ifast"))]
}

fn none(_threads: i64) -> Vec<(&'static str, Value<'static>)> {
    Vec::new()
}

/// Every element, hardware first within a codec: `gstreamer:<codec>` takes the first
/// that works on this host.
pub(super) static SPECS: &[Spec] = &[
    Spec {
        factory: "nvh264enc",
        codec: Codec::H264,
        family: Family::Nvenc,
        input: Some("NV12"),
        output: H264_OUT,
        rate: Rate::Bitrate {
            property: "bitrate",
            kbit: true,
            vbv_kbit: Some("vbv-buffer-size"),
            max_kbit: Some("max-bitrate"),
        },
        settings: nvenc,
        from: "gstreamer1.0-plugins-bad nvcodec and an NVIDIA GPU with its driver",
    },
    Spec {
        factory: "vah264enc",
        codec: Codec::H264,
        family: Family::Vaapi,
        input: Some("NV12"),
        output: H264_OUT,
        rate: Rate::Bitrate {
            property: "bitrate",
            kbit: true,
            vbv_kbit: Some("cpb-size"),
            max_kbit: None,
        },
        settings: va,
        from: "gstreamer1.0-plugins-bad va and a VA-API driver with H.264 encoding",
    },
    Spec {
        factory: "vaapih264enc",
        codec: Codec::H264,
        family: Family::Vaapi,
        input: Some("NV12"),
        output: H264_OUT,
        rate: kbit("bitrate"),
        settings: vaapi,
        from: "gstreamer1.0-vaapi and a VA-API driver with H.264 encoding",
    },
    Spec {
        factory: "x264enc",
        codec: Codec::H264,
        family: Family::Software,
        input: Some("NV12"),
        output: H264_OUT,
        rate: kbit("bitrate"),
        settings: x264,
        from: "gstreamer1.0-plugins-ugly",
    },
    Spec {
        factory: "nvh265enc",
        codec: Codec::H265,
        family: Family::Nvenc,
        input: Some("NV12"),
        output: H265_OUT,
        rate: Rate::Bitrate {
            property: "bitrate",
            kbit: true,
            vbv_kbit: Some("vbv-buffer-size"),
            max_kbit: Some("max-bitrate"),
        },
        settings: nvenc,
        from: "gstreamer1.0-plugins-bad nvcodec and an NVIDIA GPU with its driver",
    },
    Spec {
        factory: "vah265enc",
        codec: Codec::H265,
        family: Family::Vaapi,
        input: Some("NV12"),
        output: H265_OUT,
        rate: Rate::Bitrate {
            property: "bitrate",
            kbit: true,
            vbv_kbit: Some("cpb-size"),
            max_kbit: None,
        },
        settings: va,
        from: "gstreamer1.0-plugins-bad va and a VA-API driver with H.265 encoding",
    },
    Spec {
        factory: "vaapih265enc",
        codec: Codec::H265,
        family: Family::Vaapi,
        input: Some("NV12"),
        output: H265_OUT,
        rate: kbit("bitrate"),
        settings: vaapi,
        from: "gstreamer1.0-vaapi and a VA-API driver with H.265 encoding",
    },
    Spec {
        factory: "x265enc",
        codec: Codec::H265,
        family: Family::Software,
        input: Some("I420"),
        output: H265_OUT,
        rate: kbit("bitrate"),
        settings: x265,
        from: "gstreamer1.0-plugins-bad (x265)",
    },
    Spec {
        factory: "vp8enc",
        codec: Codec::Vp8,
        family: Family::Software,
        input: Some("I420"),
        output: "video/x-vp8",
        rate: Rate::Bitrate {
            property: "target-bitrate",
            kbit: false,
            vbv_kbit: None,
            max_kbit: None,
        },
        settings: vp8,
        from: "gstreamer1.0-plugins-good (libvpx)",
    },
    Spec {
        factory: "vp9enc",
        codec: Codec::Vp9,
        family: Family::Software,
        input: Some("I420"),
        output: "video/x-vp9",
        rate: Rate::Bitrate {
            property: "target-bitrate",
            kbit: false,
            vbv_kbit: None,
            max_kbit: None,
        },
        settings: vp9,
        from: "gstreamer1.0-plugins-good (libvpx)",
    },
    Spec {
        factory: "jpegenc",
        codec: Codec::Mjpeg,
        family: Family::Software,
        input: Some("I420"),
        output: "image/jpeg",
        rate: Rate::Quality("quality"),
        settings: jpeg,
        from: "gstreamer1.0-plugins-good",
    },
    Spec {
        factory: "avenc_mjpeg",
        codec: Codec::Mjpeg,
        family: Family::Software,
        input: Some("I420"),
        output: "image/jpeg",
        rate: Rate::BitrateAtStart("bitrate"),
        settings: none,
        from: "gstreamer1.0-libav",
    },
];

/// The elements `encoder:codec` may use, in the order to try them. `nvenc` and
/// `vaapi` force that hardware; `gstreamer` takes any, hardware first.
pub(super) fn candidates(encoder: Encoder, codec: Codec) -> Vec<&'static Spec> {
    let family = match encoder {
        Encoder::Spice => return Vec::new(),
        Encoder::Gstreamer => None,
        Encoder::Nvenc => Some(Family::Nvenc),
        Encoder::Vaapi => Some(Family::Vaapi),
    };
    SPECS
        .iter()
        .filter(|s| s.codec == codec && family.is_none_or(|f| s.family == f))
        .collect()
}

/// The element named `factory`, if we know it.
#[cfg(test)]
pub(super) fn spec(factory: &str) -> Option<&'static Spec> {
    SPECS.iter().find(|s| s.factory == factory)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(encoder: Encoder, codec: Codec) -> Vec<&'static str> {
        candidates(encoder, codec)
            .iter()
            .map(|s| s.factory)
            .collect()
    }

    #[test]
    fn gstreamer_tries_hardware_first_and_forced_hardware_only_its_own() {
        assert_eq!(
            names(Encoder::Gstreamer, Codec::H264),
            ["nvh264enc", "vah264enc", "vaapih264enc", "x264enc"]
        );
        assert_eq!(names(Encoder::Nvenc, Codec::H264), ["nvh264enc"]);
        assert_eq!(
            names(Encoder::Vaapi, Codec::H265),
            ["vah265enc", "vaapih265enc"]
        );
        assert_eq!(names(Encoder::Gstreamer, Codec::Vp9), ["vp9enc"]);
        assert!(names(Encoder::Nvenc, Codec::Vp8).is_empty());
        assert!(names(Encoder::Spice, Codec::Mjpeg).is_empty());
    }

    #[test]
    fn no_setting_asks_for_b_frames_or_look_ahead() {
        for spec in SPECS {
            for (name, value) in (spec.settings)(4) {
                if name.contains("bframes") || name == "b-frames" || name.contains("lookahead") {
                    assert_eq!(value, Number(0), "{} {name}", spec.factory);
                }
                if name == "lag-in-frames" {
                    assert_eq!(value, Number(0), "{}", spec.factory);
                }
            }
        }
    }
}
