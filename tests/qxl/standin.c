/* The stand-in: plays QEMU's qxl device (hw/display/qxl.c) against libspice-server.so.1,
 * deterministically and without a client, so that the same binary can drive our Rust
 * library and Debian's C spice-server and their renderings can be compared.
 *
 *   standin LIST                 prints the scenario names (RUN ones, then "BAD name" ones)
 *   standin RUN name out.ppm     runs one scenario, writes the primary surface as a PPM
 *                                (random scenarios: "rnd_kind.N" is run N, see random/seeded.c)
 *   standin BAD name             runs one malformed-command scenario in a forked child
 *   standin SERVE name out.ppm PORT [PACE_MS]
 *                                listens on 127.0.0.1:PORT (noauth), waits for a client's
 *                                display channel, runs the scenario as RUN does (same dump),
 *                                prints "SERVE-DONE", then keeps serving until stdin closes;
 *                                with PACE_MS, wakes the server and waits that long after
 *                                every command (the same commands, one at a time)
 *
 * Memory model as QEMU sets it up: group 0 = host slot 0 (identity), group 1 = one "PCI BAR"
 * slot (slot 1, generation GEN) backed by one malloc'ed region. Every command, drawable,
 * image, chunk and surface lives in the BAR and is referenced by a QXL physical address
 * carrying the slot id (bits 63..56) and generation (55..48), as a guest driver does. */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <spice.h>
#include <spice/enums.h>

/* ------------------------------------------------------------------------------------ */
/* Geometry and memory                                                                   */

#define W 256
#define H 192
#define BAR_SIZE (16u << 20)
#define BAR_PHYS 0xf0000000ull /* guest-physical base of the BAR */
#define SLOT_ID 1
#define GEN 3
#define N_SURFACES 64
#define MAX_REC 4096

static uint8_t *bar;
static size_t bar_used;

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "standin: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(70);
}

static void *galloc(size_t n)
{
    size_t off = (bar_used + 15) & ~(size_t)15;
    if (off + n > BAR_SIZE) die("BAR exhausted");
    bar_used = off + n;
    memset(bar + off, 0, n);
    return bar + off;
}

static uint64_t mkphys(unsigned slot, unsigned gen, uint64_t off)
{
    return ((uint64_t)slot << 56) | ((uint64_t)gen << 48) | off;
}

/* guest physical address of a BAR pointer */
static uint64_t phys(const void *p)
{
    if (!p) return 0;
    return mkphys(SLOT_ID, GEN, BAR_PHYS + (uint64_t)((const uint8_t *)p - bar));
}

/* ------------------------------------------------------------------------------------ */
/* Core interface: a tiny poll() loop, pumped by the main thread while it waits.         */

struct SpiceWatch { int fd, mask, live; SpiceWatchFunc f; void *opaque; };
struct SpiceTimer { int armed, live; struct timespec due; SpiceTimerFunc f; void *opaque; };
#define MAXW 64
static SpiceWatch *watches[MAXW];
static SpiceTimer *timers[MAXW];
static pthread_t main_thread;

static SpiceTimer *timer_add(SpiceTimerFunc f, void *opaque)
{
    for (int i = 0; i < MAXW; i++)
        if (!timers[i]) {
            SpiceTimer *t = calloc(1, sizeof(*t));
            t->f = f; t->opaque = opaque; t->live = 1;
            timers[i] = t;
            return t;
        }
    die("too many timers");
    return NULL;
}
static void timer_start(SpiceTimer *t, uint32_t ms)
{
    clock_gettime(CLOCK_MONOTONIC, &t->due);
    t->due.tv_sec += ms / 1000;
    t->due.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (t->due.tv_nsec >= 1000000000L) { t->due.tv_sec++; t->due.tv_nsec -= 1000000000L; }
    t->armed = 1;
}
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
            w->fd = fd; w->mask = mask; w->f = f; w->opaque = opaque; w->live = 1;
            watches[i] = w;
            return w;
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
/* SERVE mode: how many display channels finished their link (and went away again) */
static int display_links, display_unlinks;
static void channel_event(int event, SpiceChannelEventInfo *info)
{
    if (!info || info->type != SPICE_CHANNEL_DISPLAY) return;
    if (event == SPICE_CHANNEL_EVENT_INITIALIZED) __atomic_add_fetch(&display_links, 1, __ATOMIC_SEQ_CST);
    if (event == SPICE_CHANNEL_EVENT_DISCONNECTED) __atomic_add_fetch(&display_unlinks, 1, __ATOMIC_SEQ_CST);
}

static SpiceCoreInterface core = {
    .base = { SPICE_INTERFACE_CORE, "qxl stand-in core", SPICE_INTERFACE_CORE_MAJOR, SPICE_INTERFACE_CORE_MINOR },
    .timer_add = timer_add, .timer_start = timer_start, .timer_cancel = timer_cancel,
    .timer_remove = timer_remove, .watch_add = watch_add, .watch_update_mask = watch_update_mask,
    .watch_remove = watch_remove, .channel_event = channel_event,
};

/* one iteration of the main loop: at most timeout_ms of waiting */
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
        pfd[n].revents = 0;
        pw[n++] = w;
    }
    if (poll(pfd, n, timeout_ms) > 0) {
        for (int i = 0; i < n; i++) {
            int ev = 0;
            if (pfd[i].revents & (POLLIN | POLLHUP | POLLERR)) ev |= SPICE_WATCH_EVENT_READ;
            if (pfd[i].revents & POLLOUT) ev |= SPICE_WATCH_EVENT_WRITE;
            int still = 0;
            for (int j = 0; j < MAXW; j++) if (watches[j] == pw[i]) still = 1;
            if (ev && still) pw[i]->f(pw[i]->fd, ev, pw[i]->opaque);
        }
    }
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    for (int i = 0; i < MAXW; i++) {
        SpiceTimer *t = timers[i];
        if (t && t->armed &&
            (now.tv_sec > t->due.tv_sec || (now.tv_sec == t->due.tv_sec && now.tv_nsec >= t->due.tv_nsec))) {
            t->armed = 0;
            t->f(t->opaque);
        }
    }
}

/* ------------------------------------------------------------------------------------ */
/* Bookkeeping: issued resources, releases, cookies                                       */

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;

struct rec { QXLReleaseInfo *info; const char *what; int released; };
static struct rec recs[MAX_REC];
static int n_recs, n_released, n_double, n_foreign, n_bad_group;

struct cookie { uint64_t v; int done; };
static struct cookie cookies[256];
static int n_cookies, cookie_double, cookie_foreign;
static int n_update_complete, last_update_complete_rects, n_notify_update, n_flush_resources;
static int n_client_caps, n_fetched, n_cursor_fetched;

static int issue(QXLReleaseInfo *info, const char *what)
{
    pthread_mutex_lock(&lock);
    if (n_recs >= MAX_REC) die("too many resources");
    int i = n_recs++;
    recs[i].info = info;
    recs[i].what = what;
    info->id = 0x1000 + (uint64_t)i; /* guest-chosen id */
    pthread_mutex_unlock(&lock);
    return i;
}

static int released_count(int i)
{
    pthread_mutex_lock(&lock);
    int r = recs[i].released;
    pthread_mutex_unlock(&lock);
    return r;
}

/* ------------------------------------------------------------------------------------ */
/* Command rings (queues)                                                                 */

#define QLEN 8192
struct queue { QXLCommandExt q[QLEN]; int head, tail; };
static struct queue cmdq, curq;

static void (*after_push)(void); /* SERVE with a pace: lets each command go out alone */

static uint32_t cmd_flags; /* QXLCommandExt.flags of the commands pushed (QXL_COMMAND_FLAG_*) */
static void qpush(struct queue *q, uint64_t data, uint32_t type)
{
    pthread_mutex_lock(&lock);
    if (q->tail - q->head >= QLEN) die("queue full");
    QXLCommandExt *e = &q->q[q->tail++ % QLEN];
    memset(e, 0, sizeof(*e));
    e->cmd.data = data;
    e->cmd.type = type;
    e->group_id = 1;
    e->flags = cmd_flags;
    pthread_mutex_unlock(&lock);
    if (after_push) after_push();
}
static int qpop(struct queue *q, QXLCommandExt *out)
{
    int r = 0;
    pthread_mutex_lock(&lock);
    if (q->head < q->tail) { *out = q->q[q->head++ % QLEN]; r = 1; }
    pthread_mutex_unlock(&lock);
    return r;
}
static int qempty(struct queue *q)
{
    pthread_mutex_lock(&lock);
    int r = q->head == q->tail;
    pthread_mutex_unlock(&lock);
    return r;
}

/* ------------------------------------------------------------------------------------ */
/* QXL interface                                                                          */

static QXLInstance qxl;
static SpiceServer *server;

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
    info->qxl_ram_size = BAR_SIZE;
    info->internal_groupslot_id = 0;
    info->n_surfaces = N_SURFACES;
}
static int get_command(QXLInstance *q, QXLCommandExt *c)
{
    (void)q;
    int r = qpop(&cmdq, c);
    if (r) __atomic_add_fetch(&n_fetched, 1, __ATOMIC_SEQ_CST);
    return r;
}
static int req_cmd_notification(QXLInstance *q) { (void)q; return qempty(&cmdq); }
static int get_cursor_command(QXLInstance *q, QXLCommandExt *c)
{
    (void)q;
    int r = qpop(&curq, c);
    if (r) __atomic_add_fetch(&n_cursor_fetched, 1, __ATOMIC_SEQ_CST);
    return r;
}
static int req_cursor_notification(QXLInstance *q) { (void)q; return qempty(&curq); }
static void release_resource(QXLInstance *q, QXLReleaseInfoExt r)
{
    (void)q;
    if (!r.info) return; /* QEMU ignores NULL */
    pthread_mutex_lock(&lock);
    int found = 0;
    for (int i = 0; i < n_recs; i++)
        if (recs[i].info == r.info) {
            found = 1;
            if (recs[i].released++) n_double++;
            else n_released++;
            break;
        }
    if (!found) n_foreign++;
    if (r.group_id != 1) n_bad_group++;
    pthread_mutex_unlock(&lock);
}
static void notify_update(QXLInstance *q, uint32_t id) { (void)q; (void)id; __atomic_add_fetch(&n_notify_update, 1, __ATOMIC_SEQ_CST); }
static int flush_resources(QXLInstance *q) { (void)q; __atomic_add_fetch(&n_flush_resources, 1, __ATOMIC_SEQ_CST); return 0; }
static void async_complete(QXLInstance *q, uint64_t cookie)
{
    (void)q;
    pthread_mutex_lock(&lock);
    int found = 0;
    for (int i = 0; i < n_cookies; i++)
        if (cookies[i].v == cookie) {
            found = 1;
            if (cookies[i].done++) cookie_double++;
        }
    if (!found) cookie_foreign++;
    pthread_cond_broadcast(&cond);
    pthread_mutex_unlock(&lock);
}
static void update_area_complete(QXLInstance *q, uint32_t sid, QXLRect *rects, uint32_t n)
{
    (void)q; (void)sid; (void)rects;
    pthread_mutex_lock(&lock);
    n_update_complete++;
    last_update_complete_rects = (int)n;
    pthread_mutex_unlock(&lock);
}
static void set_client_capabilities(QXLInstance *q, uint8_t present, uint8_t *caps)
{
    (void)q; (void)present; (void)caps;
    __atomic_add_fetch(&n_client_caps, 1, __ATOMIC_SEQ_CST);
}
static int client_monitors_config(QXLInstance *q, VDAgentMonitorsConfig *m) { (void)q; (void)m; return 0; }

static const QXLInterface qxl_if = {
    .base = { SPICE_INTERFACE_QXL, "qxl stand-in", SPICE_INTERFACE_QXL_MAJOR, SPICE_INTERFACE_QXL_MINOR },
    .attached_worker = attached_worker, .set_compression_level = set_compression_level,
    .get_init_info = get_init_info, .get_command = get_command,
    .req_cmd_notification = req_cmd_notification, .release_resource = release_resource,
    .get_cursor_command = get_cursor_command, .req_cursor_notification = req_cursor_notification,
    .notify_update = notify_update, .flush_resources = flush_resources,
    .async_complete = async_complete, .update_area_complete = update_area_complete,
    .set_client_capabilities = set_client_capabilities,
    .client_monitors_config = client_monitors_config,
};

static uint64_t new_cookie(void)
{
    pthread_mutex_lock(&lock);
    if (n_cookies >= 256) die("too many cookies");
    uint64_t v = 0xc00c1e00ull + (uint64_t)n_cookies;
    cookies[n_cookies].v = v;
    cookies[n_cookies].done = 0;
    n_cookies++;
    pthread_mutex_unlock(&lock);
    return v;
}

/* waits (pumping the main loop) until the cookie completed; 0 on timeout */
static int wait_cookie(uint64_t v, int ms)
{
    for (int t = 0; t < ms; t += 5) {
        pthread_mutex_lock(&lock);
        int done = 0;
        for (int i = 0; i < n_cookies; i++) if (cookies[i].v == v) done = cookies[i].done;
        pthread_mutex_unlock(&lock);
        if (done) return 1;
        pump(5);
    }
    return 0;
}

/* ------------------------------------------------------------------------------------ */
/* Device state: primary surface                                                          */

static uint8_t *primary_mem; /* lowest address of the primary's memory */
static int primary_neg;
static uint8_t snapshot[W * H * 4];
static int have_snapshot;

static uint32_t prim_px(int x, int y)
{
    int stride = W * 4;
    const uint8_t *row = primary_neg ? primary_mem + (size_t)(H - 1 - y) * stride
                                     : primary_mem + (size_t)y * stride;
    uint32_t v;
    memcpy(&v, row + x * 4, 4);
    return v;
}

static void take_snapshot(void)
{
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            uint32_t v = prim_px(x, y);
            memcpy(snapshot + ((size_t)y * W + x) * 4, &v, 4);
        }
    have_snapshot = 1;
}

static int serve_port; /* SERVE mode: listen on 127.0.0.1:serve_port; 0 = no socket */

static void server_start(int neg)
{
    bar = aligned_alloc(4096, BAR_SIZE);
    if (!bar) die("no memory");
    memset(bar, 0xcd, BAR_SIZE); /* garbage, like uninitialised guest RAM */
    bar_used = 0;
    main_thread = pthread_self();

    server = spice_server_new();
    if (!server) die("spice_server_new");
    spice_server_set_noauth(server);
    if (serve_port) {
        spice_server_set_port(server, serve_port);
        spice_server_set_addr(server, "127.0.0.1", 0);
        /* QEMU's default unless -spice streaming-video= is given: every drawing reaches
         * the client as itself, never as a video frame */
        spice_server_set_streaming_video(server, SPICE_STREAM_VIDEO_OFF);
    }
    /* QXL_IMAGE_COMPRESSION=auto_glz|auto_lz|quic|glz|lz|lz4|off as QEMU's
     * image-compression= (default: the library's, auto_glz) */
    const char *comp = getenv("QXL_IMAGE_COMPRESSION");
    if (comp) {
        static const char *const names[] = {"off", "auto_glz", "auto_lz", "quic", "glz", "lz", "lz4"};
        int found = 0;
        for (int i = 0; i < 7; i++)
            if (strcmp(comp, names[i]) == 0) {
                if (spice_server_set_image_compression(server, (SpiceImageCompression)(i + 1)) != 0)
                    die("set_image_compression");
                found = 1;
            }
        if (!found) die("QXL_IMAGE_COMPRESSION: unknown value");
    }
    /* QXL_JPEG_WAN / QXL_ZLIB_GLZ_WAN=auto|always|never as QEMU's jpeg-wan-compression=
     * and zlib-glz-wan-compression= (default: the library's, auto) */
    static const char *const wan_names[] = {"auto", "always", "never"};
    const char *jpeg = getenv("QXL_JPEG_WAN"), *zlib = getenv("QXL_ZLIB_GLZ_WAN");
    for (int i = 0; i < 3; i++) {
        if (jpeg && strcmp(jpeg, wan_names[i]) == 0 &&
            spice_server_set_jpeg_compression(server, (spice_wan_compression_t)(i + 1)) != 0)
            die("set_jpeg_compression");
        if (zlib && strcmp(zlib, wan_names[i]) == 0 &&
            spice_server_set_zlib_glz_compression(server, (spice_wan_compression_t)(i + 1)) != 0)
            die("set_zlib_glz_compression");
    }
    if (spice_server_init(server, &core) != 0) die("spice_server_init");
    qxl.base.sif = &qxl_if.base;
    qxl.id = 0;
    if (spice_server_add_interface(server, &qxl.base) != 0) die("add_interface(qxl)");

    /* as QEMU: host slot in group 0, then the guest's BAR slot in group 1 */
    QXLDevMemSlot host = { .slot_group_id = 0, .slot_id = 0, .generation = 0,
                           .virt_start = 0, .virt_end = ~(uintptr_t)0, .addr_delta = 0 };
    spice_qxl_add_memslot(&qxl, &host);
    QXLDevMemSlot guest = { .slot_group_id = 1, .slot_id = SLOT_ID, .generation = GEN,
                            .virt_start = (uintptr_t)bar, .virt_end = (uintptr_t)bar + BAR_SIZE,
                            .addr_delta = (uintptr_t)bar - BAR_PHYS, .qxl_ram_size = BAR_SIZE };
    spice_qxl_add_memslot(&qxl, &guest);

    primary_neg = neg;
    primary_mem = galloc((size_t)W * H * 4);
    memset(primary_mem, 0x55, (size_t)W * H * 4); /* the server must clear it (no KEEP_DATA) */
    QXLDevSurfaceCreate s = { .width = W, .height = H, .stride = neg ? -(W * 4) : W * 4,
                              .format = SPICE_SURFACE_FMT_32_xRGB, .position = 0, .mouse_mode = 1,
                              .flags = 0, .type = QXL_SURF_TYPE_PRIMARY,
                              .mem = phys(primary_mem), .group_id = 1 };
    spice_qxl_create_primary_surface(&qxl, 0, &s);
    spice_server_vm_start(server);
    pump(0);
}

static void kick(void)
{
    spice_qxl_wakeup(&qxl);
    pump(0);
}

static void update_full(void)
{
    QXLRect r = { .top = 0, .left = 0, .bottom = H, .right = W };
    kick();
    spice_qxl_update_area(&qxl, 0, &r, NULL, 0, 0);
}

static void update_rect(int l, int t, int r, int b)
{
    QXLRect a = { .top = t, .left = l, .bottom = b, .right = r };
    kick();
    spice_qxl_update_area(&qxl, 0, &a, NULL, 0, 0);
}

static void server_stop(void)
{
    kick();
    spice_qxl_reset_cursor(&qxl);
    spice_qxl_destroy_primary_surface(&qxl, 0);
    spice_qxl_destroy_surfaces(&qxl);
    spice_server_vm_stop(server);
    if (spice_server_remove_interface(&qxl.base) != 0) fprintf(stderr, "standin: remove_interface failed\n");
    pump(0);
    spice_server_destroy(server);
    server = NULL;
}

/* ------------------------------------------------------------------------------------ */
/* Builders for guest structures                                                          */

static QXLRect R(int l, int t, int r, int b) { QXLRect x = { .top = t, .left = l, .bottom = b, .right = r }; return x; }

static uint32_t rgb(int r, int g, int b) { return ((uint32_t)(r & 255) << 16) | ((uint32_t)(g & 255) << 8) | (uint32_t)(b & 255); }

/* a QXLDataChunk list holding `data` split into n pieces at arbitrary (non row) offsets */
static QXLDataChunk *mk_chunks(const uint8_t *data, size_t size, int n)
{
    if (n < 1) n = 1;
    QXLDataChunk *first = NULL, *prev = NULL;
    size_t off = 0;
    for (int i = 0; i < n; i++) {
        size_t piece = (i == n - 1) ? size - off : (size / n) + (i % 2 ? 7 : -3 * (size / n > 8));
        if (off + piece > size) piece = size - off;
        QXLDataChunk *c = galloc(sizeof(QXLDataChunk) + piece);
        c->data_size = (uint32_t)piece;
        memcpy(c->data, data + off, piece);
        off += piece;
        if (prev) { prev->next_chunk = phys(c); c->prev_chunk = phys(prev); }
        else first = c;
        prev = c;
    }
    return first;
}

/* pixel sources in image coordinates (y = 0 is the top row) */
typedef uint32_t (*pixfn)(int x, int y, int w, int h);

static uint32_t pat_rgb(int x, int y, int w, int h)
{
    return rgb(x * 255 / (w > 1 ? w - 1 : 1), y * 255 / (h > 1 ? h - 1 : 1), ((x / 4 + y / 4) & 1) ? 200 : 40);
}
static uint32_t pat_index16(int x, int y, int w, int h) { (void)w; (void)h; return (uint32_t)((x / 3 + y / 5) & 15); }
static uint32_t pat_index256(int x, int y, int w, int h) { (void)w; (void)h; return (uint32_t)((x * 7 + y * 3) & 255); }
static uint32_t pat_index2(int x, int y, int w, int h) { (void)w; (void)h; return (uint32_t)(((x / 2) ^ (y / 3)) & 1); }
static uint32_t pat_argb(int x, int y, int w, int h)
{
    /* premultiplied: a radial-ish alpha ramp */
    int a = (x * 255) / (w > 1 ? w - 1 : 1);
    int r = 255 * a / 255, g = (y * 255 / (h > 1 ? h - 1 : 1)) * a / 255, b = 64 * a / 255;
    return ((uint32_t)a << 24) | rgb(r, g, b);
}

static const unsigned bpp_of[] = { 0, 1, 1, 4, 4, 8, 16, 24, 32, 32, 8 };

struct imgopt {
    int topdown;      /* QXL_BITMAP_TOP_DOWN */
    int direct;       /* QXL_BITMAP_DIRECT: flat data instead of a chunk list */
    int nchunks;      /* number of QXLDataChunks */
    uint64_t id;      /* descriptor id; 0 -> a fresh unique one */
    uint8_t flags;    /* QXL_IMAGE_CACHE ... */
    uint32_t extra_stride; /* padding bytes per row */
};

static uint64_t next_image_unique = 1;

static uint8_t *pack_pixels(uint8_t fmt, int w, int h, uint32_t stride, int topdown, pixfn f)
{
    uint8_t *d = calloc(1, (size_t)stride * h);
    for (int y = 0; y < h; y++) {
        uint8_t *row = d + (size_t)(topdown ? y : h - 1 - y) * stride;
        for (int x = 0; x < w; x++) {
            uint32_t v = f(x, y, w, h);
            switch (fmt) {
            case SPICE_BITMAP_FMT_1BIT_LE: if (v & 1) row[x / 8] |= (uint8_t)(1 << (x % 8)); break;
            case SPICE_BITMAP_FMT_1BIT_BE: if (v & 1) row[x / 8] |= (uint8_t)(0x80 >> (x % 8)); break;
            case SPICE_BITMAP_FMT_4BIT_LE: row[x / 2] |= (uint8_t)((v & 15) << ((x % 2) ? 4 : 0)); break;
            case SPICE_BITMAP_FMT_4BIT_BE: row[x / 2] |= (uint8_t)((v & 15) << ((x % 2) ? 0 : 4)); break;
            case SPICE_BITMAP_FMT_8BIT:
            case SPICE_BITMAP_FMT_8BIT_A: row[x] = (uint8_t)v; break;
            case SPICE_BITMAP_FMT_16BIT: {
                uint16_t p = (uint16_t)((((v >> 19) & 31) << 10) | (((v >> 11) & 31) << 5) | ((v >> 3) & 31));
                memcpy(row + x * 2, &p, 2);
                break;
            }
            case SPICE_BITMAP_FMT_24BIT: row[x * 3] = (uint8_t)v; row[x * 3 + 1] = (uint8_t)(v >> 8); row[x * 3 + 2] = (uint8_t)(v >> 16); break;
            case SPICE_BITMAP_FMT_32BIT: v &= 0xffffff; /* fall through: X byte left 0 */
            /* fall through */
            case SPICE_BITMAP_FMT_RGBA: memcpy(row + x * 4, &v, 4); break;
            }
        }
    }
    return d;
}

static QXLPalette *mk_palette(int n, uint64_t unique)
{
    QXLPalette *p = galloc(sizeof(QXLPalette) + 4u * n);
    p->unique = unique;
    p->num_ents = (uint16_t)n;
    for (int i = 0; i < n; i++) {
        uint32_t c;
        if (n == 2) c = i ? rgb(250, 220, 30) : rgb(20, 30, 120);
        else c = rgb((i * 37) & 255, (i * 91 + 50) & 255, (255 - i * 13) & 255);
        memcpy((uint8_t *)p->ents + 4 * i, &c, 4);
    }
    return p;
}

static QXLImage *mk_bitmap(uint8_t fmt, int w, int h, pixfn f, const struct imgopt *o, QXLPalette *pal)
{
    uint32_t stride = (uint32_t)((w * bpp_of[fmt] + 7) / 8) + o->extra_stride;
    QXLImage *img = galloc(sizeof(QXLImage));
    img->descriptor.id = o->id ? o->id : ((next_image_unique++ << 32) | QXL_IMAGE_GROUP_DRIVER);
    img->descriptor.type = SPICE_IMAGE_TYPE_BITMAP;
    img->descriptor.flags = o->flags;
    img->descriptor.width = (uint32_t)w;
    img->descriptor.height = (uint32_t)h;
    img->bitmap.format = fmt;
    img->bitmap.flags = (o->topdown ? QXL_BITMAP_TOP_DOWN : 0) | (o->direct ? QXL_BITMAP_DIRECT : 0);
    img->bitmap.x = (uint32_t)w;
    img->bitmap.y = (uint32_t)h;
    img->bitmap.stride = stride;
    img->bitmap.palette = phys(pal);
    uint8_t *d = pack_pixels(fmt, w, h, stride, o->topdown, f);
    if (o->direct) {
        uint8_t *flat = galloc((size_t)stride * h);
        memcpy(flat, d, (size_t)stride * h);
        img->bitmap.data = phys(flat);
    } else {
        img->bitmap.data = phys(mk_chunks(d, (size_t)stride * h, o->nchunks));
    }
    free(d);
    return img;
}

static QXLImage *mk_rgb32(int w, int h, pixfn f)
{
    struct imgopt o = { .topdown = 1, .nchunks = 1 };
    return mk_bitmap(SPICE_BITMAP_FMT_32BIT, w, h, f, &o, NULL);
}

static QXLImage *mk_surface_image(uint32_t sid, int w, int h)
{
    QXLImage *img = galloc(sizeof(QXLImage));
    img->descriptor.id = (next_image_unique++ << 32) | QXL_IMAGE_GROUP_DRIVER_DONT_CACHE;
    img->descriptor.type = SPICE_IMAGE_TYPE_SURFACE;
    img->descriptor.width = (uint32_t)w;
    img->descriptor.height = (uint32_t)h;
    img->surface_image.surface_id = sid;
    return img;
}

/* 1bpp BE mask image (no palette), a disc-ish shape */
static uint32_t pat_mask(int x, int y, int w, int h)
{
    int dx = 2 * x - w, dy = 2 * y - h;
    return (uint32_t)(dx * dx + dy * dy < w * h * 3 / 4) ^ (uint32_t)((x / 8 + y / 8) & 1 && x > w / 2);
}
static QXLImage *mk_mask(int w, int h)
{
    struct imgopt o = { .topdown = 1, .nchunks = 1 };
    return mk_bitmap(SPICE_BITMAP_FMT_1BIT_BE, w, h, pat_mask, &o, NULL);
}

static QXLDrawable *mk_draw(uint32_t sid, uint8_t type, QXLRect bbox, uint8_t effect)
{
    QXLDrawable *d = galloc(sizeof(QXLDrawable));
    d->surface_id = sid;
    d->effect = effect;
    d->type = type;
    d->self_bitmap = 0;
    d->bbox = bbox;
    d->clip.type = SPICE_CLIP_TYPE_NONE;
    d->clip.data = 0;
    d->mm_time = 0;
    for (int i = 0; i < 3; i++) d->surfaces_dest[i] = -1;
    return d;
}

static void clip_rects(QXLDrawable *d, const QXLRect *rects, int n)
{
    QXLClipRects *c = galloc(sizeof(QXLClipRects) + sizeof(QXLRect) * n);
    c->num_rects = (uint32_t)n;
    c->chunk.data_size = (uint32_t)(sizeof(QXLRect) * n);
    memcpy(c->chunk.data, rects, sizeof(QXLRect) * n);
    d->clip.type = SPICE_CLIP_TYPE_RECTS;
    d->clip.data = phys(c);
}

static int push_draw(QXLDrawable *d, const char *what)
{
    int i = issue(&d->release_info, what);
    qpush(&cmdq, phys(d), QXL_CMD_DRAW);
    return i;
}

static void solid(QXLBrush *b, uint32_t color) { b->type = SPICE_BRUSH_TYPE_SOLID; b->u.color = color; }

static int fill(uint32_t sid, QXLRect r, uint32_t color, uint16_t rop)
{
    uint8_t eff = (rop == SPICE_ROPD_OP_PUT) ? QXL_EFFECT_OPAQUE : QXL_EFFECT_BLEND;
    QXLDrawable *d = mk_draw(sid, QXL_DRAW_FILL, r, eff);
    solid(&d->u.fill.brush, color);
    d->u.fill.rop_descriptor = rop;
    return push_draw(d, "fill");
}

static int copy_img(uint32_t sid, QXLRect dst, QXLImage *img, QXLRect src, uint16_t rop)
{
    uint8_t eff = (rop == SPICE_ROPD_OP_PUT) ? QXL_EFFECT_OPAQUE : QXL_EFFECT_BLEND;
    QXLDrawable *d = mk_draw(sid, QXL_DRAW_COPY, dst, eff);
    d->u.copy.src_bitmap = phys(img);
    d->u.copy.src_area = src;
    d->u.copy.rop_descriptor = rop;
    d->u.copy.scale_mode = SPICE_IMAGE_SCALE_MODE_NEAREST;
    if (img->descriptor.type == SPICE_IMAGE_TYPE_SURFACE) {
        d->surfaces_dest[0] = (int32_t)img->surface_image.surface_id;
        d->surfaces_rects[0] = src;
    }
    return push_draw(d, "copy");
}

/* a gradient background over the whole primary, so that rops have something to work on */
static void background(void)
{
    fill(0, R(0, 0, W, H), rgb(30, 30, 30), SPICE_ROPD_OP_PUT);
    QXLImage *img = mk_rgb32(W, H, pat_rgb);
    copy_img(0, R(0, 0, W, H), img, R(0, 0, W, H), SPICE_ROPD_OP_PUT);
}

static int surface_cmd(uint32_t sid, int create, int w, int h, int neg, uint8_t **mem_out)
{
    QXLSurfaceCmd *c = galloc(sizeof(QXLSurfaceCmd));
    c->surface_id = sid;
    c->type = create ? QXL_SURFACE_CMD_CREATE : QXL_SURFACE_CMD_DESTROY;
    c->flags = 0;
    if (create) {
        uint8_t *mem = galloc((size_t)w * h * 4);
        memset(mem, 0x77, (size_t)w * h * 4);
        c->u.surface_create.format = SPICE_SURFACE_FMT_32_xRGB;
        c->u.surface_create.width = (uint32_t)w;
        c->u.surface_create.height = (uint32_t)h;
        c->u.surface_create.stride = neg ? -(w * 4) : w * 4;
        /* as for the primary, data is the lowest address even with a negative stride:
         * line 0 is then the last line in memory */
        c->u.surface_create.data = phys(mem);
        if (mem_out) *mem_out = mem;
    }
    int i = issue(&c->release_info, create ? "surface-create" : "surface-destroy");
    qpush(&cmdq, phys(c), QXL_CMD_SURFACE);
    return i;
}

/* seeded random scenarios: one file per kind of drawing */
#include "random/seeded.c"
#include "random/surfaces.c"
#include "random/raster.c"
#include "random/stroke.c"
#include "random/text.c"
#include "random/composite.c"

/* ------------------------------------------------------------------------------------ */
/* Scenarios                                                                              */

static void sc_fill_solid(void)
{
    fill(0, R(0, 0, W, H), rgb(255, 255, 255), SPICE_ROPD_OP_PUT);
    fill(0, R(10, 10, 100, 60), rgb(255, 0, 0), SPICE_ROPD_OP_PUT);
    fill(0, R(50, 40, 200, 120), rgb(0, 160, 0), SPICE_ROPD_OP_PUT);
    fill(0, R(0, H - 20, W, H), rgb(0, 0, 255), SPICE_ROPD_OP_PUT);
    fill(0, R(W - 1, 0, W, H), rgb(255, 0, 255), SPICE_ROPD_OP_PUT);
    fill(0, R(120, 130, 121, 131), rgb(1, 2, 3), SPICE_ROPD_OP_PUT);
}

static const uint16_t rops[] = {
    SPICE_ROPD_OP_PUT, SPICE_ROPD_OP_OR, SPICE_ROPD_OP_AND, SPICE_ROPD_OP_XOR,
    SPICE_ROPD_OP_BLACKNESS, SPICE_ROPD_OP_WHITENESS, SPICE_ROPD_OP_INVERS,
    SPICE_ROPD_OP_PUT | SPICE_ROPD_INVERS_SRC, SPICE_ROPD_OP_PUT | SPICE_ROPD_INVERS_BRUSH,
    SPICE_ROPD_OP_OR | SPICE_ROPD_INVERS_DEST, SPICE_ROPD_OP_AND | SPICE_ROPD_INVERS_RES,
    SPICE_ROPD_OP_XOR | SPICE_ROPD_INVERS_SRC | SPICE_ROPD_INVERS_DEST,
    SPICE_ROPD_OP_OR | SPICE_ROPD_INVERS_SRC | SPICE_ROPD_INVERS_RES,
    SPICE_ROPD_OP_AND | SPICE_ROPD_INVERS_DEST,
    0, /* no op at all */
};
#define NROPS (int)(sizeof(rops) / sizeof(rops[0]))

static void sc_fill_rops(void)
{
    background();
    for (int i = 0; i < NROPS; i++) {
        int x = 8 + (i % 5) * 48, y = 8 + (i / 5) * 60;
        fill(0, R(x, y, x + 40, y + 50), rgb(200, 90, 30), rops[i]);
    }
}

static void sc_fill_pattern(void)
{
    background();
    QXLDrawable *d = mk_draw(0, QXL_DRAW_FILL, R(10, 10, 120, 90), QXL_EFFECT_OPAQUE);
    d->u.fill.brush.type = SPICE_BRUSH_TYPE_PATTERN;
    d->u.fill.brush.u.pattern.pat = phys(mk_rgb32(8, 8, pat_rgb));
    d->u.fill.brush.u.pattern.pos.x = 3;
    d->u.fill.brush.u.pattern.pos.y = 5;
    d->u.fill.rop_descriptor = SPICE_ROPD_OP_PUT;
    push_draw(d, "fill-pattern");
    /* a 1bpp palette pattern, XORed */
    struct imgopt o = { .topdown = 0, .nchunks = 1 };
    d = mk_draw(0, QXL_DRAW_FILL, R(130, 20, 250, 150), QXL_EFFECT_BLEND);
    d->u.fill.brush.type = SPICE_BRUSH_TYPE_PATTERN;
    d->u.fill.brush.u.pattern.pat = phys(mk_bitmap(SPICE_BITMAP_FMT_1BIT_BE, 16, 12, pat_index2, &o, mk_palette(2, 77)));
    d->u.fill.brush.u.pattern.pos.x = 0;
    d->u.fill.brush.u.pattern.pos.y = 0;
    d->u.fill.rop_descriptor = SPICE_ROPD_OP_XOR;
    push_draw(d, "fill-pattern-1bpp");
    /* pattern with AND and the brush inverted */
    d = mk_draw(0, QXL_DRAW_FILL, R(20, 100, 110, 180), QXL_EFFECT_BLEND);
    d->u.fill.brush.type = SPICE_BRUSH_TYPE_PATTERN;
    d->u.fill.brush.u.pattern.pat = phys(mk_rgb32(13, 7, pat_rgb));
    d->u.fill.brush.u.pattern.pos.x = -2;
    d->u.fill.brush.u.pattern.pos.y = 1;
    d->u.fill.rop_descriptor = SPICE_ROPD_OP_AND | SPICE_ROPD_INVERS_BRUSH;
    push_draw(d, "fill-pattern-and");
}

static void sc_clip_rects(void)
{
    background();
    QXLRect rs[] = { R(10, 10, 60, 40), R(80, 20, 140, 100), R(30, 120, 250, 130), R(200, 5, 250, 180) };
    QXLDrawable *d = mk_draw(0, QXL_DRAW_FILL, R(0, 0, W, H), QXL_EFFECT_OPAQUE);
    solid(&d->u.fill.brush, rgb(255, 255, 0));
    d->u.fill.rop_descriptor = SPICE_ROPD_OP_PUT;
    clip_rects(d, rs, 4);
    push_draw(d, "fill-clip");
    QXLRect rs2[] = { R(100, 110, 180, 190) };
    d = mk_draw(0, QXL_DRAW_COPY, R(90, 100, 190, 180), QXL_EFFECT_OPAQUE);
    d->u.copy.src_bitmap = phys(mk_rgb32(100, 80, pat_argb));
    d->u.copy.src_area = R(0, 0, 100, 80);
    d->u.copy.rop_descriptor = SPICE_ROPD_OP_PUT;
    clip_rects(d, rs2, 1);
    push_draw(d, "copy-clip");
}

static void sc_mask(void)
{
    background();
    QXLDrawable *d = mk_draw(0, QXL_DRAW_FILL, R(10, 10, 110, 90), QXL_EFFECT_BLEND);
    solid(&d->u.fill.brush, rgb(0, 0, 255));
    d->u.fill.rop_descriptor = SPICE_ROPD_OP_PUT;
    d->u.fill.mask.flags = 0;
    d->u.fill.mask.bitmap = phys(mk_mask(100, 80));
    push_draw(d, "fill-mask");
    d = mk_draw(0, QXL_DRAW_FILL, R(130, 10, 230, 90), QXL_EFFECT_BLEND);
    solid(&d->u.fill.brush, rgb(255, 0, 0));
    d->u.fill.rop_descriptor = SPICE_ROPD_OP_PUT;
    d->u.fill.mask.flags = SPICE_MASK_FLAGS_INVERS;
    d->u.fill.mask.pos.x = 10;
    d->u.fill.mask.pos.y = 5;
    d->u.fill.mask.bitmap = phys(mk_mask(120, 100));
    push_draw(d, "fill-mask-invers");
    d = mk_draw(0, QXL_DRAW_COPY, R(40, 100, 140, 180), QXL_EFFECT_BLEND);
    d->u.copy.src_bitmap = phys(mk_rgb32(100, 80, pat_index256));
    d->u.copy.src_area = R(0, 0, 100, 80);
    d->u.copy.rop_descriptor = SPICE_ROPD_OP_PUT;
    d->u.copy.mask.bitmap = phys(mk_mask(100, 80));
    push_draw(d, "copy-mask");
    d = mk_draw(0, QXL_DRAW_BLACKNESS, R(160, 100, 240, 180), QXL_EFFECT_BLEND);
    d->u.blackness.mask.bitmap = phys(mk_mask(80, 80));
    push_draw(d, "blackness-mask");
}

static void sc_opaque(void)
{
    background();
    static const uint16_t orops[] = { SPICE_ROPD_OP_PUT, SPICE_ROPD_OP_OR, SPICE_ROPD_OP_AND,
                                      SPICE_ROPD_OP_XOR, SPICE_ROPD_OP_PUT | SPICE_ROPD_INVERS_BRUSH,
                                      SPICE_ROPD_OP_AND | SPICE_ROPD_INVERS_SRC };
    for (int i = 0; i < 6; i++) {
        int x = 10 + (i % 3) * 80, y = 10 + (i / 3) * 90;
        QXLDrawable *d = mk_draw(0, QXL_DRAW_OPAQUE, R(x, y, x + 70, y + 80), QXL_EFFECT_OPAQUE);
        d->u.opaque.src_bitmap = phys(mk_rgb32(70, 80, pat_rgb));
        d->u.opaque.src_area = R(0, 0, 70, 80);
        solid(&d->u.opaque.brush, rgb(0, 200, 255));
        d->u.opaque.rop_descriptor = orops[i];
        d->u.opaque.scale_mode = SPICE_IMAGE_SCALE_MODE_NEAREST;
        push_draw(d, "opaque");
    }
}

static void sc_copy_rops(void)
{
    background();
    for (int i = 0; i < NROPS; i++) {
        int x = 8 + (i % 5) * 48, y = 8 + (i / 5) * 60;
        QXLImage *img = mk_rgb32(40, 50, pat_index256);
        copy_img(0, R(x, y, x + 40, y + 50), img, R(0, 0, 40, 50), rops[i]);
    }
}

static void sc_copy_scale(void)
{
    background();
    QXLImage *img = mk_rgb32(32, 24, pat_rgb);
    QXLDrawable *d = mk_draw(0, QXL_DRAW_COPY, R(10, 10, 138, 106), QXL_EFFECT_OPAQUE);
    d->u.copy.src_bitmap = phys(img);
    d->u.copy.src_area = R(0, 0, 32, 24);
    d->u.copy.rop_descriptor = SPICE_ROPD_OP_PUT;
    d->u.copy.scale_mode = SPICE_IMAGE_SCALE_MODE_NEAREST;
    push_draw(d, "copy-scale-nearest");
    d = mk_draw(0, QXL_DRAW_COPY, R(150, 10, 250, 180), QXL_EFFECT_OPAQUE);
    d->u.copy.src_bitmap = phys(mk_rgb32(64, 64, pat_rgb));
    d->u.copy.src_area = R(4, 4, 60, 40);
    d->u.copy.rop_descriptor = SPICE_ROPD_OP_PUT;
    d->u.copy.scale_mode = SPICE_IMAGE_SCALE_MODE_INTERPOLATE;
    push_draw(d, "copy-scale-interp");
    /* down-scaling, sub-area */
    d = mk_draw(0, QXL_DRAW_COPY, R(10, 120, 60, 150), QXL_EFFECT_OPAQUE);
    d->u.copy.src_bitmap = phys(mk_rgb32(100, 60, pat_rgb));
    d->u.copy.src_area = R(0, 0, 100, 60);
    d->u.copy.rop_descriptor = SPICE_ROPD_OP_PUT;
    d->u.copy.scale_mode = SPICE_IMAGE_SCALE_MODE_NEAREST;
    push_draw(d, "copy-scale-down");
}

static void sc_copy_bits(void)
{
    background();
    fill(0, R(20, 20, 60, 60), rgb(255, 0, 0), SPICE_ROPD_OP_PUT);
    /* scroll up by 16 lines */
    QXLDrawable *d = mk_draw(0, QXL_COPY_BITS, R(0, 0, W, H - 16), QXL_EFFECT_OPAQUE);
    d->u.copy_bits.src_pos.x = 0;
    d->u.copy_bits.src_pos.y = 16;
    push_draw(d, "copy-bits-up");
    /* scroll right (overlapping) a sub-area */
    d = mk_draw(0, QXL_COPY_BITS, R(40, 100, 200, 180), QXL_EFFECT_OPAQUE);
    d->u.copy_bits.src_pos.x = 20;
    d->u.copy_bits.src_pos.y = 90;
    push_draw(d, "copy-bits-diag");
    /* scroll down (overlapping, backwards copy needed) */
    d = mk_draw(0, QXL_COPY_BITS, R(150, 30, 250, 120), QXL_EFFECT_OPAQUE);
    d->u.copy_bits.src_pos.x = 150;
    d->u.copy_bits.src_pos.y = 10;
    push_draw(d, "copy-bits-down");
}

static void sc_blend(void)
{
    background();
    static const uint16_t brops[] = { SPICE_ROPD_OP_PUT, SPICE_ROPD_OP_OR, SPICE_ROPD_OP_AND, SPICE_ROPD_OP_XOR,
                                      SPICE_ROPD_OP_XOR | SPICE_ROPD_INVERS_SRC, SPICE_ROPD_OP_OR | SPICE_ROPD_INVERS_RES };
    for (int i = 0; i < 6; i++) {
        int x = 10 + (i % 3) * 80, y = 10 + (i / 3) * 90;
        QXLDrawable *d = mk_draw(0, QXL_DRAW_BLEND, R(x, y, x + 70, y + 80), QXL_EFFECT_BLEND);
        d->u.blend.src_bitmap = phys(mk_rgb32(70, 80, pat_index256));
        d->u.blend.src_area = R(0, 0, 70, 80);
        d->u.blend.rop_descriptor = brops[i];
        d->u.blend.scale_mode = SPICE_IMAGE_SCALE_MODE_NEAREST;
        push_draw(d, "blend");
    }
}

static void sc_bwi(uint8_t type)
{
    background();
    QXLDrawable *d = mk_draw(0, type, R(20, 20, 140, 120), type == QXL_DRAW_INVERS ? QXL_EFFECT_REVERT_ON_DUP : QXL_EFFECT_OPAQUE);
    push_draw(d, "bwi");
    d = mk_draw(0, type, R(100, 80, 240, 180), QXL_EFFECT_BLEND);
    d->u.invers.mask.bitmap = phys(mk_mask(140, 100));
    d->u.invers.mask.pos.x = 4;
    d->u.invers.mask.pos.y = 2;
    push_draw(d, "bwi-mask");
}
static void sc_blackness(void) { sc_bwi(QXL_DRAW_BLACKNESS); }
static void sc_whiteness(void) { sc_bwi(QXL_DRAW_WHITENESS); }
static void sc_invers(void) { sc_bwi(QXL_DRAW_INVERS); }

/* spice-common's rop3.c implements 218 of the 256 codes; the other 38 (the ones a driver
 * can express as a ROPD: 0x00 0x05 0x0A 0x0F 0x11 0x22 0x33 0x44 0x50 0x55 0x5A 0x5F 0x66 0x77
 * 0x88 0x99 0xA0 0xA5 0xAA 0xAF 0xBB 0xC0 0xC3 0xCC 0xCF 0xDD 0xEE 0xF0 0xF3 0xF5 0xFA 0xFC 0xFF
 * 0x03 0x0C 0x30 0x3C 0x3F) hit spice_critical("not implemented") and abort the C server. */
static const uint8_t rop3_codes[] = { 0xB8, 0xE2, 0xCA, 0x96, 0x1E, 0x6A, 0x8B, 0x01, 0xFE, 0x2D, 0xD4, 0x69, 0x47, 0x9A, 0xE8 };
static const uint8_t rop3_unimpl[] = { 0xCC, 0x66, 0x88, 0xEE, 0xF0, 0x5A, 0x00, 0xFF, 0x33, 0x55, 0xC0, 0xAA, 0x0F, 0x3C, 0x11 };
static void rop3_grid(const uint8_t *codes)
{
    background();
    for (int i = 0; i < 15; i++) {
        int x = 8 + (i % 5) * 48, y = 8 + (i / 5) * 60;
        QXLDrawable *d = mk_draw(0, QXL_DRAW_ROP3, R(x, y, x + 40, y + 50), QXL_EFFECT_BLEND);
        d->u.rop3.src_bitmap = phys(mk_rgb32(40, 50, pat_index256));
        d->u.rop3.src_area = R(0, 0, 40, 50);
        if (i % 2) solid(&d->u.rop3.brush, rgb(40, 200, 120));
        else {
            d->u.rop3.brush.type = SPICE_BRUSH_TYPE_PATTERN;
            d->u.rop3.brush.u.pattern.pat = phys(mk_rgb32(8, 8, pat_rgb));
        }
        d->u.rop3.rop3 = codes[i];
        d->u.rop3.scale_mode = SPICE_IMAGE_SCALE_MODE_NEAREST;
        push_draw(d, "rop3");
    }
}
static void sc_rop3(void) { rop3_grid(rop3_codes); }
static void sc_rop3_ropd_codes(void) { rop3_grid(rop3_unimpl); }

static QXLPath *mk_path(const int (*pts)[2], int n, uint32_t flags)
{
    size_t seg = sizeof(QXLPathSeg) + sizeof(QXLPointFix) * n;
    QXLPath *p = galloc(sizeof(QXLPath) + seg);
    p->data_size = (uint32_t)seg;
    p->chunk.data_size = (uint32_t)seg;
    QXLPathSeg *s = (QXLPathSeg *)p->chunk.data;
    s->flags = flags;
    s->count = (uint32_t)n;
    for (int i = 0; i < n; i++) { s->points[i].x = pts[i][0] << 4; s->points[i].y = pts[i][1] << 4; }
    return p;
}

static void stroke(const int (*pts)[2], int n, uint32_t flags, uint32_t color, uint16_t fore, QXLRect bbox)
{
    QXLDrawable *d = mk_draw(0, QXL_DRAW_STROKE, bbox, QXL_EFFECT_BLEND);
    d->u.stroke.path = phys(mk_path(pts, n, flags));
    d->u.stroke.attr.flags = 0;
    d->u.stroke.attr.width = 1 << 4;
    solid(&d->u.stroke.brush, color);
    d->u.stroke.fore_mode = fore;
    d->u.stroke.back_mode = SPICE_ROPD_OP_PUT;
    push_draw(d, "stroke");
}

static void sc_stroke(void)
{
    fill(0, R(0, 0, W, H), rgb(250, 250, 240), SPICE_ROPD_OP_PUT);
    static const int poly[][2] = { { 10, 10 }, { 120, 10 }, { 120, 80 }, { 30, 150 } };
    stroke(poly, 4, QXL_PATH_BEGIN | QXL_PATH_END, rgb(200, 0, 0), SPICE_ROPD_OP_PUT, R(0, 0, W, H));
    static const int tri[][2] = { { 150, 20 }, { 240, 100 }, { 140, 170 } };
    stroke(tri, 3, QXL_PATH_BEGIN | QXL_PATH_END | QXL_PATH_CLOSE, rgb(0, 0, 200), SPICE_ROPD_OP_PUT, R(0, 0, W, H));
    static const int diag[][2] = { { 0, 0 }, { 255, 191 } };
    stroke(diag, 2, QXL_PATH_BEGIN | QXL_PATH_END, rgb(0, 150, 0), SPICE_ROPD_OP_PUT, R(0, 0, W, H));
    static const int hv[][2] = { { 5, 180 }, { 250, 180 }, { 250, 120 } };
    stroke(hv, 3, QXL_PATH_BEGIN | QXL_PATH_END, rgb(255, 255, 255), SPICE_ROPD_OP_XOR, R(0, 0, W, H));
}

/* A1 glyphs: 8x12 block letters, MSB first rows */
static const uint8_t glyph_bits[3][12] = {
    { 0x18, 0x24, 0x42, 0x42, 0x42, 0x7e, 0x42, 0x42, 0x42, 0x42, 0x00, 0x00 }, /* A */
    { 0x7c, 0x42, 0x42, 0x42, 0x7c, 0x42, 0x42, 0x42, 0x42, 0x7c, 0x00, 0x00 }, /* B */
    { 0x3c, 0x42, 0x40, 0x40, 0x40, 0x40, 0x40, 0x40, 0x42, 0x3c, 0x00, 0x00 }, /* C */
};

static void text(int x0, int y0, int n, uint32_t fg, uint32_t bg, uint16_t back_mode, int wide, int topdown)
{
    int gw = wide ? 12 : 8, gh = 12, rowb = (gw + 7) / 8;
    size_t gsize = sizeof(QXLRasterGlyph) + (size_t)rowb * gh;
    size_t total = gsize * n;
    QXLString *s = galloc(sizeof(QXLString) + total);
    s->data_size = (uint32_t)total;
    s->length = (uint16_t)n;
    s->flags = SPICE_STRING_FLAGS_RASTER_A1 | (topdown ? SPICE_STRING_FLAGS_RASTER_TOP_DOWN : 0);
    s->chunk.data_size = (uint32_t)total;
    for (int i = 0; i < n; i++) {
        QXLRasterGlyph *g = (QXLRasterGlyph *)(s->chunk.data + gsize * i);
        g->render_pos.x = x0 + i * (gw + 2);
        g->render_pos.y = y0;
        g->glyph_origin.x = 0;
        g->glyph_origin.y = -gh;
        g->width = (uint16_t)gw;
        g->height = (uint16_t)gh;
        for (int r = 0; r < gh; r++) {
            g->data[r * rowb] = glyph_bits[i % 3][r];
            if (rowb > 1) g->data[r * rowb + 1] = (uint8_t)(glyph_bits[i % 3][r] << 2);
        }
    }
    QXLRect back = R(x0 - 2, y0 - gh - 2, x0 + n * (gw + 2) + 2, y0 + 4);
    QXLDrawable *d = mk_draw(0, QXL_DRAW_TEXT, back, QXL_EFFECT_BLEND);
    d->u.text.str = phys(s);
    d->u.text.back_area = back_mode ? back : R(0, 0, 0, 0);
    solid(&d->u.text.fore_brush, fg);
    solid(&d->u.text.back_brush, bg);
    d->u.text.fore_mode = SPICE_ROPD_OP_PUT;
    d->u.text.back_mode = back_mode;
    push_draw(d, "text");
}

static void sc_text(void)
{
    background();
    text(20, 40, 6, rgb(0, 0, 0), rgb(255, 255, 255), SPICE_ROPD_OP_PUT, 0, 1);
    text(20, 90, 9, rgb(255, 255, 0), 0, 0, 0, 1);
    text(100, 150, 5, rgb(255, 0, 0), rgb(0, 0, 80), SPICE_ROPD_OP_PUT, 1, 1);
    text(20, 180, 4, rgb(0, 255, 255), 0, 0, 0, 0); /* bottom-up glyph rows */
}

static void sc_transparent(void)
{
    background();
    for (int i = 0; i < 2; i++) {
        QXLDrawable *d = mk_draw(0, QXL_DRAW_TRANSPARENT, R(20 + i * 110, 20, 120 + i * 110, 170), QXL_EFFECT_BLEND);
        struct imgopt o = { .topdown = 1, .nchunks = 1 };
        QXLImage *img = i ? mk_bitmap(SPICE_BITMAP_FMT_8BIT, 100, 150, pat_index16, &o, mk_palette(256, 1234))
                          : mk_bitmap(SPICE_BITMAP_FMT_32BIT, 100, 150, pat_rgb, &o, NULL);
        d->u.transparent.src_bitmap = phys(img);
        d->u.transparent.src_area = R(0, 0, 100, 150);
        /* key: a colour that occurs in the image */
        uint32_t key = i ? rgb((3 * 37) & 255, (3 * 91 + 50) & 255, (255 - 3 * 13) & 255) : pat_rgb(0, 0, 100, 150);
        d->u.transparent.src_color = key;
        d->u.transparent.true_color = key;
        push_draw(d, "transparent");
    }
}

static void sc_alpha_blend(void)
{
    background();
    struct imgopt o = { .topdown = 1, .nchunks = 1 };
    QXLDrawable *d = mk_draw(0, QXL_DRAW_ALPHA_BLEND, R(10, 10, 110, 110), QXL_EFFECT_BLEND);
    d->u.alpha_blend.alpha_flags = SPICE_ALPHA_FLAGS_SRC_SURFACE_HAS_ALPHA;
    d->u.alpha_blend.alpha = 255;
    d->u.alpha_blend.src_bitmap = phys(mk_bitmap(SPICE_BITMAP_FMT_RGBA, 100, 100, pat_argb, &o, NULL));
    d->u.alpha_blend.src_area = R(0, 0, 100, 100);
    push_draw(d, "alpha-rgba");
    d = mk_draw(0, QXL_DRAW_ALPHA_BLEND, R(130, 10, 230, 110), QXL_EFFECT_BLEND);
    d->u.alpha_blend.alpha_flags = 0;
    d->u.alpha_blend.alpha = 128;
    d->u.alpha_blend.src_bitmap = phys(mk_rgb32(100, 100, pat_index256));
    d->u.alpha_blend.src_area = R(0, 0, 100, 100);
    push_draw(d, "alpha-const");
    d = mk_draw(0, QXL_DRAW_ALPHA_BLEND, R(40, 120, 240, 185), QXL_EFFECT_BLEND);
    d->u.alpha_blend.alpha_flags = SPICE_ALPHA_FLAGS_SRC_SURFACE_HAS_ALPHA;
    d->u.alpha_blend.alpha = 100;
    d->u.alpha_blend.src_bitmap = phys(mk_bitmap(SPICE_BITMAP_FMT_RGBA, 50, 20, pat_argb, &o, NULL));
    d->u.alpha_blend.src_area = R(0, 0, 50, 20);
    push_draw(d, "alpha-scaled");
}

static void sc_composite(void)
{
    background();
    struct imgopt o = { .topdown = 1, .nchunks = 1 };
    QXLDrawable *d = mk_draw(0, QXL_DRAW_COMPOSITE, R(10, 10, 110, 110), QXL_EFFECT_BLEND);
    d->u.composite.flags = QXL_OP_OVER;
    d->u.composite.src = phys(mk_bitmap(SPICE_BITMAP_FMT_RGBA, 100, 100, pat_argb, &o, NULL));
    push_draw(d, "composite-over");
    /* scaled by a transform (0.5 in 16.16 = 2x magnification), repeat normal, with an A8 mask */
    uint32_t *t = galloc(6 * 4);
    t[0] = 0x8000; t[1] = 0; t[2] = 0; t[3] = 0; t[4] = 0x8000; t[5] = 0;
    d = mk_draw(0, QXL_DRAW_COMPOSITE, R(120, 10, 250, 140), QXL_EFFECT_BLEND);
    d->u.composite.flags = QXL_OP_OVER | (1u << 14) /* src repeat normal */;
    d->u.composite.src = phys(mk_bitmap(SPICE_BITMAP_FMT_32BIT, 30, 30, pat_rgb, &o, NULL));
    d->u.composite.src_transform = phys(t);
    d->u.composite.mask = phys(mk_bitmap(SPICE_BITMAP_FMT_8BIT_A, 130, 130, pat_index256, &o, NULL));
    d->u.composite.src_origin.x = 5;
    d->u.composite.src_origin.y = 5;
    push_draw(d, "composite-transform-mask");
    d = mk_draw(0, QXL_DRAW_COMPOSITE, R(10, 120, 110, 190), QXL_EFFECT_BLEND);
    d->u.composite.flags = QXL_OP_ADD;
    d->u.composite.src = phys(mk_rgb32(100, 70, pat_index256));
    push_draw(d, "composite-add");
}

/* every bitmap format, top-down on the left half and bottom-up on the right half */
static void img_pair(uint8_t fmt, int nchunks, int direct)
{
    fill(0, R(0, 0, W, H), rgb(128, 128, 128), SPICE_ROPD_OP_PUT);
    pixfn f = pat_rgb;
    QXLPalette *pal = NULL;
    switch (fmt) {
    case SPICE_BITMAP_FMT_1BIT_LE: case SPICE_BITMAP_FMT_1BIT_BE: f = pat_index2; pal = mk_palette(2, 11); break;
    case SPICE_BITMAP_FMT_4BIT_LE: case SPICE_BITMAP_FMT_4BIT_BE: f = pat_index16; pal = mk_palette(16, 12); break;
    case SPICE_BITMAP_FMT_8BIT: f = pat_index256; pal = mk_palette(256, 13); break;
    case SPICE_BITMAP_FMT_RGBA: f = pat_argb; break;
    }
    for (int td = 0; td < 2; td++) {
        /* odd width to exercise partial bytes, padded stride on one of them */
        struct imgopt o = { .topdown = td, .nchunks = nchunks, .direct = direct, .extra_stride = td ? 0 : 3 };
        QXLImage *img = mk_bitmap(fmt, 101, 150, f, &o, pal);
        QXLDrawable *d;
        if (fmt == SPICE_BITMAP_FMT_RGBA) {
            d = mk_draw(0, QXL_DRAW_ALPHA_BLEND, R(10 + td * 120, 20, 111 + td * 120, 170), QXL_EFFECT_BLEND);
            d->u.alpha_blend.alpha_flags = SPICE_ALPHA_FLAGS_SRC_SURFACE_HAS_ALPHA;
            d->u.alpha_blend.alpha = 255;
            d->u.alpha_blend.src_bitmap = phys(img);
            d->u.alpha_blend.src_area = R(0, 0, 101, 150);
            push_draw(d, "img-alpha");
        } else {
            copy_img(0, R(10 + td * 120, 20, 111 + td * 120, 170), img, R(0, 0, 101, 150), SPICE_ROPD_OP_PUT);
        }
    }
}
static void sc_img_1bpp_le(void) { img_pair(SPICE_BITMAP_FMT_1BIT_LE, 1, 0); }
static void sc_img_1bpp_be(void) { img_pair(SPICE_BITMAP_FMT_1BIT_BE, 1, 0); }
static void sc_img_4bpp_le(void) { img_pair(SPICE_BITMAP_FMT_4BIT_LE, 1, 0); }
static void sc_img_4bpp_be(void) { img_pair(SPICE_BITMAP_FMT_4BIT_BE, 1, 0); }
static void sc_img_8bpp(void) { img_pair(SPICE_BITMAP_FMT_8BIT, 1, 0); }
static void sc_img_16bpp(void) { img_pair(SPICE_BITMAP_FMT_16BIT, 1, 0); }
static void sc_img_24bpp(void) { img_pair(SPICE_BITMAP_FMT_24BIT, 1, 0); }
static void sc_img_32bpp(void) { img_pair(SPICE_BITMAP_FMT_32BIT, 1, 0); }
static void sc_img_rgba(void) { img_pair(SPICE_BITMAP_FMT_RGBA, 1, 0); }
static void sc_img_chunked(void) { img_pair(SPICE_BITMAP_FMT_24BIT, 7, 0); }
static void sc_img_chunked_8bpp(void) { img_pair(SPICE_BITMAP_FMT_8BIT, 5, 0); }
static void sc_img_direct(void) { img_pair(SPICE_BITMAP_FMT_32BIT, 1, 1); }

/* Frames as the Linux qxl driver sends a changing area (video): a COPY of a bitmap the
 * size of the damage, clipped to the damage rectangles. Each format, both row orders,
 * chunked and padded, odd offsets into the bitmap: drawn straight from guest memory by
 * spice-rs (worker::draw_guest_copy), so it must match the decoded path pixel for pixel. */
static void sc_video_frames(void)
{
    background();
    static const uint8_t fmts[] = {
        SPICE_BITMAP_FMT_32BIT, SPICE_BITMAP_FMT_RGBA, SPICE_BITMAP_FMT_24BIT, SPICE_BITMAP_FMT_16BIT,
        SPICE_BITMAP_FMT_8BIT, SPICE_BITMAP_FMT_4BIT_BE, SPICE_BITMAP_FMT_1BIT_BE,
    };
    for (int i = 0; i < (int)(sizeof(fmts) / sizeof(fmts[0])); i++) {
        uint8_t fmt = fmts[i];
        pixfn f = pat_rgb;
        QXLPalette *pal = NULL;
        if (fmt == SPICE_BITMAP_FMT_1BIT_BE) { f = pat_index2; pal = mk_palette(2, 21); }
        if (fmt == SPICE_BITMAP_FMT_4BIT_BE) { f = pat_index16; pal = mk_palette(16, 22); }
        if (fmt == SPICE_BITMAP_FMT_8BIT) { f = pat_index256; pal = mk_palette(256, 23); }
        if (fmt == SPICE_BITMAP_FMT_RGBA) f = pat_argb;
        struct imgopt o = { .topdown = i & 1, .nchunks = 1 + (i % 3) * 4, .extra_stride = (i & 2) ? 5 : 0 };
        int x = 4 + (i % 4) * 63, y = 4 + (i / 4) * 68;
        /* a 61x71 bitmap, its area (3,5)-(58,68) on a 55x63 box, two damage rectangles */
        QXLImage *img = mk_bitmap(fmt, 61, 71, f, &o, pal);
        QXLDrawable *d = mk_draw(0, QXL_DRAW_COPY, R(x, y, x + 55, y + 63), QXL_EFFECT_OPAQUE);
        d->u.copy.src_bitmap = phys(img);
        d->u.copy.src_area = R(3, 5, 58, 68);
        d->u.copy.rop_descriptor = SPICE_ROPD_OP_PUT;
        QXLRect rs[] = { R(x, y, x + 30, y + 63), R(x + 34, y + 8, x + 55, y + 50) };
        clip_rects(d, rs, 2);
        push_draw(d, "video-frame");
    }
    /* a whole-width frame with one clip rectangle, as at full screen */
    struct imgopt o = { .topdown = 1, .nchunks = 1 };
    QXLDrawable *d = mk_draw(0, QXL_DRAW_COPY, R(0, 140, W, H), QXL_EFFECT_OPAQUE);
    d->u.copy.src_bitmap = phys(mk_bitmap(SPICE_BITMAP_FMT_32BIT, W, H - 140, pat_argb, &o, NULL));
    d->u.copy.src_area = R(0, 0, W, H - 140);
    d->u.copy.rop_descriptor = SPICE_ROPD_OP_PUT;
    QXLRect r[] = { R(0, 140, W, H) };
    clip_rects(d, r, 1);
    push_draw(d, "video-frame-full");
}

static void sc_img_cache(void)
{
    background();
    uint64_t id = (4242ull << 32) | QXL_IMAGE_GROUP_DRIVER;
    struct imgopt o = { .topdown = 1, .nchunks = 1, .id = id, .flags = QXL_IMAGE_CACHE };
    QXLImage *a = mk_bitmap(SPICE_BITMAP_FMT_32BIT, 60, 50, pat_rgb, &o, NULL);
    copy_img(0, R(10, 10, 70, 60), a, R(0, 0, 60, 50), SPICE_ROPD_OP_PUT);
    /* the same id, same content, a new QXLImage (as a driver re-sending a cached image) */
    QXLImage *b = mk_bitmap(SPICE_BITMAP_FMT_32BIT, 60, 50, pat_rgb, &o, NULL);
    copy_img(0, R(100, 10, 160, 60), b, R(0, 0, 60, 50), SPICE_ROPD_OP_PUT);
    /* the same QXLImage used twice */
    copy_img(0, R(180, 10, 240, 60), a, R(0, 0, 60, 50), SPICE_ROPD_OP_PUT);
    /* cached 8bpp palette image, reused with a sub-area */
    struct imgopt p = { .topdown = 0, .nchunks = 2, .id = (4243ull << 32), .flags = QXL_IMAGE_CACHE };
    QXLPalette *pal = mk_palette(256, 99);
    QXLImage *c = mk_bitmap(SPICE_BITMAP_FMT_8BIT, 80, 60, pat_index256, &p, pal);
    copy_img(0, R(10, 100, 90, 160), c, R(0, 0, 80, 60), SPICE_ROPD_OP_PUT);
    QXLImage *c2 = mk_bitmap(SPICE_BITMAP_FMT_8BIT, 80, 60, pat_index256, &p, pal);
    copy_img(0, R(120, 100, 160, 130), c2, R(20, 10, 60, 40), SPICE_ROPD_OP_PUT);
}

static void sc_surfaces(void)
{
    background();
    surface_cmd(1, 1, 64, 48, 0, NULL);
    surface_cmd(2, 1, 80, 40, 1, NULL);
    fill(1, R(0, 0, 64, 48), rgb(0, 0, 128), SPICE_ROPD_OP_PUT);
    fill(1, R(8, 8, 40, 30), rgb(255, 128, 0), SPICE_ROPD_OP_PUT);
    copy_img(1, R(30, 20, 64, 48), mk_rgb32(34, 28, pat_rgb), R(0, 0, 34, 28), SPICE_ROPD_OP_PUT);
    fill(2, R(0, 0, 80, 40), rgb(0, 100, 0), SPICE_ROPD_OP_PUT);
    fill(2, R(5, 0, 20, 40), rgb(255, 255, 255), SPICE_ROPD_OP_XOR);
    /* surface 1 -> primary twice, surface 2 -> primary, surface 1 -> surface 2 */
    copy_img(0, R(10, 10, 74, 58), mk_surface_image(1, 64, 48), R(0, 0, 64, 48), SPICE_ROPD_OP_PUT);
    copy_img(2, R(40, 10, 80, 40), mk_surface_image(1, 64, 48), R(0, 0, 40, 30), SPICE_ROPD_OP_PUT);
    copy_img(0, R(100, 100, 180, 140), mk_surface_image(2, 80, 40), R(0, 0, 80, 40), SPICE_ROPD_OP_PUT);
    copy_img(0, R(150, 10, 214, 58), mk_surface_image(1, 64, 48), R(0, 0, 64, 48), SPICE_ROPD_OP_XOR);
    /* changing surface 1 afterwards must not change what was copied */
    fill(1, R(0, 0, 64, 48), rgb(255, 0, 0), SPICE_ROPD_OP_PUT);
    surface_cmd(1, 0, 0, 0, 0, NULL);
    surface_cmd(2, 0, 0, 0, 0, NULL);
    /* re-create id 1 and use it again */
    surface_cmd(1, 1, 32, 32, 0, NULL);
    fill(1, R(0, 0, 32, 32), rgb(200, 0, 200), SPICE_ROPD_OP_PUT);
    copy_img(0, R(200, 150, 232, 182), mk_surface_image(1, 32, 32), R(0, 0, 32, 32), SPICE_ROPD_OP_PUT);
    surface_cmd(1, 0, 0, 0, 0, NULL);
}

/* update_area on a sub-rectangle: the snapshot (top half of the PPM) shows what was rendered */
static void sc_update_sub(void)
{
    background();
    fill(0, R(10, 10, 60, 60), rgb(255, 0, 0), SPICE_ROPD_OP_PUT);
    fill(0, R(150, 100, 250, 180), rgb(0, 0, 255), SPICE_ROPD_OP_PUT);
    update_rect(0, 0, 64, 64);
    take_snapshot();
    fill(0, R(30, 30, 200, 120), rgb(0, 255, 0), SPICE_ROPD_OP_XOR);
}

static void sc_update_async(void)
{
    background();
    fill(0, R(10, 10, 60, 60), rgb(255, 0, 0), SPICE_ROPD_OP_PUT);
    QXLRect a = R(0, 0, W / 2, H / 2);
    kick();
    uint64_t c = new_cookie();
    spice_qxl_update_area_async(&qxl, 0, &a, 0, c);
    if (!wait_cookie(c, 5000)) fprintf(stderr, "standin: update_area_async cookie did not complete\n");
    take_snapshot();
    fill(0, R(100, 50, 200, 150), rgb(255, 255, 0), SPICE_ROPD_OP_PUT);
    QXLRect b = R(0, 0, W, H);
    kick();
    c = new_cookie();
    spice_qxl_update_area_async(&qxl, 0, &b, 1, c);
    if (!wait_cookie(c, 5000)) fprintf(stderr, "standin: update_area_async cookie did not complete\n");
}

static void sc_flush_async(void)
{
    background();
    surface_cmd(1, 1, 40, 40, 0, NULL);
    fill(1, R(0, 0, 40, 40), rgb(0, 255, 255), SPICE_ROPD_OP_PUT);
    copy_img(0, R(100, 100, 140, 140), mk_surface_image(1, 40, 40), R(0, 0, 40, 40), SPICE_ROPD_OP_PUT);
    fill(0, R(10, 10, 60, 60), rgb(255, 0, 0), SPICE_ROPD_OP_PUT);
    kick();
    uint64_t c = new_cookie();
    spice_qxl_flush_surfaces_async(&qxl, c);
    if (!wait_cookie(c, 5000)) fprintf(stderr, "standin: flush_surfaces_async cookie did not complete\n");
    take_snapshot(); /* everything must already be in guest memory */
    surface_cmd(1, 0, 0, 0, 0, NULL);
}

static void sc_destroy_wait(void)
{
    background();
    surface_cmd(3, 1, 50, 50, 1, NULL);
    fill(3, R(0, 0, 50, 50), rgb(90, 0, 90), SPICE_ROPD_OP_PUT);
    fill(3, R(10, 10, 40, 40), rgb(255, 255, 255), SPICE_ROPD_OP_PUT);
    copy_img(0, R(20, 20, 70, 70), mk_surface_image(3, 50, 50), R(0, 0, 50, 50), SPICE_ROPD_OP_PUT);
    update_rect(0, 0, 1, 1);
    /* QEMU's DESTROY_SURFACE_WAIT io on the primary (the C server accepts only 0 here) */
    fill(0, R(100, 100, 150, 150), rgb(0, 0, 0), SPICE_ROPD_OP_PUT);
    kick();
    spice_qxl_destroy_surface_wait(&qxl, 0);
    take_snapshot();
    surface_cmd(3, 0, 0, 0, 0, NULL);
    fill(0, R(120, 120, 170, 170), rgb(250, 250, 0), SPICE_ROPD_OP_PUT);
    /* and the async variant on another surface */
    surface_cmd(4, 1, 20, 20, 0, NULL);
    fill(4, R(0, 0, 20, 20), rgb(0, 200, 0), SPICE_ROPD_OP_PUT);
    copy_img(0, R(200, 100, 220, 120), mk_surface_image(4, 20, 20), R(0, 0, 20, 20), SPICE_ROPD_OP_PUT);
    update_rect(0, 0, 1, 1);
    uint64_t c = new_cookie();
    spice_qxl_destroy_surface_async(&qxl, 4, c);
    if (!wait_cookie(c, 5000)) fprintf(stderr, "standin: destroy_surface_async cookie did not complete\n");
    surface_cmd(4, 0, 0, 0, 0, NULL);
}

/* DESTROY_SURFACE_WAIT on an off-screen surface, as QEMU issues it for QXL_IO_DESTROY_SURFACE_WAIT */
static void sc_destroy_wait_offscreen(void)
{
    background();
    surface_cmd(3, 1, 50, 50, 0, NULL);
    fill(3, R(0, 0, 50, 50), rgb(90, 0, 90), SPICE_ROPD_OP_PUT);
    copy_img(0, R(20, 20, 70, 70), mk_surface_image(3, 50, 50), R(0, 0, 50, 50), SPICE_ROPD_OP_PUT);
    kick();
    spice_qxl_destroy_surface_wait(&qxl, 3);
    surface_cmd(3, 0, 0, 0, 0, NULL);
}

static void cursor_cmd(uint8_t type, int x, int y, int with_shape)
{
    QXLCursorCmd *c = galloc(sizeof(QXLCursorCmd));
    c->type = type;
    if (type == QXL_CURSOR_SET) {
        c->u.set.position.x = (int16_t)x;
        c->u.set.position.y = (int16_t)y;
        c->u.set.visible = 1;
        if (with_shape) {
            int cw = 16, ch = 16;
            size_t n = (size_t)cw * ch * 4;
            QXLCursor *s = galloc(sizeof(QXLCursor) + n);
            s->header.unique = 0xabc0 + (uint64_t)x;
            s->header.type = SPICE_CURSOR_TYPE_ALPHA;
            s->header.width = (uint16_t)cw;
            s->header.height = (uint16_t)ch;
            s->header.hot_spot_x = 1;
            s->header.hot_spot_y = 2;
            s->data_size = (uint32_t)n;
            s->chunk.data_size = (uint32_t)n;
            for (int i = 0; i < cw * ch; i++) {
                uint32_t v = pat_argb(i % cw, i / cw, cw, ch);
                memcpy(s->chunk.data + 4 * i, &v, 4);
            }
            c->u.set.shape = phys(s);
        }
    } else if (type == QXL_CURSOR_MOVE) {
        c->u.position.x = (int16_t)x;
        c->u.position.y = (int16_t)y;
    } else if (type == QXL_CURSOR_TRAIL) {
        c->u.trail.length = 4;
        c->u.trail.frequency = 2;
    }
    issue(&c->release_info, "cursor");
    qpush(&curq, phys(c), QXL_CMD_CURSOR);
}

static void sc_cursor(void)
{
    background();
    cursor_cmd(QXL_CURSOR_SET, 10, 10, 1);
    cursor_cmd(QXL_CURSOR_MOVE, 50, 60, 0);
    cursor_cmd(QXL_CURSOR_HIDE, 0, 0, 0);
    cursor_cmd(QXL_CURSOR_SET, 20, 20, 1);
    cursor_cmd(QXL_CURSOR_TRAIL, 0, 0, 0);
    cursor_cmd(QXL_CURSOR_MOVE, 70, 80, 0);
    kick();
    for (int i = 0; i < 200 && !qempty(&curq); i++) pump(5);
    fill(0, R(60, 60, 80, 80), rgb(255, 255, 255), SPICE_ROPD_OP_PUT);
}

/* A cursor of each SPICE_CURSOR_TYPE as a guest driver lays it out (spice-gtk's set_cursor
 * reads it so): the pixels, the palette of the indexed types, then a 1-bit AND mask whose
 * set bits make a pixel transparent (or inverting where the pixel is white); MONO is an
 * AND mask and an XOR mask. Odd sizes, so rows end mid-byte; split over two chunks. */
static void cursor_typed(uint16_t type, int cw, int ch, int hx, int hy)
{
    int bpl = (cw + 7) / 8, mask = bpl * ch, n = 0;
    uint8_t data[64 * 64 * 4 + 1024 + 512];
    memset(data, 0, sizeof(data));
    for (int y = 0; y < ch; y++) {
        for (int x = 0; x < cw; x++) {
            int i = y * cw + x, k = (x / 3 + y / 2) % 4; /* 0 opaque, 1 transparent, 2 invert, 3 opaque */
            uint32_t col = k == 2 ? 0xffffff : rgb(x * 255 / cw, y * 255 / ch, 90);
            switch (type) {
            case SPICE_CURSOR_TYPE_COLOR32: memcpy(data + 4 * i, &col, 4); break;
            case SPICE_CURSOR_TYPE_COLOR16: {
                uint16_t v = k == 2 ? 0x7fff : (uint16_t)(((x & 31) << 10) | ((y & 31) << 5) | 7);
                memcpy(data + 2 * i, &v, 2);
                break;
            }
            case SPICE_CURSOR_TYPE_COLOR4: {
                uint8_t idx = k == 2 ? 15 : (uint8_t)((x + y) % 15);
                data[i / 2] |= (uint8_t)((i & 1) ? idx : idx << 4);
                break;
            }
            case SPICE_CURSOR_TYPE_MONO: {
                /* AND 1 XOR 0: transparent; 0 0 black; 0 1 white; 1 1 invert */
                int and_bit = k == 1 || k == 2, xor_bit = k == 2 || k == 3;
                if (and_bit) data[y * bpl + x / 8] |= (uint8_t)(0x80 >> (x % 8));
                if (xor_bit) data[mask + y * bpl + x / 8] |= (uint8_t)(0x80 >> (x % 8));
                break;
            }
            }
        }
    }
    switch (type) {
    case SPICE_CURSOR_TYPE_MONO: n = 2 * mask; break;
    case SPICE_CURSOR_TYPE_COLOR4: {
        int pix = (cw + 1) / 2 * ch;
        for (int e = 0; e < 16; e++) {
            uint32_t col = e == 15 ? 0xffffff : rgb(e * 17, 255 - e * 17, (e * 50) & 255);
            memcpy(data + pix + 4 * e, &col, 4);
        }
        n = pix + 64;
        break;
    }
    case SPICE_CURSOR_TYPE_COLOR16: n = 2 * cw * ch; break;
    case SPICE_CURSOR_TYPE_COLOR32: n = 4 * cw * ch; break;
    }
    if (type != SPICE_CURSOR_TYPE_MONO) { /* the AND mask, linear as spice-gtk reads it */
        for (int i = 0; i < cw * ch; i++) {
            int k = ((i % cw) / 3 + (i / cw) / 2) % 4;
            if (k == 1 || k == 2) data[n + i / 8] |= (uint8_t)(0x80 >> (i % 8));
        }
        n += mask;
    }
    QXLCursorCmd *c = galloc(sizeof(QXLCursorCmd));
    c->type = QXL_CURSOR_SET;
    c->u.set.position.x = 40;
    c->u.set.position.y = 30;
    c->u.set.visible = 1;
    int first = n / 3;
    QXLCursor *sh = galloc(sizeof(QXLCursor) + (size_t)first);
    sh->header.unique = 0x5000 + type;
    sh->header.type = type;
    sh->header.width = (uint16_t)cw;
    sh->header.height = (uint16_t)ch;
    sh->header.hot_spot_x = (uint16_t)hx;
    sh->header.hot_spot_y = (uint16_t)hy;
    sh->data_size = (uint32_t)n;
    sh->chunk.data_size = (uint32_t)first;
    memcpy(sh->chunk.data, data, (size_t)first);
    QXLDataChunk *rest = galloc(sizeof(QXLDataChunk) + (size_t)(n - first));
    rest->data_size = (uint32_t)(n - first);
    memcpy(rest->data, data + first, (size_t)(n - first));
    rest->prev_chunk = phys(&sh->chunk);
    sh->chunk.next_chunk = phys(rest);
    c->u.set.shape = phys(sh);
    issue(&c->release_info, "cursor");
    qpush(&curq, phys(c), QXL_CMD_CURSOR);
    kick();
    for (int i = 0; i < 200 && !qempty(&curq); i++) pump(5);
}
static void sc_cursor_mono(void) { background(); cursor_typed(SPICE_CURSOR_TYPE_MONO, 21, 17, 3, 5); }
static void sc_cursor_color4(void) { background(); cursor_typed(SPICE_CURSOR_TYPE_COLOR4, 19, 13, 18, 0); }
static void sc_cursor_color16(void) { background(); cursor_typed(SPICE_CURSOR_TYPE_COLOR16, 23, 9, 0, 8); }
static void sc_cursor_color32(void) { background(); cursor_typed(SPICE_CURSOR_TYPE_COLOR32, 32, 32, 7, 7); }

/* QXL_CMD_UPDATE: the server puts the area into guest memory (the snapshot, taken once
 * the ring is drained, shows it: the red fill) and calls
 * notify_update with its id (a yellow mark in the dump if it did not, exactly once); an
 * UPDATE of a surface that does not exist is released and ignored. */
/* The guest driver's monitor layout: n heads side by side over the primary. */
static void monitors_config(int n)
{
    QXLMonitorsConfig *mc = galloc(sizeof(QXLMonitorsConfig) + (size_t)n * sizeof(QXLHead));
    mc->count = (uint16_t)n;
    mc->max_allowed = 4;
    for (int i = 0; i < n; i++) {
        mc->heads[i].id = (uint32_t)i;
        mc->heads[i].surface_id = 0;
        mc->heads[i].width = (uint32_t)(W / n);
        mc->heads[i].height = H;
        mc->heads[i].x = (uint32_t)(i * W / n);
        mc->heads[i].y = 0;
    }
    uint64_t c = new_cookie();
    spice_qxl_monitors_config_async(&qxl, phys(mc), 1, c);
    if (!wait_cookie(c, 5000)) fprintf(stderr, "standin: monitors_config_async cookie did not complete\n");
}

/* A new primary surface as QEMU's qxl makes one on a machine reset (unload: the driver is
 * gone, VGA mode) or as a guest driver recreates its primary (no unload). */
static void new_primary(int unload)
{
    kick();
    spice_server_vm_stop(server);
    spice_qxl_reset_cursor(&qxl);
    spice_qxl_destroy_surfaces(&qxl);
    if (unload) spice_qxl_driver_unload(&qxl);
    QXLDevSurfaceCreate s = { .width = W, .height = H, .stride = primary_neg ? -(W * 4) : W * 4,
                              .format = SPICE_SURFACE_FMT_32_xRGB, .position = 0, .mouse_mode = 1,
                              .flags = 0, .type = QXL_SURF_TYPE_PRIMARY,
                              .mem = phys(primary_mem), .group_id = 1 };
    spice_qxl_create_primary_surface(&qxl, 0, &s);
    spice_server_vm_start(server);
    pump(0);
}

/* The layout a client is told last (client_compare compares it with the C server's):
 * after a reset, one head covering the new primary; after a driver's own new primary,
 * nothing new (the driver sends its layout itself). */
static void sc_monitors_reset(void)
{
    background();
    monitors_config(2);
    kick();
    for (int i = 0; i < 40; i++) pump(5);
    new_primary(1);
    background();
}
static void sc_monitors_new_primary(void)
{
    background();
    monitors_config(2);
    kick();
    for (int i = 0; i < 40; i++) pump(5);
    new_primary(0);
    background();
}

static void sc_update_cmd(void)
{
    background();
    fill(0, R(10, 10, 60, 60), rgb(255, 0, 0), SPICE_ROPD_OP_PUT);
    QXLUpdateCmd *u = galloc(sizeof(QXLUpdateCmd));
    u->area = R(0, 0, 64, 64);
    u->update_id = 7;
    u->surface_id = 0;
    issue(&u->release_info, "update");
    qpush(&cmdq, phys(u), QXL_CMD_UPDATE);
    QXLUpdateCmd *u2 = galloc(sizeof(QXLUpdateCmd));
    u2->area = R(0, 0, 64, 64);
    u2->update_id = 8;
    u2->surface_id = 9; /* never created */
    issue(&u2->release_info, "update-nosurface");
    qpush(&cmdq, phys(u2), QXL_CMD_UPDATE);
    kick();
    for (int i = 0; i < 400 && (!qempty(&cmdq) || __atomic_load_n(&n_notify_update, __ATOMIC_SEQ_CST) < 1); i++)
        pump(5);
    pump(50);
    take_snapshot();
    if (__atomic_load_n(&n_notify_update, __ATOMIC_SEQ_CST) != 1)
        fill(0, R(0, 0, 8, 8), rgb(255, 255, 0), SPICE_ROPD_OP_PUT);
    const char *msg = "hello from the stand-in";
    QXLMessage *m = galloc(sizeof(QXLMessage) + strlen(msg) + 1);
    memcpy(m->data, msg, strlen(msg) + 1);
    issue(&m->release_info, "message");
    qpush(&cmdq, phys(m), QXL_CMD_MESSAGE);
    fill(0, R(30, 30, 90, 90), rgb(0, 0, 255), SPICE_ROPD_OP_PUT);
}

/* many small overlapping draws: exercises the drawable tree (occlusion, containers) */
static void sc_overlap(void)
{
    background();
    for (int i = 0; i < 300; i++) {
        int x = (i * 37) % (W - 30), y = (i * 53) % (H - 30);
        uint16_t rop = (i % 3 == 0) ? SPICE_ROPD_OP_XOR : SPICE_ROPD_OP_PUT;
        fill(0, R(x, y, x + 10 + i % 20, y + 10 + (i * 7) % 20), rgb(i * 5, 255 - i, i * 11), rop);
        if (i % 50 == 0) copy_img(0, R(x, y, x + 20, y + 20), mk_rgb32(20, 20, pat_rgb), R(0, 0, 20, 20), SPICE_ROPD_OP_PUT);
    }
}

/* more than NUM_DRAWABLES (1000) pending drawables without an update_area */
static void sc_many(void)
{
    fill(0, R(0, 0, W, H), 0, SPICE_ROPD_OP_PUT);
    for (int i = 0; i < 1500; i++) {
        int x = (i * 13) % W, y = (i * 7) % H;
        fill(0, R(x, y, x + 1 + i % 5, y + 1 + i % 3), rgb(i, i * 3, i * 7), i % 4 ? SPICE_ROPD_OP_PUT : SPICE_ROPD_OP_XOR);
        if (i % 400 == 399) kick();
    }
}

/* Valid but expensive drawings (issue 11): each clipped by 4096 small rectangles, the
 * most a drawing may carry. `staggered` shifts the rectangles' tops column by column, so
 * no two neighbours share a band. The RUN line's time= is what a guest (and QEMU, whose
 * update_area waits under its global lock) waits for the drawing. */
#define COSTLY_COLS 64
#define COSTLY_RECTS (COSTLY_COLS * 64)
static void costly_clip(QXLDrawable *d, int staggered)
{
    static QXLRect rs[COSTLY_RECTS];
    for (int i = 0; i < COSTLY_RECTS; i++) {
        int c = i % COSTLY_COLS, r = i / COSTLY_COLS;
        int top = 3 * r + (staggered ? c % 3 : 0);
        rs[i] = R(4 * c, top, 4 * c + 3, top + 2);
    }
    clip_rects(d, rs, COSTLY_RECTS);
}

/* a glyph string of just under 1 MiB (the most a string may hold): 127 glyphs of 256x256
 * A1 pixels, each a different dense pattern, spread over (and past) the surface */
static void costly_text(int staggered)
{
    background();
    enum { GW = 256, GH = 256, ROWB = GW / 8, N = 127 };
    size_t gsize = sizeof(QXLRasterGlyph) + (size_t)ROWB * GH;
    size_t total = gsize * N;
    QXLString *s = galloc(sizeof(QXLString) + total);
    s->data_size = (uint32_t)total;
    s->length = N;
    s->flags = SPICE_STRING_FLAGS_RASTER_A1 | SPICE_STRING_FLAGS_RASTER_TOP_DOWN;
    s->chunk.data_size = (uint32_t)total;
    for (int i = 0; i < N; i++) {
        QXLRasterGlyph *g = (QXLRasterGlyph *)(s->chunk.data + gsize * i);
        g->render_pos.x = (i * 29) % 220 - 120;
        g->render_pos.y = (i * 17) % 160 - 100 + GH;
        g->glyph_origin.x = 0;
        g->glyph_origin.y = -GH;
        g->width = GW;
        g->height = GH;
        memset(g->data, 0, (size_t)ROWB * GH);
        for (int y = 0; y < GH; y++)
            for (int x = 0; x < GW; x++)
                if ((x * 7 + y * 13 + i * 5) % 4 != 0) g->data[y * ROWB + x / 8] |= (uint8_t)(0x80 >> (x % 8));
    }
    QXLDrawable *d = mk_draw(0, QXL_DRAW_TEXT, R(0, 0, W, H), QXL_EFFECT_BLEND);
    d->u.text.str = phys(s);
    d->u.text.back_area = R(0, 0, 0, 0);
    solid(&d->u.text.fore_brush, rgb(255, 255, 0));
    solid(&d->u.text.back_brush, 0);
    d->u.text.fore_mode = SPICE_ROPD_OP_PUT;
    d->u.text.back_mode = 0;
    costly_clip(d, staggered);
    push_draw(d, "costly-text");
}

/* a 65535-point polyline zigzagging across the surface (about 5 million pixels) */
static void costly_stroke(int staggered)
{
    background();
    enum { N = 65535 };
    static int pts[N][2];
    for (int i = 0; i < N; i++) {
        pts[i][0] = (i * 37) % W;
        pts[i][1] = (i * 91) % H;
    }
    QXLDrawable *d = mk_draw(0, QXL_DRAW_STROKE, R(0, 0, W, H), QXL_EFFECT_BLEND);
    d->u.stroke.path = phys(mk_path(pts, N, QXL_PATH_BEGIN | QXL_PATH_END));
    d->u.stroke.attr.flags = 0;
    d->u.stroke.attr.width = 1 << 4;
    solid(&d->u.stroke.brush, rgb(0, 255, 255));
    d->u.stroke.fore_mode = SPICE_ROPD_OP_PUT;
    d->u.stroke.back_mode = SPICE_ROPD_OP_PUT;
    costly_clip(d, staggered);
    push_draw(d, "costly-stroke");
}

static void sc_costly_text(void) { costly_text(0); }
static void sc_costly_text_staggered(void) { costly_text(1); }
static void sc_costly_stroke(void) { costly_stroke(0); }
static void sc_costly_stroke_staggered(void) { costly_stroke(1); }

struct scenario { const char *name; void (*fn)(void); int neg; };
static const struct scenario scenarios[] = {
    { "fill_solid", sc_fill_solid, 0 },
    { "fill_solid_neg", sc_fill_solid, 1 },
    { "fill_rops", sc_fill_rops, 0 },
    { "fill_pattern", sc_fill_pattern, 0 },
    { "clip_rects", sc_clip_rects, 0 },
    { "mask", sc_mask, 0 },
    { "opaque", sc_opaque, 0 },
    { "copy_rops", sc_copy_rops, 0 },
    { "copy_rops_neg", sc_copy_rops, 1 },
    { "copy_scale", sc_copy_scale, 0 },
    { "copy_bits", sc_copy_bits, 0 },
    { "copy_bits_neg", sc_copy_bits, 1 },
    { "blend", sc_blend, 0 },
    { "blackness", sc_blackness, 0 },
    { "whiteness", sc_whiteness, 0 },
    { "invers", sc_invers, 0 },
    { "rop3", sc_rop3, 0 },
    { "rop3_ropd_codes", sc_rop3_ropd_codes, 0 },
    { "stroke", sc_stroke, 0 },
    { "text", sc_text, 0 },
    { "transparent", sc_transparent, 0 },
    { "alpha_blend", sc_alpha_blend, 0 },
    { "composite", sc_composite, 0 },
    { "img_1bpp_le", sc_img_1bpp_le, 0 },
    { "img_1bpp_be", sc_img_1bpp_be, 0 },
    { "img_4bpp_le", sc_img_4bpp_le, 0 },
    { "img_4bpp_be", sc_img_4bpp_be, 0 },
    { "img_8bpp", sc_img_8bpp, 0 },
    { "img_16bpp", sc_img_16bpp, 0 },
    { "img_24bpp", sc_img_24bpp, 0 },
    { "img_32bpp", sc_img_32bpp, 0 },
    { "img_32bpp_neg", sc_img_32bpp, 1 },
    { "img_rgba", sc_img_rgba, 0 },
    { "img_chunked", sc_img_chunked, 0 },
    { "img_chunked_8bpp", sc_img_chunked_8bpp, 0 },
    { "img_direct", sc_img_direct, 0 },
    { "video_frames", sc_video_frames, 0 },
    { "img_cache", sc_img_cache, 0 },
    { "surfaces", sc_surfaces, 0 },
    { "surfaces_neg", sc_surfaces, 1 },
    { "update_sub", sc_update_sub, 0 },
    { "update_async", sc_update_async, 0 },
    { "flush_async", sc_flush_async, 0 },
    { "destroy_wait", sc_destroy_wait, 0 },
    { "destroy_wait_offscreen", sc_destroy_wait_offscreen, 0 },
    { "cursor", sc_cursor, 0 },
    { "cursor_mono", sc_cursor_mono, 0 },
    { "cursor_color4", sc_cursor_color4, 0 },
    { "cursor_color16", sc_cursor_color16, 0 },
    { "cursor_color32", sc_cursor_color32, 0 },
    { "update_cmd", sc_update_cmd, 0 },
    { "monitors_reset", sc_monitors_reset, 0 },
    { "monitors_new_primary", sc_monitors_new_primary, 0 },
    { "overlap", sc_overlap, 0 },
    { "many", sc_many, 0 },
    { "costly_text", sc_costly_text, 0 },
    { "costly_text_staggered", sc_costly_text_staggered, 0 },
    { "costly_stroke", sc_costly_stroke, 0 },
    { "costly_stroke_staggered", sc_costly_stroke_staggered, 0 },
    { "rnd_fill", sc_rnd_fill, 0 },
    { "rnd_surfaces", sc_rnd_surfaces, 0 },
    { "rnd_copy", sc_rnd_copy, 0 },
    { "rnd_blend", sc_rnd_blend, 0 },
    { "rnd_opaque", sc_rnd_opaque, 0 },
    { "rnd_rop3", sc_rnd_rop3, 0 },
    { "rnd_rop3_origin", sc_rnd_rop3_origin, 0 },
    { "rnd_bwi", sc_rnd_bwi, 0 },
    { "rnd_transparent", sc_rnd_transparent, 0 },
    { "rnd_stroke", sc_rnd_stroke, 0 },
    { "rnd_text", sc_rnd_text, 0 },
    { "rnd_composite", sc_rnd_composite, 0 },
    { "rnd_alpha_blend", sc_rnd_alpha_blend, 0 },
};
#define NSC (int)(sizeof(scenarios) / sizeof(scenarios[0]))

/* ------------------------------------------------------------------------------------ */
/* Malformed commands                                                                     */

/* each returns the record index of the bad resource (or -1 if it has none) */
static int bad_with_addr(uint64_t addr, uint32_t type)
{
    qpush(&cmdq, addr, type);
    return -1;
}

static int bd_bad_slot(void)
{
    QXLDrawable *d = mk_draw(0, QXL_DRAW_FILL, R(0, 0, 10, 10), QXL_EFFECT_OPAQUE);
    solid(&d->u.fill.brush, 0xff0000);
    d->u.fill.rop_descriptor = SPICE_ROPD_OP_PUT;
    int i = issue(&d->release_info, "bad-slot");
    uint64_t off = BAR_PHYS + (uint64_t)((uint8_t *)d - bar);
    bad_with_addr(mkphys(5, GEN, off), QXL_CMD_DRAW); /* slot 5 not registered */
    bad_with_addr(mkphys(200, GEN, off), QXL_CMD_DRAW); /* slot id >= num_memslots */
    return i;
}
static int bd_bad_gen(void)
{
    QXLDrawable *d = mk_draw(0, QXL_DRAW_FILL, R(0, 0, 10, 10), QXL_EFFECT_OPAQUE);
    solid(&d->u.fill.brush, 0xff0000);
    d->u.fill.rop_descriptor = SPICE_ROPD_OP_PUT;
    int i = issue(&d->release_info, "bad-gen");
    bad_with_addr(mkphys(SLOT_ID, GEN + 1, BAR_PHYS + (uint64_t)((uint8_t *)d - bar)), QXL_CMD_DRAW);
    return i;
}
static int bd_past_end(void)
{
    /* the drawable straddles the end of the slot */
    bad_with_addr(mkphys(SLOT_ID, GEN, BAR_PHYS + BAR_SIZE - 40), QXL_CMD_DRAW);
    bad_with_addr(mkphys(SLOT_ID, GEN, BAR_PHYS + BAR_SIZE + 4096), QXL_CMD_DRAW);
    bad_with_addr(mkphys(SLOT_ID, GEN, 0x1000), QXL_CMD_DRAW); /* below the slot */
    /* a valid drawable whose image lies past the end */
    QXLDrawable *d = mk_draw(0, QXL_DRAW_COPY, R(0, 0, 10, 10), QXL_EFFECT_OPAQUE);
    d->u.copy.src_bitmap = mkphys(SLOT_ID, GEN, BAR_PHYS + BAR_SIZE - 8);
    d->u.copy.src_area = R(0, 0, 10, 10);
    d->u.copy.rop_descriptor = SPICE_ROPD_OP_PUT;
    return push_draw(d, "image-past-end");
}
static int bd_bbox_outside(void)
{
    fill(0, R(W - 10, H - 10, W + 10, H + 10), 0xff0000, SPICE_ROPD_OP_PUT);
    fill(0, R(-5, 0, 10, 10), 0xff0000, SPICE_ROPD_OP_PUT);
    return fill(0, R(0, 0, W + 1, 5), 0xff0000, SPICE_ROPD_OP_PUT);
}
static int bd_bitmap_short(void)
{
    QXLImage *img = mk_rgb32(20, 20, pat_rgb);
    img->bitmap.y = 40; /* stride*y past the chunk */
    img->descriptor.height = 40;
    return copy_img(0, R(0, 0, 20, 20), img, R(0, 0, 20, 20), SPICE_ROPD_OP_PUT);
}
static int bd_bitmap_short_direct(void)
{
    struct imgopt o = { .topdown = 1, .direct = 1 };
    QXLImage *img = mk_bitmap(SPICE_BITMAP_FMT_32BIT, 20, 20, pat_rgb, &o, NULL);
    img->bitmap.data = mkphys(SLOT_ID, GEN, BAR_PHYS + BAR_SIZE - 100); /* flat data past the end */
    return copy_img(0, R(0, 0, 20, 20), img, R(0, 0, 20, 20), SPICE_ROPD_OP_PUT);
}
static int bd_cyclic_chunks(void)
{
    QXLImage *img = mk_rgb32(20, 20, pat_rgb);
    QXLDataChunk *c = (QXLDataChunk *)(bar + ((img->bitmap.data & 0xffffffffffffull) - BAR_PHYS));
    c->data_size = 16;
    c->next_chunk = img->bitmap.data; /* points back to itself */
    return copy_img(0, R(0, 0, 20, 20), img, R(0, 0, 20, 20), SPICE_ROPD_OP_PUT);
}
static int bd_cyclic_empty_chunks(void)
{
    QXLImage *img = mk_rgb32(20, 20, pat_rgb);
    QXLDataChunk *c1 = galloc(sizeof(QXLDataChunk));
    QXLDataChunk *c0 = (QXLDataChunk *)(bar + ((img->bitmap.data & 0xffffffffffffull) - BAR_PHYS));
    c0->next_chunk = phys(c1);
    c1->data_size = 0;
    c1->next_chunk = phys(c1); /* an empty chunk pointing at itself */
    return copy_img(0, R(0, 0, 20, 20), img, R(0, 0, 20, 20), SPICE_ROPD_OP_PUT);
}
static int bd_unknown_cmd(void)
{
    QXLDrawable *d = mk_draw(0, QXL_DRAW_FILL, R(0, 0, 10, 10), QXL_EFFECT_OPAQUE);
    int i = issue(&d->release_info, "unknown-cmd");
    qpush(&cmdq, phys(d), 99);
    return i;
}
static int bd_unknown_draw(void)
{
    QXLDrawable *d = mk_draw(0, 77, R(0, 0, 10, 10), QXL_EFFECT_OPAQUE);
    return push_draw(d, "unknown-draw");
}
static int bd_surface_id_range(void)
{
    fill(N_SURFACES, R(0, 0, 10, 10), 0xff0000, SPICE_ROPD_OP_PUT);
    fill(1000, R(0, 0, 10, 10), 0xff0000, SPICE_ROPD_OP_PUT);
    fill(5, R(0, 0, 10, 10), 0xff0000, SPICE_ROPD_OP_PUT); /* in range, never created */
    surface_cmd(N_SURFACES, 1, 16, 16, 0, NULL);
    surface_cmd(7, 0, 0, 0, 0, NULL); /* destroy of a surface that does not exist */
    return surface_cmd(1000, 1, 16, 16, 0, NULL);
}
static int bd_surface_id_huge(void)
{
    fill(0xfffffff0u, R(0, 0, 10, 10), 0xff0000, SPICE_ROPD_OP_PUT);
    fill(0x80000000u, R(0, 0, 10, 10), 0xff0000, SPICE_ROPD_OP_PUT);
    QXLDrawable *d = mk_draw(0, QXL_DRAW_FILL, R(0, 0, 10, 10), QXL_EFFECT_OPAQUE);
    solid(&d->u.fill.brush, 0xff0000);
    d->u.fill.rop_descriptor = SPICE_ROPD_OP_PUT;
    d->surfaces_dest[0] = (int32_t)0xfffffff0; /* dependency on a bogus surface */
    push_draw(d, "bad-dep");
    QXLImage *img = mk_surface_image(0xfffffff0u, 10, 10);
    copy_img(0, R(0, 0, 10, 10), img, R(0, 0, 10, 10), SPICE_ROPD_OP_PUT);
    return surface_cmd(0xfffffff0u, 1, 16, 16, 0, NULL);
}
static int bd_surface_dup(void)
{
    surface_cmd(1, 1, 16, 16, 0, NULL);
    int i = surface_cmd(1, 1, 16, 16, 0, NULL); /* create an existing one */
    surface_cmd(1, 0, 0, 0, 0, NULL);
    return i;
}
static int bd_image_huge(void)
{
    QXLImage *img = mk_rgb32(20, 20, pat_rgb);
    img->descriptor.width = img->descriptor.height = 0x7fffffff;
    img->bitmap.x = img->bitmap.y = 0x7fffffff;
    img->bitmap.stride = 0x7fffffff;
    copy_img(0, R(0, 0, 20, 20), img, R(0, 0, 0x7fffffff, 0x7fffffff), SPICE_ROPD_OP_PUT);
    QXLImage *img2 = mk_rgb32(20, 20, pat_rgb);
    img2->bitmap.x = 0x7fffffff; /* stride too small for the width */
    return copy_img(0, R(0, 0, 20, 20), img2, R(0, 0, 20, 20), SPICE_ROPD_OP_PUT);
}
static int bd_surface_huge(void)
{
    QXLSurfaceCmd *c = galloc(sizeof(QXLSurfaceCmd));
    c->surface_id = 2;
    c->type = QXL_SURFACE_CMD_CREATE;
    c->u.surface_create.format = SPICE_SURFACE_FMT_32_xRGB;
    c->u.surface_create.width = 0x7fffffff;
    c->u.surface_create.height = 0x7fffffff;
    c->u.surface_create.stride = 0x7ffffffc;
    c->u.surface_create.data = phys(galloc(64));
    int i = issue(&c->release_info, "surface-huge");
    qpush(&cmdq, phys(c), QXL_CMD_SURFACE);
    return i;
}
static int bd_src_area_outside(void)
{
    QXLImage *img = mk_rgb32(20, 20, pat_rgb);
    return copy_img(0, R(0, 0, 30, 30), img, R(-5, 0, 25, 30), SPICE_ROPD_OP_PUT);
}
static int bd_clip_count(void)
{
    QXLDrawable *d = mk_draw(0, QXL_DRAW_FILL, R(0, 0, 10, 10), QXL_EFFECT_OPAQUE);
    solid(&d->u.fill.brush, 0xff0000);
    d->u.fill.rop_descriptor = SPICE_ROPD_OP_PUT;
    QXLRect r[1] = { R(0, 0, 5, 5) };
    clip_rects(d, r, 1);
    QXLClipRects *c = (QXLClipRects *)(bar + ((d->clip.data & 0xffffffffffffull) - BAR_PHYS));
    c->num_rects = 1000; /* more rects than data */
    return push_draw(d, "clip-count");
}
static int bd_palette_missing(void)
{
    struct imgopt o = { .topdown = 1, .nchunks = 1 };
    QXLImage *img = mk_bitmap(SPICE_BITMAP_FMT_8BIT, 20, 20, pat_index256, &o, NULL);
    return copy_img(0, R(0, 0, 20, 20), img, R(0, 0, 20, 20), SPICE_ROPD_OP_PUT);
}
static int bd_palette_short(void)
{
    /* 8bpp image, palette with 4 entries: indices past the palette */
    struct imgopt o = { .topdown = 1, .nchunks = 1 };
    QXLImage *img = mk_bitmap(SPICE_BITMAP_FMT_8BIT, 20, 20, pat_index256, &o, mk_palette(4, 5));
    return copy_img(0, R(0, 0, 20, 20), img, R(0, 0, 20, 20), SPICE_ROPD_OP_PUT);
}
static int bd_bad_format(void)
{
    QXLImage *img = mk_rgb32(20, 20, pat_rgb);
    img->bitmap.format = 42;
    copy_img(0, R(0, 0, 20, 20), img, R(0, 0, 20, 20), SPICE_ROPD_OP_PUT);
    QXLImage *img2 = mk_rgb32(20, 20, pat_rgb);
    img2->descriptor.type = 77; /* unknown image type */
    return copy_img(0, R(0, 0, 20, 20), img2, R(0, 0, 20, 20), SPICE_ROPD_OP_PUT);
}
static int bd_text_bad_glyphs(void)
{
    /* glyph claims more data than the string holds */
    QXLString *s = galloc(sizeof(QXLString) + sizeof(QXLRasterGlyph) + 12);
    s->data_size = sizeof(QXLRasterGlyph) + 12;
    s->length = 1;
    s->flags = SPICE_STRING_FLAGS_RASTER_A1;
    s->chunk.data_size = s->data_size;
    QXLRasterGlyph *g = (QXLRasterGlyph *)s->chunk.data;
    g->width = 200;
    g->height = 200;
    QXLDrawable *d = mk_draw(0, QXL_DRAW_TEXT, R(0, 0, 50, 50), QXL_EFFECT_BLEND);
    d->u.text.str = phys(s);
    solid(&d->u.text.fore_brush, 0xff0000);
    d->u.text.fore_mode = SPICE_ROPD_OP_PUT;
    return push_draw(d, "text-bad");
}
static int bd_cursor_bad(void)
{
    QXLCursorCmd *c = galloc(sizeof(QXLCursorCmd));
    c->type = QXL_CURSOR_SET;
    c->u.set.visible = 1;
    QXLCursor *s = galloc(sizeof(QXLCursor) + 16);
    s->header.type = SPICE_CURSOR_TYPE_ALPHA;
    s->header.width = 64;
    s->header.height = 64; /* needs 16 KiB, has 16 bytes */
    s->data_size = 16;
    s->chunk.data_size = 16;
    c->u.set.shape = phys(s);
    int i = issue(&c->release_info, "cursor-bad");
    qpush(&curq, phys(c), QXL_CMD_CURSOR);
    QXLCursorCmd *c2 = galloc(sizeof(QXLCursorCmd));
    c2->type = 9; /* unknown cursor command */
    issue(&c2->release_info, "cursor-unknown");
    qpush(&curq, phys(c2), QXL_CMD_CURSOR);
    return i;
}

struct bad { const char *name; int (*fn)(void); };
static const struct bad bads[] = {
    { "bad_slot", bd_bad_slot },
    { "bad_gen", bd_bad_gen },
    { "past_end", bd_past_end },
    { "bbox_outside", bd_bbox_outside },
    { "bitmap_short", bd_bitmap_short },
    { "bitmap_short_direct", bd_bitmap_short_direct },
    { "cyclic_chunks", bd_cyclic_chunks },
    { "cyclic_empty_chunks", bd_cyclic_empty_chunks },
    { "unknown_cmd", bd_unknown_cmd },
    { "unknown_draw", bd_unknown_draw },
    { "surface_id_range", bd_surface_id_range },
    { "surface_id_huge", bd_surface_id_huge },
    { "surface_dup", bd_surface_dup },
    { "surface_huge", bd_surface_huge },
    { "image_huge", bd_image_huge },
    { "src_area_outside", bd_src_area_outside },
    { "clip_count", bd_clip_count },
    { "palette_missing", bd_palette_missing },
    { "palette_short", bd_palette_short },
    { "bad_format", bd_bad_format },
    { "text_bad_glyphs", bd_text_bad_glyphs },
    { "cursor_bad", bd_cursor_bad },
};
#define NBAD (int)(sizeof(bads) / sizeof(bads[0]))

/* ------------------------------------------------------------------------------------ */
/* Output                                                                                 */

static uint32_t fnv(uint32_t h, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) { h ^= p[i]; h *= 16777619u; }
    return h;
}

static uint32_t write_ppm(const char *path)
{
    int rows = have_snapshot ? 2 * H : H;
    FILE *f = fopen(path, "wb");
    if (!f) die("cannot write %s: %s", path, strerror(errno));
    fprintf(f, "P6\n%d %d\n255\n", W, rows);
    uint32_t h = 2166136261u;
    for (int y = 0; y < rows; y++) {
        uint8_t line[W * 3];
        for (int x = 0; x < W; x++) {
            uint32_t v;
            if (have_snapshot && y < H) memcpy(&v, snapshot + ((size_t)y * W + x) * 4, 4);
            else v = prim_px(x, have_snapshot ? y - H : y);
            line[x * 3] = (uint8_t)(v >> 16);
            line[x * 3 + 1] = (uint8_t)(v >> 8);
            line[x * 3 + 2] = (uint8_t)v;
        }
        fwrite(line, 1, sizeof(line), f);
        h = fnv(h, line, sizeof(line));
    }
    fclose(f);
    return h;
}

static int pending_cookies(void)
{
    int n = 0;
    for (int i = 0; i < n_cookies; i++) if (!cookies[i].done) n++;
    return n;
}

static void report_unreleased(void)
{
    int shown = 0;
    for (int i = 0; i < n_recs && shown < 8; i++)
        if (recs[i].released != 1) {
            fprintf(stderr, "standin:   resource #%d (%s) released %d times\n", i, recs[i].what, recs[i].released);
            shown++;
        }
}

static int report_run(const char *name, uint32_t sum);
static double now_s(void);
static double run_seconds; /* the scenario's drawings, from the first push to update_area's return */

/* the scenario a name means: "rnd_x.N" is run N of random scenario rnd_x (sets rnd_run) */
static const struct scenario *find_scenario(const char *name)
{
    size_t len = strlen(name);
    const char *dot = strrchr(name, '.');
    if (dot && !strncmp(name, "rnd_", 4)) {
        char *end;
        long run = strtol(dot + 1, &end, 10);
        if (*end || run < 1 || run > 1000000) return NULL;
        rnd_run = (uint32_t)run;
        len = (size_t)(dot - name);
    }
    for (int i = 0; i < NSC; i++)
        if (strlen(scenarios[i].name) == len && !strncmp(scenarios[i].name, name, len)) return &scenarios[i];
    return NULL;
}

static int run_scenario(const char *name, const char *out)
{
    const struct scenario *s = find_scenario(name);
    if (!s) { fprintf(stderr, "standin: no scenario %s\n", name); return 2; }
    server_start(s->neg);
    /* timed scenarios start once the server's own start-up work (threads, keys) is done */
    if (!strncmp(name, "costly_", 7))
        for (double t = now_s() + 1.0; now_s() < t;) pump(10);
    double t0 = now_s();
    s->fn();
    update_full();
    run_seconds = now_s() - t0;
    uint32_t sum = write_ppm(out);
    server_stop();
    return report_run(name, sum);
}

/* the RUN result line: resources released once, cookies completed once */
static int report_run(const char *name, uint32_t sum)
{
    pthread_mutex_lock(&lock);
    int ok = n_released == n_recs && n_double == 0 && n_foreign == 0 && n_bad_group == 0 &&
             pending_cookies() == 0 && cookie_double == 0 && cookie_foreign == 0;
    printf("%s released=%d/%d double=%d foreign=%d cookies=%d pending=%d double_complete=%d "
           "update_complete=%d notify_update=%d fetched=%d cursor_fetched=%d time=%.3f checksum=%08x %s\n",
           name, n_released, n_recs, n_double, n_foreign, n_cookies, pending_cookies(), cookie_double,
           n_update_complete, n_notify_update, n_fetched, n_cursor_fetched, run_seconds, sum, ok ? "OK" : "FAIL");
    if (!ok) report_unreleased();
    pthread_mutex_unlock(&lock);
    fflush(stdout);
    return ok ? 0 : 1;
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* 1 once stdin reached its end (what is read is discarded) */
static int stdin_closed(void)
{
    struct pollfd p = { .fd = 0, .events = POLLIN };
    if (poll(&p, 1, 0) <= 0) return 0;
    if (p.revents & POLLNVAL) return 1;
    char buf[256];
    ssize_t n = read(0, buf, sizeof(buf));
    return n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN);
}

/* SERVE: the scenario with a real client watching. The drawings are only worth checking on
 * the client when they reach it as they happen, so nothing is drawn before a display channel
 * has linked (and had a moment to receive the primary surface). */
#define SERVE_WAIT_CLIENT_S 30
#define SERVE_SETTLE_MS 200
#define SERVE_LINGER_S 120
static int serve_pace_ms;
static void pace(void)
{
    spice_qxl_wakeup(&qxl);
    for (double t = now_s() + serve_pace_ms / 1000.0; now_s() < t;) pump(1);
}

static int serve_scenario(const char *name, const char *out, int port, int pace_ms)
{
    const struct scenario *s = find_scenario(name);
    if (!s) { fprintf(stderr, "standin: no scenario %s\n", name); return 2; }
    if (port <= 0 || port > 65535) { fprintf(stderr, "standin: bad port %d\n", port); return 2; }
    serve_port = port;
    server_start(s->neg);
    printf("SERVE-LISTENING %d\n", port);
    double until = now_s() + SERVE_WAIT_CLIENT_S;
    while (!__atomic_load_n(&display_links, __ATOMIC_SEQ_CST)) {
        if (now_s() > until || stdin_closed()) {
            printf("SERVE-NOCLIENT %s\n", name);
            server_stop();
            return 4;
        }
        pump(10);
    }
    for (double t = now_s() + SERVE_SETTLE_MS / 1000.0; now_s() < t;) pump(10);
    serve_pace_ms = pace_ms;
    if (pace_ms > 0) after_push = pace;
    s->fn();
    after_push = NULL;
    update_full();
    uint32_t sum = write_ppm(out);
    printf("SERVE-DONE %s checksum=%08x display_links=%d display_unlinks=%d\n", name, sum,
           __atomic_load_n(&display_links, __ATOMIC_SEQ_CST), __atomic_load_n(&display_unlinks, __ATOMIC_SEQ_CST));
    until = now_s() + SERVE_LINGER_S;
    while (!stdin_closed() && now_s() < until) pump(20);
    server_stop();
    return report_run(name, sum);
}

static uint32_t pat_bg(int x, int y, int w, int h) { (void)w; (void)h; return rgb(10 + x / 16, 20 + y / 16, 30); }
static uint32_t pat_want2(int x, int y, int w, int h) { (void)x; (void)y; (void)w; (void)h; return rgb(0x65, 0x43, 0x21); }

/* the child: bad command(s), then a valid fill and copy whose pixels must arrive */
static int bad_child(const struct bad *b)
{
    alarm(60);
    server_start(0);
    /* the background is a 32-bit DRAW_COPY, the simplest drawable there is */
    copy_img(0, R(0, 0, W, H), mk_rgb32(W, H, pat_bg), R(0, 0, W, H), SPICE_ROPD_OP_PUT);
    update_full();
    int bi = b->fn();
    kick();
    update_full();
    int mark = n_recs;
    /* the follow-up: a valid fill and a valid 32-bit copy */
    const uint32_t want = rgb(0x12, 0x34, 0x56);
    fill(0, R(100, 80, 160, 120), want, SPICE_ROPD_OP_PUT);
    copy_img(0, R(20, 140, 60, 170), mk_rgb32(40, 30, pat_want2), R(0, 0, 40, 30), SPICE_ROPD_OP_PUT);
    update_full();
    int good = 0, good2 = 0, bad_px = 0;
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            uint32_t v = prim_px(x, y) & 0xffffff;
            int inside = x >= 100 && x < 160 && y >= 80 && y < 120;
            int inside2 = x >= 20 && x < 60 && y >= 140 && y < 170;
            if (inside && v == want) good++;
            else if (inside2 && v == pat_want2(0, 0, 0, 0)) good2++;
            else if (!inside && !inside2 && v != pat_bg(x, y, W, H)) bad_px++;
        }
    int fill_ok = good == 60 * 40, copy_ok = good2 == 40 * 30;
    int followup_ok = fill_ok && copy_ok;
    int bad_rel = bi >= 0 ? released_count(bi) : -1;
    server_stop();
    pthread_mutex_lock(&lock);
    int released_bad = 0, n_bad = 0;
    for (int i = 0; i < mark; i++) { n_bad++; if (recs[i].released) released_bad++; }
    printf("BAD %s followup=%s fill=%s copy=%s stray=%d released=%d/%d last_bad_released_before_teardown=%d "
           "double=%d foreign=%d\n",
           b->name, followup_ok ? "ok" : "WRONG", fill_ok ? "ok" : "WRONG", copy_ok ? "ok" : "WRONG", bad_px, n_released, n_recs, bad_rel, n_double, n_foreign);
    if (!followup_ok || n_double) report_unreleased();
    pthread_mutex_unlock(&lock);
    fflush(stdout);
    (void)released_bad; (void)n_bad;
    return followup_ok && n_double == 0 ? 0 : 1;
}

static int run_bad(const char *name)
{
    const struct bad *b = NULL;
    for (int i = 0; i < NBAD; i++) if (!strcmp(bads[i].name, name)) b = &bads[i];
    if (!b) { fprintf(stderr, "standin: no bad scenario %s\n", name); return 2; }
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) die("fork");
    if (pid == 0) _exit(bad_child(b));
    int st;
    waitpid(pid, &st, 0);
    if (WIFEXITED(st)) {
        printf("BAD %s status=exit:%d\n", name, WEXITSTATUS(st));
        return WEXITSTATUS(st) ? 1 : 0;
    }
    printf("BAD %s status=signal:%d(%s)\n", name, WTERMSIG(st), strsignal(WTERMSIG(st)));
    return 3;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc >= 2 && !strcmp(argv[1], "LIST")) {
        for (int i = 0; i < NSC; i++) printf("%s\n", scenarios[i].name);
        for (int i = 0; i < NBAD; i++) printf("BAD %s\n", bads[i].name);
        return 0;
    }
    if (argc >= 4 && !strcmp(argv[1], "RUN")) return run_scenario(argv[2], argv[3]);
    if (argc >= 3 && !strcmp(argv[1], "BAD")) return run_bad(argv[2]);
    if (argc >= 5 && !strcmp(argv[1], "SERVE"))
        return serve_scenario(argv[2], argv[3], atoi(argv[4]), argc >= 6 ? atoi(argv[5]) : 0);
    fprintf(stderr, "usage: %s LIST | RUN name out.ppm | BAD name | SERVE name out.ppm PORT [PACE_MS]\n", argv[0]);
    return 2;
}
