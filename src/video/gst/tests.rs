//! Encoders checked the way a viewer sees them: the bytes go through spice-gtk's
//! decoders (`h264parse ! avdec_h264`, `vp8dec`…) and the picture is compared.

use super::elements::{self, Family, Rate};
use super::*;
use gstreamer::prelude::*;
use std::time::Instant;

fn spec(factory: &str) -> &'static Spec {
    elements::spec(factory).expect("a known element")
}

pub(super) fn have(factory: &str) -> bool {
    init().is_ok() && gst::ElementFactory::find(factory).is_some()
}

/// Video-like frame `n` of a clip: gradients, a moving disc, moving waves and grain.
pub(super) fn clip_frame(width: u32, height: u32, n: u32) -> Frame {
    let mut pixels = Vec::with_capacity(width as usize * height as usize * 4);
    let mut seed = 0x9e37_79b9_u32 ^ n.wrapping_mul(0x85eb_ca6b);
    let (cx, cy) = (
        (width / 4 + n * 7) % width.max(1),
        (height / 3 + n * 3) % height.max(1),
    );
    let r2 = (height / 5).pow(2);
    for y in 0..height {
        for x in 0..width {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            let grain = (seed % 9) as i32 - 4;
            let wave =
                (((x + 2 * n) as f32 / 19.0).sin() * ((y + n) as f32 / 27.0).cos() * 40.0) as i32;
            let inside = (x as i64 - cx as i64).pow(2) + (y as i64 - cy as i64).pow(2) < r2 as i64;
            let base = [
                (x * 200 / width) as i32,
                (y * 200 / height) as i32,
                ((x + y) * 150 / (width + height)) as i32 + 50,
            ];
            for c in base {
                let v = if inside {
                    230 - c / 4
                } else {
                    c + wave + grain
                };
                pixels.push(v.clamp(0, 255) as u8);
            }
            pixels.push(0);
        }
    }
    Frame::packed(width, height, pixels, n * 33)
}

pub(super) fn target(kbps: u64) -> Target {
    Target {
        quality: 80,
        bitrate_bps: kbps * 1000,
        fps: 30,
        scale: 1,
    }
}

/// spice-gtk 0.42's decoder for the codec (`channel-display-priv.h`), to BGRx.
fn decoder_for(codec: Codec) -> (&'static str, &'static str) {
    match codec {
        Codec::Mjpeg => ("image/jpeg", "jpegdec"),
        Codec::Vp8 => ("video/x-vp8", "vp8dec"),
        Codec::H264 => ("video/x-h264", "h264parse ! avdec_h264"),
        Codec::Vp9 => ("video/x-vp9", "vp9dec"),
        Codec::H265 => ("video/x-h265", "h265parse ! avdec_h265"),
    }
}

/// Decodes `frames` (one compressed frame each) as spice-gtk does; returns the
/// pictures, BGRx.
fn decode(codec: Codec, frames: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let (caps, dec) = decoder_for(codec);
    let desc = format!(
        "appsrc name=src caps={caps} format=time ! {dec} ! videoconvert ! \
         video/x-raw,format=BGRx ! appsink name=sink sync=false"
    );
    let pipeline = gst::parse::launch(&desc)
        .expect("decoder pipeline")
        .downcast::<gst::Pipeline>()
        .expect("a pipeline");
    let src = pipeline
        .by_name("src")
        .and_then(|e| e.downcast::<gstreamer_app::AppSrc>().ok())
        .expect("appsrc");
    let sink = pipeline
        .by_name("sink")
        .and_then(|e| e.downcast::<gstreamer_app::AppSink>().ok())
        .expect("appsink");
    pipeline.set_state(gst::State::Playing).expect("plays");
    for (i, f) in frames.iter().enumerate() {
        let mut b = gst::Buffer::from_slice(f.clone());
        b.get_mut()
            .expect("writable")
            .set_pts(gst::ClockTime::from_mseconds(i as u64 * 33));
        src.push_buffer(b).expect("pushed");
    }
    src.end_of_stream().expect("eos");
    let mut out = Vec::new();
    while let Some(sample) = sink.try_pull_sample(gst::ClockTime::from_seconds(5)) {
        let buffer = sample.buffer().expect("buffer");
        out.push(buffer.map_readable().expect("readable").as_slice().to_vec());
    }
    pipeline.set_state(gst::State::Null).expect("stops");
    out
}

fn psnr(a: &[u8], b: &[u8]) -> f64 {
    assert_eq!(a.len(), b.len(), "decoded size");
    let mut sq = 0.0f64;
    for (p, q) in a.chunks_exact(4).zip(b.chunks_exact(4)) {
        for c in 0..3 {
            let e = f64::from(p[c]) - f64::from(q[c]);
            sq += e * e;
        }
    }
    let mse = sq / (a.len() / 4 * 3) as f64;
    10.0 * (255.0 * 255.0 / mse.max(1e-9)).log10()
}

/// H.264/H.265 NAL unit types in an Annex-B frame.
fn nal_types(codec: Codec, data: &[u8]) -> Vec<u8> {
    let mut types = Vec::new();
    let mut i = 0;
    while i + 3 < data.len() {
        if data[i..i + 3] == [0, 0, 1] {
            let header = data[i + 3];
            types.push(match codec {
                Codec::H265 => (header >> 1) & 0x3f,
                _ => header & 0x1f,
            });
            i += 3;
        } else {
            i += 1;
        }
    }
    types
}

pub(super) const SOFTWARE: [&str; 5] = ["x264enc", "x265enc", "vp8enc", "vp9enc", "jpegenc"];

#[test]
fn every_software_codec_decodes_in_the_clients_decoder() {
    for name in SOFTWARE {
        if !have(name) {
            println!("{name}: not installed, skipped");
            continue;
        }
        let spec = spec(name);
        let mut enc = GstEncoder::new(spec);
        let (w, h) = (640, 360);
        let originals: Vec<_> = (0..8).map(|n| clip_frame(w, h, n)).collect();
        let mut out = Vec::new();
        let mut keys = Vec::new();
        for f in &originals {
            let data = enc
                .encode(f, target(3000))
                .unwrap_or_else(|e| panic!("{name}: {e}"))
                .expect("one frame out per frame in");
            keys.push(enc.last_was_key_frame());
            out.push(data);
        }
        assert!(keys[0], "{name}: the stream starts with a key frame");
        if spec.codec != Codec::Mjpeg {
            assert!(
                !keys[1..].iter().any(|&k| k),
                "{name}: no periodic key frames: {keys:?}"
            );
        }
        match spec.codec {
            Codec::H264 => {
                let first = nal_types(Codec::H264, &out[0]);
                assert_eq!(first.first(), Some(&9), "{name}: AUD first: {first:?}");
                assert!(first.contains(&7) && first.contains(&8) && first.contains(&5));
                let next = nal_types(Codec::H264, &out[1]);
                assert_eq!(next.first(), Some(&9), "{name}: AUD on every frame");
                assert!(!next.contains(&5), "{name}: P frame, not IDR: {next:?}");
            }
            Codec::H265 => {
                // VPS 32, SPS 33, PPS 34 with the key frame (x265enc puts the stream
                // headers before the first AUD), AUD 35 starting every later frame.
                let first = nal_types(Codec::H265, &out[0]);
                assert!(first.contains(&32) && first.contains(&33) && first.contains(&34));
                assert!(first.contains(&35), "{name}: {first:?}");
                let next = nal_types(Codec::H265, &out[1]);
                assert_eq!(next.first(), Some(&35), "{name}: {next:?}");
            }
            Codec::Mjpeg => assert_eq!(&out[0][..2], &[0xff, 0xd8]),
            Codec::Vp8 => assert_eq!(out[0][0] & 1, 0, "{name}: VP8 key frame bit"),
            Codec::Vp9 => {}
        }
        let pictures = decode(spec.codec, &out);
        assert_eq!(
            pictures.len(),
            originals.len(),
            "{name}: every frame decodes"
        );
        let q = psnr(&pictures[7], &originals[7].pixels);
        let bytes: usize = out.iter().map(Vec::len).sum();
        println!(
            "{name}: 8 frames {w}x{h} at 3 Mbit/s: {} bytes, key {} bytes, last frame PSNR {q:.1} dB",
            bytes,
            out[0].len()
        );
        assert!(q > 28.0, "{name}: PSNR {q:.1} dB");
    }
}

#[test]
fn a_requested_key_frame_comes_with_the_next_frame() {
    for name in ["x264enc", "x265enc", "vp8enc", "vp9enc"] {
        if !have(name) {
            continue;
        }
        let mut enc = GstEncoder::new(spec(name));
        for n in 0..4 {
            enc.encode(&clip_frame(320, 240, n), target(1000))
                .expect("encodes");
            assert_eq!(enc.last_was_key_frame(), n == 0, "{name} frame {n}");
        }
        enc.request_key_frame();
        let data = enc
            .encode(&clip_frame(320, 240, 4), target(1000))
            .expect("encodes")
            .expect("a frame");
        assert!(enc.last_was_key_frame(), "{name}: key frame on request");
        if name == "x264enc" {
            let types = nal_types(Codec::H264, &data);
            assert!(
                types.contains(&5) && types.contains(&7),
                "{name}: IDR with SPS: {types:?}"
            );
        }
        enc.encode(&clip_frame(320, 240, 5), target(1000))
            .expect("encodes");
        assert!(!enc.last_was_key_frame(), "{name}: one key frame only");
    }
}

/// Average bit rate over `frames` frames of the clip at 30 fps, at `kbps`.
fn measured_kbps(enc: &mut GstEncoder, kbps: u64, first: u32, frames: u32) -> f64 {
    let mut bytes = 0;
    for n in first..first + frames {
        bytes += enc
            .encode(&clip_frame(640, 360, n), target(kbps))
            .expect("encodes")
            .expect("frame")
            .len();
    }
    bytes as f64 * 8.0 / (frames as f64 / 30.0) / 1000.0
}

#[test]
fn the_bit_rate_follows_the_target_while_encoding() {
    for name in ["x264enc", "x265enc", "vp8enc", "vp9enc"] {
        if !have(name) {
            continue;
        }
        let mut enc = GstEncoder::new(spec(name));
        // Warm up past the key frame, then measure at two targets on one pipeline.
        // (640x360 at 30 fps: the per-pixel cap is 1382 kbit/s, above both targets.)
        measured_kbps(&mut enc, 400, 0, 30);
        let low = measured_kbps(&mut enc, 400, 30, 60);
        let high = measured_kbps(&mut enc, 1300, 90, 60);
        println!("{name}: target 400 kbit/s -> {low:.0}, target 1300 kbit/s -> {high:.0}");
        assert!(low < 400.0 * 1.5, "{name}: {low:.0} kbit/s for 400");
        assert!(
            high > low * 2.0,
            "{name}: {high:.0} kbit/s after raising the target"
        );
        assert!(high < 1300.0 * 1.5, "{name}: {high:.0} kbit/s for 1300");
    }
}

#[test]
fn frames_stay_small_when_they_come_slowly() {
    // 5 frames a second with a 3 Mbit/s target: uncapped, each 640x360 frame could take
    // 75 kB; the cap (0.2 bit per pixel) holds the rate to 230 kbit/s, 5.8 kB a frame.
    for name in ["vp8enc", "vp9enc"] {
        if !have(name) {
            continue;
        }
        let mut enc = GstEncoder::new(spec(name));
        let mut sizes = Vec::new();
        for n in 0..40u32 {
            let mut frame = clip_frame(640, 360, n);
            frame.mm_time = n * 200;
            let out = enc
                .encode(&frame, target(3000))
                .expect("encodes")
                .expect("frame");
            sizes.push(out.len());
        }
        let later = &sizes[20..];
        let mean = later.iter().sum::<usize>() / later.len();
        println!("{name} at 5 fps, target 3 Mbit/s: {mean} bytes a frame");
        assert!(mean < 15_000, "{name}: {mean} bytes a frame");
    }
}

#[test]
fn h264_spends_its_target_at_the_frame_rate_really_encoded() {
    // The rate control's first plan says 60 frames a second; the guest gives 15. The
    // stream must still get its target, not a quarter of it.
    let name = "x264enc";
    if !have(name) {
        return;
    }
    let mean_bytes = |planned_fps: u32| {
        let mut enc = GstEncoder::new(spec(name));
        let mut sizes = Vec::new();
        for n in 0..60u32 {
            let mut frame = clip_frame(640, 360, n);
            frame.mm_time = n * 66;
            let mut t = target(600);
            t.fps = planned_fps;
            let out = enc.encode(&frame, t).expect("encodes").expect("frame");
            sizes.push(out.len());
        }
        let later = &sizes[30..];
        later.iter().sum::<usize>() as f64 / later.len() as f64
    };
    let (planned_60, planned_15) = (mean_bytes(60), mean_bytes(15));
    println!("{name} fed 15 fps at 600 kbit/s: {planned_60:.0} bytes a frame planned at 60 fps, {planned_15:.0} at 15");
    assert!(
        planned_60 > 0.6 * planned_15,
        "{planned_60:.0} vs {planned_15:.0} bytes a frame"
    );
}

#[test]
fn jpeg_quality_follows_the_target() {
    if !have("jpegenc") {
        return;
    }
    let mut enc = GstEncoder::new(spec("jpegenc"));
    let frame = clip_frame(320, 240, 0);
    let mut sizes = Vec::new();
    for quality in [30, 60, 90] {
        let t = Target {
            quality,
            bitrate_bps: 0,
            fps: 30,
            scale: 1,
        };
        sizes.push(
            enc.encode(&frame, t)
                .expect("encodes")
                .expect("frame")
                .len(),
        );
    }
    println!("jpegenc: quality 30/60/90 -> {sizes:?} bytes");
    assert!(sizes[0] < sizes[1] && sizes[1] < sizes[2], "{sizes:?}");
}

#[test]
fn a_new_frame_size_restarts_with_a_key_frame() {
    if !have("x264enc") {
        return;
    }
    let mut enc = GstEncoder::new(spec("x264enc"));
    enc.encode(&clip_frame(320, 240, 0), target(1000))
        .expect("encodes");
    enc.encode(&clip_frame(320, 240, 1), target(1000))
        .expect("encodes");
    let data = enc
        .encode(&clip_frame(400, 300, 2), target(1000))
        .expect("encodes")
        .expect("frame");
    assert!(enc.last_was_key_frame());
    let pictures = decode(Codec::H264, &[data]);
    assert_eq!(pictures.first().map(Vec::len), Some(400 * 300 * 4));
}

#[test]
fn odd_sizes_are_refused_by_h264_and_taken_by_vp8() {
    if !have("x264enc") || !have("vp8enc") {
        return;
    }
    let odd = clip_frame(321, 241, 0);
    let mut h264 = GstEncoder::new(spec("x264enc"));
    assert!(matches!(
        h264.encode(&odd, target(1000)),
        Err(EncodeError::Unsupported(_))
    ));
    let mut vp8 = GstEncoder::new(spec("vp8enc"));
    let data = vp8
        .encode(&odd, target(1000))
        .expect("encodes")
        .expect("frame");
    assert_eq!(decode(Codec::Vp8, &[data])[0].len(), 321 * 241 * 4);
    // A short pixel buffer is refused, not read past.
    let mut short = clip_frame(64, 64, 0);
    std::sync::Arc::make_mut(&mut short.pixels).truncate(100);
    assert!(vp8.encode(&short, target(1000)).is_err());
}

static BROKEN: Spec = Spec {
    factory: "x264enc",
    codec: Codec::H264,
    family: Family::Software,
    input: Some("I420"),
    // x264enc never produces VP8: the pipeline cannot link.
    output: "video/x-vp8",
    rate: Rate::Quality("nonexistent-property"),
    settings: |_| Vec::new(),
    from: "nowhere",
};

static MISSING: Spec = Spec {
    factory: "nosuchenc",
    codec: Codec::H264,
    family: Family::Nvenc,
    input: Some("NV12"),
    output: "video/x-h264",
    rate: Rate::Quality("quality"),
    settings: |_| Vec::new(),
    from: "an imaginary plugin",
};

#[test]
fn a_broken_element_fails_quickly_and_cleanly() {
    if !have("x264enc") {
        return;
    }
    let started = Instant::now();
    let mut enc = GstEncoder::new(&BROKEN);
    let r = enc.encode(&clip_frame(64, 64, 0), target(500));
    println!("broken pipeline: {r:?} after {:?}", started.elapsed());
    assert!(matches!(r, Err(EncodeError::Failed(_))), "{r:?}");
    assert!(started.elapsed() < std::time::Duration::from_secs(12));
    let why = test_encode(&MISSING).expect_err("no such element");
    assert!(
        why.contains("nosuchenc") && why.contains("imaginary"),
        "{why}"
    );
}

#[test]
fn hardware_is_tried_first_and_software_takes_over() {
    let h264 = elements::candidates(Encoder::Gstreamer, Codec::H264);
    let mut tried = Vec::new();
    let (picked, refused) = first_working(&h264, |s| {
        tried.push(s.factory);
        if s.family == Family::Software {
            Ok(())
        } else {
            Err(format!("{}: no device", s.factory))
        }
    });
    assert_eq!(tried, ["nvh264enc", "vah264enc", "vaapih264enc", "x264enc"]);
    assert_eq!(picked.map(|s| s.factory), Some("x264enc"));
    assert_eq!(refused.len(), 3);
    // A working GPU encoder wins over x264.
    let (picked, _) = first_working(&h264, |_| Ok(()));
    assert_eq!(picked.map(|s| s.factory), Some("nvh264enc"));
    // Forced hardware never falls back to software.
    let nvenc = elements::candidates(Encoder::Nvenc, Codec::H264);
    let (picked, refused) = first_working(&nvenc, |_| Err("no NVIDIA driver".into()));
    assert!(picked.is_none());
    assert_eq!(refused, ["no NVIDIA driver"]);
}

/// On this host (no GPU): the real probe picks x264enc for `gstreamer:h264` and says
/// `nvenc:h264` is not available.
#[test]
fn this_hosts_probe_falls_back_to_software() {
    if !have("x264enc") {
        return;
    }
    let gpu = ["nvh264enc", "vah264enc", "vaapih264enc"];
    let started = Instant::now();
    let picked = chosen_element(Encoder::Gstreamer, Codec::H264).map(|s| s.factory);
    println!(
        "gstreamer:h264 -> {picked:?} in {:?}; registered GPU elements: {:?}",
        started.elapsed(),
        gpu.iter().filter(|g| have(g)).collect::<Vec<_>>()
    );
    if gpu.iter().all(|g| !have(g)) {
        assert_eq!(picked, Some("x264enc"));
        assert!(!is_available(Encoder::Nvenc, Codec::H264));
        assert!(!is_available(Encoder::Vaapi, Codec::H264));
        assert!(open(Encoder::Nvenc, Codec::H264).is_err());
        let why = probe(spec("nvh264enc")).expect_err("no NVENC here");
        assert!(why.contains("nvh264enc"), "{why}");
    }
    // The answer is kept: asking again does not probe again.
    let again = Instant::now();
    assert_eq!(
        chosen_element(Encoder::Gstreamer, Codec::H264).map(|s| s.factory),
        picked
    );
    assert!(again.elapsed().as_millis() < 50);
    let mut enc = open(Encoder::Gstreamer, Codec::H264).expect("opens");
    assert_eq!(enc.codec(), Codec::H264);
    assert!(enc.encode(&clip_frame(128, 96, 0), target(500)).is_ok());
}

/// Our BGRx to I420/NV12 conversion against GStreamer's `videoconvert` with the same
/// colorimetry, at sizes whose rows GStreamer pads.
#[test]
fn the_yuv_conversion_matches_videoconvert() {
    use super::yuv::{convert, Layout, Matrix};
    use gstreamer_video::{VideoColorimetry, VideoFormat, VideoInfo};
    init().expect("gstreamer");
    for (w, h, format) in [
        (64u32, 48u32, VideoFormat::I420),
        (321, 241, VideoFormat::I420),
        (322, 720, VideoFormat::Nv12),
        (1280, 720, VideoFormat::I420),
    ] {
        let frame = clip_frame(w, h, 3);
        let m = Matrix::for_height(h);
        let colorimetry: VideoColorimetry = m.colorimetry.parse().expect("colorimetry");
        let info = VideoInfo::builder(format, w, h)
            .fps(gst::Fraction::new(30, 1))
            .colorimetry(&colorimetry)
            .build()
            .expect("info");
        let l = Layout {
            y_offset: info.offset()[0],
            y_stride: info.stride()[0] as usize,
            u_offset: info.offset()[1],
            u_stride: info.stride()[1] as usize,
            v_offset: info.offset().get(2).copied().unwrap_or(0),
            v_stride: info.stride().get(2).map_or(0, |&s| s as usize),
            nv12: format == VideoFormat::Nv12,
            size: info.size(),
        };
        let mut ours = vec![0u8; info.size()];
        convert(frame.bytes(), w as usize, h as usize, &m, &l, &mut ours);
        // The same through videoconvert.
        let desc = format!(
            "appsrc name=src format=time caps=video/x-raw,format=BGRx,width={w},height={h},framerate=30/1 \
             ! videoconvert ! appsink name=sink sync=false caps=\"{}\"",
            info.to_caps().expect("caps")
        );
        let pipeline = gst::parse::launch(&desc)
            .expect("pipeline")
            .downcast::<gst::Pipeline>()
            .expect("a pipeline");
        let src = pipeline
            .by_name("src")
            .and_then(|e| e.downcast::<gstreamer_app::AppSrc>().ok());
        let sink = pipeline
            .by_name("sink")
            .and_then(|e| e.downcast::<gstreamer_app::AppSink>().ok());
        let (src, sink) = (src.expect("appsrc"), sink.expect("appsink"));
        pipeline.set_state(gst::State::Playing).expect("plays");
        src.push_buffer(gst::Buffer::from_slice(frame.bytes().to_vec()))
            .expect("push");
        let sample = sink
            .try_pull_sample(gst::ClockTime::from_seconds(5))
            .expect("converted");
        let theirs = sample
            .buffer()
            .expect("buffer")
            .map_readable()
            .expect("map")
            .to_vec();
        pipeline.set_state(gst::State::Null).expect("stops");
        assert_eq!(theirs.len(), ours.len(), "{w}x{h} size");
        // Compare the picture bytes only (rows' padding is undefined). Luma must agree
        // to rounding; chroma may differ at sharp edges, where videoconvert filters for
        // MPEG-2 chroma siting and we average each 2x2 block.
        let chroma_w = w.div_ceil(2) as usize;
        let chroma_h = h.div_ceil(2) as usize;
        let planes: Vec<(usize, usize, usize, usize)> = match format {
            VideoFormat::Nv12 => vec![
                (l.y_offset, l.y_stride, w as usize, h as usize),
                (l.u_offset, l.u_stride, 2 * chroma_w, chroma_h),
            ],
            _ => vec![
                (l.y_offset, l.y_stride, w as usize, h as usize),
                (l.u_offset, l.u_stride, chroma_w, chroma_h),
                (l.v_offset, l.v_stride, chroma_w, chroma_h),
            ],
        };
        let mut stats = Vec::new();
        for (offset, stride, pw, ph) in planes {
            let (mut worst, mut total) = (0u8, 0u64);
            for y in 0..ph {
                for x in 0..pw {
                    let i = offset + y * stride + x;
                    let d = ours[i].abs_diff(theirs[i]);
                    worst = worst.max(d);
                    total += u64::from(d);
                }
            }
            stats.push((worst, total as f64 / (pw * ph) as f64));
        }
        println!(
            "{w}x{h} {format:?} ({}): worst and mean difference per plane {stats:.2?}",
            m.colorimetry
        );
        assert!(stats[0].0 <= 1, "{w}x{h}: luma {:?}", stats[0]);
        for &(worst, mean) in &stats[1..] {
            assert!(worst <= 24 && mean < 1.0, "{w}x{h}: chroma {stats:?}");
        }
    }
}
