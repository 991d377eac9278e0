//! The video codec preference list (`spice_server_set_video_codecs`), in spice-server's
//! syntax: `encoder:codec;encoder:codec…`, or `auto` for the default list.
//!
//! Besides spice-server's encoders (`spice` = built-in MJPEG, `gstreamer`) we accept
//! `nvenc` and `vaapi`, which force a hardware encoder, and the codec `h265`.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Encoder {
    /// The built-in encoder (MJPEG only).
    Spice,
    /// GStreamer; picks the best element this host really has.
    Gstreamer,
    /// NVIDIA NVENC through GStreamer's nvcodec elements.
    Nvenc,
    /// VA-API through GStreamer.
    Vaapi,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Codec {
    Mjpeg,
    Vp8,
    H264,
    Vp9,
    H265,
}

impl Encoder {
    fn parse(name: &str) -> Option<Encoder> {
        Some(match name {
            "spice" => Encoder::Spice,
            "gstreamer" => Encoder::Gstreamer,
            "nvenc" => Encoder::Nvenc,
            "vaapi" => Encoder::Vaapi,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Encoder::Spice => "spice",
            Encoder::Gstreamer => "gstreamer",
            Encoder::Nvenc => "nvenc",
            Encoder::Vaapi => "vaapi",
        }
    }
}

impl Codec {
    fn parse(name: &str) -> Option<Codec> {
        Some(match name {
            "mjpeg" => Codec::Mjpeg,
            "vp8" => Codec::Vp8,
            "h264" => Codec::H264,
            "vp9" => Codec::Vp9,
            "h265" => Codec::H265,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Codec::Mjpeg => "mjpeg",
            Codec::Vp8 => "vp8",
            Codec::H264 => "h264",
            Codec::Vp9 => "vp9",
            Codec::H265 => "h265",
        }
    }
}

/// One `encoder:codec` entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CodecChoice {
    pub encoder: Encoder,
    pub codec: Codec,
}

/// spice-server's default list.
pub(crate) const DEFAULT_CODECS: &str =
    "spice:mjpeg;gstreamer:mjpeg;gstreamer:h264;gstreamer:vp8;gstreamer:vp9";

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CodecList(Vec<CodecChoice>);

impl Default for CodecList {
    fn default() -> Self {
        CodecList::parse(DEFAULT_CODECS)
    }
}

fn is_name(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

impl CodecList {
    /// Parses a list; bad entries are skipped with one warning each, as spice-server does.
    /// The result may be empty: the caller then keeps its previous list and reports failure.
    pub(crate) fn parse(text: &str) -> CodecList {
        let text = if text == "auto" { DEFAULT_CODECS } else { text };
        let mut list = Vec::new();
        for entry in text.split(';').filter(|e| !e.is_empty()) {
            let Some((enc, codec)) = entry
                .split_once(':')
                .filter(|(e, c)| is_name(e) && is_name(c))
            else {
                crate::log_warn!("invalid encoder:codec value '{entry}'");
                continue;
            };
            match (Encoder::parse(enc), Codec::parse(codec)) {
                (None, _) => crate::log_warn!("unknown video encoder '{enc}'"),
                (_, None) => crate::log_warn!("unknown video codec '{codec}'"),
                (Some(encoder), Some(codec)) => list.push(CodecChoice { encoder, codec }),
            }
        }
        CodecList(list)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub(crate) fn choices(&self) -> &[CodecChoice] {
        &self.0
    }
}

impl fmt::Display for CodecList {
    /// The form `spice_server_get_video_codecs` returns: entries joined by `;`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, c) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(";")?;
            }
            write!(f, "{}:{}", c.encoder.name(), c.codec.name())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_is_the_default_list() {
        assert_eq!(CodecList::parse("auto").to_string(), DEFAULT_CODECS);
        assert_eq!(CodecList::default().choices().len(), 5);
    }

    #[test]
    fn bad_entries_are_skipped() {
        let list = CodecList::parse("foo:h264;gstreamer:av1;;gstreamer:vp8;nonsense;nvenc:h264");
        assert_eq!(list.to_string(), "gstreamer:vp8;nvenc:h264");
    }

    #[test]
    fn nothing_usable_is_empty() {
        assert!(CodecList::parse("bogus:thing").is_empty());
        assert!(CodecList::parse("").is_empty());
    }
}
