/*
 * API probe for <spice.h>: every function libspice-server.so.1 exports, with the
 * prototype spice-server 0.15.1 declares for it.
 *
 * For each function a static assertion checks that the header declares it with exactly
 * that (C-compatible) type, and its address goes into a table, so linking the program
 * proves the library defines it. tests/abi/run.sh builds this file with -Wall -Werror
 * against spice-rs' headers + library and against the installed C headers + library,
 * and runs both (with BIND_NOW, so every symbol must resolve at load time).
 */
#include <spice.h>

#include <stdio.h>
#include <string.h>

struct entry {
    const char *name;
    void (*address)(void);
};

#define FN(name, type)                                                                    \
    {#name, ((void)sizeof(struct {                                                         \
                 int dummy_;                                                               \
                 _Static_assert(__builtin_types_compatible_p(__typeof__(&name), type),     \
                                #name " is not declared as " #type);                       \
             }),                                                                           \
             (void (*)(void))&name)}

int main(int argc, char **argv)
{
    /* Local (not static): the static assertions sit in comma expressions, which a static
     * initializer may not contain. */
    const struct entry functions[] = {
        /* spice-server.h */
        FN(spice_get_current_compat_version, spice_compat_version_t (*)(void)),
        FN(spice_server_new, SpiceServer *(*)(void)),
        FN(spice_server_init, int (*)(SpiceServer *, SpiceCoreInterface *)),
        FN(spice_server_destroy, void (*)(SpiceServer *)),
        FN(spice_server_set_compat_version, int (*)(SpiceServer *, spice_compat_version_t)),
        FN(spice_server_set_port, int (*)(SpiceServer *, int)),
        FN(spice_server_set_addr, void (*)(SpiceServer *, const char *, int)),
        FN(spice_server_set_listen_socket_fd, int (*)(SpiceServer *, int)),
        FN(spice_server_set_exit_on_disconnect, int (*)(SpiceServer *, int)),
        FN(spice_server_set_noauth, int (*)(SpiceServer *)),
        FN(spice_server_set_sasl, int (*)(SpiceServer *, int)),
        FN(spice_server_set_sasl_appname, int (*)(SpiceServer *, const char *)),
        FN(spice_server_set_ticket, int (*)(SpiceServer *, const char *, int, int, int)),
        FN(spice_server_set_tls, int (*)(SpiceServer *, int, const char *, const char *, const char *,
                                         const char *, const char *, const char *)),
        FN(spice_server_add_client, int (*)(SpiceServer *, int, int)),
        FN(spice_server_add_ssl_client, int (*)(SpiceServer *, int, int)),
        FN(spice_server_add_interface, int (*)(SpiceServer *, SpiceBaseInstance *)),
        FN(spice_server_remove_interface, int (*)(SpiceBaseInstance *)),
        FN(spice_server_set_image_compression, int (*)(SpiceServer *, SpiceImageCompression)),
        FN(spice_server_get_image_compression, SpiceImageCompression (*)(SpiceServer *)),
        FN(spice_server_set_jpeg_compression, int (*)(SpiceServer *, spice_wan_compression_t)),
        FN(spice_server_set_zlib_glz_compression, int (*)(SpiceServer *, spice_wan_compression_t)),
        FN(spice_server_set_channel_security, int (*)(SpiceServer *, const char *, int)),
        FN(spice_server_add_renderer, int (*)(SpiceServer *, const char *)),
        FN(spice_server_set_streaming_video, int (*)(SpiceServer *, int)),
        FN(spice_server_set_video_codecs, int (*)(SpiceServer *, const char *)),
        FN(spice_server_get_video_codecs, const char *(*)(SpiceServer *)),
        FN(spice_server_free_video_codecs, void (*)(SpiceServer *, const char *)),
        FN(spice_server_set_playback_compression, int (*)(SpiceServer *, int)),
        FN(spice_server_set_agent_mouse, int (*)(SpiceServer *, int)),
        FN(spice_server_set_agent_copypaste, int (*)(SpiceServer *, int)),
        FN(spice_server_set_agent_file_xfer, int (*)(SpiceServer *, int)),
        FN(spice_server_get_sock_info, int (*)(SpiceServer *, struct sockaddr *, socklen_t *)),
        FN(spice_server_get_peer_info, int (*)(SpiceServer *, struct sockaddr *, socklen_t *)),
        FN(spice_server_is_server_mouse, int (*)(SpiceServer *)),
        FN(spice_server_set_name, void (*)(SpiceServer *, const char *)),
        FN(spice_server_set_uuid, void (*)(SpiceServer *, const uint8_t[16])),
        FN(spice_server_vm_start, void (*)(SpiceServer *)),
        FN(spice_server_vm_stop, void (*)(SpiceServer *)),
        FN(spice_server_get_num_clients, int (*)(SpiceServer *)),

        /* spice-qxl.h */
        FN(spice_qxl_wakeup, void (*)(QXLInstance *)),
        FN(spice_qxl_oom, void (*)(QXLInstance *)),
        FN(spice_qxl_start, void (*)(QXLInstance *)),
        FN(spice_qxl_stop, void (*)(QXLInstance *)),
        FN(spice_qxl_update_area, void (*)(QXLInstance *, uint32_t, struct QXLRect *, struct QXLRect *,
                                           uint32_t, uint32_t)),
        FN(spice_qxl_add_memslot, void (*)(QXLInstance *, QXLDevMemSlot *)),
        FN(spice_qxl_del_memslot, void (*)(QXLInstance *, uint32_t, uint32_t)),
        FN(spice_qxl_reset_memslots, void (*)(QXLInstance *)),
        FN(spice_qxl_destroy_surfaces, void (*)(QXLInstance *)),
        FN(spice_qxl_destroy_primary_surface, void (*)(QXLInstance *, uint32_t)),
        FN(spice_qxl_create_primary_surface, void (*)(QXLInstance *, uint32_t, QXLDevSurfaceCreate *)),
        FN(spice_qxl_reset_image_cache, void (*)(QXLInstance *)),
        FN(spice_qxl_reset_cursor, void (*)(QXLInstance *)),
        FN(spice_qxl_destroy_surface_wait, void (*)(QXLInstance *, uint32_t)),
        FN(spice_qxl_loadvm_commands, void (*)(QXLInstance *, struct QXLCommandExt *, uint32_t)),
        FN(spice_qxl_update_area_async, void (*)(QXLInstance *, uint32_t, QXLRect *, uint32_t, uint64_t)),
        FN(spice_qxl_add_memslot_async, void (*)(QXLInstance *, QXLDevMemSlot *, uint64_t)),
        FN(spice_qxl_destroy_surfaces_async, void (*)(QXLInstance *, uint64_t)),
        FN(spice_qxl_destroy_primary_surface_async, void (*)(QXLInstance *, uint32_t, uint64_t)),
        FN(spice_qxl_create_primary_surface_async,
           void (*)(QXLInstance *, uint32_t, QXLDevSurfaceCreate *, uint64_t)),
        FN(spice_qxl_destroy_surface_async, void (*)(QXLInstance *, uint32_t, uint64_t)),
        FN(spice_qxl_flush_surfaces_async, void (*)(QXLInstance *, uint64_t)),
        FN(spice_qxl_monitors_config_async, void (*)(QXLInstance *, QXLPHYSICAL, int, uint64_t)),
        FN(spice_qxl_driver_unload, void (*)(QXLInstance *)),
        FN(spice_qxl_set_max_monitors, void (*)(QXLInstance *, unsigned int)),
        FN(spice_qxl_gl_scanout, void (*)(QXLInstance *, int, uint32_t, uint32_t, uint32_t, uint32_t, int)),
        FN(spice_qxl_gl_draw_async, void (*)(QXLInstance *, uint32_t, uint32_t, uint32_t, uint32_t, uint64_t)),
        FN(spice_qxl_set_device_info, void (*)(QXLInstance *, const char *, uint32_t, uint32_t)),

        /* spice-input.h */
        FN(spice_server_kbd_leds, int (*)(SpiceKbdInstance *, int)),

        /* spice-audio.h */
        FN(spice_server_playback_start, void (*)(SpicePlaybackInstance *)),
        FN(spice_server_playback_stop, void (*)(SpicePlaybackInstance *)),
        FN(spice_server_playback_get_buffer, void (*)(SpicePlaybackInstance *, uint32_t **, uint32_t *)),
        FN(spice_server_playback_put_samples, void (*)(SpicePlaybackInstance *, uint32_t *)),
        FN(spice_server_playback_set_volume, void (*)(SpicePlaybackInstance *, uint8_t, uint16_t *)),
        FN(spice_server_playback_set_mute, void (*)(SpicePlaybackInstance *, uint8_t)),
        FN(spice_server_record_start, void (*)(SpiceRecordInstance *)),
        FN(spice_server_record_stop, void (*)(SpiceRecordInstance *)),
        FN(spice_server_record_get_samples, uint32_t (*)(SpiceRecordInstance *, uint32_t *, uint32_t)),
        FN(spice_server_record_set_volume, void (*)(SpiceRecordInstance *, uint8_t, uint16_t *)),
        FN(spice_server_record_set_mute, void (*)(SpiceRecordInstance *, uint8_t)),
        FN(spice_server_get_best_playback_rate, uint32_t (*)(SpicePlaybackInstance *)),
        FN(spice_server_set_playback_rate, void (*)(SpicePlaybackInstance *, uint32_t)),
        FN(spice_server_get_best_record_rate, uint32_t (*)(SpiceRecordInstance *)),
        FN(spice_server_set_record_rate, void (*)(SpiceRecordInstance *, uint32_t)),

        /* spice-char.h */
        FN(spice_server_char_device_wakeup, void (*)(SpiceCharDeviceInstance *)),
        FN(spice_server_port_event, void (*)(SpiceCharDeviceInstance *, uint8_t)),
        FN(spice_server_char_device_recognized_subtypes, const char **(*)(void)),

        /* spice-migration.h */
        FN(spice_server_migrate_info, int (*)(SpiceServer *, const char *, int, int, const char *)),
        FN(spice_server_migrate_switch, int (*)(SpiceServer *)),
        FN(spice_server_migrate_connect, int (*)(SpiceServer *, const char *, int, int, const char *)),
        FN(spice_server_migrate_start, int (*)(SpiceServer *)),
        FN(spice_server_migrate_end, int (*)(SpiceServer *, int)),
        FN(spice_server_set_seamless_migration, void (*)(SpiceServer *, int)),

        /* spice-replay.h */
        FN(spice_replay_next_cmd, QXLCommandExt *(*)(SpiceReplay *, QXLInstance *)),
        FN(spice_replay_free_cmd, void (*)(SpiceReplay *, QXLCommandExt *)),
        FN(spice_replay_free, void (*)(SpiceReplay *)),
        FN(spice_replay_new, SpiceReplay *(*)(FILE *, int)),
    };
    size_t n = sizeof(functions) / sizeof(functions[0]);
    size_t missing = 0;
    for (size_t i = 0; i < n; i++) {
        if (!functions[i].address) {
            printf("missing: %s\n", functions[i].name);
            missing++;
        }
        for (size_t j = 0; j < i; j++) {
            if (!strcmp(functions[i].name, functions[j].name)) {
                printf("listed twice: %s\n", functions[i].name);
                missing++;
            }
        }
    }
    if (argc > 1 && !strcmp(argv[1], "-v")) {
        for (size_t i = 0; i < n; i++) {
            printf("%s\n", functions[i].name);
        }
    }
    printf("%zu functions declared and resolved, %zu problems\n", n, missing);
    return (missing == 0 && n == 97) ? 0 : 1;
}
