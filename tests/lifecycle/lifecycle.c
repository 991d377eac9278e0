/* Plays QEMU's part just enough to run the server's whole lifecycle several times:
 * new, configure, init (listening), add keyboard/mouse/QXL interfaces, vm_start,
 * a synchronous QXL call, vm_stop, remove interfaces, destroy.
 * Run under valgrind: nothing may be definitely lost, and afterwards the process
 * must have the threads and file descriptors it started with. */
#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <spice.h>

static int count_dir(const char *path)
{
    DIR *d = opendir(path);
    int n = 0;
    if (!d) return -1;
    while (readdir(d)) n++;
    closedir(d);
    return n;
}

/* A core interface whose watches and timers are just records: no main loop runs,
 * which is what QEMU looks like between two iterations. */
struct SpiceWatch { int fd; };
struct SpiceTimer { int armed; };

static SpiceTimer *timer_add(SpiceTimerFunc f, void *opaque) { (void)f; (void)opaque; return calloc(1, sizeof(SpiceTimer)); }
static void timer_start(SpiceTimer *t, uint32_t ms) { (void)ms; t->armed = 1; }
static void timer_cancel(SpiceTimer *t) { t->armed = 0; }
static void timer_remove(SpiceTimer *t) { free(t); }
static int watches;
static SpiceWatch *watch_add(int fd, int mask, SpiceWatchFunc f, void *opaque)
{
    (void)mask; (void)f; (void)opaque;
    SpiceWatch *w = calloc(1, sizeof(SpiceWatch));
    w->fd = fd;
    watches++;
    return w;
}
static void watch_update_mask(SpiceWatch *w, int mask) { (void)w; (void)mask; }
static void watch_remove(SpiceWatch *w) { watches--; free(w); }
static void channel_event(int event, SpiceChannelEventInfo *info) { (void)event; (void)info; }

static SpiceCoreInterface core = {
    .base = { SPICE_INTERFACE_CORE, "lifecycle test core", SPICE_INTERFACE_CORE_MAJOR, SPICE_INTERFACE_CORE_MINOR },
    .timer_add = timer_add, .timer_start = timer_start, .timer_cancel = timer_cancel,
    .timer_remove = timer_remove, .watch_add = watch_add, .watch_update_mask = watch_update_mask,
    .watch_remove = watch_remove, .channel_event = channel_event,
};

static void push_scan(SpiceKbdInstance *sin, uint8_t frag) { (void)sin; (void)frag; }
static uint8_t get_leds(SpiceKbdInstance *sin) { (void)sin; return 0; }
static const SpiceKbdInterface kbd_if = {
    .base = { SPICE_INTERFACE_KEYBOARD, "test keyboard", SPICE_INTERFACE_KEYBOARD_MAJOR, SPICE_INTERFACE_KEYBOARD_MINOR },
    .push_scan_freg = push_scan, .get_leds = get_leds,
};
static void motion(SpiceMouseInstance *s, int dx, int dy, int dz, uint32_t b) { (void)s; (void)dx; (void)dy; (void)dz; (void)b; }
static void buttons(SpiceMouseInstance *s, uint32_t b) { (void)s; (void)b; }
static const SpiceMouseInterface mouse_if = {
    .base = { SPICE_INTERFACE_MOUSE, "test mouse", SPICE_INTERFACE_MOUSE_MAJOR, SPICE_INTERFACE_MOUSE_MINOR },
    .motion = motion, .buttons = buttons,
};

static void attached_worker(QXLInstance *q) { (void)q; }
static void set_compression_level(QXLInstance *q, int l) { (void)q; (void)l; }
static void get_init_info(QXLInstance *q, QXLDevInitInfo *info)
{
    (void)q;
    memset(info, 0, sizeof(*info));
    info->num_memslots_groups = 2;
    info->num_memslots = 8;
    info->memslot_gen_bits = 8;
    info->memslot_id_bits = 8;
    info->qxl_ram_size = 16 << 20;
    info->n_surfaces = 1024;
}
static int get_command(QXLInstance *q, QXLCommandExt *c) { (void)q; (void)c; return 0; }
static int req_notification(QXLInstance *q) { (void)q; return 1; }
static void release_resource(QXLInstance *q, QXLReleaseInfoExt r) { (void)q; (void)r; }
static int flush_resources(QXLInstance *q) { (void)q; return 0; }
static int completed;
static void async_complete(QXLInstance *q, uint64_t cookie) { (void)q; (void)cookie; __atomic_add_fetch(&completed, 1, __ATOMIC_SEQ_CST); }
static void update_area_complete(QXLInstance *q, uint32_t s, QXLRect *r, uint32_t n) { (void)q; (void)s; (void)r; (void)n; }
static void set_client_capabilities(QXLInstance *q, uint8_t p, uint8_t *caps) { (void)q; (void)p; (void)caps; }
static int client_monitors_config(QXLInstance *q, VDAgentMonitorsConfig *m) { (void)q; (void)m; return 0; }
static const SpicePlaybackInterface playback_if = {
    .base = { .type = SPICE_INTERFACE_PLAYBACK, .description = "playback",
              .major_version = SPICE_INTERFACE_PLAYBACK_MAJOR,
              .minor_version = SPICE_INTERFACE_PLAYBACK_MINOR },
};
static const SpiceRecordInterface record_if = {
    .base = { .type = SPICE_INTERFACE_RECORD, .description = "record",
              .major_version = SPICE_INTERFACE_RECORD_MAJOR,
              .minor_version = SPICE_INTERFACE_RECORD_MINOR },
};
static const QXLInterface qxl_if = {
    .base = { SPICE_INTERFACE_QXL, "test qxl", SPICE_INTERFACE_QXL_MAJOR, SPICE_INTERFACE_QXL_MINOR },
    .attached_worker = attached_worker, .set_compression_level = set_compression_level,
    .get_init_info = get_init_info, .get_command = get_command,
    .req_cmd_notification = req_notification, .release_resource = release_resource,
    .get_cursor_command = get_command, .req_cursor_notification = req_notification,
    .flush_resources = flush_resources, .async_complete = async_complete,
    .update_area_complete = update_area_complete,
    .set_client_capabilities = set_client_capabilities,
    .client_monitors_config = client_monitors_config,
};

/* A listening socket on an ephemeral loopback port, as QEMU would pass one. */
static int listening_socket(struct sockaddr_in *addr)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    socklen_t len = sizeof(*addr);
    memset(addr, 0, sizeof(*addr));
    addr->sin_family = AF_INET;
    addr->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || bind(fd, (struct sockaddr *)addr, len) || listen(fd, 4) ||
        getsockname(fd, (struct sockaddr *)addr, &len)) return -1;
    return fd;
}

/* The server must answer a link with a bad magic by INVALID_MAGIC (2). */
static int answers_link(const struct sockaddr_in *addr)
{
    unsigned char hello[16] = "XXXX", reply[20];
    struct timeval tv = { 5, 0 };
    int fd = socket(AF_INET, SOCK_STREAM, 0), got = 0;
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (connect(fd, (const struct sockaddr *)addr, sizeof(*addr)) == 0 &&
        write(fd, hello, sizeof(hello)) == sizeof(hello)) {
        while (got < (int)sizeof(reply)) {
            ssize_t n = read(fd, reply + got, sizeof(reply) - got);
            if (n <= 0) break;
            got += n;
        }
    }
    close(fd);
    return got == (int)sizeof(reply) && memcmp(reply, "REDQ", 4) == 0 && reply[16] == 2;
}

static int cycle(int port)
{
    SpiceKbdInstance kbd = { .base = { &kbd_if.base } };
    SpiceMouseInstance mouse = { .base = { &mouse_if.base } };
    QXLInstance qxl = { .base = { &qxl_if.base }, .id = 0 };
    SpicePlaybackInstance playback = { .base = { &playback_if.base } };
    SpiceRecordInstance record = { .base = { &record_if.base } };
    uint16_t volume[2] = { 0x8080, 0x8080 };
    uint32_t samples[480], *frame = samples, nframes = 1;
    static uint8_t framebuffer[64 * 48 * 4];
    QXLDevMemSlot slot = { .slot_group_id = 0, .slot_id = 0, .generation = 0,
                           .virt_start = 0, .virt_end = ~(uintptr_t)0, .addr_delta = 0 };
    QXLDevSurfaceCreate surface = { .width = 64, .height = 48, .stride = -64 * 4, .format = 32,
                                    .mouse_mode = 1, .mem = (uintptr_t)framebuffer, .group_id = 0 };
    QXLRect area = { 0, 0, 48, 64 };

    struct sockaddr_in addr;
    SpiceServer *s = spice_server_new();
    if (!s) return 1;
    spice_server_set_addr(s, "127.0.0.1", SPICE_ADDR_FLAG_IPV4_ONLY);
    if (port > 0) {
        if (spice_server_set_port(s, port) != 0) return 2;
        memset(&addr, 0, sizeof(addr));
        addr.sin_family = AF_INET;
        addr.sin_port = htons(port);
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    } else {
        /* The server takes over a listening socket and closes it on destroy. */
        int fd = listening_socket(&addr);
        if (fd < 0 || spice_server_set_listen_socket_fd(s, fd) != 0) return 2;
    }
    spice_server_set_noauth(s);
    spice_server_set_name(s, "lifecycle");
    if (spice_server_set_video_codecs(s, "spice:mjpeg;gstreamer:h264") != 0) return 3;
    /* As QEMU does unless told otherwise. (With streaming on, GStreamer starts and keeps
     * its own threads for the life of the process, as with the C server.) */
    spice_server_set_streaming_video(s, SPICE_STREAM_VIDEO_OFF);
    const char *codecs = spice_server_get_video_codecs(s);
    spice_server_free_video_codecs(s, codecs);
    if (spice_server_init(s, &core) != 0) return 4;
    if (!answers_link(&addr)) return 10;
    if (spice_server_add_interface(s, &kbd.base) != 0) return 5;
    if (spice_server_add_interface(s, &mouse.base) != 0) return 6;
    if (spice_server_add_interface(s, &qxl.base) != 0) return 7;
    spice_qxl_add_memslot(&qxl, &slot);
    spice_qxl_create_primary_surface(&qxl, 0, &surface);
    spice_server_vm_start(s);
    spice_qxl_wakeup(&qxl);
    spice_qxl_update_area(&qxl, 0, &area, NULL, 0, 0);
    spice_qxl_update_area_async(&qxl, 0, &area, 0, 42);
    spice_server_kbd_leds(&kbd, 2);
    /* Audio as QEMU's spiceaudio drives it, with no client: no buffer, no samples. */
    if (spice_server_get_best_playback_rate(NULL) != 48000) return 11;
    if (spice_server_add_interface(s, &playback.base) != 0) return 12;
    spice_server_set_playback_rate(&playback, 48000);
    if (spice_server_add_interface(s, &record.base) != 0) return 13;
    spice_server_set_record_rate(&record, 48000);
    spice_server_playback_set_volume(&playback, 2, volume);
    spice_server_playback_set_mute(&playback, 1);
    spice_server_playback_start(&playback);
    spice_server_playback_get_buffer(&playback, &frame, &nframes);
    if (frame != NULL || nframes != 0) return 14;
    spice_server_playback_stop(&playback);
    spice_server_record_set_volume(&record, 2, volume);
    spice_server_record_start(&record);
    if (spice_server_record_get_samples(&record, samples, 480) != 0) return 15;
    spice_server_record_stop(&record);
    if (spice_server_remove_interface(&playback.base) != 0) return 16;
    /* The record instance stays registered: destroy must release it. */
    spice_server_vm_stop(s);
    spice_qxl_destroy_primary_surface(&qxl, 0);
    if (spice_server_remove_interface(&mouse.base) != 0) return 8;
    if (spice_server_remove_interface(&qxl.base) != 0) return 9;
    /* The keyboard stays registered: destroy must release it too. */
    spice_server_destroy(s);
    return 0;
}

int main(int argc, char **argv)
{
    int port = argc > 1 ? atoi(argv[1]) : 0;
    int cycles = argc > 2 ? atoi(argv[2]) : 3;
    int fds = count_dir("/proc/self/fd"), threads = count_dir("/proc/self/task");
    for (int i = 0; i < cycles; i++) {
        /* Every other cycle uses a listening socket passed in by the caller. */
        int rc = cycle(i % 2 ? 0 : port);
        if (rc) { fprintf(stderr, "cycle %d failed at step %d\n", i, rc); return 1; }
    }
    int fds_after = count_dir("/proc/self/fd");
    /* A joined thread's task entry can outlive pthread_join by a moment (the kernel
     * wakes the joiner before it reaps the task; valgrind widens that window), so a
     * surplus thread must persist for a second before it counts as not released. */
    int threads_after = count_dir("/proc/self/task");
    for (int waited = 0; threads_after != threads && waited < 100; waited++) {
        usleep(10000);
        threads_after = count_dir("/proc/self/task");
    }
    printf("lifecycle: %d cycles, fds %d -> %d, threads %d -> %d, watches left %d, async completions %d\n",
           cycles, fds, fds_after, threads, threads_after, watches, completed);
    if (fds_after != fds || threads_after != threads || watches != 0 || completed != cycles) {
        fprintf(stderr, "lifecycle: something was not released\n");
        return 1;
    }
    return 0;
}
