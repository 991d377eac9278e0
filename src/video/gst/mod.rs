//! Video encoders through GStreamer: software (x264, x265, libvpx, libjpeg) and
//! hardware (NVENC, VA-API), behind the same `VideoEncoder` trait as the built-in MJPEG.
//!
//! GStreamer is initialised the first time an encoder is probed or opened, never when
//! the library loads. Which element serves an `encoder:codec` entry is decided once
//! per process: each candidate (hardware first) is opened and made to encode a small
//! test frame; the first that works is used from then on. A candidate that is missing
//! or fails gets one log line, and `is_available` says false when none works, so the
//! selection moves to the next entry of the codec list.

mod elements;
mod encoder;
mod props;
mod yuv;

pub(crate) use elements::Spec;
pub(crate) use encoder::GstEncoder;

use crate::video::codecs::{Codec, Encoder};
use crate::video::encoder::{EncodeError, Frame, Target, VideoEncoder};
use gstreamer as gst;
use once_cell::sync::{Lazy, OnceCell};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};

static INIT: OnceCell<Result<(), String>> = OnceCell::new();

/// Initialises GStreamer once; the error is kept and returned to every later caller.
pub(crate) fn init() -> Result<(), String> {
    INIT.get_or_init(|| gst::init().map_err(|e| format!("GStreamer does not start: {e}")))
        .clone()
}

/// Whether a frame of `width`x`height` can go to `codec`: H.264 and H.265 encoders
/// (x264, x265, NVENC, VA-API) refuse odd sizes of 4:2:0 pictures.
pub(crate) fn size_supported(codec: Codec, width: u32, height: u32) -> bool {
    match codec {
        Codec::H264 | Codec::H265 => width.is_multiple_of(2) && height.is_multiple_of(2),
        Codec::Mjpeg | Codec::Vp8 | Codec::Vp9 => true,
    }
}

/// Outcome of each element's test encode, by factory name.
static PROBED: Lazy<Mutex<HashMap<&'static str, Result<(), String>>>> = Lazy::new(Mutex::default);
/// The element chosen for each `encoder:codec`, `None` when none works.
type Choice = ((Encoder, Codec), Option<&'static Spec>);
static CHOSEN: Lazy<Mutex<Vec<Choice>>> = Lazy::new(Mutex::default);

/// `gstreamer:h264`, as the codec list writes it.
fn entry_name(encoder: Encoder, codec: Codec) -> String {
    format!("{encoder:?}:{codec:?}").to_lowercase()
}

const PROBE_SIZE: (u32, u32) = (320, 240);

/// Opens `spec`'s element and encodes two small frames (the second also proves the
/// element keeps going after its key frame).
fn test_encode(spec: &'static Spec) -> Result<(), String> {
    init()?;
    if gst::ElementFactory::find(spec.factory).is_none() {
        return Err(format!(
            "no GStreamer element {} (needs {})",
            spec.factory, spec.from
        ));
    }
    let mut enc = GstEncoder::new(spec);
    let (w, h) = PROBE_SIZE;
    let target = Target {
        quality: 70,
        bitrate_bps: 2_000_000,
        fps: 30,
        scale: 1,
    };
    for n in 0..2u32 {
        let pixels = (0..w * h * 4).map(|i| (i / 4 % 251 + n * 16) as u8);
        let frame = Frame::packed(w, h, pixels.collect(), n * 33);
        match enc.encode(&frame, target) {
            Ok(Some(out)) if !out.is_empty() => {}
            Ok(_) => return Err(format!("{} gave no output for a test frame", spec.factory)),
            Err(e) => return Err(e.to_string()),
        }
    }
    Ok(())
}

/// `spec`'s test encode, run once per process.
pub(crate) fn probe(spec: &'static Spec) -> Result<(), String> {
    if let Some(known) = PROBED.lock().get(spec.factory) {
        return known.clone();
    }
    let result = test_encode(spec);
    PROBED.lock().insert(spec.factory, result.clone());
    result
}

/// The first of `candidates` that `works`, with why each one before it did not.
fn first_working(
    candidates: &[&'static Spec],
    mut works: impl FnMut(&'static Spec) -> Result<(), String>,
) -> (Option<&'static Spec>, Vec<String>) {
    let mut refused = Vec::new();
    for &spec in candidates {
        match works(spec) {
            Ok(()) => return (Some(spec), refused),
            Err(why) => refused.push(why),
        }
    }
    (None, refused)
}

/// The element serving `encoder:codec` on this host, decided on first use.
pub(crate) fn chosen_element(encoder: Encoder, codec: Codec) -> Option<&'static Spec> {
    if encoder == Encoder::Spice {
        return None;
    }
    let mut chosen = CHOSEN.lock();
    if let Some(&(_, known)) = chosen.iter().find(|(key, _)| *key == (encoder, codec)) {
        return known;
    }
    let candidates = elements::candidates(encoder, codec);
    let (picked, refused) = first_working(&candidates, probe);
    let entry = entry_name(encoder, codec);
    match picked {
        Some(spec) if refused.is_empty() => {
            crate::log_info!("video: {entry} uses {}", spec.factory)
        }
        Some(spec) => crate::log_info!(
            "video: {entry} uses {} ({})",
            spec.factory,
            refused.join("; ")
        ),
        None if candidates.is_empty() => {
            crate::log_warn!("video: {entry} is not available: no such encoder")
        }
        None => crate::log_warn!("video: {entry} is not available: {}", refused.join("; ")),
    }
    chosen.push(((encoder, codec), picked));
    picked
}

/// Whether `encoder:codec` works on this host (probed once, see the module comment).
pub(crate) fn is_available(encoder: Encoder, codec: Codec) -> bool {
    chosen_element(encoder, codec).is_some()
}

/// A new encoder for one stream. A hardware encoder comes with the software one for
/// the same codec as its fallback, should it fail mid-stream.
pub(crate) fn open(encoder: Encoder, codec: Codec) -> Result<Box<dyn VideoEncoder>, EncodeError> {
    let spec = chosen_element(encoder, codec).ok_or_else(|| {
        EncodeError::Unsupported(format!(
            "{} is not available on this host",
            entry_name(encoder, codec)
        ))
    })?;
    let primary: Box<dyn VideoEncoder> = Box::new(GstEncoder::new(spec));
    if matches!(spec.family, elements::Family::Software) {
        return Ok(primary);
    }
    let software = move || -> Result<Box<dyn VideoEncoder>, EncodeError> {
        let spec = elements::candidates(Encoder::Gstreamer, codec)
            .into_iter()
            .filter(|s| matches!(s.family, elements::Family::Software))
            .find(|s| probe(s).is_ok())
            .ok_or_else(|| EncodeError::Failed(format!("no software {codec:?} encoder")))?;
        Ok(Box::new(GstEncoder::new(spec)))
    };
    Ok(Box::new(super::fallback::WithFallback::new(
        primary,
        Box::new(software),
    )))
}

/// Set while a probe thread runs: one at a time (a client repeating its codec
/// preference cannot pile up threads; entries a running probe skips are probed on first
/// use).
static PROBING: AtomicBool = AtomicBool::new(false);

/// Probes the GStreamer `entries` not decided yet on a background thread, so the first
/// stream does not wait for GStreamer to start and the elements to be tried. The
/// thread ends when done.
/// Never waits: it may run on the reactor thread, while a probe holds `CHOSEN`.
pub(crate) fn probe_in_background(entries: Vec<(Encoder, Codec)>) {
    if entries.is_empty() || PROBING.swap(true, Ordering::AcqRel) {
        return;
    }
    let undecided: Option<Vec<_>> = CHOSEN.try_lock().map(|chosen| {
        entries
            .into_iter()
            .filter(|&(encoder, _)| encoder != Encoder::Spice)
            .filter(|&entry| !chosen.iter().any(|(key, _)| *key == entry))
            .collect()
    });
    let Some(entries) = undecided.filter(|e| !e.is_empty()) else {
        PROBING.store(false, Ordering::Release);
        return;
    };
    let spawned = std::thread::Builder::new()
        .name("spice-gst-probe".into())
        .spawn(move || {
            for (encoder, codec) in entries {
                chosen_element(encoder, codec);
            }
            PROBING.store(false, Ordering::Release);
        });
    if let Err(e) = spawned {
        PROBING.store(false, Ordering::Release);
        crate::log_warn!("video: cannot start the encoder probe: {e}");
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod timing;
