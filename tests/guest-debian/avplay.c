/*
 * avplay: a tiny A/V player for the Debian test guest (the A/V sync test,
 * tests/e2e/test_av_sync.py). It plays sound on ALSA and draws a video in an X window,
 * keeping the video on the AUDIO clock as mpv and GStreamer do.
 *
 *   avplay SECONDS [DEVICE [X Y [BUFFER_MS]]]
 *       DEVICE: plughw:0; X Y: the window's top-left, 0 0; BUFFER_MS: the device buffer, 100
 *
 * Sound: S16 stereo at 48 kHz, a short device buffer (GStreamer's alsasink takes 200 ms;
 * under 100 ms QEMU's HDA codec, which moves the guest's DMA data in 2048-frame (43 ms)
 * blocks, underruns a TCG guest). A low 440 Hz tone throughout, and
 * a 50 ms 1 kHz beep (much louder, sharp onset) at the start of every second.
 * Video: a 320x240 window at 30 fps whose content changes every frame (a moving bar), so
 * the server sends it as a video stream. Frame k is drawn when the audio clock (frames
 * written minus snd_pcm_delay, i.e. what the device has played) reaches k/30 s; when
 * frames are late, only the newest due one is drawn (a player drops frames, not sync).
 * Frames 30*s are "flashes" (a white body) and start together with beep s.
 * Each frame carries the e2e client's 16-bit stamp (tests/guest/workload.c): 18 blocks of
 * 16x32 at the window's top-left, block 0 white, block 1 black, then k (mod 65536), MSB
 * first, white = 1.
 *
 * stdout, one line a second and one at the end (the test reads them):
 *   AVPLAY: second=S frame=K drawn=N skipped=M underruns=U delay_frames=D
 *   AVPLAY: done drawn=N skipped=M underruns=U
 * Build: gcc -O2 -o avplay avplay.c -lasound -lX11
 */
#include <alsa/asoundlib.h>
#include <X11/Xlib.h>
#include <X11/Xutil.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define RATE 48000
#define FPS 30
#define W 320
#define H 240
#define CHUNK 240            /* frames written at a time (5 ms) */
#define BEEP_FRAMES (RATE / 20)
#define BEEP_HZ 1000
#define TONE_HZ 440
#define BEEP_AMP (0.5 * 32767)
#define TONE_AMP (0.03 * 32767)

static int16_t sample_at(long pos)
{
    long in_second = pos % RATE;
    double t = (double)in_second / RATE;
    double v = TONE_AMP * sin(2 * M_PI * TONE_HZ * t);
    if (in_second < BEEP_FRAMES) v += BEEP_AMP * sin(2 * M_PI * BEEP_HZ * t);
    return (int16_t)lrint(v);
}

/* Pixels written straight into the image (32 bits a pixel, depth 24: XRGB). */
static inline void put(XImage *img, int x, int y, uint32_t px)
{
    ((uint32_t *)(img->data + y * img->bytes_per_line))[x] = px;
}

static void stamp(XImage *img, unsigned n)
{
    for (int y = 0; y < 32; y++)
        for (int b = 0; b < 18; b++) {
            int bit = b == 0 ? 1 : b == 1 ? 0 : (n >> (17 - b)) & 1;
            for (int x = b * 16; x < b * 16 + 16; x++) put(img, x, y, bit ? 0xffffff : 0);
        }
}

static void paint(XImage *img, long k)
{
    int flash = k % FPS == 0;
    int bar = (int)(k * 8 % W);
    for (int y = 32; y < H; y++)
        for (int x = 0; x < W; x++) {
            uint32_t px;
            if (flash) px = 0xffffff;
            else if (x >= bar && x < bar + 24) px = 0xff4000;
            else px = (uint32_t)((x + k * 3) & 0xff) | (((y + k) & 0xff) << 8) | 0x200000;
            put(img, x, y, px);
        }
    stamp(img, (unsigned)(k & 0xffff));
}

int main(int argc, char **argv)
{
    int seconds = argc > 1 ? atoi(argv[1]) : 10;
    const char *dev = argc > 2 ? argv[2] : "plughw:0";
    int wx = argc > 4 ? atoi(argv[3]) : 0, wy = argc > 4 ? atoi(argv[4]) : 0;
    int buffer_ms = argc > 5 ? atoi(argv[5]) : 100;
    setvbuf(stdout, NULL, _IOLBF, 0);

    Display *dpy = XOpenDisplay(NULL);
    if (!dpy) { printf("AVPLAY: error no X display\n"); return 1; }
    int scr = DefaultScreen(dpy);
    XSetWindowAttributes attr = {.override_redirect = True, .background_pixel = 0};
    Window win = XCreateWindow(dpy, RootWindow(dpy, scr), wx, wy, W, H, 0,
                               DefaultDepth(dpy, scr), InputOutput, DefaultVisual(dpy, scr),
                               CWOverrideRedirect | CWBackPixel, &attr);
    XMapRaised(dpy, win);
    GC gc = XCreateGC(dpy, win, 0, NULL);
    char *pix = malloc(W * H * 4);
    XImage *img = XCreateImage(dpy, DefaultVisual(dpy, scr), DefaultDepth(dpy, scr), ZPixmap,
                               0, pix, W, H, 32, 0);
    if (img->bits_per_pixel != 32) { printf("AVPLAY: error %d bpp\n", img->bits_per_pixel); return 1; }
    XSync(dpy, False);

    snd_pcm_t *pcm;
    int err = snd_pcm_open(&pcm, dev, SND_PCM_STREAM_PLAYBACK, 0);
    if (err < 0) { printf("AVPLAY: error open %s: %s\n", dev, snd_strerror(err)); return 1; }
    err = snd_pcm_set_params(pcm, SND_PCM_FORMAT_S16_LE, SND_PCM_ACCESS_RW_INTERLEAVED, 2, RATE,
                             1, (unsigned)buffer_ms * 1000);
    if (err < 0) { printf("AVPLAY: error params: %s\n", snd_strerror(err)); return 1; }
    snd_pcm_uframes_t bufsize, period;
    snd_pcm_get_params(pcm, &bufsize, &period);
    printf("AVPLAY: start device=%s buffer_frames=%lu period_frames=%lu seconds=%d\n", dev,
           (unsigned long)bufsize, (unsigned long)period, seconds);

    long total = (long)seconds * RATE, written = 0, shown = -1;
    long drawn = 0, skipped = 0, underruns = 0, reported = 0;
    int16_t buf[CHUNK * 2];
    snd_pcm_sframes_t delay = 0;
    while (written < total || shown < (long)seconds * FPS - 1) {
        /* Keep the device's buffer full; snd_pcm_writei blocks until there is room for
         * this chunk, so the loop wakes every CHUNK frames. */
        if (written < total) {
            long n = total - written < CHUNK ? total - written : CHUNK;
            for (long i = 0; i < n; i++) buf[2 * i] = buf[2 * i + 1] = sample_at(written + i);
            snd_pcm_sframes_t w = snd_pcm_writei(pcm, buf, n);
            if (w < 0) {
                if (w == -EPIPE) underruns++;
                snd_pcm_recover(pcm, (int)w, 1);
                continue;
            }
            written += w;
        } else {
            usleep(2000);
        }
        if (snd_pcm_delay(pcm, &delay) < 0) delay = 0;
        long played = written - delay;
        if (played < 0) played = 0;
        long due = played * FPS / RATE;
        if (due >= (long)seconds * FPS) due = (long)seconds * FPS - 1;
        if (due > shown) {
            skipped += due - shown - 1;
            shown = due;
            paint(img, shown);
            XPutImage(dpy, win, gc, img, 0, 0, 0, 0, W, H);
            XFlush(dpy);
            drawn++;
        }
        if (written >= total && delay <= 0) {
            if (shown >= (long)seconds * FPS - 1) break;
        }
        if (played / RATE > reported) {
            reported = played / RATE;
            printf("AVPLAY: second=%ld frame=%ld drawn=%ld skipped=%ld underruns=%ld "
                   "delay_frames=%ld\n", reported, shown, drawn, skipped, underruns, (long)delay);
        }
    }
    snd_pcm_drain(pcm);
    snd_pcm_close(pcm);
    printf("AVPLAY: done drawn=%ld skipped=%ld underruns=%ld\n", drawn, skipped, underruns);
    XDestroyWindow(dpy, win);
    XCloseDisplay(dpy);
    return 0;
}
