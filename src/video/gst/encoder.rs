//! One stream's GStreamer encoder: `appsrc ! videoconvert ! <encoder> ! appsink`, built
//! on the first frame and kept while the frame size stays. Frames are converted from
//! BGRx to the encoder's YUV format on the way into the appsrc buffer (`yuv.rs`), so
//! `videoconvert` passes them through; it only converts for an element that wants
//! something else.
//! Each `encode` pushes one frame and waits (bounded) for the one compressed frame the
//! element gives back, so it behaves like the built-in encoder: one in, one out.

use super::elements::{Rate, Spec, VBV_MS};
use super::props::{self, Value};
use super::yuv::{self, Layout, Matrix};
use crate::video::codecs::Codec;
use crate::video::encoder::{EncodeError, Frame, Target, VideoEncoder};
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app::{AppSink, AppSrc};
use std::time::Duration;

/// The first frame also waits for the element to open (a GPU session, x265's pools).
const FIRST_FRAME_TIMEOUT: Duration = Duration::from_secs(10);
const FRAME_TIMEOUT: Duration = Duration::from_secs(5);
/// An element that cannot change its bit rate while encoding is restarted (with a
/// key frame) when the target moves by more than this share.
const RESTART_ON_RATE_CHANGE: f64 = 0.2;
/// A rate change smaller than this part of the current one is not passed on.
const IGNORED_RATE_CHANGE: f64 = 0.05;
const BYTES_PER_PIXEL: usize = 4;
/// Most bits a frame may take per pixel (0.1 already looks good). libvpx spends its bit
/// rate over the time between frames' timestamps: when the host is too busy to encode
/// every frame, each one would grow, take longer to encode and decode, and the frame
/// rate fall further. The cap follows the frame rate actually encoded. (x264, x265 and
/// the hardware encoders budget each frame from the caps' frame rate instead: their
/// bit rate is scaled to the frame rate really encoded, `MAX_RATE_SCALE` at most.)
const MAX_BITS_PER_PIXEL: f64 = 0.2;
const MAX_RATE_SCALE: f64 = 16.0;
/// The cap never goes below this (bit/s): a tiny stream still gets a usable rate.
const MIN_CAPPED_BPS: u64 = 200_000;
/// Smoothing of the measured time between frames.
const INTERVAL_SMOOTHING: f64 = 0.2;

struct Running {
    pipeline: gst::Pipeline,
    src: AppSrc,
    sink: AppSink,
    element: gst::Element,
    width: u32,
    height: u32,
    /// How frames are written into appsrc buffers: `None` copies the BGRx as is.
    convert: Option<(Matrix, Layout)>,
    /// Whether the element takes a new bit rate while encoding.
    live_rate: bool,
    /// Capture time of the first frame (ms, multimedia clock): timestamps count from it.
    first_mm: u32,
    last_pts_ms: Option<u64>,
    frames: u64,
    /// The frame rate its caps announce (what the element budgets frames by).
    caps_fps: f64,
}

pub(crate) struct GstEncoder {
    spec: &'static Spec,
    threads: u32,
    running: Option<Running>,
    key_frame_wanted: bool,
    /// What the element was last told: bit/s or quality.
    rate_set: Option<u64>,
    /// Whether the last frame out was a key frame.
    last_was_key: bool,
    /// Capture time of the last frame and the smoothed time between frames (ms).
    last_capture: Option<u32>,
    interval_ms: Option<f64>,
}

impl GstEncoder {
    /// An encoder for `spec`; GStreamer starts (once per process) with its first frame.
    pub(crate) fn new(spec: &'static Spec) -> GstEncoder {
        // One core is left to the guest's vCPU and the QXL worker: encoder threads that
        // outnumber the free cores wait on each other whenever one is descheduled (libvpx
        // at 1080p on two cores took 170 ms a frame with two threads, x264 ~15% more CPU).
        let threads = std::thread::available_parallelism()
            .map(|n| n.get() as u32)
            .unwrap_or(1)
            .saturating_sub(1)
            .max(1);
        GstEncoder {
            spec,
            threads,
            running: None,
            key_frame_wanted: false,
            rate_set: None,
            last_was_key: false,
            last_capture: None,
            interval_ms: None,
        }
    }

    #[cfg(test)]
    /// Whether the last frame returned was a key frame (one a decoder can start from).
    pub(crate) fn last_was_key_frame(&self) -> bool {
        self.last_was_key
    }

    fn failed(&self, why: impl std::fmt::Display) -> EncodeError {
        EncodeError::Failed(format!("{}: {why}", self.spec.factory))
    }

    /// The appsrc caps, and the conversion that produces them from BGRx.
    fn input_caps(
        &self,
        width: u32,
        height: u32,
        fps: i32,
    ) -> Result<(gst::Caps, Option<(Matrix, Layout)>), EncodeError> {
        let bad = |e: gst::glib::BoolError| self.failed(format!("input caps: {e}"));
        let Some(format) = self.spec.input else {
            let caps = gst::Caps::builder("video/x-raw")
                .field("format", "BGRx")
                .field("width", width as i32)
                .field("height", height as i32)
                .field("framerate", gst::Fraction::new(fps, 1))
                .build();
            return Ok((caps, None));
        };
        let (video_format, nv12) = match format {
            "NV12" => (gstreamer_video::VideoFormat::Nv12, true),
            _ => (gstreamer_video::VideoFormat::I420, false),
        };
        let matrix = match self.spec.codec {
            Codec::Mjpeg => Matrix::jpeg(),
            _ => Matrix::for_height(height),
        };
        let colorimetry: gstreamer_video::VideoColorimetry = matrix
            .colorimetry
            .parse()
            .map_err(|e| self.failed(format!("colorimetry: {e}")))?;
        let info = gstreamer_video::VideoInfo::builder(video_format, width, height)
            .fps(gst::Fraction::new(fps, 1))
            .colorimetry(&colorimetry)
            .build()
            .map_err(bad)?;
        let (offset, stride) = (info.offset(), info.stride());
        let at = |i: usize| offset.get(i).copied().unwrap_or(0);
        let pitch = |i: usize| stride.get(i).map_or(0, |&s| s.max(0) as usize);
        let layout = Layout {
            y_offset: at(0),
            y_stride: pitch(0),
            u_offset: at(1),
            u_stride: pitch(1),
            v_offset: at(2),
            v_stride: pitch(2),
            nv12,
            size: info.size(),
        };
        Ok((info.to_caps().map_err(bad)?, Some((matrix, layout))))
    }

    fn build(&self, width: u32, height: u32, target: Target) -> Result<Running, EncodeError> {
        super::init().map_err(EncodeError::Failed)?;
        let spec = self.spec;
        let make = |factory: &str| {
            gst::ElementFactory::make(factory)
                .build()
                .map_err(|e| self.failed(format!("cannot create {factory}: {e}")))
        };
        let fps = target.fps.clamp(1, 240) as i32;
        let (raw, convert) = self.input_caps(width, height, fps)?;
        let src = AppSrc::builder()
            .caps(&raw)
            .format(gst::Format::Time)
            .is_live(false)
            .block(false)
            .build();
        let videoconvert = make("videoconvert")?;
        let _ = props::set(
            &videoconvert,
            "n-threads",
            Value::Number(i64::from(self.threads)),
        );
        let element = make(spec.factory)?;
        for (name, value) in (spec.settings)(i64::from(self.threads)) {
            if let Err(why) = props::set(&element, name, value) {
                crate::log_debug!("video: {} keeps its default {name}: {why}", spec.factory);
            }
        }
        let output = spec
            .output
            .parse::<gst::Caps>()
            .map_err(|e| self.failed(format!("bad output caps: {e}")))?;
        let sink = AppSink::builder()
            .caps(&output)
            .sync(false)
            .enable_last_sample(false)
            .build();
        let pipeline = gst::Pipeline::new();
        let chain = [
            src.upcast_ref::<gst::Element>(),
            &videoconvert,
            &element,
            sink.upcast_ref(),
        ];
        pipeline
            .add_many(chain)
            .and_then(|_| gst::Element::link_many(chain))
            .map_err(|e| self.failed(format!("cannot link the pipeline: {e}")))?;
        let live_rate = match spec.rate {
            Rate::Bitrate { property, .. } | Rate::Quality(property) => {
                // libvpx reconfigures on a new target-bitrate though the property
                // does not say so.
                spec.factory.starts_with("vp")
                    || props::changeable_while_playing(&element, property)
            }
            Rate::BitrateAtStart(_) => false,
        };
        let running = Running {
            pipeline,
            src,
            sink,
            element,
            width,
            height,
            convert,
            live_rate,
            first_mm: 0,
            last_pts_ms: None,
            frames: 0,
            caps_fps: f64::from(fps),
        };
        apply_rate(spec, &running.element, target);
        running
            .pipeline
            .set_state(gst::State::Playing)
            .map_err(|_| self.failed(pipeline_error(&running.pipeline, "cannot start")))?;
        Ok(running)
    }

    fn stop(&mut self) {
        if let Some(r) = self.running.take() {
            let _ = r.pipeline.set_state(gst::State::Null);
        }
        self.rate_set = None;
    }

    /// Tells the element about a new target; restarts elements that only read it when
    /// they open, if it moved far enough to matter.
    fn follow_rate(&mut self, target: Target) {
        let wanted = rate_value(self.spec, target);
        let Some(set) = self.rate_set else {
            self.rate_set = Some(wanted);
            return;
        };
        // Small moves are not worth a reconfiguration (x265 starts a new key frame on
        // each one).
        if (wanted as f64 - set as f64).abs() <= set as f64 * IGNORED_RATE_CHANGE {
            return;
        }
        let Some(r) = &self.running else {
            return;
        };
        if r.live_rate {
            apply_rate(self.spec, &r.element, target);
            self.rate_set = Some(wanted);
        } else if (wanted as f64 - set as f64).abs() > set as f64 * RESTART_ON_RATE_CHANGE {
            crate::log_debug!(
                "video: {} restarts for a new bit rate ({set} -> {wanted})",
                self.spec.factory
            );
            self.stop();
        }
    }

    fn push(&mut self, frame: &Frame) -> Result<(), EncodeError> {
        let Some(r) = self.running.as_mut() else {
            return Err(EncodeError::Failed("no pipeline".into()));
        };
        if r.frames == 0 {
            r.first_mm = frame.mm_time;
        }
        // Timestamps from capture times, strictly increasing (rate control in x264 and
        // libvpx reads the time between frames).
        let mut pts_ms = u64::from(frame.mm_time.wrapping_sub(r.first_mm));
        if let Some(last) = r.last_pts_ms {
            if pts_ms <= last || pts_ms > last + 60_000 {
                pts_ms = last + 1;
            }
        }
        r.last_pts_ms = Some(pts_ms);
        let packed = r.width as usize * r.height as usize * BYTES_PER_PIXEL;
        let size = r.convert.map_or(packed, |(_, l)| l.size);
        let mut buffer = gst::Buffer::with_size(size)
            .map_err(|e| EncodeError::Failed(format!("no buffer: {e}")))?;
        {
            let b = buffer
                .get_mut()
                .ok_or_else(|| EncodeError::Failed("buffer not writable".into()))?;
            {
                let mut map = b
                    .map_writable()
                    .map_err(|e| EncodeError::Failed(format!("buffer not writable: {e}")))?;
                let out = map.as_mut_slice();
                match &r.convert {
                    Some((m, l)) => yuv::convert_strided(
                        frame.bytes(),
                        frame.stride,
                        r.width as usize,
                        r.height as usize,
                        m,
                        l,
                        out,
                    ),
                    None => {
                        let row = r.width as usize * BYTES_PER_PIXEL;
                        let rows = frame.bytes().chunks(frame.stride);
                        for (o, s) in out.chunks_exact_mut(row).zip(rows) {
                            o.copy_from_slice(&s[..row]);
                        }
                    }
                }
            }
            b.set_pts(gst::ClockTime::from_mseconds(pts_ms));
        }
        r.frames += 1;
        let pushed = r.src.push_buffer(buffer);
        pushed.map(|_| ()).map_err(|e| {
            let why = pipeline_error(&r.pipeline, &format!("push refused ({e:?})"));
            EncodeError::Failed(format!("{}: {why}", self.spec.factory))
        })
    }

    fn pull(&mut self) -> Result<Vec<u8>, EncodeError> {
        let Some(r) = self.running.as_ref() else {
            return Err(EncodeError::Failed("no pipeline".into()));
        };
        let timeout = if r.frames <= 1 {
            FIRST_FRAME_TIMEOUT
        } else {
            FRAME_TIMEOUT
        };
        let sample = r
            .sink
            .try_pull_sample(gst::ClockTime::from_mseconds(timeout.as_millis() as u64));
        let Some(sample) = sample else {
            let why = pipeline_error(
                &r.pipeline,
                &format!("no frame out within {} ms", timeout.as_millis()),
            );
            return Err(self.failed(why));
        };
        let buffer = sample
            .buffer()
            .ok_or_else(|| self.failed("a sample without a buffer"))?;
        let map = buffer
            .map_readable()
            .map_err(|e| self.failed(format!("cannot read the output: {e}")))?;
        self.last_was_key = !buffer.flags().contains(gst::BufferFlags::DELTA_UNIT);
        Ok(map.as_slice().to_vec())
    }
}

/// The error GStreamer posted on the bus, else `otherwise`.
fn pipeline_error(pipeline: &gst::Pipeline, otherwise: &str) -> String {
    let posted = pipeline.bus().and_then(|bus| {
        bus.pop_filtered(&[gst::MessageType::Error])
            .and_then(|msg| match msg.view() {
                gst::MessageView::Error(e) => Some(match e.debug() {
                    Some(debug) => format!("{} ({debug})", e.error()),
                    None => e.error().to_string(),
                }),
                _ => None,
            })
    });
    posted.unwrap_or_else(|| otherwise.to_string())
}

/// The number the rate property gets for `target`, in the element's unit.
fn rate_value(spec: &Spec, target: Target) -> u64 {
    match spec.rate {
        Rate::Quality(_) => u64::from(target.quality.clamp(1, 100)),
        Rate::Bitrate { kbit: true, .. } => (target.bitrate_bps / 1000).max(1),
        Rate::Bitrate { kbit: false, .. } | Rate::BitrateAtStart(_) => target.bitrate_bps.max(1),
    }
}

fn apply_rate(spec: &Spec, element: &gst::Element, target: Target) {
    let value = rate_value(spec, target);
    let mut settings = Vec::new();
    match spec.rate {
        Rate::Quality(p) | Rate::BitrateAtStart(p) => settings.push((p, value)),
        Rate::Bitrate {
            property,
            vbv_kbit,
            max_kbit,
            ..
        } => {
            settings.push((property, value));
            let kbps = (target.bitrate_bps / 1000).max(1);
            if let Some(vbv) = vbv_kbit {
                settings.push((vbv, (kbps * VBV_MS / 1000).max(1)));
            }
            if let Some(max) = max_kbit {
                settings.push((max, kbps));
            }
        }
    }
    for (name, v) in settings {
        let n = i64::try_from(v).unwrap_or(i64::MAX);
        if let Err(why) = props::set(element, name, Value::Number(n)) {
            crate::log_debug!("video: {}: {why}", spec.factory);
        }
    }
}

impl VideoEncoder for GstEncoder {
    fn codec(&self) -> Codec {
        self.spec.codec
    }

    fn encode(&mut self, frame: &Frame, target: Target) -> Result<Option<Vec<u8>>, EncodeError> {
        let (w, h) = (frame.width, frame.height);
        if !frame.is_complete() {
            return Err(EncodeError::Unsupported(format!(
                "{} bytes with stride {} are not {w}x{h} BGRx",
                frame.bytes().len(),
                frame.stride
            )));
        }
        if !super::size_supported(self.spec.codec, w, h) {
            return Err(EncodeError::Unsupported(format!(
                "{:?} encoders take even sizes only, not {w}x{h}",
                self.spec.codec
            )));
        }
        if self
            .running
            .as_ref()
            .is_some_and(|r| (r.width, r.height) != (w, h))
        {
            self.stop();
        }
        let target = self.at_real_frame_rate(target, frame);
        if self.running.is_some() {
            self.follow_rate(target);
        }
        if self.running.is_none() {
            // A new pipeline starts with a key frame anyway.
            self.key_frame_wanted = false;
            let running = self.build(w, h, target)?;
            self.running = Some(running);
            self.rate_set = Some(rate_value(self.spec, target));
        }
        if std::mem::take(&mut self.key_frame_wanted) {
            if let Some(r) = &self.running {
                force_key_unit(&r.element);
            }
        }
        let result = self.push(frame).and_then(|()| self.pull());
        if result.is_err() {
            self.stop();
        }
        result.map(Some)
    }

    fn request_key_frame(&mut self) {
        self.key_frame_wanted = true;
    }
}

impl GstEncoder {
    /// `target` for the element at the frame rate the frames really come at: libvpx's
    /// bit rate held to `MAX_BITS_PER_PIXEL`; the others' scaled by their caps' frame
    /// rate over the real one (a pipeline built at the rate control's first plan of 60
    /// frames a second, fed 15, spent a quarter of the target: 0.2 Mbit/s of H.264 on a
    /// 1 Mbit/s link), and a new pipeline's caps at the real frame rate.
    fn at_real_frame_rate(&mut self, mut target: Target, frame: &Frame) -> Target {
        if self.spec.codec == Codec::Mjpeg {
            return target;
        }
        if let Some(last) = self.last_capture {
            let gap = f64::from(frame.mm_time.wrapping_sub(last)).clamp(5.0, 1000.0);
            self.interval_ms = Some(match self.interval_ms {
                None => gap,
                Some(i) => i + INTERVAL_SMOOTHING * (gap - i),
            });
        }
        self.last_capture = Some(frame.mm_time);
        let fps = self
            .interval_ms
            .map_or(f64::from(target.fps.max(1)), |i| 1000.0 / i);
        if !matches!(self.spec.codec, Codec::Vp8 | Codec::Vp9) {
            match &self.running {
                Some(r) => {
                    let scale = (r.caps_fps / fps).clamp(1.0 / MAX_RATE_SCALE, MAX_RATE_SCALE);
                    target.bitrate_bps = (target.bitrate_bps as f64 * scale) as u64;
                }
                None => target.fps = (fps.round() as u32).max(1),
            }
            return target;
        }
        let pixels = f64::from(frame.width) * f64::from(frame.height);
        let ceiling = (pixels * MAX_BITS_PER_PIXEL * fps) as u64;
        target.bitrate_bps = target.bitrate_bps.min(ceiling.max(MIN_CAPPED_BPS));
        target
    }
}

/// Asks the element for a key frame with its headers on the next frame: the
/// upstream force-key-unit event every GstVideoEncoder handles.
fn force_key_unit(element: &gst::Element) {
    let event = gstreamer_video::UpstreamForceKeyUnitEvent::builder()
        .all_headers(true)
        .build();
    let sent = element
        .static_pad("src")
        .is_some_and(|pad| pad.send_event(event));
    if !sent {
        crate::log_debug!(
            "video: {} ignored a key frame request",
            props::element_factory(element)
        );
    }
}

impl Drop for GstEncoder {
    fn drop(&mut self) {
        self.stop();
    }
}
