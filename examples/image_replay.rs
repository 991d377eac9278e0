//! Times the image encoders on a session's images: `SPICE_RS_DUMP_IMAGES=dir` makes the
//! display channel write each image it encodes there (a debug aid), and
//!
//!     cargo run --release --features fuzzing --example image_replay -- DIR
//!
//! encodes them again as one client's GLZ session and prints bytes and the CPU time spent
//! encoding (the machine may be shared: wall time would count the others' work).

fn main() {
    let dir = std::env::args().nth(1).expect("usage: image_replay DIR");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("a directory of dumped images")
        .map(|e| e.expect("directory entry").path())
        .collect();
    files.sort();
    let images: Vec<(u32, u32, Vec<u8>)> = files
        .iter()
        .map(|f| {
            let b = std::fs::read(f).expect("readable image");
            let word = |at: usize| u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
            (word(0), word(4), b[8..].to_vec())
        })
        .collect();
    let (pixels, sent, spent) = spice_server::fuzzing::image_replay(&images, thread_cpu_time);
    println!(
        "{} images, {pixels} pixels: {sent} bytes, {:.1} ms ({:.2} ns/pixel)",
        images.len(),
        spent.as_secs_f64() * 1e3,
        spent.as_nanos() as f64 / pixels as f64
    );
}

/// This thread's time on a CPU (the kernel's scheduler statistics, in ns).
fn thread_cpu_time() -> std::time::Duration {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").expect("schedstat");
    let ns = stat.split_whitespace().next().and_then(|v| v.parse().ok());
    std::time::Duration::from_nanos(ns.expect("schedstat's first field"))
}
