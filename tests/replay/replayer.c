/* The replayer: plays QEMU's qxl device for a recorded session (spice-server's
 * SPICE_WORKER_RECORD_FILENAME format) through libspice-server.so.1's spice_replay_* API,
 * the way spice-server's server/tests/replay.c does, but deterministically and without a
 * client, so that the same binary can run against our library and Debian's C library.
 *
 *   replayer RECORDING OUT.ppm
 *
 * Memory: one memslot (group 0, slot 0) mapping host addresses 1:1, as replay.c sets up;
 * replayed commands live in memory the replay allocated. Each command is fetched only once
 * the worker has taken every earlier one, so the worker calls the replay makes on the way
 * (create/destroy primary) land between the same commands as in the recorded session.
 *
 * The primary surface: the replay creates it with memory of its own. spice-server calls
 * spice_qxl_create_primary_surface through the dynamic symbol table and so does ours, so
 * this program interposes it (and destroy) to learn where that memory is; after the last
 * command it asks for update_area over the whole surface and writes it out as a PPM.
 *
 * Prints one result line:
 *   replay commands=N draw=N update=N cursor=N message=N surface=N surfaces_created=N
 *     primaries=N released=R/N double=N foreign=N bad_group=N WxH ms=N
 * and per drawable type counts. Exit 0 when the replay ran to the end, released nothing
 * twice and produced a dump. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <spice.h>

#define N_SURFACES 1024

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "replayer: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(70);
}

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

/* ------------------------------------------------------------------------------------ */
/* Core interface: a small poll() loop, pumped by the main thread while it waits.        */

struct SpiceWatch { int fd, mask; SpiceWatchFunc f; void *opaque; };
struct SpiceTimer { int armed; double due; SpiceTimerFunc f; void *opaque; };
#define MAXW 64
static SpiceWatch *watches[MAXW];
static SpiceTimer *timers[MAXW];

static SpiceTimer *timer_add(SpiceTimerFunc f, void *opaque)
{
    for (int i = 0; i < MAXW; i++)
        if (!timers[i]) {
            SpiceTimer *t = calloc(1, sizeof(*t));
            t->f = f; t->opaque = opaque;
            return timers[i] = t;
        }
    die("too many timers");
    return NULL;
}
static void timer_start(SpiceTimer *t, uint32_t ms) { t->due = now_ms() + ms; t->armed = 1; }
static void timer_cancel(SpiceTimer *t) { t->armed = 0; }
static void timer_remove(SpiceTimer *t)
{
    for (int i = 0; i < MAXW; i++) if (timers[i] == t) timers[i] = NULL;
    free(t);
}
static SpiceWatch *watch_add(int fd, int mask, SpiceWatchFunc f, void *opaque)
{
    for (int i = 0; i < MAXW; i++)
        if (!watches[i]) {
            SpiceWatch *w = calloc(1, sizeof(*w));
            w->fd = fd; w->mask = mask; w->f = f; w->opaque = opaque;
            return watches[i] = w;
        }
    die("too many watches");
    return NULL;
}
static void watch_update_mask(SpiceWatch *w, int mask) { w->mask = mask; }
static void watch_remove(SpiceWatch *w)
{
    for (int i = 0; i < MAXW; i++) if (watches[i] == w) watches[i] = NULL;
    free(w);
}
static void channel_event(int event, SpiceChannelEventInfo *info) { (void)event; (void)info; }

static SpiceCoreInterface core = {
    .base = { SPICE_INTERFACE_CORE, "replayer core", SPICE_INTERFACE_CORE_MAJOR, SPICE_INTERFACE_CORE_MINOR },
    .timer_add = timer_add, .timer_start = timer_start, .timer_cancel = timer_cancel,
    .timer_remove = timer_remove, .watch_add = watch_add, .watch_update_mask = watch_update_mask,
    .watch_remove = watch_remove, .channel_event = channel_event,
};

static void pump(int timeout_ms)
{
    struct pollfd pfd[MAXW];
    SpiceWatch *pw[MAXW];
    int n = 0;
    for (int i = 0; i < MAXW; i++) {
        SpiceWatch *w = watches[i];
        if (!w || !w->mask) continue;
        pfd[n].fd = w->fd;
        pfd[n].events = ((w->mask & SPICE_WATCH_EVENT_READ) ? POLLIN : 0) |
                        ((w->mask & SPICE_WATCH_EVENT_WRITE) ? POLLOUT : 0);
        pw[n++] = w;
    }
    if (poll(pfd, n, timeout_ms) > 0)
        for (int i = 0; i < n; i++) {
            int ev = 0, live = 0;
            if (pfd[i].revents & (POLLIN | POLLHUP | POLLERR)) ev |= SPICE_WATCH_EVENT_READ;
            if (pfd[i].revents & POLLOUT) ev |= SPICE_WATCH_EVENT_WRITE;
            for (int j = 0; j < MAXW; j++) if (watches[j] == pw[i]) live = 1;
            if (ev && live) pw[i]->f(pw[i]->fd, ev, pw[i]->opaque);
        }
    double t = now_ms();
    for (int i = 0; i < MAXW; i++)
        if (timers[i] && timers[i]->armed && t >= timers[i]->due) {
            timers[i]->armed = 0;
            timers[i]->f(timers[i]->opaque);
        }
}

/* ------------------------------------------------------------------------------------ */
/* Issued commands and their releases                                                   */

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static SpiceReplay *replay;

struct issued { QXLCommandExt *cmd; int released; };
static struct issued *issued;
static int n_issued, cap_issued, n_released, n_double, n_foreign, n_bad_group;

static void track(QXLCommandExt *cmd)
{
    pthread_mutex_lock(&lock);
    if (n_issued == cap_issued) {
        cap_issued = cap_issued ? 2 * cap_issued : 1024;
        issued = realloc(issued, cap_issued * sizeof(*issued));
        if (!issued) die("no memory");
    }
    issued[n_issued].cmd = cmd;
    issued[n_issued].released = 0;
    n_issued++;
    pthread_mutex_unlock(&lock);
}

/* A command freed after release may be reused at the same address by a later one: the
 * newest entry with that address is the live one. */
static void release_resource(QXLInstance *q, QXLReleaseInfoExt r)
{
    (void)q;
    if (!r.info) return;
    QXLCommandExt *cmd = (QXLCommandExt *)(uintptr_t)r.info->id;
    int found = -1;
    pthread_mutex_lock(&lock);
    for (int i = n_issued - 1; i >= 0; i--)
        if (issued[i].cmd == cmd) { found = i; break; }
    if (found < 0) n_foreign++;
    else if (issued[found].released++) n_double++;
    else n_released++;
    if (r.group_id != 0) n_bad_group++;
    pthread_mutex_unlock(&lock);
    if (found >= 0 && issued[found].released == 1) spice_replay_free_cmd(replay, cmd);
}

/* ------------------------------------------------------------------------------------ */
/* Command queues (the device's rings)                                                   */

#define QLEN 64
struct queue { QXLCommandExt q[QLEN]; int head, tail; };
static struct queue displayq, cursorq;

static void qpush(struct queue *q, const QXLCommandExt *c)
{
    pthread_mutex_lock(&lock);
    if (q->tail - q->head >= QLEN) die("queue full");
    q->q[q->tail++ % QLEN] = *c;
    pthread_mutex_unlock(&lock);
}
static int qpop(struct queue *q, QXLCommandExt *out)
{
    int r = 0;
    pthread_mutex_lock(&lock);
    if (q->head < q->tail) { *out = q->q[q->head++ % QLEN]; r = 1; }
    pthread_mutex_unlock(&lock);
    return r;
}
static int qlen(struct queue *q)
{
    pthread_mutex_lock(&lock);
    int n = q->tail - q->head;
    pthread_mutex_unlock(&lock);
    return n;
}

/* ------------------------------------------------------------------------------------ */
/* QXL interface                                                                          */

static QXLInstance qxl;

static void attached_worker(QXLInstance *q) { (void)q; }
static void set_compression_level(QXLInstance *q, int l) { (void)q; (void)l; }
static void get_init_info(QXLInstance *q, QXLDevInitInfo *info)
{
    (void)q;
    memset(info, 0, sizeof(*info));
    info->num_memslots = 1;
    info->num_memslots_groups = 1;
    info->memslot_id_bits = 1;
    info->memslot_gen_bits = 1;
    info->n_surfaces = N_SURFACES;
}
static int get_command(QXLInstance *q, QXLCommandExt *c) { (void)q; return qpop(&displayq, c); }
static int req_cmd_notification(QXLInstance *q) { (void)q; return qlen(&displayq) == 0; }
static int get_cursor_command(QXLInstance *q, QXLCommandExt *c) { (void)q; return qpop(&cursorq, c); }
static int req_cursor_notification(QXLInstance *q) { (void)q; return qlen(&cursorq) == 0; }
static void notify_update(QXLInstance *q, uint32_t id) { (void)q; (void)id; }
static int flush_resources(QXLInstance *q) { (void)q; return 0; }
static void async_complete(QXLInstance *q, uint64_t cookie) { (void)q; (void)cookie; }
static void update_area_complete(QXLInstance *q, uint32_t sid, QXLRect *r, uint32_t n)
{
    (void)q; (void)sid; (void)r; (void)n;
}
static void set_client_capabilities(QXLInstance *q, uint8_t present, uint8_t *caps)
{
    (void)q; (void)present; (void)caps;
}
static int client_monitors_config(QXLInstance *q, VDAgentMonitorsConfig *m) { (void)q; (void)m; return 0; }

static const QXLInterface qxl_if = {
    .base = { SPICE_INTERFACE_QXL, "replayer", SPICE_INTERFACE_QXL_MAJOR, SPICE_INTERFACE_QXL_MINOR },
    .attached_worker = attached_worker, .set_compression_level = set_compression_level,
    .get_init_info = get_init_info, .get_command = get_command,
    .req_cmd_notification = req_cmd_notification, .release_resource = release_resource,
    .get_cursor_command = get_cursor_command, .req_cursor_notification = req_cursor_notification,
    .notify_update = notify_update, .flush_resources = flush_resources,
    .async_complete = async_complete, .update_area_complete = update_area_complete,
    .set_client_capabilities = set_client_capabilities,
    .client_monitors_config = client_monitors_config,
};

/* ------------------------------------------------------------------------------------ */
/* The primary surface, seen through interposed spice_qxl_*_primary_surface              */

static QXLDevSurfaceCreate primary;
static int have_primary, n_primaries;

void spice_qxl_create_primary_surface(QXLInstance *instance, uint32_t surface_id,
                                      QXLDevSurfaceCreate *surface)
{
    static void (*real)(QXLInstance *, uint32_t, QXLDevSurfaceCreate *);
    if (!real) real = dlsym(RTLD_NEXT, "spice_qxl_create_primary_surface");
    if (!real) die("no spice_qxl_create_primary_surface in the library");
    if (surface) { primary = *surface; have_primary = 1; n_primaries++; }
    real(instance, surface_id, surface);
}

void spice_qxl_destroy_primary_surface(QXLInstance *instance, uint32_t surface_id)
{
    static void (*real)(QXLInstance *, uint32_t);
    if (!real) real = dlsym(RTLD_NEXT, "spice_qxl_destroy_primary_surface");
    if (!real) die("no spice_qxl_destroy_primary_surface in the library");
    have_primary = 0;
    real(instance, surface_id);
}

static int write_ppm(const char *path)
{
    if (!have_primary || !primary.mem) return -1;
    int w = primary.width, h = primary.height, stride = primary.stride;
    int abs_stride = stride < 0 ? -stride : stride;
    const uint8_t *mem = (const uint8_t *)(uintptr_t)primary.mem;
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    fprintf(f, "P6\n%d %d\n255\n", w, h);
    for (int y = 0; y < h; y++) {
        const uint8_t *row = mem + (size_t)(stride < 0 ? h - 1 - y : y) * abs_stride;
        for (int x = 0; x < w; x++) {
            uint8_t px[3];
            if (primary.format == SPICE_SURFACE_FMT_16_565) {
                uint16_t v = row[2 * x] | row[2 * x + 1] << 8;
                px[0] = (v >> 11 & 31) << 3; px[1] = (v >> 5 & 63) << 2; px[2] = (v & 31) << 3;
            } else if (primary.format == SPICE_SURFACE_FMT_16_555) {
                uint16_t v = row[2 * x] | row[2 * x + 1] << 8;
                px[0] = (v >> 10 & 31) << 3; px[1] = (v >> 5 & 31) << 3; px[2] = (v & 31) << 3;
            } else {
                px[0] = row[4 * x + 2]; px[1] = row[4 * x + 1]; px[2] = row[4 * x];
            }
            fwrite(px, 1, 3, f);
        }
    }
    return fclose(f);
}

/* ------------------------------------------------------------------------------------ */

static void wait_drained(void)
{
    double deadline = now_ms() + 30000;
    while (qlen(&displayq) || qlen(&cursorq)) {
        if (now_ms() > deadline) die("the worker stopped taking commands");
        pump(1);
    }
}

int main(int argc, char **argv)
{
    if (argc != 3) die("usage: replayer RECORDING OUT.ppm");
    alarm(600);
    FILE *f = fopen(argv[1], "rb");
    if (!f) die("cannot open %s", argv[1]);
    replay = spice_replay_new(f, N_SURFACES);
    if (!replay) die("spice_replay_new refused %s", argv[1]);

    SpiceServer *server = spice_server_new();
    if (!server) die("spice_server_new");
    spice_server_set_noauth(server);
    if (spice_server_init(server, &core) != 0) die("spice_server_init");
    qxl.base.sif = &qxl_if.base;
    qxl.id = 0;
    if (spice_server_add_interface(server, &qxl.base) != 0) die("add_interface(qxl)");
    QXLDevMemSlot slot = { .slot_group_id = 0, .slot_id = 0, .generation = 0,
                           .virt_start = 0, .virt_end = ~(uintptr_t)0, .addr_delta = 0,
                           .qxl_ram_size = ~0u };
    spice_qxl_add_memslot(&qxl, &slot);
    spice_server_vm_start(server);

    int by_type[8] = {0}, by_draw[16] = {0}, surfaces_created = 0;
    double t0 = now_ms();
    for (;;) {
        wait_drained();
        QXLCommandExt *cmd = spice_replay_next_cmd(replay, &qxl);
        if (!cmd) break;
        uint32_t type = cmd->cmd.type;
        by_type[type < 8 ? type : 0]++;
        if (type == QXL_CMD_DRAW) {
            uint8_t dt = ((QXLDrawable *)(uintptr_t)cmd->cmd.data)->type;
            by_draw[dt < 16 ? dt : 15]++;
        }
        if (type == QXL_CMD_SURFACE &&
            ((QXLSurfaceCmd *)(uintptr_t)cmd->cmd.data)->type == QXL_SURFACE_CMD_CREATE)
            surfaces_created++;
        track(cmd);
        qpush(type == QXL_CMD_CURSOR ? &cursorq : &displayq, cmd);
        spice_qxl_wakeup(&qxl);
    }
    wait_drained();
    int ok = 1;
    if (have_primary) {
        QXLRect all = { .top = 0, .left = 0, .bottom = (int32_t)primary.height,
                        .right = (int32_t)primary.width };
        spice_qxl_update_area(&qxl, 0, &all, NULL, 0, 0);
        if (write_ppm(argv[2]) != 0) { fprintf(stderr, "replayer: cannot write %s\n", argv[2]); ok = 0; }
    } else {
        fprintf(stderr, "replayer: no primary surface at the end of the recording\n");
        ok = 0;
    }
    double ms = now_ms() - t0;
    for (int i = 0; i < 20; i++) pump(5); /* let late releases arrive */

    pthread_mutex_lock(&lock);
    printf("draws:");
    static const char *names[] = { "nop", "fill", "opaque", "copy", "copy_bits", "blend",
        "blackness", "whiteness", "invers", "rop3", "stroke", "text", "transparent",
        "alpha_blend", "composite", "other" };
    for (int i = 0; i < 16; i++) if (by_draw[i]) printf(" %s=%d", names[i], by_draw[i]);
    printf("\n");
    printf("replay commands=%d draw=%d update=%d cursor=%d message=%d surface=%d "
           "surfaces_created=%d primaries=%d released=%d/%d double=%d foreign=%d bad_group=%d "
           "%ux%u ms=%.0f\n",
           n_issued, by_type[QXL_CMD_DRAW], by_type[QXL_CMD_UPDATE], by_type[QXL_CMD_CURSOR],
           by_type[QXL_CMD_MESSAGE], by_type[QXL_CMD_SURFACE], surfaces_created, n_primaries,
           n_released, n_issued, n_double, n_foreign, n_bad_group,
           have_primary ? primary.width : 0, have_primary ? primary.height : 0, ms);
    if (n_double || n_foreign || n_bad_group || n_issued == 0) ok = 0;
    pthread_mutex_unlock(&lock);
    fflush(stdout);

    spice_server_destroy(server);
    spice_replay_free(replay);
    return ok ? 0 : 1;
}
