//! Compile-time checks that the Rust definitions have spice-server 0.15.1's x86-64
//! layout. The numbers are the output of `tests/abi/layout.c` built against the
//! installed C headers (spice-server 0.15.1, spice-protocol 0.14.3); that test also
//! holds the generated headers against the C ones, and this file holds the Rust side,
//! including the spice-protocol mirrors in `protocol.rs`, which are never emitted.

use super::*;
use std::mem::{align_of, offset_of, size_of};

macro_rules! layout {
    ($t:ty, size $size:literal, align $align:literal $(, $field:tt @ $off:literal)* $(,)?) => {
        const _: () = {
            assert!(size_of::<$t>() == $size);
            assert!(align_of::<$t>() == $align);
            $(assert!(offset_of!($t, $field) == $off);)*
        };
    };
}

layout!(SpiceBaseInterface, size 24, align 8, r#type @ 0, description @ 8, major_version @ 16, minor_version @ 20);
layout!(SpiceBaseInstance, size 8, align 8, sif @ 0);
layout!(SpiceWatchFunc, size 8, align 8);
layout!(SpiceTimerFunc, size 8, align 8);
layout!(SpiceChannelEventInfo, size 320, align 8, connection_id @ 0, r#type @ 4, id @ 8, flags @ 12, laddr @ 16, paddr @ 32, llen @ 48, plen @ 52, laddr_ext @ 56, paddr_ext @ 184, llen_ext @ 312, plen_ext @ 316);
layout!(SpiceCoreInterface, size 88, align 8, base @ 0, timer_add @ 24, timer_start @ 32, timer_cancel @ 40, timer_remove @ 48, watch_add @ 56, watch_update_mask @ 64, watch_remove @ 72, channel_event @ 80);
layout!(spice_compat_version_t, size 4, align 4);
layout!(spice_image_compression_t, size 4, align 4);
layout!(spice_wan_compression_t, size 4, align 4);
layout!(QXLDevInitInfo, size 24, align 4, num_memslots_groups @ 0, num_memslots @ 4, memslot_gen_bits @ 8, memslot_id_bits @ 9, qxl_ram_size @ 12, internal_groupslot_id @ 16, n_surfaces @ 20);
layout!(QXLDevMemSlot, size 48, align 8, slot_group_id @ 0, slot_id @ 4, generation @ 8, virt_start @ 16, virt_end @ 24, addr_delta @ 32, qxl_ram_size @ 40);
layout!(QXLDevSurfaceCreate, size 48, align 8, width @ 0, height @ 4, stride @ 8, format @ 12, position @ 16, mouse_mode @ 20, flags @ 24, r#type @ 28, mem @ 32, group_id @ 40);
layout!(QXLInterface, size 144, align 8, base @ 0, attached_worker @ 24, set_compression_level @ 32, set_mm_time @ 40, get_init_info @ 48, get_command @ 56, req_cmd_notification @ 64, release_resource @ 72, get_cursor_command @ 80, req_cursor_notification @ 88, notify_update @ 96, flush_resources @ 104, async_complete @ 112, update_area_complete @ 120, set_client_capabilities @ 128, client_monitors_config @ 136);
layout!(QXLInstance, size 24, align 8, base @ 0, id @ 8, st @ 16);
layout!(SpiceKbdInterface, size 40, align 8, base @ 0, push_scan_freg @ 24, get_leds @ 32);
layout!(SpiceKbdInstance, size 16, align 8, base @ 0, st @ 8);
layout!(SpiceMouseInterface, size 40, align 8, base @ 0, motion @ 24, buttons @ 32);
layout!(SpiceMouseInstance, size 16, align 8, base @ 0, st @ 8);
layout!(SpiceTabletInterface, size 56, align 8, base @ 0, set_logical_size @ 24, position @ 32, wheel @ 40, buttons @ 48);
layout!(SpiceTabletInstance, size 16, align 8, base @ 0, st @ 8);
layout!(SpicePlaybackInterface, size 24, align 8, base @ 0);
layout!(SpicePlaybackInstance, size 16, align 8, base @ 0, st @ 8);
layout!(SpiceRecordInterface, size 24, align 8, base @ 0);
layout!(SpiceRecordInstance, size 16, align 8, base @ 0, st @ 8);
layout!(spice_char_device_flags, size 4, align 4);
layout!(SpiceCharDeviceInterface, size 64, align 8, base @ 0, state @ 24, write @ 32, read @ 40, event @ 48, flags @ 56);
layout!(SpiceCharDeviceInstance, size 32, align 8, base @ 0, subtype @ 8, st @ 16, portname @ 24);
layout!(SpiceMigrateInterface, size 40, align 8, base @ 0, migrate_connect_complete @ 24, migrate_end_complete @ 32);
layout!(SpiceMigrateInstance, size 16, align 8, base @ 0, st @ 8);
layout!(QXLPHYSICAL, size 8, align 8);
layout!(QXLRect, size 16, align 1, top @ 0, left @ 4, bottom @ 8, right @ 12);
layout!(QXLCommand, size 16, align 1, data @ 0, type_ @ 8, padding @ 12);
layout!(QXLCommandExt, size 24, align 1, cmd @ 0, group_id @ 16, flags @ 20);
layout!(QXLReleaseInfo, size 8, align 1);
layout!(QXLReleaseInfoExt, size 16, align 8, info @ 0, group_id @ 8);
layout!(QXLHead, size 28, align 1, id @ 0, surface_id @ 4, width @ 8, height @ 12, x @ 16, y @ 20, flags @ 24);
layout!(QXLMonitorsConfig, size 4, align 1, count @ 0, max_allowed @ 2, heads @ 4);
layout!(VDAgentMonConfig, size 20, align 1, height @ 0, width @ 4, depth @ 8, x @ 12, y @ 16);
layout!(VDAgentMonitorsConfig, size 8, align 1, num_of_monitors @ 0, flags @ 4, monitors @ 8);
layout!(VDAgentMonitorMM, size 4, align 1, height @ 0, width @ 2);
layout!(SpiceImageCompression, size 4, align 4);
