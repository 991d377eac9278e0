//! Encode time per 720p and 1080p frame, ours against the C server's settings for the
//! same element, measured side by side on this machine (a shared machine's load moves
//! both alike). Release build:
//! `cargo test --release --lib video::gst::timing -- --ignored --nocapture`
//! (`GST_ENCODERS=x264enc,vp8enc` to pick elements).
//!
//! The C server numbers (720p, another machine): H.264 6.9 ms, VP8 12 ms, VP9 40 ms.

use super::elements::{self, Family, Rate};
use super::props::Value::{self, Number, Text};
use super::tests::{clip_frame, have, target, SOFTWARE};
use super::*;
use std::time::Instant;

/// `server/gstreamer-encoder.c`'s x264enc options.
fn c_x264(_threads: i64) -> Vec<(&'static str, Value<'static>)> {
    vec![
        ("byte-stream", Text("true")),
        ("aud", Text("true")),
        ("qp-min", Number(15)),
        ("qp-max", Number(35)),
        ("tune", Text("zerolatency")),
        ("sliced-threads", Text("true")),
        ("speed-preset", Text("ultrafast")),
        ("intra-refresh", Text("true")),
    ]
}

/// `server/gstreamer-encoder.c`'s vp8enc/vp9enc options.
fn c_vpx(_threads: i64) -> Vec<(&'static str, Value<'static>)> {
    vec![
        ("end-usage", Text("cbr")),
        ("min-quantizer", Number(10)),
        ("error-resilient", Text("default")),
        ("lag-in-frames", Number(0)),
        ("deadline", Number(1)),
        ("cpu-used", Number(4)),
    ]
}

fn c_spec(factory: &'static str, settings: fn(i64) -> Vec<(&'static str, Value<'static>)>) -> Spec {
    let ours = elements::spec(factory).expect("known");
    Spec {
        factory,
        codec: ours.codec,
        family: Family::Software,
        // BGRx into `videoconvert`, which picks the element's format, as the C
        // server's pipeline does.
        input: None,
        output: ours.output,
        rate: ours.rate,
        settings,
        from: "the C server's settings",
    }
}

static C_X264: Lazy<Spec> = Lazy::new(|| c_spec("x264enc", c_x264));
static C_VP8: Lazy<Spec> = Lazy::new(|| c_spec("vp8enc", c_vpx));
static C_VP9: Lazy<Spec> = Lazy::new(|| c_spec("vp9enc", c_vpx));

/// No encoder: what the pipeline itself costs (copy in, BGRx to I420, copy out).
static CONVERT_ONLY: Spec = Spec {
    factory: "identity",
    codec: Codec::H264,
    family: Family::Software,
    input: Some("I420"),
    output: "video/x-raw",
    rate: Rate::BitrateAtStart("no-such-property"),
    settings: |_| Vec::new(),
    from: "",
};

fn c_server_spec(factory: &str) -> Option<&'static Spec> {
    match factory {
        "x264enc" => Some(&C_X264),
        "vp8enc" => Some(&C_VP8),
        "vp9enc" => Some(&C_VP9),
        _ => None,
    }
}

/// CPU time of every live thread of this process (ns), from the scheduler.
fn process_cpu_ns() -> u64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0;
    };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

struct Measured {
    median_ms: f64,
    mean_ms: f64,
    cpu_ms: f64,
    kbps: f64,
}

/// Encodes `frames` (after 5 warm-up frames that open the element and hold the key
/// frame) and measures wall time per frame and CPU time per frame over all threads.
fn measure(spec: &'static Spec, clip: &[Frame], kbps: u64, frames: usize) -> Measured {
    let mut enc = GstEncoder::new(spec);
    for f in &clip[..5] {
        enc.encode(f, target(kbps)).expect("encodes");
    }
    let timed: Vec<Frame> = (0..frames)
        .map(|i| {
            let mut f = clip[(i + 5) % clip.len()].clone();
            f.mm_time = (i as u32 + 5) * 33;
            f
        })
        .collect();
    let mut times = Vec::new();
    let mut bytes = 0;
    let cpu_before = process_cpu_ns();
    for f in &timed {
        let t = Instant::now();
        bytes += enc
            .encode(f, target(kbps))
            .expect("encodes")
            .expect("frame")
            .len();
        times.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let cpu_ms = (process_cpu_ns() - cpu_before) as f64 / 1e6 / frames as f64;
    times.sort_by(f64::total_cmp);
    Measured {
        median_ms: times[times.len() / 2],
        mean_ms: times.iter().sum::<f64>() / times.len() as f64,
        cpu_ms,
        kbps: bytes as f64 * 8.0 / (frames as f64 / 30.0) / 1000.0,
    }
}

fn print(who: &str, name: &str, w: u32, h: u32, m: &Measured) {
    println!(
        "{name:8} {w}x{h} {who:4}: median {:5.1} ms, mean {:5.1} ms, CPU {:5.1} ms/frame, {:5.0} kbit/s",
        m.median_ms, m.mean_ms, m.cpu_ms, m.kbps
    );
}

/// The best of `rounds` (lowest median, lowest CPU): other load on the machine only
/// ever adds time.
fn best(rounds: &[Measured]) -> Measured {
    let min = |f: fn(&Measured) -> f64| rounds.iter().map(f).fold(f64::INFINITY, f64::min);
    Measured {
        median_ms: min(|m| m.median_ms),
        mean_ms: min(|m| m.mean_ms),
        cpu_ms: min(|m| m.cpu_ms),
        kbps: rounds.first().map_or(0.0, |m| m.kbps),
    }
}

const ROUNDS: usize = 3;

#[test]
#[ignore]
fn encode_time_720p_and_1080p() {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("{threads} threads");
    let names: Vec<String> = match std::env::var("GST_ENCODERS") {
        Ok(list) => list.split(',').map(str::to_string).collect(),
        Err(_) => SOFTWARE.iter().map(|s| s.to_string()).collect(),
    };
    for (w, h) in [(1280u32, 720u32), (1920, 1080)] {
        let frame = clip_frame(w, h, 0);
        let m = super::yuv::Matrix::for_height(h);
        let (wu, hu) = (w as usize, h as usize);
        let (cw, ch) = (wu.div_ceil(2), hu.div_ceil(2));
        let l = super::yuv::Layout {
            y_offset: 0,
            y_stride: wu,
            u_offset: wu * hu,
            u_stride: cw,
            v_offset: wu * hu + cw * ch,
            v_stride: cw,
            nv12: false,
            size: wu * hu + 2 * cw * ch,
        };
        let mut out = vec![0u8; l.size];
        let mut best = f64::INFINITY;
        for _ in 0..20 {
            let t = Instant::now();
            super::yuv::convert(frame.bytes(), wu, hu, &m, &l, &mut out);
            best = best.min(t.elapsed().as_secs_f64() * 1000.0);
        }
        println!("BGRx to I420 {w}x{h}: best {best:.2} ms");
    }
    for (w, h) in [(1280u32, 720u32), (1920, 1080)] {
        let clip: Vec<_> = (0..20).map(|n| clip_frame(w, h, n)).collect();
        let rounds: Vec<_> = (0..ROUNDS)
            .map(|_| measure(&CONVERT_ONLY, &clip, 1000, 40))
            .collect();
        print("", "convert", w, h, &best(&rounds));
    }
    for name in names {
        let Some(ours) = elements::spec(&name) else {
            continue;
        };
        if !have(&name) {
            println!("{name}: not installed");
            continue;
        }
        for (w, h, kbps) in [(1280u32, 720u32, 4000u64), (1920, 1080, 8000)] {
            let clip: Vec<_> = (0..20).map(|n| clip_frame(w, h, n)).collect();
            // Interleaved rounds, so both see the same load on the machine.
            let c = c_server_spec(&name);
            let (mut mine, mut theirs) = (Vec::new(), Vec::new());
            for _ in 0..ROUNDS {
                mine.push(measure(ours, &clip, kbps, 40));
                if let Some(c) = c {
                    theirs.push(measure(c, &clip, kbps, 40));
                }
            }
            print("ours", &name, w, h, &best(&mine));
            if !theirs.is_empty() {
                print("C", &name, w, h, &best(&theirs));
            }
        }
    }
}
