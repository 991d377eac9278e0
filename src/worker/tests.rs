use super::*;
use crate::canvas::framebuffer::Framebuffer;
use crate::qxl::memslot::Slot;
use crossbeam_channel::{bounded, unbounded, Sender};
use std::collections::VecDeque;
use std::sync::Arc;

/// A device whose rings are plain queues and whose callbacks are recorded.
#[derive(Default)]
struct FakeDevice {
    commands: VecDeque<Command>,
    cursor: VecDeque<Command>,
    log: Arc<parking_lot::Mutex<Vec<String>>>,
}

impl Device for FakeDevice {
    fn get_command(&mut self) -> Option<Command> {
        self.commands.pop_front()
    }
    fn req_cmd_notification(&mut self) -> bool {
        true
    }
    fn get_cursor_command(&mut self) -> Option<Command> {
        self.cursor.pop_front()
    }
    fn req_cursor_notification(&mut self) -> bool {
        true
    }
    fn release_resource(&mut self, info_address: u64, group: u32) {
        self.log
            .lock()
            .push(format!("release {info_address:#x} g{group}"));
    }
    fn async_complete(&mut self, cookie: u64) {
        self.log.lock().push(format!("complete {cookie}"));
    }
    fn flush_resources(&mut self) -> i32 {
        self.log.lock().push("flush_resources".into());
        0
    }
    fn notify_update(&mut self, update_id: u32) {
        self.log.lock().push(format!("notify_update {update_id}"));
    }
    fn update_area_complete(&mut self, surface_id: u32, rects: &[Rect]) {
        self.log.lock().push(format!(
            "update_area_complete {surface_id} n={}",
            rects.len()
        ));
    }
}

fn layout() -> Layout {
    Layout {
        groups: 2,
        slots: 8,
        gen_bits: 8,
        id_bits: 8,
        n_surfaces: 16,
    }
}

fn host_slot() -> Slot {
    Slot {
        generation: 0,
        virt_start: 0,
        virt_end: u64::MAX,
        addr_delta: 0,
    }
}

/// Gives the worker QEMU's host slot (group 0 addresses are host pointers).
fn map_host_memory(tx: &Sender<Msg>) {
    let value = host_slot();
    tx.send(Msg::AddMemslot {
        group: 0,
        slot: 0,
        value,
        done: Done::None,
    })
    .unwrap();
}

fn worker(device: FakeDevice) -> (Worker<FakeDevice>, Sender<Msg>) {
    let (tx, rx) = unbounded();
    (
        Worker::new(
            device,
            layout(),
            rx,
            Arc::new(AtomicBool::new(false)),
            Outputs::default(),
        ),
        tx,
    )
}

fn draw(data: u64, group: u32) -> Command {
    Command {
        data,
        kind: command_type::DRAW,
        group,
        flags: 0,
    }
}

/// A zeroed command record in host memory (group 0 addresses are host pointers).
fn record(len: usize, kind_at: Option<(usize, u8)>) -> Box<[u8]> {
    let mut b = vec![0u8; len].into_boxed_slice();
    if let Some((at, v)) = kind_at {
        b[at] = v;
    }
    b
}

fn addr(b: &[u8]) -> u64 {
    b.as_ptr() as u64
}

#[test]
fn releases_every_valid_command_once_and_rejects_bad_ones() {
    // A NOP drawable (type 0) and a cursor HIDE (type 2 at offset 8).
    let (d1, d2) = (record(191, None), record(191, None));
    let hide = record(22, Some((8, 2)));
    let mut device = FakeDevice::default();
    device
        .commands
        .extend([draw(addr(&d1), 0), draw(addr(&d2), 0), draw(5 << 56, 1)]);
    device.cursor.push_back(Command {
        data: addr(&hide),
        kind: command_type::CURSOR,
        group: 0,
        flags: 0,
    });
    let log = device.log.clone();
    let (mut w, tx) = worker(device);
    map_host_memory(&tx);
    tx.send(Msg::Start).unwrap();
    tx.send(Msg::Shutdown).unwrap();
    // Start is handled, rings drained, then Shutdown ends the loop.
    w.run();
    let expected: Vec<String> = [addr(&d1), addr(&hide), addr(&d2)]
        .iter()
        .map(|a| format!("release {a:#x} g0"))
        .collect();
    assert_eq!(*log.lock(), expected);
    assert_eq!(w.stats.rejected, 1, "the group-1 command has no slot");
}

#[test]
fn nothing_is_taken_from_the_rings_while_stopped() {
    let mut device = FakeDevice::default();
    device.commands.push_back(draw(0x1000, 0)); // never read: the VM is stopped
    let (mut w, tx) = worker(device);
    map_host_memory(&tx);
    tx.send(Msg::Wakeup).unwrap();
    tx.send(Msg::Shutdown).unwrap();
    w.run();
    assert_eq!(w.stats.commands, 0);
}

#[test]
fn async_requests_complete_exactly_once_and_sync_ones_ack() {
    let device = FakeDevice::default();
    let log = device.log.clone();
    let (mut w, tx) = worker(device);
    let (ack, acked) = bounded(1);
    tx.send(Msg::UpdateArea {
        surface_id: 0,
        area: Rect::default(),
        done: Done::Async(7),
    })
    .unwrap();
    tx.send(Msg::FlushSurfaces {
        done: Done::Async(8),
    })
    .unwrap();
    tx.send(Msg::DestroySurfaces {
        done: Done::Sync(ack),
    })
    .unwrap();
    tx.send(Msg::Shutdown).unwrap();
    w.run();
    assert_eq!(
        *log.lock(),
        vec!["update_area_complete 0 n=1", "complete 7", "complete 8"]
    );
    assert!(acked.try_recv().is_ok());
}

#[test]
fn primary_surface_follows_create_and_destroy() {
    let (mut w, tx) = worker(FakeDevice::default());
    let surface = PrimarySurface {
        width: 640,
        height: 480,
        stride: -2560,
        format: 32,
        mouse_mode: 1,
        flags: 0,
        mem: 0x1000,
        group: 0,
    };
    tx.send(Msg::CreatePrimary {
        surface,
        done: Done::None,
    })
    .unwrap();
    tx.send(Msg::Shutdown).unwrap();
    w.run();
    assert_eq!(w.primary(), Some(&surface));
    tx.send(Msg::DestroyPrimary { done: Done::None }).unwrap();
    tx.send(Msg::Shutdown).unwrap();
    w.run();
    assert_eq!(w.primary(), None);
}

#[test]
fn a_handle_survives_a_dead_worker() {
    struct Panicky;
    impl Device for Panicky {
        fn get_command(&mut self) -> Option<Command> {
            panic!("device exploded")
        }
        fn req_cmd_notification(&mut self) -> bool {
            true
        }
        fn get_cursor_command(&mut self) -> Option<Command> {
            None
        }
        fn req_cursor_notification(&mut self) -> bool {
            true
        }
        fn release_resource(&mut self, _: u64, _: u32) {}
        fn async_complete(&mut self, _: u64) {}
        fn update_area_complete(&mut self, _: u32, _: &[Rect]) {}
    }
    let handle = WorkerHandle::spawn(0, Panicky, layout(), Outputs::default(), || {}).unwrap();
    handle.post(Msg::Start);
    // The sync call must return even though the worker thread died.
    handle.call(|done| Msg::ResetCursor { done });
    handle.shutdown();
}

#[test]
fn out_of_memory_drains_the_ring_then_flushes_releases() {
    let d1 = record(191, None);
    let mut device = FakeDevice::default();
    device.commands.push_back(draw(addr(&d1), 0));
    let log = device.log.clone();
    let (mut w, tx) = worker(device);
    map_host_memory(&tx);
    tx.send(Msg::Start).unwrap();
    let pending = Arc::new(AtomicBool::new(true));
    tx.send(Msg::Oom(pending.clone())).unwrap();
    tx.send(Msg::Shutdown).unwrap();
    w.run();
    {
        let log = log.lock();
        // Nothing was pending: asked again, as spice-server does.
        let flushes = log.iter().filter(|l| *l == "flush_resources").count();
        assert_eq!(flushes, 2, "{log:?}");
        assert!(
            log[0].starts_with("release"),
            "the ring is drained first: {log:?}"
        );
    }
    assert!(
        !pending.load(Ordering::Acquire),
        "a new notice may be queued"
    );
    // Stopped: QEMU takes no callbacks, the notice is dropped (and may come again).
    log.lock().clear();
    pending.store(true, Ordering::Release);
    tx.send(Msg::Stop(Done::None)).unwrap();
    tx.send(Msg::Oom(pending.clone())).unwrap();
    tx.send(Msg::Shutdown).unwrap();
    w.run();
    assert!(log.lock().is_empty(), "{:?}", log.lock());
    assert!(!pending.load(Ordering::Acquire));
}

#[test]
fn an_update_command_writes_its_area_to_guest_memory_then_notifies() {
    const SIDE: u32 = 16;
    let primary_mem = vec![0u8; (SIDE * SIDE * 4) as usize];
    let fill = solid_fill(SIDE as i32, 0x0012_3456);
    // QXLUpdateCmd: release_info, area (top, left, bottom, right), update_id, surface_id.
    let update = |id: u32, surface: u32| {
        let mut b = record(32, None);
        b[16..20].copy_from_slice(&4i32.to_le_bytes());
        b[20..24].copy_from_slice(&4i32.to_le_bytes());
        b[24..28].copy_from_slice(&id.to_le_bytes());
        b[28..32].copy_from_slice(&surface.to_le_bytes());
        b
    };
    let (good, bad) = (update(7, 0), update(8, 5));
    let as_update = |b: &[u8]| Command {
        data: addr(b),
        kind: command_type::UPDATE,
        group: 0,
        flags: 0,
    };
    let mut device = FakeDevice::default();
    device.commands.push_back(draw(addr(&fill), 0));
    device.commands.push_back(as_update(&good));
    device.commands.push_back(as_update(&bad));
    let log = device.log.clone();
    let (mut w, tx) = worker(device);
    map_host_memory(&tx);
    let surface = PrimarySurface {
        mem: addr(&primary_mem),
        ..primary(SIDE, SIDE)
    };
    tx.send(Msg::CreatePrimary {
        surface,
        done: Done::None,
    })
    .unwrap();
    tx.send(Msg::Start).unwrap();
    tx.send(Msg::Shutdown).unwrap();
    w.run();
    assert_eq!(&primary_mem[..4], &[0x56, 0x34, 0x12, 0], "in guest memory");
    let log = log.lock();
    let notified: Vec<_> = log.iter().filter(|l| l.starts_with("notify")).collect();
    assert_eq!(
        notified,
        ["notify_update 7"],
        "not for a surface that does not exist"
    );
    let released = log.iter().filter(|l| l.starts_with("release")).count();
    assert_eq!(released, 3, "every command is released: {log:?}");
}

/// A device whose ring read panics the first `panics` times.
struct Flaky {
    inner: FakeDevice,
    panics: usize,
}

impl Device for Flaky {
    fn get_command(&mut self) -> Option<Command> {
        if self.panics > 0 {
            self.panics -= 1;
            panic!("ring read exploded");
        }
        self.inner.get_command()
    }
    fn req_cmd_notification(&mut self) -> bool {
        true
    }
    fn get_cursor_command(&mut self) -> Option<Command> {
        self.inner.get_cursor_command()
    }
    fn req_cursor_notification(&mut self) -> bool {
        true
    }
    fn release_resource(&mut self, info: u64, group: u32) {
        self.inner.release_resource(info, group)
    }
    fn async_complete(&mut self, cookie: u64) {
        self.inner.async_complete(cookie)
    }
    fn update_area_complete(&mut self, surface_id: u32, rects: &[Rect]) {
        self.inner.update_area_complete(surface_id, rects)
    }
}

#[test]
fn a_panic_completes_the_cookie_and_the_worker_carries_on() {
    let d1 = record(191, None);
    let inner = FakeDevice::default();
    let log = inner.log.clone();
    // Stop flushes the rings (panic 1), the next drain panics too (panic 2).
    let device = Flaky { inner, panics: 2 };
    let (tx, rx) = unbounded();
    let mut w = Worker::new(
        device,
        layout(),
        rx,
        Arc::new(AtomicBool::new(false)),
        Outputs::default(),
    );
    map_host_memory(&tx);
    tx.send(Msg::Start).unwrap();
    tx.send(Msg::Stop(Done::Async(7))).unwrap();
    tx.send(Msg::Start).unwrap();
    tx.send(Msg::Wakeup).unwrap();
    let handle = std::thread::spawn(move || {
        w.run();
        w
    });
    std::thread::sleep(std::time::Duration::from_millis(200));
    // After the panics, requests are still served.
    tx.send(Msg::Loadvm {
        commands: vec![draw(addr(&d1), 0)],
        done: Done::Async(8),
    })
    .unwrap();
    tx.send(Msg::Shutdown).unwrap();
    let w = handle.join().expect("the worker thread survived");
    let log = log.lock();
    assert!(log.contains(&"complete 7".to_string()), "{log:?}");
    assert!(log.contains(&"complete 8".to_string()), "{log:?}");
    assert_eq!(log.iter().filter(|l| l.as_str() == "complete 7").count(), 1);
    assert!(w.running, "the worker keeps running after a panic");
}

/// A `QXLSurfaceCmd` creating surface `id`, `side` x `side` xRGB over host memory `mem`.
fn surface_create(id: u32, side: u32, mem: u64) -> Box<[u8]> {
    let mut b = record(41, None);
    b[8..12].copy_from_slice(&id.to_le_bytes());
    b[17..21].copy_from_slice(&32u32.to_le_bytes());
    b[21..25].copy_from_slice(&side.to_le_bytes());
    b[25..29].copy_from_slice(&side.to_le_bytes());
    b[29..33].copy_from_slice(&(4 * side).to_le_bytes());
    b[33..41].copy_from_slice(&mem.to_le_bytes());
    b
}

/// A native `QXLDrawable` filling `(0, 0, side, side)` of surface 0 with `color`.
fn solid_fill(side: i32, color: u32) -> Box<[u8]> {
    let mut b = record(191, Some((13, 1)));
    // bbox: top, left, bottom, right
    b[39..43].copy_from_slice(&side.to_le_bytes());
    b[43..47].copy_from_slice(&side.to_le_bytes());
    b[123..127].copy_from_slice(&1u32.to_le_bytes()); // solid brush
    b[127..131].copy_from_slice(&color.to_le_bytes());
    b[143..145].copy_from_slice(&8u16.to_le_bytes()); // SPICE_ROPD_OP_PUT
    b
}

#[test]
fn surfaces_past_the_budget_are_refused_and_the_primary_still_draws() {
    // Every off-screen surface lies over the same guest memory, as a hostile guest may
    // place them: only the budget bounds what they cost the host.
    const SIDE: u32 = 64;
    let guest = vec![0u8; (SIDE * SIDE * 4) as usize];
    let creates: Vec<Box<[u8]>> = (1..=8)
        .map(|id| surface_create(id, SIDE, addr(&guest)))
        .collect();
    let primary_mem = vec![0u8; (SIDE * SIDE * 4) as usize];
    let fill = solid_fill(SIDE as i32, 0x0012_3456);
    let mut device = FakeDevice::default();
    device.commands.extend(creates.iter().map(|c| Command {
        data: addr(c),
        kind: command_type::SURFACE,
        group: 0,
        flags: 0,
    }));
    device.commands.push_back(draw(addr(&fill), 0));
    let log = device.log.clone();
    let (mut w, tx) = worker(device);
    w.surfaces
        .set_budget(3 * Framebuffer::bytes_for(SIDE, SIDE));
    map_host_memory(&tx);
    let surface = PrimarySurface {
        width: SIDE,
        height: SIDE,
        stride: 4 * SIDE as i32,
        format: 32,
        mouse_mode: 1,
        flags: 0,
        mem: addr(&primary_mem),
        group: 0,
    };
    tx.send(Msg::CreatePrimary {
        surface,
        done: Done::None,
    })
    .unwrap();
    tx.send(Msg::Start).unwrap();
    tx.send(Msg::Shutdown).unwrap();
    w.run();
    let kept: Vec<u32> = (1..=8).filter(|&id| w.surfaces.get(id).is_some()).collect();
    assert_eq!(kept, [1, 2, 3], "the surfaces past the budget are refused");
    let color = w
        .outputs
        .screen
        .with_surface(|fb| fb.pixels()[..4].to_vec());
    assert_eq!(
        color,
        Some(vec![0x56, 0x34, 0x12, 0]),
        "the primary still draws"
    );
    assert_eq!(
        log.lock()
            .iter()
            .filter(|l| l.starts_with("release"))
            .count(),
        6,
        "refused commands are released too; the kept surfaces' creates wait for their destroy"
    );
}

#[test]
fn a_surface_create_is_released_when_the_surface_is_destroyed() {
    const SIDE: u32 = 16;
    let guest = vec![0u8; (SIDE * SIDE * 4) as usize];
    let (c1, c2) = (
        surface_create(1, SIDE, addr(&guest)),
        surface_create(2, SIDE, addr(&guest)),
    );
    let mut destroy1 = surface_create(1, SIDE, addr(&guest));
    destroy1[12] = 1; // QXL_SURFACE_CMD_DESTROY
    let surface = |b: &[u8]| Command {
        data: addr(b),
        kind: command_type::SURFACE,
        group: 0,
        flags: 0,
    };
    let mut device = FakeDevice::default();
    device.commands.extend([surface(&c1), surface(&c2)]);
    let log = device.log.clone();
    let (mut w, tx) = worker(device);
    map_host_memory(&tx);
    tx.send(Msg::Start).unwrap();
    tx.send(Msg::Shutdown).unwrap();
    w.run();
    let released = |log: &[String]| -> Vec<String> {
        log.iter()
            .filter(|l| l.starts_with("release"))
            .cloned()
            .collect()
    };
    assert!(w.surfaces.get(1).is_some() && w.surfaces.get(2).is_some());
    assert_eq!(
        released(&log.lock()),
        Vec::<String>::new(),
        "creates are held"
    );

    w.device.commands.push_back(surface(&destroy1));
    w.flush_commands();
    assert_eq!(
        released(&log.lock()),
        [
            format!("release {:#x} g0", addr(&c1)),
            format!("release {:#x} g0", addr(&destroy1))
        ],
        "the destroy gives back the create, then itself"
    );
    log.lock().clear();
    w.handle(Msg::DestroySurfaces { done: Done::None });
    assert_eq!(
        released(&log.lock()),
        [format!("release {:#x} g0", addr(&c2))],
        "destroying every surface gives back the creates still held"
    );
}

fn primary(width: u32, height: u32) -> PrimarySurface {
    PrimarySurface {
        width,
        height,
        stride: width as i32 * 4,
        format: 32,
        mouse_mode: 1,
        flags: 0,
        mem: 0x1000,
        group: 0,
    }
}

/// A `QXLMonitorsConfig` in host memory with one head per (width, x).
fn monitors_config(heads: &[(u32, u32)]) -> Box<[u8]> {
    let mut raw = vec![heads.len() as u8, 0, 4, 0];
    for &(w, x) in heads {
        for v in [0, 0, w, 480, x, 0, 0u32] {
            raw.extend_from_slice(&v.to_le_bytes());
        }
    }
    raw.into_boxed_slice()
}

#[test]
fn a_new_primary_resets_the_monitor_layout_to_one_head() {
    let (mut w, _tx) = worker(FakeDevice::default());
    w.handle(Msg::AddMemslot {
        group: 0,
        slot: 0,
        value: host_slot(),
        done: Done::None,
    });
    let screen = w.outputs.screen.clone();
    w.handle(Msg::CreatePrimary {
        surface: primary(1280, 480),
        done: Done::None,
    });
    let first = screen.monitors();
    assert_eq!((first.heads.len(), first.heads[0].width), (1, 1280));
    let two = monitors_config(&[(640, 0), (640, 640)]);
    w.handle(Msg::MonitorsConfig {
        max_monitors: u32::MAX,
        address: addr(&two),
        group: 0,
        done: Done::None,
    });
    let second = screen.monitors();
    assert_eq!((second.heads.len(), second.heads[1].x), (2, 640));
    assert_eq!(second.max_allowed, 4, "the driver's maximum");
    assert_ne!(first.generation, second.generation);
    // A reboot: the guest's two heads from before are forgotten; as the driver sends
    // layouts, clients are not told the temporary one (its own follows).
    w.handle(Msg::DestroySurfaces { done: Done::None });
    w.handle(Msg::CreatePrimary {
        surface: primary(800, 600),
        done: Done::None,
    });
    let third = screen.monitors();
    let head = &third.heads[0];
    assert_eq!((third.heads.len(), head.width, head.height), (1, 800, 600));
    assert_eq!(
        third.generation, second.generation,
        "not announced while the driver sends layouts"
    );
    // QEMU's reset: driver unload, then the VGA-mode primary, announced.
    w.handle(Msg::DestroySurfaces { done: Done::None });
    w.handle(Msg::DriverUnload);
    w.handle(Msg::CreatePrimary {
        surface: primary(720, 400),
        done: Done::None,
    });
    let fourth = screen.monitors();
    assert_eq!((fourth.heads.len(), fourth.heads[0].width), (1, 720));
    assert_ne!(
        fourth.generation, third.generation,
        "announced once the driver is gone"
    );
    assert_eq!(fourth.max_allowed, 4, "kept, as spice-server keeps it");
    // A device of two monitors: a driver's three heads are cut to two, its maximum too.
    let three = monitors_config(&[(400, 0), (400, 400), (400, 800)]);
    w.handle(Msg::MonitorsConfig {
        max_monitors: 2,
        address: addr(&three),
        group: 0,
        done: Done::None,
    });
    let fifth = screen.monitors();
    assert_eq!((fifth.heads.len(), fifth.max_allowed), (2, 2));
}

/// A device that counts how often its display ring is read, and whether reading it
/// arms the notification (`idle`) or says commands came meanwhile.
struct CountingDevice {
    reads: Arc<std::sync::atomic::AtomicUsize>,
    idle: bool,
}

impl Device for CountingDevice {
    fn get_command(&mut self) -> Option<Command> {
        self.reads.fetch_add(1, Ordering::Relaxed);
        None
    }
    fn req_cmd_notification(&mut self) -> bool {
        self.idle
    }
    fn get_cursor_command(&mut self) -> Option<Command> {
        None
    }
    fn req_cursor_notification(&mut self) -> bool {
        true
    }
    fn release_resource(&mut self, _: u64, _: u32) {}
    fn async_complete(&mut self, _: u64) {}
    fn update_area_complete(&mut self, _: u32, _: &[Rect]) {}
}

/// Reads of the display ring in `seconds` after Start, the device arming (`idle`) or not.
fn ring_reads(idle: bool, seconds: f64) -> usize {
    let reads = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let device = CountingDevice {
        reads: reads.clone(),
        idle,
    };
    let handle = WorkerHandle::spawn(0, device, layout(), Outputs::default(), || {}).unwrap();
    handle.post(Msg::Start);
    std::thread::sleep(std::time::Duration::from_secs_f64(seconds));
    let n = reads.load(Ordering::Relaxed);
    handle.shutdown();
    n
}

#[test]
fn an_idle_worker_with_notifications_armed_reads_the_rings_only_when_woken() {
    // Start reads the rings once and arms the notifications; then only a wakeup (or a
    // request) would make it read again: no poll wakes an idle VM's worker.
    assert_eq!(ring_reads(true, 1.5), 1);
    // A device that says commands arrived meanwhile is read again at once.
    assert!(ring_reads(false, 0.3) > 10);
}

/// A frame as the Linux qxl driver sends a changed area: a native `QXLDrawable` COPY
/// (OP_PUT) onto surface 0 of a top-down 32-bit bitmap in one chunk, clipped to one
/// rectangle; host memory (group 0).
struct DriverFrame {
    drawable: Box<[u8]>,
    _image: Box<[u8]>,
    _chunk: Box<[u8]>,
    _clip: Box<[u8]>,
}

fn driver_frame(w: u32, h: u32, seed: u32) -> DriverFrame {
    let mut data = Vec::with_capacity(20 + (w * h * 4) as usize);
    data.extend_from_slice(&(w * h * 4).to_le_bytes());
    data.extend_from_slice(&[0; 16]);
    let mut v = seed | 1;
    for _ in 0..w * h {
        v ^= v << 13;
        v ^= v >> 17;
        v ^= v << 5;
        data.extend_from_slice(&v.to_le_bytes());
    }
    let chunk = data.into_boxed_slice();
    let mut image = record(48, Some((8, 0)));
    image[10..14].copy_from_slice(&w.to_le_bytes());
    image[14..18].copy_from_slice(&h.to_le_bytes());
    image[18] = 8; // SPICE_BITMAP_FMT_32BIT
    image[19] = 4; // top-down
    image[20..24].copy_from_slice(&w.to_le_bytes());
    image[24..28].copy_from_slice(&h.to_le_bytes());
    image[28..32].copy_from_slice(&(4 * w).to_le_bytes());
    image[40..48].copy_from_slice(&addr(&chunk).to_le_bytes());
    let mut clip = record(4 + 20 + 16, None);
    clip[0..4].copy_from_slice(&1u32.to_le_bytes());
    clip[4..8].copy_from_slice(&16u32.to_le_bytes());
    // One rectangle: top, left, bottom, right, a few pixels in from the box.
    for (i, v) in [2, 1, h as i32 - 3, w as i32 - 2].iter().enumerate() {
        clip[24 + 4 * i..28 + 4 * i].copy_from_slice(&v.to_le_bytes());
    }
    let mut d = record(191, Some((13, 3)));
    d[39..43].copy_from_slice(&h.to_le_bytes());
    d[43..47].copy_from_slice(&w.to_le_bytes());
    d[47..51].copy_from_slice(&2u32.to_le_bytes()); // SPICE_CLIP_TYPE_RECTS
    d[51..59].copy_from_slice(&addr(&clip).to_le_bytes());
    d[63..75].fill(0xff);
    d[123..131].copy_from_slice(&addr(&image).to_le_bytes());
    d[139..143].copy_from_slice(&h.to_le_bytes());
    d[143..147].copy_from_slice(&w.to_le_bytes());
    d[147..149].copy_from_slice(&8u16.to_le_bytes()); // SPICE_ROPD_OP_PUT
    DriverFrame {
        drawable: d,
        _image: image,
        _chunk: chunk,
        _clip: clip,
    }
}

fn host_slots() -> MemSlots {
    let mut slots = MemSlots::new(layout());
    slots.add(0, 0, host_slot()).unwrap();
    slots
}

/// Draws `frame` the way every drawing was drawn (decoded into a `Draw`, then
/// rendered) and straight from guest memory; returns both surfaces.
fn both_paths(frame: &DriverFrame, fb: &Framebuffer) -> (Framebuffer, Framebuffer) {
    let slots = host_slots();
    let mem = SlotMemory(&slots);
    let at = addr(&frame.drawable);
    let mut decoded = fb.clone();
    let d = draw::parse(&mem, 0, at, false).unwrap();
    canvas::render(&mut decoded, &d, &canvas::NoSurfaces);
    let mut direct = fb.clone();
    let copy = draw::parse_guest_copy(&mem, 0, at, false)
        .unwrap()
        .expect("a plain copy of a bitmap");
    draw_guest_rows(&mut direct, &copy, &mem, |e| panic!("{e}"));
    (decoded, direct)
}

#[test]
fn a_driver_frame_drawn_from_guest_memory_equals_the_decoded_path() {
    let frame = driver_frame(67, 41, 7);
    let mut fb = Framebuffer::new(80, 50).unwrap();
    fb.pixels_mut().fill(0x5a);
    let (decoded, direct) = both_paths(&frame, &fb);
    assert_ne!(decoded.pixels(), fb.pixels(), "the frame was drawn");
    assert_eq!(direct.pixels(), decoded.pixels());
}
