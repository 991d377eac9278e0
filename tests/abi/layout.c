/*
 * ABI/API layout probe for <spice.h>.
 *
 * Built twice by tests/abi/run.sh: once against spice-rs' generated headers
 * (include/spice-server) and once against the installed spice-server 0.15 headers.
 * It prints the size/alignment of every public type, the offset/size of every field,
 * and the value of every public constant; the two outputs must be identical.
 *
 * Every FIELD also states the field's C type as spice-server 0.15.1 declares it; a
 * static assertion checks it, so a callback with a wrong prototype fails to compile
 * (with either header set) instead of slipping through a same-size comparison.
 */
#include <spice.h>

#include <stddef.h>
#include <stdio.h>

#define TYPE(T) \
    printf("type %s: size %zu align %zu\n", #T, sizeof(T), (size_t)_Alignof(T))

#define SIGNEDNESS(T) printf("type %s: %s\n", #T, ((T)-1 < (T)0) ? "signed" : "unsigned")

#define FIELD(T, f, FT)                                                              \
    do {                                                                             \
        _Static_assert(__builtin_types_compatible_p(__typeof__(((T *)0)->f), FT),    \
                       #T "." #f " does not have type " #FT);                        \
        printf("  %s.%s: offset %zu size %zu\n", #T, #f, offsetof(T, f),             \
               sizeof(((T *)0)->f));                                                 \
    } while (0)

/* An opaque handle: must be declared (as an incomplete or complete type). */
#define OPAQUE(T)                                    \
    do {                                             \
        T *p_ = NULL;                                \
        printf("opaque %s: %s\n", #T, p_ ? "?" : "declared"); \
    } while (0)

/* An integer constant: value, size and signedness of the expression. */
#define INT(X)                                                              \
    printf("const %s = %lld (size %zu, %s)\n", #X, (long long)(X), sizeof(X), \
           ((X) - (X) - 1 < 0) ? "signed" : "unsigned")

#define STR(X) printf("const %s = \"%s\" (size %zu)\n", #X, X, sizeof(X))

/* Callback types as spice-server 0.15.1 declares them. */
typedef void (*qxl_attached_worker_t)(QXLInstance *);
typedef void (*qxl_set_compression_level_t)(QXLInstance *, int);
typedef void (*qxl_set_mm_time_t)(QXLInstance *, uint32_t);
typedef void (*qxl_get_init_info_t)(QXLInstance *, QXLDevInitInfo *);
typedef int (*qxl_get_command_t)(QXLInstance *, struct QXLCommandExt *);
typedef int (*qxl_req_notification_t)(QXLInstance *);
typedef void (*qxl_release_resource_t)(QXLInstance *, struct QXLReleaseInfoExt);
typedef void (*qxl_notify_update_t)(QXLInstance *, uint32_t);
typedef int (*qxl_flush_resources_t)(QXLInstance *);
typedef void (*qxl_async_complete_t)(QXLInstance *, uint64_t);
typedef void (*qxl_update_area_complete_t)(QXLInstance *, uint32_t, struct QXLRect *, uint32_t);
typedef void (*qxl_set_client_capabilities_t)(QXLInstance *, uint8_t, uint8_t[SPICE_CAPABILITIES_SIZE]);
typedef int (*qxl_client_monitors_config_t)(QXLInstance *, VDAgentMonitorsConfig *);

static void core(void)
{
    TYPE(SpiceBaseInterface);
    FIELD(SpiceBaseInterface, type, const char *);
    FIELD(SpiceBaseInterface, description, const char *);
    FIELD(SpiceBaseInterface, major_version, uint32_t);
    FIELD(SpiceBaseInterface, minor_version, uint32_t);

    TYPE(SpiceBaseInstance);
    FIELD(SpiceBaseInstance, sif, const SpiceBaseInterface *);

    OPAQUE(SpiceWatch);
    OPAQUE(SpiceTimer);
    TYPE(SpiceWatchFunc);
    _Static_assert(__builtin_types_compatible_p(SpiceWatchFunc, void (*)(int, int, void *)),
                   "SpiceWatchFunc");
    TYPE(SpiceTimerFunc);
    _Static_assert(__builtin_types_compatible_p(SpiceTimerFunc, void (*)(void *)), "SpiceTimerFunc");

    TYPE(SpiceChannelEventInfo);
    FIELD(SpiceChannelEventInfo, connection_id, int);
    FIELD(SpiceChannelEventInfo, type, int);
    FIELD(SpiceChannelEventInfo, id, int);
    FIELD(SpiceChannelEventInfo, flags, int);
    FIELD(SpiceChannelEventInfo, laddr, struct sockaddr);
    FIELD(SpiceChannelEventInfo, paddr, struct sockaddr);
    FIELD(SpiceChannelEventInfo, llen, socklen_t);
    FIELD(SpiceChannelEventInfo, plen, socklen_t);
    FIELD(SpiceChannelEventInfo, laddr_ext, struct sockaddr_storage);
    FIELD(SpiceChannelEventInfo, paddr_ext, struct sockaddr_storage);
    FIELD(SpiceChannelEventInfo, llen_ext, socklen_t);
    FIELD(SpiceChannelEventInfo, plen_ext, socklen_t);

    TYPE(SpiceCoreInterface);
    FIELD(SpiceCoreInterface, base, SpiceBaseInterface);
    FIELD(SpiceCoreInterface, timer_add, SpiceTimer *(*)(SpiceTimerFunc, void *));
    FIELD(SpiceCoreInterface, timer_start, void (*)(SpiceTimer *, uint32_t));
    FIELD(SpiceCoreInterface, timer_cancel, void (*)(SpiceTimer *));
    FIELD(SpiceCoreInterface, timer_remove, void (*)(SpiceTimer *));
    FIELD(SpiceCoreInterface, watch_add, SpiceWatch *(*)(int, int, SpiceWatchFunc, void *));
    FIELD(SpiceCoreInterface, watch_update_mask, void (*)(SpiceWatch *, int));
    FIELD(SpiceCoreInterface, watch_remove, void (*)(SpiceWatch *));
    FIELD(SpiceCoreInterface, channel_event, void (*)(int, SpiceChannelEventInfo *));

    STR(SPICE_INTERFACE_CORE);
    INT(SPICE_INTERFACE_CORE_MAJOR);
    INT(SPICE_INTERFACE_CORE_MINOR);
    INT(SPICE_WATCH_EVENT_READ);
    INT(SPICE_WATCH_EVENT_WRITE);
    INT(SPICE_CHANNEL_EVENT_CONNECTED);
    INT(SPICE_CHANNEL_EVENT_INITIALIZED);
    INT(SPICE_CHANNEL_EVENT_DISCONNECTED);
    INT(SPICE_CHANNEL_EVENT_FLAG_TLS);
    INT(SPICE_CHANNEL_EVENT_FLAG_ADDR_EXT);
}

static void server(void)
{
    OPAQUE(SpiceServer);
    OPAQUE(struct RedsState);
    _Static_assert(__builtin_types_compatible_p(SpiceServer, struct RedsState), "SpiceServer");

    TYPE(spice_compat_version_t);
    SIGNEDNESS(spice_compat_version_t);
    INT(SPICE_COMPAT_VERSION_0_4);
    INT(SPICE_COMPAT_VERSION_0_6);
    INT(SPICE_COMPAT_VERSION_CURRENT);

    INT(SPICE_ADDR_FLAG_IPV4_ONLY);
    INT(SPICE_ADDR_FLAG_IPV6_ONLY);
    INT(SPICE_ADDR_FLAG_UNIX_ONLY);

    TYPE(spice_image_compression_t);
    SIGNEDNESS(spice_image_compression_t);
    _Static_assert(__builtin_types_compatible_p(spice_image_compression_t, SpiceImageCompression),
                   "spice_image_compression_t");
    INT(SPICE_IMAGE_COMPRESS_INVALID);
    INT(SPICE_IMAGE_COMPRESS_OFF);
    INT(SPICE_IMAGE_COMPRESS_AUTO_GLZ);
    INT(SPICE_IMAGE_COMPRESS_AUTO_LZ);
    INT(SPICE_IMAGE_COMPRESS_QUIC);
    INT(SPICE_IMAGE_COMPRESS_GLZ);
    INT(SPICE_IMAGE_COMPRESS_LZ);
    INT(SPICE_IMAGE_COMPRESS_LZ4);

    TYPE(spice_wan_compression_t);
    SIGNEDNESS(spice_wan_compression_t);
    INT(SPICE_WAN_COMPRESSION_INVALID);
    INT(SPICE_WAN_COMPRESSION_AUTO);
    INT(SPICE_WAN_COMPRESSION_ALWAYS);
    INT(SPICE_WAN_COMPRESSION_NEVER);

    INT(SPICE_CHANNEL_SECURITY_NONE);
    INT(SPICE_CHANNEL_SECURITY_SSL);

    INT(SPICE_STREAM_VIDEO_INVALID);
    INT(SPICE_STREAM_VIDEO_OFF);
    INT(SPICE_STREAM_VIDEO_ALL);
    INT(SPICE_STREAM_VIDEO_FILTER);

    INT(SPICE_STREAMING_INVALID);
    INT(SPICE_STREAMING_SPICE);
    INT(SPICE_STREAMING_GSTREAMER);
}

static void qxl(void)
{
    STR(SPICE_INTERFACE_QXL);
    INT(SPICE_INTERFACE_QXL_MAJOR);
    INT(SPICE_INTERFACE_QXL_MINOR);
    INT(SPICE_CAPABILITIES_SIZE);

    OPAQUE(QXLState);
    OPAQUE(QXLWorker);

    TYPE(QXLDevInitInfo);
    FIELD(QXLDevInitInfo, num_memslots_groups, uint32_t);
    FIELD(QXLDevInitInfo, num_memslots, uint32_t);
    FIELD(QXLDevInitInfo, memslot_gen_bits, uint8_t);
    FIELD(QXLDevInitInfo, memslot_id_bits, uint8_t);
    FIELD(QXLDevInitInfo, qxl_ram_size, uint32_t);
    FIELD(QXLDevInitInfo, internal_groupslot_id, uint8_t);
    FIELD(QXLDevInitInfo, n_surfaces, uint32_t);

    TYPE(QXLDevMemSlot);
    FIELD(QXLDevMemSlot, slot_group_id, uint32_t);
    FIELD(QXLDevMemSlot, slot_id, uint32_t);
    FIELD(QXLDevMemSlot, generation, uint32_t);
    FIELD(QXLDevMemSlot, virt_start, uintptr_t);
    FIELD(QXLDevMemSlot, virt_end, uintptr_t);
    FIELD(QXLDevMemSlot, addr_delta, uint64_t);
    FIELD(QXLDevMemSlot, qxl_ram_size, uint32_t);

    TYPE(QXLDevSurfaceCreate);
    FIELD(QXLDevSurfaceCreate, width, uint32_t);
    FIELD(QXLDevSurfaceCreate, height, uint32_t);
    FIELD(QXLDevSurfaceCreate, stride, int32_t);
    FIELD(QXLDevSurfaceCreate, format, uint32_t);
    FIELD(QXLDevSurfaceCreate, position, uint32_t);
    FIELD(QXLDevSurfaceCreate, mouse_mode, uint32_t);
    FIELD(QXLDevSurfaceCreate, flags, uint32_t);
    FIELD(QXLDevSurfaceCreate, type, uint32_t);
    FIELD(QXLDevSurfaceCreate, mem, uint64_t);
    FIELD(QXLDevSurfaceCreate, group_id, uint32_t);

    TYPE(QXLInterface);
    FIELD(QXLInterface, base, SpiceBaseInterface);
    /* C: anonymous union with the deprecated attache_worker; spice-rs has only this name. */
    FIELD(QXLInterface, attached_worker, qxl_attached_worker_t);
    FIELD(QXLInterface, set_compression_level, qxl_set_compression_level_t);
    FIELD(QXLInterface, set_mm_time, qxl_set_mm_time_t);
    FIELD(QXLInterface, get_init_info, qxl_get_init_info_t);
    FIELD(QXLInterface, get_command, qxl_get_command_t);
    FIELD(QXLInterface, req_cmd_notification, qxl_req_notification_t);
    FIELD(QXLInterface, release_resource, qxl_release_resource_t);
    FIELD(QXLInterface, get_cursor_command, qxl_get_command_t);
    FIELD(QXLInterface, req_cursor_notification, qxl_req_notification_t);
    FIELD(QXLInterface, notify_update, qxl_notify_update_t);
    FIELD(QXLInterface, flush_resources, qxl_flush_resources_t);
    FIELD(QXLInterface, async_complete, qxl_async_complete_t);
    FIELD(QXLInterface, update_area_complete, qxl_update_area_complete_t);
    FIELD(QXLInterface, set_client_capabilities, qxl_set_client_capabilities_t);
    FIELD(QXLInterface, client_monitors_config, qxl_client_monitors_config_t);

    TYPE(QXLInstance);
    FIELD(QXLInstance, base, SpiceBaseInstance);
    FIELD(QXLInstance, id, int);
    FIELD(QXLInstance, st, QXLState *);
}

static void input(void)
{
    STR(SPICE_INTERFACE_KEYBOARD);
    INT(SPICE_INTERFACE_KEYBOARD_MAJOR);
    INT(SPICE_INTERFACE_KEYBOARD_MINOR);
    OPAQUE(SpiceKbdState);
    TYPE(SpiceKbdInterface);
    FIELD(SpiceKbdInterface, base, SpiceBaseInterface);
    FIELD(SpiceKbdInterface, push_scan_freg, void (*)(SpiceKbdInstance *, uint8_t));
    FIELD(SpiceKbdInterface, get_leds, uint8_t (*)(SpiceKbdInstance *));
    TYPE(SpiceKbdInstance);
    FIELD(SpiceKbdInstance, base, SpiceBaseInstance);
    FIELD(SpiceKbdInstance, st, SpiceKbdState *);

    STR(SPICE_INTERFACE_MOUSE);
    INT(SPICE_INTERFACE_MOUSE_MAJOR);
    INT(SPICE_INTERFACE_MOUSE_MINOR);
    OPAQUE(SpiceMouseState);
    TYPE(SpiceMouseInterface);
    FIELD(SpiceMouseInterface, base, SpiceBaseInterface);
    FIELD(SpiceMouseInterface, motion, void (*)(SpiceMouseInstance *, int, int, int, uint32_t));
    FIELD(SpiceMouseInterface, buttons, void (*)(SpiceMouseInstance *, uint32_t));
    TYPE(SpiceMouseInstance);
    FIELD(SpiceMouseInstance, base, SpiceBaseInstance);
    FIELD(SpiceMouseInstance, st, SpiceMouseState *);

    STR(SPICE_INTERFACE_TABLET);
    INT(SPICE_INTERFACE_TABLET_MAJOR);
    INT(SPICE_INTERFACE_TABLET_MINOR);
    OPAQUE(SpiceTabletState);
    TYPE(SpiceTabletInterface);
    FIELD(SpiceTabletInterface, base, SpiceBaseInterface);
    FIELD(SpiceTabletInterface, set_logical_size, void (*)(SpiceTabletInstance *, int, int));
    FIELD(SpiceTabletInterface, position, void (*)(SpiceTabletInstance *, int, int, uint32_t));
    FIELD(SpiceTabletInterface, wheel, void (*)(SpiceTabletInstance *, int, uint32_t));
    FIELD(SpiceTabletInterface, buttons, void (*)(SpiceTabletInstance *, uint32_t));
    TYPE(SpiceTabletInstance);
    FIELD(SpiceTabletInstance, base, SpiceBaseInstance);
    FIELD(SpiceTabletInstance, st, SpiceTabletState *);
}

static void audio(void)
{
    STR(SPICE_INTERFACE_PLAYBACK);
    INT(SPICE_INTERFACE_PLAYBACK_MAJOR);
    INT(SPICE_INTERFACE_PLAYBACK_MINOR);
    INT(SPICE_INTERFACE_AUDIO_FMT_S16);
    INT(SPICE_INTERFACE_PLAYBACK_FREQ);
    INT(SPICE_INTERFACE_PLAYBACK_CHAN);
    INT(SPICE_INTERFACE_PLAYBACK_FMT);
    OPAQUE(SpicePlaybackState);
    TYPE(SpicePlaybackInterface);
    FIELD(SpicePlaybackInterface, base, SpiceBaseInterface);
    TYPE(SpicePlaybackInstance);
    FIELD(SpicePlaybackInstance, base, SpiceBaseInstance);
    FIELD(SpicePlaybackInstance, st, SpicePlaybackState *);

    STR(SPICE_INTERFACE_RECORD);
    INT(SPICE_INTERFACE_RECORD_MAJOR);
    INT(SPICE_INTERFACE_RECORD_MINOR);
    INT(SPICE_INTERFACE_RECORD_FREQ);
    INT(SPICE_INTERFACE_RECORD_CHAN);
    INT(SPICE_INTERFACE_RECORD_FMT);
    OPAQUE(SpiceRecordState);
    TYPE(SpiceRecordInterface);
    FIELD(SpiceRecordInterface, base, SpiceBaseInterface);
    TYPE(SpiceRecordInstance);
    FIELD(SpiceRecordInstance, base, SpiceBaseInstance);
    FIELD(SpiceRecordInstance, st, SpiceRecordState *);
}

static void char_device(void)
{
    STR(SPICE_INTERFACE_CHAR_DEVICE);
    INT(SPICE_INTERFACE_CHAR_DEVICE_MAJOR);
    INT(SPICE_INTERFACE_CHAR_DEVICE_MINOR);
    TYPE(spice_char_device_flags);
    SIGNEDNESS(spice_char_device_flags);
    INT(SPICE_CHAR_DEVICE_NOTIFY_WRITABLE);
    OPAQUE(SpiceCharDeviceState);
    TYPE(SpiceCharDeviceInterface);
    FIELD(SpiceCharDeviceInterface, base, SpiceBaseInterface);
    FIELD(SpiceCharDeviceInterface, state, void (*)(SpiceCharDeviceInstance *, int));
    FIELD(SpiceCharDeviceInterface, write, int (*)(SpiceCharDeviceInstance *, const uint8_t *, int));
    FIELD(SpiceCharDeviceInterface, read, int (*)(SpiceCharDeviceInstance *, uint8_t *, int));
    FIELD(SpiceCharDeviceInterface, event, void (*)(SpiceCharDeviceInstance *, uint8_t));
    FIELD(SpiceCharDeviceInterface, flags, spice_char_device_flags);
    TYPE(SpiceCharDeviceInstance);
    FIELD(SpiceCharDeviceInstance, base, SpiceBaseInstance);
    FIELD(SpiceCharDeviceInstance, subtype, const char *);
    FIELD(SpiceCharDeviceInstance, st, SpiceCharDeviceState *);
    FIELD(SpiceCharDeviceInstance, portname, const char *);
}

static void migration(void)
{
    STR(SPICE_INTERFACE_MIGRATION);
    INT(SPICE_INTERFACE_MIGRATION_MAJOR);
    INT(SPICE_INTERFACE_MIGRATION_MINOR);
    OPAQUE(SpiceMigrateState);
    TYPE(SpiceMigrateInterface);
    FIELD(SpiceMigrateInterface, base, SpiceBaseInterface);
    FIELD(SpiceMigrateInterface, migrate_connect_complete, void (*)(SpiceMigrateInstance *));
    FIELD(SpiceMigrateInterface, migrate_end_complete, void (*)(SpiceMigrateInstance *));
    TYPE(SpiceMigrateInstance);
    FIELD(SpiceMigrateInstance, base, SpiceBaseInstance);
    FIELD(SpiceMigrateInstance, st, SpiceMigrateState *);
}

static void replay(void)
{
    OPAQUE(SpiceReplay);
}

static void version(void)
{
    INT(SPICE_SERVER_VERSION);
}

/* spice-protocol types the API uses (same headers in both builds; listed so the
 * Rust mirror in src/ffi/abi/protocol.rs has numbers to be checked against). */
static void protocol(void)
{
    TYPE(QXLPHYSICAL);
    TYPE(QXLRect);
    FIELD(QXLRect, top, int32_t);
    FIELD(QXLRect, left, int32_t);
    FIELD(QXLRect, bottom, int32_t);
    FIELD(QXLRect, right, int32_t);
    TYPE(QXLCommand);
    FIELD(QXLCommand, data, QXLPHYSICAL);
    FIELD(QXLCommand, type, uint32_t);
    FIELD(QXLCommand, padding, uint32_t);
    TYPE(QXLCommandExt);
    FIELD(QXLCommandExt, cmd, QXLCommand);
    FIELD(QXLCommandExt, group_id, uint32_t);
    FIELD(QXLCommandExt, flags, uint32_t);
    TYPE(QXLReleaseInfo);
    FIELD(QXLReleaseInfo, id, uint64_t);
    FIELD(QXLReleaseInfo, next, uint64_t);
    TYPE(QXLReleaseInfoExt);
    FIELD(QXLReleaseInfoExt, info, QXLReleaseInfo *);
    FIELD(QXLReleaseInfoExt, group_id, uint32_t);
    TYPE(QXLHead);
    FIELD(QXLHead, id, uint32_t);
    FIELD(QXLHead, surface_id, uint32_t);
    FIELD(QXLHead, width, uint32_t);
    FIELD(QXLHead, height, uint32_t);
    FIELD(QXLHead, x, uint32_t);
    FIELD(QXLHead, y, uint32_t);
    FIELD(QXLHead, flags, uint32_t);
    TYPE(QXLMonitorsConfig);
    FIELD(QXLMonitorsConfig, count, uint16_t);
    FIELD(QXLMonitorsConfig, max_allowed, uint16_t);
    FIELD(QXLMonitorsConfig, heads, QXLHead[0]);
    TYPE(VDAgentMonConfig);
    FIELD(VDAgentMonConfig, height, uint32_t);
    FIELD(VDAgentMonConfig, width, uint32_t);
    FIELD(VDAgentMonConfig, depth, uint32_t);
    FIELD(VDAgentMonConfig, x, int32_t);
    FIELD(VDAgentMonConfig, y, int32_t);
    TYPE(VDAgentMonitorsConfig);
    FIELD(VDAgentMonitorsConfig, num_of_monitors, uint32_t);
    FIELD(VDAgentMonitorsConfig, flags, uint32_t);
    FIELD(VDAgentMonitorsConfig, monitors, VDAgentMonConfig[0]);
    TYPE(VDAgentMonitorMM);
    FIELD(VDAgentMonitorMM, height, uint16_t);
    FIELD(VDAgentMonitorMM, width, uint16_t);
    TYPE(SpiceImageCompression);
    SIGNEDNESS(SpiceImageCompression);
}

int main(void)
{
    core();
    server();
    qxl();
    input();
    audio();
    char_device();
    migration();
    replay();
    version();
    protocol();
    return 0;
}
