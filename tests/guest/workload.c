/*
 * spice-rs test guest workload: draws on /dev/fb0 and reports input events.
 *
 *   workload console|desktop|video      (argv[1], else workload= on /proc/cmdline)
 *   kernel cmdline: fps=30  video_rect=full|WxH+X+Y  frame_log=1
 *                   clip=megamind|street|screen|anim (video: the clip disk whose header
 *                                   names it; default megamind)  video_dev=/dev/vdX (that disk)
 *                   text_fps=N (desktop: rewrite the front window's text N times a second)
 *                   scroll_fps=N (desktop: scroll the front window's text a line up N times a second)
 *                   scroll_lines=N (desktop: stop scrolling after N lines, then print
 *                                   "SPICE-RS-GUEST: scrolled N lines")
 *                   desktop_scene=windows|menus|scroll|viewer|mixed (desktop: a desktop
 *                                   in use, see run_desktop_scenes; scene_fps=10 steps/s)
 *
 * Serial-log lines (stdout is the console = ttyS0), stable, for the harness:
 *   SPICE-RS-GUEST: fb0 WxH bpp=N stride=S
 *   SPICE-RS-GUEST: workload <mode> running
 *   SPICE-RS-GUEST: clip <name> on /dev/vdX    (video: the clip found; "clip <name> not found")
 *   SPICE-RS-GUEST: input eventN name=<name>
 *   SPICE-RS-GUEST: input eventN gone          (unplugged; rescans open it again)
 *   SPICE-RS-INPUT: key code=30 value=1        (value 0 release, 1 press, 2 repeat)
 *   SPICE-RS-INPUT: btn code=272 value=1       (BTN_LEFT=272 RIGHT=273 MIDDLE=274)
 *   SPICE-RS-INPUT: rel x=5 y=-3               (summed per SYN_REPORT)
 *   SPICE-RS-INPUT: wheel value=-1
 *   SPICE-RS-INPUT: abs x=123 y=456            (device units, 0..32767 for usb-tablet)
 *   SPICE-RS-VIDEO: frame=N fps=F              (once per second)
 *   SPICE-RS-VIDEO: paused frame=N             (key P pauses the video; N: the stamp shown)
 *   SPICE-RS-VIDEO: resumed
 *   SPICE-RS-FRAME: N                          (with frame_log=1: frame N, its stamp value,
 *                                               is in the framebuffer; for latency benchmarks)
 *   SPICE-RS-GUEST: desktop scene <name>       (desktop_scene=: keys 1..5 switch scenes)
 *   SPICE-RS-GUEST: desktop paused|resumed     (desktop_scene=: key P freezes the screen)
 *
 * Video frame stamp (for latency measurements): at the top-left corner of the
 * video region, a row of 18 blocks, each 16x32 pixels: block 0 white, block 1
 * black (reference levels), then blocks 2..17 = the 16-bit frame counter, MSB
 * first, white = 1, black = 0. The counter counts frames shown (mod 65536).
 *
 * Video source: raw disks (virtio-blk, /dev/vd*), each with a 4096-byte text header
 * "SPRSVID1 <w> <h> <frames> BGR\nclip <name>\n" followed by raw BGR frames (no clip
 * line: megamind); the one named by clip= plays. Without it, synthetic moving bars are drawn.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/fb.h>
#include <linux/input.h>
#include <linux/kd.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---------------------------------------------------------------- cmdline */
static char cmdline[4096];

static const char *arg(const char *key, const char *def)
{
    static char val[256];
    size_t kl = strlen(key);
    for (char *p = cmdline; *p;) {
        while (*p == ' ') p++;
        if (!strncmp(p, key, kl) && p[kl] == '=') {
            size_t n = strcspn(p + kl + 1, " \n");
            if (n >= sizeof val) n = sizeof val - 1;
            memcpy(val, p + kl + 1, n);
            val[n] = 0;
            return val;
        }
        p += strcspn(p, " ");
    }
    return def;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* --------------------------------------------------------------- framebuffer */
static struct {
    uint8_t *mem;
    int w, h, bpp, stride;
    struct fb_var_screeninfo v;
    int std32; /* 32bpp with red at 16, green 8, blue 0: fast path */
} fb;

static int fb_open(void)
{
    struct fb_fix_screeninfo f;
    int fd = open("/dev/fb0", O_RDWR);
    if (fd < 0 || ioctl(fd, FBIOGET_VSCREENINFO, &fb.v) < 0 || ioctl(fd, FBIOGET_FSCREENINFO, &f) < 0) {
        printf("SPICE-RS-GUEST: no usable /dev/fb0 (%s)\n", strerror(errno));
        return -1;
    }
    fb.w = fb.v.xres;
    fb.h = fb.v.yres;
    fb.bpp = fb.v.bits_per_pixel;
    fb.stride = f.line_length;
    size_t len = (size_t)f.line_length * fb.v.yres_virtual;
    if (len > f.smem_len && f.smem_len) len = f.smem_len;
    fb.mem = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (fb.mem == MAP_FAILED) {
        printf("SPICE-RS-GUEST: fb mmap failed (%s)\n", strerror(errno));
        return -1;
    }
    /* Show the first page (drivers may have panned). */
    fb.v.xoffset = fb.v.yoffset = 0;
    ioctl(fd, FBIOPAN_DISPLAY, &fb.v);
    fb.std32 = fb.bpp == 32 && fb.v.red.offset == 16 && fb.v.green.offset == 8 && fb.v.blue.offset == 0;
    printf("SPICE-RS-GUEST: fb0 %dx%d bpp=%d stride=%d rgb=%d/%d/%d\n", fb.w, fb.h, fb.bpp, fb.stride,
           fb.v.red.offset, fb.v.green.offset, fb.v.blue.offset);
    if (fb.bpp != 32 && fb.bpp != 16) {
        printf("SPICE-RS-GUEST: unsupported bpp %d\n", fb.bpp);
        return -1;
    }
    return 0;
}

static inline uint32_t pack(unsigned r, unsigned g, unsigned b)
{
    if (fb.std32) return (r << 16) | (g << 8) | b;
    return ((r >> (8 - fb.v.red.length)) << fb.v.red.offset) |
           ((g >> (8 - fb.v.green.length)) << fb.v.green.offset) |
           ((b >> (8 - fb.v.blue.length)) << fb.v.blue.offset);
}

static inline void putpx(uint8_t *row, int x, uint32_t px)
{
    if (fb.bpp == 32) ((uint32_t *)row)[x] = px;
    else ((uint16_t *)row)[x] = (uint16_t)px;
}

static void fill(int x, int y, int w, int h, uint32_t rgb)
{
    if (x < 0) { w += x; x = 0; }
    if (y < 0) { h += y; y = 0; }
    if (x + w > fb.w) w = fb.w - x;
    if (y + h > fb.h) h = fb.h - y;
    if (w <= 0 || h <= 0) return;
    uint32_t px = pack(rgb >> 16, (rgb >> 8) & 255, rgb & 255);
    for (int j = y; j < y + h; j++) {
        uint8_t *row = fb.mem + (size_t)j * fb.stride;
        for (int i = x; i < x + w; i++) putpx(row, i, px);
    }
}

/* 3x5 digits, for the clock */
static const uint16_t digit3x5[10] = {0x7b6f, 0x2492, 0x73e7, 0x73cf, 0x5bc9,
                                      0x79cf, 0x79ef, 0x7249, 0x7bef, 0x7bcf};

static void draw_digit(int x, int y, int d, int s, uint32_t fg)
{
    for (int r = 0; r < 5; r++)
        for (int c = 0; c < 3; c++)
            if (digit3x5[d] & (1 << (14 - (r * 3 + c)))) fill(x + c * s, y + r * s, s, s, fg);
}

/* Text-like content: rows of "words" made of glyph-sized blocks. */
static uint32_t rng = 12345;
static unsigned rnd(void) { rng = rng * 1103515245 + 12345; return (rng >> 16) & 0x7fff; }

static void draw_text_line(int x, int ly, int w, uint32_t fg)
{
    int lx = x + 8;
    int end = x + w - 8 - (int)(rnd() % (w / 3 + 1));
    while (lx < end) {
        int word = 2 + rnd() % 8;
        for (int k = 0; k < word && lx + 6 <= end; k++, lx += 7) {
            /* a glyph: a few strokes inside 6x8 */
            int g = rnd();
            fill(lx, ly + (g & 1), 6, 1, fg);
            fill(lx + (g >> 1) % 5, ly, 1 + ((g >> 4) & 1), 8, fg);
            if (g & 0x40) fill(lx, ly + 7, 6, 1, fg);
            if (g & 0x80) fill(lx, ly + 3, 5, 1, fg);
        }
        lx += 7;
    }
}

static void draw_text_block(int x, int y, int w, int h, uint32_t fg)
{
    for (int ly = y + 6; ly + 8 <= y + h - 4; ly += 14) draw_text_line(x, ly, w, fg);
}

/* The document in a window body scrolls up one 14-pixel line: the rows move up, a new
 * line of text appears at the bottom. */
static void scroll_text(int x, int y, int w, int h)
{
    int bytes = fb.bpp / 8;
    for (int j = y; j + 14 < y + h; j++)
        memmove(fb.mem + (size_t)j * fb.stride + x * bytes,
                fb.mem + (size_t)(j + 14) * fb.stride + x * bytes, (size_t)w * bytes);
    fill(x, y + h - 14, w, 14, 0xffffff);
    draw_text_line(x, y + h - 12, w, 0x202020);
}

static void draw_window(int x, int y, int w, int h, const char *seed, uint32_t title)
{
    (void)seed;
    fill(x + 4, y + 4, w, h, 0x303030);            /* shadow */
    fill(x, y, w, h, 0xc0c0c0);                    /* frame */
    fill(x + 2, y + 2, w - 4, 22, title);          /* title bar */
    draw_text_block(x + 2, y + 2, w / 2, 22, 0xffffff);
    fill(x + w - 22, y + 5, 16, 16, 0xd04040);     /* close box */
    fill(x + 2, y + 26, w - 4, h - 28, 0xffffff);  /* body */
    draw_text_block(x + 2, y + 26, w - 4, h - 28, 0x202020);
}

static void draw_desktop(void)
{
    fill(0, 0, fb.w, fb.h, 0x2a6f8f);
    fill(0, 0, fb.w, 28, 0x202428);              /* top bar */
    draw_text_block(0, 0, 300, 28, 0xe0e0e0);
    draw_window(fb.w / 16, fb.h / 8, fb.w / 2, fb.h / 2, "a", 0x2050a0);
    draw_window(fb.w / 3, fb.h / 3, fb.w / 2, fb.h / 2, "b", 0x208040);
    draw_window(fb.w * 5 / 8, fb.h / 10, fb.w / 3, fb.h / 4, "c", 0x804080);
    fill(0, fb.h - 32, fb.w, 32, 0x202428);      /* task bar */
    for (int i = 0; i < 5; i++) fill(8 + i * 40, fb.h - 28, 32, 24, 0x506070 + i * 0x101010);
}

static void draw_clock(unsigned sec)
{
    static const uint32_t colors[] = {0xff4040, 0x40ff40, 0x4040ff, 0xffff40};
    int x = fb.w - 110, y = 2;
    fill(x, y, 24, 24, colors[sec % 4]);          /* the element that changes each second */
    fill(x + 30, y, 76, 24, 0x202428);
    unsigned v = sec % 10000;
    for (int i = 3; i >= 0; i--, v /= 10) draw_digit(x + 32 + i * 18, y + 2, v % 10, 4, 0xffffff);
}

/* ------------------------------------------------------------------- input */
#define MAXDEV 16
static struct indev {
    int fd;
    char node[32];
    int rx, ry, relp, ax, ay, absp;
} devs[MAXDEV];
static int ndev;

static void scan_inputs(void)
{
    DIR *d = opendir("/dev/input");
    struct dirent *e;
    if (!d) return;
    while ((e = readdir(d)) && ndev < MAXDEV) {
        if (strncmp(e->d_name, "event", 5)) continue;
        int known = 0;
        for (int i = 0; i < ndev; i++) known |= !strcmp(devs[i].node, e->d_name);
        if (known) continue;
        char path[64], name[128] = "?";
        snprintf(path, sizeof path, "/dev/input/%.40s", e->d_name);
        int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
        if (fd < 0) continue;
        ioctl(fd, EVIOCGNAME(sizeof name - 1), name);
        memset(&devs[ndev], 0, sizeof devs[ndev]);
        devs[ndev].fd = fd;
        snprintf(devs[ndev].node, sizeof devs[ndev].node, "%.20s", e->d_name);
        ndev++;
        printf("SPICE-RS-GUEST: input %s name=%s\n", e->d_name, name);
    }
    closedir(d);
}

/* Key P toggles it: the video stops changing (the e2e tests compare a still screen). */
static int video_pause_key;
/* Keys 0..5 pick a desktop scene (run_desktop_scenes); -1: none pressed since. */
static int scene_key = -1;

static void handle(struct indev *d, const struct input_event *ev)
{
    switch (ev->type) {
    case EV_KEY:
        if (ev->code == KEY_P && ev->value == 1) video_pause_key = !video_pause_key;
        if (ev->value == 1 && ev->code >= KEY_1 && ev->code <= KEY_5) scene_key = ev->code - KEY_1 + 1;
        if (ev->value == 1 && ev->code == KEY_0) scene_key = 0;
        if (ev->code >= BTN_MISC && ev->code < KEY_OK)
            printf("SPICE-RS-INPUT: btn code=%d value=%d\n", ev->code, ev->value);
        else
            printf("SPICE-RS-INPUT: key code=%d value=%d\n", ev->code, ev->value);
        break;
    case EV_REL:
        if (ev->code == REL_X) { d->rx += ev->value; d->relp = 1; }
        else if (ev->code == REL_Y) { d->ry += ev->value; d->relp = 1; }
        else if (ev->code == REL_WHEEL) printf("SPICE-RS-INPUT: wheel value=%d\n", ev->value);
        break;
    case EV_ABS:
        if (ev->code == ABS_X) { d->ax = ev->value; d->absp = 1; }
        else if (ev->code == ABS_Y) { d->ay = ev->value; d->absp = 1; }
        break;
    case EV_SYN:
        if (d->relp) printf("SPICE-RS-INPUT: rel x=%d y=%d\n", d->rx, d->ry);
        if (d->absp) printf("SPICE-RS-INPUT: abs x=%d y=%d\n", d->ax, d->ay);
        d->rx = d->ry = d->relp = d->absp = 0;
        break;
    }
}

/* Waits up to timeout_ms for input, reports everything available. */
static void poll_inputs(int timeout_ms)
{
    struct pollfd p[MAXDEV];
    if (timeout_ms < 0) timeout_ms = 0;
    for (int i = 0; i < ndev; i++) p[i] = (struct pollfd){.fd = devs[i].fd, .events = POLLIN};
    if (ndev == 0) { usleep(timeout_ms * 1000); return; }
    if (poll(p, ndev, timeout_ms) <= 0) return;
    int gone = 0;
    for (int i = 0; i < ndev; i++) {
        if (!(p[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
        struct input_event ev[64];
        ssize_t n;
        while ((n = read(devs[i].fd, ev, sizeof ev)) > 0)
            for (size_t k = 0; k < n / sizeof ev[0]; k++) handle(&devs[i], &ev[k]);
        if (n < 0 && errno == ENODEV) {
            /* Unplugged (e.g. a redirected USB device): forget it, so a device that
             * comes back under the same node is opened again. */
            printf("SPICE-RS-GUEST: input %s gone\n", devs[i].node);
            close(devs[i].fd);
            devs[i].fd = -1;
            gone = 1;
        }
    }
    if (gone) {
        int k = 0;
        for (int i = 0; i < ndev; i++)
            if (devs[i].fd >= 0) devs[k++] = devs[i];
        ndev = k;
    }
}

/* Reports the display connectors' preferred mode when it changes: a SPICE client
 * asking for another size (its monitors config) reaches the guest's DRM driver as a
 * hotplug with a new preferred mode. Serial line: SPICE-RS-GUEST: preferred mode WxH */
static void report_preferred_mode(void)
{
    static char last[64];
    DIR *d = opendir("/sys/class/drm");
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strncmp(e->d_name, "card", 4) || !strchr(e->d_name, '-')) continue;
        char path[300], mode[64] = "";
        snprintf(path, sizeof path, "/sys/class/drm/%s/modes", e->d_name);
        FILE *f = fopen(path, "r");
        if (!f) continue;
        if (fgets(mode, sizeof mode, f)) mode[strcspn(mode, "\n")] = 0;
        fclose(f);
        if (!mode[0]) continue; /* a disconnected connector (qxl has several) */
        if (strcmp(mode, last)) {
            snprintf(last, sizeof last, "%s", mode);
            printf("SPICE-RS-GUEST: preferred mode %s\n", mode);
            fflush(stdout);
        }
        break;
    }
    closedir(d);
}

/* Sleeps until the deadline while serving input; rescans devices each second
 * (the usb tablet can appear after the workload started). */
static void wait_until(double deadline)
{
    static double next_scan;
    double t;
    while ((t = now()) < deadline) {
        if (t >= next_scan) { scan_inputs(); report_preferred_mode(); next_scan = t + 1; }
        poll_inputs((int)((deadline - t) * 1000) + 1);
    }
    poll_inputs(0);
}

static void graphics_mode(void)
{
    /* Keep fbcon (text, cursor) off the framebuffer we draw on. */
    int tty = open("/dev/tty0", O_RDWR);
    if (tty >= 0 && ioctl(tty, KDSETMODE, KD_GRAPHICS) < 0)
        printf("SPICE-RS-GUEST: KD_GRAPHICS failed (%s)\n", strerror(errno));
}

/* ------------------------------------------------------------------- modes */
static void run_console(void)
{
    FILE *tty = fopen("/dev/tty0", "w");
    if (tty) {
        fprintf(tty, "\033[?25l\033[2J\033[H"); /* hide cursor, clear */
        for (int i = 1; i <= 20; i++)
            fprintf(tty, "spice-rs console workload line %02d: the quick brown fox jumps over the lazy dog 0123456789\n", i);
        fflush(tty);
    }
    printf("SPICE-RS-GUEST: workload console running\n");
    for (double t = now();; t += 1) wait_until(t + 1);
}

/* ------------------------------------------------------------ desktop in use */
/* desktop_scene=windows|menus|scroll|viewer|mixed: a desktop being used, for the display
 * benchmarks (bench/desktop.py). Every scene advances in steps (scene_fps=10 a second) and
 * what step k draws depends only on the scene and k, so two runs (two servers) see the
 * same pixels. Each scene puts back what it covered before it moves on, so "mixed" (each
 * scene for 5 s in turn: a 20 s cycle) needs no full-screen redraw.
 *   windows  a window opens (frame, title bar, its text appearing), stays, closes; the next
 *            one opens elsewhere, one a second
 *   menus    a menu drops down from the top bar, its items highlighted one by one, closes
 *   scroll   the front window's document scrolls a line up per step (as scroll_fps=)
 *   viewer   an image viewer shows photo-like pictures, the next one every 1.5 s
 * With desktop_scene= given, keys switch scenes (1 windows, 2 menus, 3 scroll, 4 viewer,
 * 5 mixed, 0 none) and P freezes the screen, clock included (the bench compares the
 * client's picture with QEMU's then). Serial lines:
 *   SPICE-RS-GUEST: desktop scene <name>
 *   SPICE-RS-GUEST: desktop paused | desktop resumed */
enum scene { SC_NONE, SC_WINDOWS, SC_MENUS, SC_SCROLL, SC_VIEWER, SC_MIXED, SC_COUNT };
static const char *const scene_names[SC_COUNT] = {"none", "windows", "menus", "scroll", "viewer", "mixed"};
#define MIXED_STEPS 50 /* each scene's turn in "mixed": 5 s at 10 steps/s */


/* The one area a scene covers at a time (a window, a menu, the viewer), kept to be put back. */
static struct {
    int x, y, w, h;
    uint8_t *px;
} under;

static void cover(int x, int y, int w, int h)
{
    int bytes = fb.bpp / 8;
    if (x < 0) { w += x; x = 0; }
    if (y < 0) { h += y; y = 0; }
    if (x + w > fb.w) w = fb.w - x;
    if (y + h > fb.h) h = fb.h - y;
    if (w <= 0 || h <= 0) return;
    under.px = realloc(under.px, (size_t)w * h * bytes);
    under = (typeof(under)){x, y, w, h, under.px};
    for (int j = 0; j < h; j++)
        memcpy(under.px + (size_t)j * w * bytes, fb.mem + (size_t)(y + j) * fb.stride + x * bytes, (size_t)w * bytes);
}

static void uncover(void)
{
    int bytes = fb.bpp / 8;
    for (int j = 0; j < under.h; j++)
        memcpy(fb.mem + (size_t)(under.y + j) * fb.stride + under.x * bytes,
               under.px + (size_t)j * under.w * bytes, (size_t)under.w * bytes);
    under.w = under.h = 0;
}

/* windows: window i opens at step 0 of its second, its text appears in steps 1..5,
 * it closes at step 9. */
static void windows_step(unsigned k)
{
    static const uint32_t titles[] = {0x2050a0, 0x208040, 0x804080, 0xa06020, 0x406080};
    unsigned i = k / 10, s = k % 10;
    rng = 1000 + i * 7;
    int w = fb.w * (3 + (int)(i % 3)) / 8, h = fb.h * (3 + (int)(i % 2)) / 8;
    int x = (int)(rnd() % (unsigned)(fb.w - w - 8)), y = 30 + (int)(rnd() % (unsigned)(fb.h - h - 70));
    int body = (h - 28) / 5;
    if (s == 0) {
        cover(x, y, w + 4, h + 4);
        fill(x + 4, y + 4, w, h, 0x303030);
        fill(x, y, w, h, 0xc0c0c0);
        fill(x + 2, y + 2, w - 4, 22, titles[i % 5]);
        rng = 2000 + i;
        draw_text_block(x + 2, y + 2, w / 3, 22, 0xffffff);
        fill(x + w - 22, y + 5, 16, 16, 0xd04040);
        fill(x + 2, y + 26, w - 4, h - 28, 0xffffff);
    } else if (s <= 5) {
        rng = 3000 + i * 8 + s;
        draw_text_block(x + 2, y + 26 + (int)(s - 1) * body, w - 4, body, 0x202020);
    } else if (s == 9) {
        uncover();
    }
}

/* menus: menu m (of 5 in the top bar) drops down at step 0, items 1..8 highlighted in
 * steps 1..8, closed at step 9. */
#define MENU_ITEMS 8
static void menu_item(int x, int y, int w, unsigned m, int item, int lit)
{
    fill(x, y, w, 24, lit ? 0x3060c0 : 0xe8e8e8);
    rng = 5000 + m * 16 + (unsigned)item;
    draw_text_line(x, y + 8, w * 2 / 3, lit ? 0xffffff : 0x202020);
}

static void menus_step(unsigned k)
{
    unsigned m = (k / 10) % 5, s = k % 10;
    int mx = 8 + (int)m * 60, my = 28, mw = 220, mh = MENU_ITEMS * 24 + 8;
    if (s == 0) {
        cover(mx, 0, mw + 4, my + mh + 4);
        fill(mx, 2, 56, 24, 0x3060c0); /* the menu's title, lit */
        rng = 4000 + m;
        draw_text_line(mx, 10, 56, 0xffffff);
        fill(mx + 4, my + 4, mw, mh, 0x303030);
        fill(mx, my, mw, mh, 0x909090);
        fill(mx + 1, my + 1, mw - 2, mh - 2, 0xe8e8e8);
        for (int i = 0; i < MENU_ITEMS; i++) menu_item(mx + 1, my + 4 + i * 24, mw - 2, m, i, 0);
    } else if (s <= MENU_ITEMS) {
        int i = (int)s - 1;
        if (i) menu_item(mx + 1, my + 4 + (i - 1) * 24, mw - 2, m, i - 1, 0);
        menu_item(mx + 1, my + 4 + i * 24, mw - 2, m, i, 1);
    } else {
        uncover();
    }
}

/* viewer: photo-like pictures (smooth sky and hills, a sun, fine grain), picture n made
 * from n alone when shown: never the same one twice, as when browsing a folder. */
static int tri(int v, int period, int amp) /* a triangle wave, 0..amp */
{
    int p = ((v % period) + period) % period;
    return (p < period / 2 ? p : period - p) * 2 * amp / period;
}

static void draw_photo(int x0, int y0, int pw, int ph, unsigned n)
{
    rng = 9000 + n * 13;
    int sx = (int)(rnd() % (unsigned)pw), sy = ph / 8 + (int)(rnd() % (unsigned)(ph / 4));
    int sr = ph / 12 + (int)(rnd() % 24), r2 = sr * sr * 4;
    int sky[3] = {40 + (int)(rnd() % 80), 90 + (int)(rnd() % 60), 150 + (int)(rnd() % 90)};
    int land[3] = {30 + (int)(rnd() % 90), 60 + (int)(rnd() % 80), 20 + (int)(rnd() % 50)};
    int phase = (int)(rnd() % 400), period = 300 + (int)(rnd() % 300);
    for (int y = 0; y < ph; y++) {
        uint8_t *row = fb.mem + (size_t)(y0 + y) * fb.stride;
        for (int x = 0; x < pw; x++) {
            int ridge = ph / 2 + tri(x + phase, period, ph / 5) + tri(x, 90, 12) - ph / 10;
            int c[3];
            for (int i = 0; i < 3; i++) {
                if (y < ridge) c[i] = sky[i] + (255 - sky[i]) * y / (2 * ridge + 1);
                else c[i] = land[i] * (ph + y - ridge) / (ph + 1) + tri(x + y, 37, 20);
            }
            int dx = x - sx, dy = y - sy, d2 = dx * dx + dy * dy;
            if (y < ridge && d2 < r2) {
                int glow = 120 * (r2 - d2) / r2 + (d2 * 4 < r2 ? 100 : 0);
                c[0] += glow; c[1] += glow * 9 / 10; c[2] += glow / 3;
            }
            for (int i = 0; i < 3; i++) {
                c[i] += (int)(rnd() % 9) - 4; /* grain */
                c[i] = c[i] < 0 ? 0 : c[i] > 255 ? 255 : c[i];
            }
            putpx(row, x0 + x, pack((unsigned)c[0], (unsigned)c[1], (unsigned)c[2]));
        }
    }
}

/* The viewer opens at step 0 of each 50 (5 s), shows a new picture at steps 0, 15, 30,
 * 45 and closes at step 49. */
static void viewer_step(unsigned k)
{
    unsigned s = k % 50;
    int x = fb.w * 3 / 16, y = fb.h / 6, w = fb.w * 5 / 8, h = fb.h * 5 / 8;
    if (s == 49) {
        uncover();
        return;
    }
    if (s == 0) {
        cover(x, y, w + 4, h + 4);
        fill(x + 4, y + 4, w, h, 0x303030);
        fill(x, y, w, h, 0x404040);
        fill(x + 2, y + 2, w - 4, 22, 0x202020);
        rng = 8000;
        draw_text_block(x + 2, y + 2, w / 4, 22, 0xe0e0e0);
    }
    if (s % 15 == 0) draw_photo(x + 2, y + 26, w - 4, h - 28, (k / 50) * 4 + s / 15);
}

static unsigned scroll_seed = 777; /* the document's next line, continued across turns */

static void scene_step(enum scene sc, unsigned k)
{
    switch (sc) {
    case SC_WINDOWS: windows_step(k); break;
    case SC_MENUS: menus_step(k); break;
    case SC_SCROLL:
        rng = scroll_seed;
        scroll_text(fb.w / 3 + 2, fb.h / 3 + 26, fb.w / 2 - 4, fb.h / 2 - 28);
        scroll_seed = rng;
        break;
    case SC_VIEWER: viewer_step(k); break;
    case SC_MIXED: {
        static const enum scene turns[] = {SC_WINDOWS, SC_MENUS, SC_SCROLL, SC_VIEWER};
        unsigned turn = (k / MIXED_STEPS) % 4, s = k % MIXED_STEPS;
        /* Each scene ends its turn with what it covered put back (windows and menus after
         * 5 whole cycles, the viewer at its step 49) and goes on in its next turn where it
         * left off (new windows, new pictures). */
        scene_step(turns[turn], k / (4 * MIXED_STEPS) * MIXED_STEPS + s);
        break;
    }
    default: break;
    }
}

static enum scene scene_by_name(const char *name)
{
    for (int i = 0; i < SC_COUNT; i++)
        if (!strcmp(name, scene_names[i])) return (enum scene)i;
    printf("SPICE-RS-GUEST: unknown desktop_scene=%s, using mixed\n", name);
    return SC_MIXED;
}

static void run_desktop_scenes(const char *first)
{
    enum scene sc = scene_by_name(first);
    double fps = atof(arg("scene_fps", "10"));
    if (fps <= 0) fps = 10;
    draw_desktop();
    draw_clock(0);
    printf("SPICE-RS-GUEST: workload desktop running\n");
    printf("SPICE-RS-GUEST: desktop scene %s\n", scene_names[sc]);
    unsigned k = 0, sec = 0;
    int paused = 0;
    double next = now(), next_clock = next + 1;
    for (;;) {
        wait_until(paused ? now() + 0.05 : next < next_clock ? next : next_clock);
        if (video_pause_key != paused) {
            paused = video_pause_key;
            printf("SPICE-RS-GUEST: desktop %s\n", paused ? "paused" : "resumed");
            next = now();
            next_clock = next + 1;
        }
        if (scene_key >= 0) {
            if (under.w) uncover(); /* the scene left: put back what it covered */
            sc = (enum scene)scene_key;
            scene_key = -1;
            k = 0;
            next = now();
            printf("SPICE-RS-GUEST: desktop scene %s\n", scene_names[sc]);
        }
        if (paused) continue;
        double t = now();
        if (t >= next_clock) {
            draw_clock(++sec);
            next_clock += 1;
        }
        if (t >= next) {
            scene_step(sc, k++);
            next += 1 / fps;
            if (next < t - 1 / fps) next = t; /* too slow: no catching up in a burst */
        }
    }
}

static void run_desktop(void)
{
    if (fb_open() < 0) { run_console(); return; }
    graphics_mode();
    const char *scene = arg("desktop_scene", NULL);
    if (scene) { run_desktop_scenes(scene); return; }
    draw_desktop();
    draw_clock(0);
    printf("SPICE-RS-GUEST: workload desktop running\n");
    /* text_fps=N: the front window's text is rewritten N times a second, like a fast
     * scrolling terminal: changes at video rates that are no picture. */
    double text_fps = atof(arg("text_fps", "0"));
    /* scroll_fps=N: the front window's document scrolls one line up N times a second,
     * like reading a long document. */
    double scroll_fps = atof(arg("scroll_fps", "0"));
    int scroll_lines = atoi(arg("scroll_lines", "0")); /* then stop (0: never) */
    int scrolled = 0;
    double t0 = now(), next_text = t0, next_scroll = t0;
    for (unsigned s = 1;; s++) {
        for (; scroll_fps > 0 && next_scroll < t0 + s; next_scroll += 1 / scroll_fps) {
            if (scroll_lines && scrolled == scroll_lines) break;
            wait_until(next_scroll);
            scroll_text(fb.w / 3 + 2, fb.h / 3 + 26, fb.w / 2 - 4, fb.h / 2 - 28);
            if (++scrolled == scroll_lines) printf("SPICE-RS-GUEST: scrolled %d lines\n", scrolled);
        }
        for (; text_fps > 0 && next_text < t0 + s; next_text += 1 / text_fps) {
            wait_until(next_text);
            int x = fb.w / 3 + 2, y = fb.h / 3 + 26, w = fb.w / 2 - 4, h = fb.h / 2 - 28;
            fill(x, y, w, h, 0xffffff);
            draw_text_block(x, y, w, h, 0x202020);
        }
        wait_until(t0 + s);
        draw_clock(s);
    }
}

/* Writes the frame-number stamp into one composed row (row y of the region), so the
 * stamp lands together with the frame's pixels and never shows the previous frame. */
static void stamp_row(uint8_t *line, int w, int y, unsigned n)
{
    if (y >= 32) return;
    uint32_t white = pack(255, 255, 255), black = pack(0, 0, 0);
    for (int b = 0; b < 18 && (b + 1) * 16 <= w; b++) {
        int bit = b == 0 ? 1 : b == 1 ? 0 : (n >> (17 - b)) & 1;
        for (int x = b * 16; x < b * 16 + 16; x++) putpx(line, x, bit ? white : black);
    }
}

static void run_video(void)
{
    if (fb_open() < 0) { run_console(); return; }
    graphics_mode();
    double fps = atof(arg("fps", "30"));
    int frame_log = atoi(arg("frame_log", "0"));
    if (fps <= 0) fps = 30;
    int rw = fb.w, rh = fb.h, rx = 0, ry = 0;
    const char *rect = arg("video_rect", "full");
    if (strcmp(rect, "full") && sscanf(rect, "%dx%d+%d+%d", &rw, &rh, &rx, &ry) != 4) {
        printf("SPICE-RS-GUEST: bad video_rect=%s, using full\n", rect);
        rw = fb.w; rh = fb.h; rx = ry = 0;
    }
    if (rx < 0) rx = 0;
    if (ry < 0) ry = 0;
    if (rx + rw > fb.w) rw = fb.w - rx;
    if (ry + rh > fb.h) rh = fb.h - ry;

    /* The clip: mmap the raw disk (page cache keeps it after the first loop). */
    int sw = 320, sh = 180, nframes = 0;
    const uint8_t *clip = NULL;
    char want[64], dev[32] = "";
    snprintf(want, sizeof want, "%s", arg("clip", "megamind"));
    char hdr[4096] = {0};
    int fd = -1;
    for (char d = 'a'; d <= 'z' && fd < 0; d++) {
        snprintf(dev, sizeof dev, "/dev/vd%c", d);
        if (*arg("video_dev", "")) snprintf(dev, sizeof dev, "%s", arg("video_dev", ""));
        if ((fd = open(dev, O_RDONLY)) < 0) break;
        memset(hdr, 0, sizeof hdr);
        char name[64] = "megamind";
        if (pread(fd, hdr, sizeof hdr - 1, 0) > 0) {
            const char *c = strstr(hdr, "\nclip ");
            if (c) sscanf(c + 6, "%63s", name);
        }
        if (strcmp(name, want) && !*arg("video_dev", "")) { close(fd); fd = -1; }
        if (*arg("video_dev", "")) break;
    }
    if (fd >= 0) printf("SPICE-RS-GUEST: clip %s on %s\n", want, dev);
    else printf("SPICE-RS-GUEST: clip %s not found\n", want);
    if (fd >= 0 && sscanf(hdr, "SPRSVID1 %d %d %d BGR", &sw, &sh, &nframes) == 3 && nframes > 0) {
        size_t len = 4096 + (size_t)sw * sh * 3 * nframes;
        void *m = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
        if (m != MAP_FAILED) clip = (const uint8_t *)m + 4096;
    }
    if (!clip) { sw = 320; sh = 180; nframes = 0; printf("SPICE-RS-GUEST: no clip on %s, synthetic frames\n", dev); }
    printf("SPICE-RS-GUEST: video %dx%d frames=%d -> %dx%d+%d+%d fps=%.1f\n", sw, sh, nframes, rw, rh, rx, ry, fps);

    fill(0, 0, fb.w, fb.h, 0x101010);
    int *xmap = malloc(sizeof(int) * rw);
    uint8_t *line = malloc((size_t)rw * 4);
    uint8_t *synth = clip ? NULL : malloc((size_t)sw * sh * 3);
    for (int x = 0; x < rw; x++) xmap[x] = (int)((long)x * sw / rw) * 3;
    printf("SPICE-RS-GUEST: workload video running\n");

    double t0 = now(), next = t0, period = 1.0 / fps, last_report = t0;
    unsigned shown = 0, shown_at_report = 0;
    int paused = 0;
    for (;;) {
        if (video_pause_key != paused) {
            paused = video_pause_key;
            if (paused) printf("SPICE-RS-VIDEO: paused frame=%u\n", (shown - 1) & 0xffff);
            else printf("SPICE-RS-VIDEO: resumed\n");
            next = now();
        }
        if (paused) {
            wait_until(now() + 0.05);
            continue;
        }
        const uint8_t *src;
        if (clip) {
            src = clip + (size_t)(shown % nframes) * sw * sh * 3;
        } else { /* synthetic: moving diagonal bars */
            for (int y = 0; y < sh; y++)
                for (int x = 0; x < sw; x++) {
                    uint8_t *p = synth + ((size_t)y * sw + x) * 3;
                    p[0] = (uint8_t)(x + shown * 4); p[1] = (uint8_t)(y * 2 + shown); p[2] = (uint8_t)((x + y + shown * 8) & 0x80 ? 220 : 40);
                }
            src = synth;
        }
        int bpp = fb.bpp / 8;
        for (int y = 0; y < rh; y++) {
            const uint8_t *srow = src + (size_t)((long)y * sh / rh) * sw * 3;
            if (fb.std32) {
                uint32_t *l = (uint32_t *)line;
                for (int x = 0; x < rw; x++) {
                    const uint8_t *p = srow + xmap[x];
                    l[x] = p[0] | (p[1] << 8) | (p[2] << 16);
                }
            } else {
                for (int x = 0; x < rw; x++) {
                    const uint8_t *p = srow + xmap[x];
                    putpx(line, x, pack(p[2], p[1], p[0]));
                }
            }
            stamp_row(line, rw, y, shown & 0xffff);
            memcpy(fb.mem + (size_t)(ry + y) * fb.stride + (size_t)rx * bpp, line, (size_t)rw * bpp);
        }
        if (frame_log) printf("SPICE-RS-FRAME: %u\n", shown & 0xffff);
        shown++;

        double t = now();
        if (t - last_report >= 1.0) {
            printf("SPICE-RS-VIDEO: frame=%u fps=%.1f\n", shown, (shown - shown_at_report) / (t - last_report));
            last_report = t;
            shown_at_report = shown;
        }
        next += period;
        if (next < t - period) next = t; /* too slow: do not accumulate debt */
        wait_until(next);
    }
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    int fd = open("/proc/cmdline", O_RDONLY);
    if (fd >= 0) {
        ssize_t n = read(fd, cmdline, sizeof cmdline - 1);
        if (n > 0) cmdline[n] = 0;
        close(fd);
    }
    const char *mode = argc > 1 ? argv[1] : arg("workload", "console");
    scan_inputs();
    if (!strcmp(mode, "desktop")) run_desktop();
    else if (!strcmp(mode, "video")) run_video();
    else run_console();
    return 0;
}
