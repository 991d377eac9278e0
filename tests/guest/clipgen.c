/*
 * Generates the test guest's synthetic clips, deterministically (no input, no randomness
 * but a fixed-seed generator), as raw BGR frames on stdout:
 *
 *   clipgen screen W H FRAMES   a screen recording: an editor window on a desktop where
 *                               text is typed a few characters a frame, the document
 *                               scrolls up a line when the window is full, a caret blinks
 *                               and the mouse pointer glides over the screen
 *   clipgen anim W H FRAMES     an animation: flat colours and sharp edges, shapes of
 *                               several sizes moving and bouncing over a flat background,
 *                               a turning windmill
 *
 * tests/guest/build.sh writes them into video-screen.img and video-anim.img.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int W, H;
static uint8_t *px; /* BGR */

static uint32_t seed = 2026;
static unsigned rnd(void) { seed = seed * 1103515245u + 12345u; return (seed >> 16) & 0x7fff; }

static void dot(int x, int y, uint32_t rgb)
{
    if (x < 0 || y < 0 || x >= W || y >= H) return;
    uint8_t *p = px + ((size_t)y * W + x) * 3;
    p[0] = rgb & 255; p[1] = (rgb >> 8) & 255; p[2] = rgb >> 16;
}

static void rect(int x, int y, int w, int h, uint32_t rgb)
{
    for (int j = y; j < y + h; j++)
        for (int i = x; i < x + w; i++) dot(i, j, rgb);
}

static void disc(double cx, double cy, double r, uint32_t rgb)
{
    for (int y = (int)(cy - r); y <= (int)(cy + r) + 1; y++)
        for (int x = (int)(cx - r); x <= (int)(cx + r) + 1; x++)
            if ((x - cx) * (x - cx) + (y - cy) * (y - cy) <= r * r) dot(x, y, rgb);
}

/* A filled convex polygon (a point is inside when on the same side of every edge). */
static void poly(const double *xs, const double *ys, int n, uint32_t rgb)
{
    double x0 = xs[0], x1 = xs[0], y0 = ys[0], y1 = ys[0];
    for (int i = 1; i < n; i++) {
        x0 = fmin(x0, xs[i]); x1 = fmax(x1, xs[i]);
        y0 = fmin(y0, ys[i]); y1 = fmax(y1, ys[i]);
    }
    for (int y = (int)y0; y <= (int)y1; y++)
        for (int x = (int)x0; x <= (int)x1; x++) {
            int pos = 0, neg = 0;
            for (int i = 0; i < n; i++) {
                int j = (i + 1) % n;
                double c = (xs[j] - xs[i]) * (y - ys[i]) - (ys[j] - ys[i]) * (x - xs[i]);
                pos |= c > 0;
                neg |= c < 0;
            }
            if (!(pos && neg)) dot(x, y, rgb);
        }
}

/* ----------------------------------------------------------------- screen */
#define GW 7  /* glyph cell */
#define GH 14
static uint16_t glyph_bits[96][GH];

static void make_glyphs(void)
{
    for (int g = 1; g < 96; g++) /* 0 is the space */
        for (int r = 2; r < GH - 3; r++) {
            unsigned v = rnd();
            /* strokes: a vertical or two, a bar now and then */
            uint16_t row = (uint16_t)((1u << (v % 5)) | ((v & 0x20) ? 1u << ((v >> 6) % 5) : 0));
            if ((r == 2 || r == GH - 4 || r == 6) && (v & 0x400)) row = 0x1f;
            glyph_bits[g][r] = row;
        }
}

static void glyph(int x, int y, int g, uint32_t fg)
{
    for (int r = 0; r < GH; r++)
        for (int c = 0; c < 6; c++)
            if (glyph_bits[g][r] & (1 << c)) dot(x + c, y + r, fg);
}

/* The document: lines of "words", each char a glyph index (0 = space). */
#define COLS 80
static uint8_t doc[512][COLS];
static int doc_len[512];

static void make_doc(int cols)
{
    for (int l = 0; l < 512; l++) {
        int n = 0, end = cols / 3 + (int)(rnd() % (unsigned)(cols * 2 / 3));
        if (rnd() % 7 == 0) end = 0; /* a blank line */
        int indent = (rnd() % 3) * 4;
        for (int k = 0; k < indent && n < end; k++) doc[l][n++] = 0;
        while (n < end) {
            int word = 2 + (int)(rnd() % 8);
            for (int k = 0; k < word && n < end; k++) doc[l][n++] = (uint8_t)(1 + rnd() % 95);
            if (n < end) doc[l][n++] = 0;
        }
        doc_len[l] = n;
    }
}

static void pointer(int x, int y)
{
    /* an arrow: black outline, white inside */
    for (int r = 0; r < 17; r++) {
        int w = r < 12 ? r + 1 : 12 - (r - 12) * 2;
        if (w <= 0) continue;
        for (int c = 0; c < w; c++) {
            int edge = c == 0 || c == w - 1 || r == 16;
            dot(x + c, y + r, edge ? 0x000000 : 0xffffff);
        }
    }
}

static void screen_frame(int f)
{
    /* Layout in proportion to the frame. */
    int wx = W / 10, wy = H / 10, ww = W * 8 / 10, wh = H * 8 / 10;
    int bx = wx + 4, by = wy + 26, bw = ww - 8, bh = wh - 30;
    int cols = bw / GW - 2;
    if (cols > COLS) cols = COLS;
    int rows = bh / GH;

    rect(0, 0, W, H, 0x3a6ea5);                       /* desktop */
    rect(0, H - 24, W, 24, 0x202428);                 /* task bar */
    for (int i = 0; i < 4; i++) rect(6 + i * 30, H - 21, 24, 18, 0x506070 + (uint32_t)i * 0x101010);
    rect(wx + 4, wy + 4, ww, wh, 0x202020);           /* shadow */
    rect(wx, wy, ww, wh, 0xc0c0c0);                   /* frame */
    rect(wx + 2, wy + 2, ww - 4, 22, 0x2050a0);       /* title */
    for (int k = 0; k < 12; k++) glyph(wx + 8 + k * GW, wy + 6, 1 + (k * 7) % 95, 0xffffff);
    rect(wx + ww - 20, wy + 5, 16, 16, 0xd04040);
    rect(bx, by, bw, bh, 0xffffff);                   /* the document */

    /* Typing: 5 characters a frame, a line break costs one; where the typing is. */
    long typed = (long)f * 5;
    int line = 0;
    while (line < 511 && typed > doc_len[line]) typed -= doc_len[line] + 1, line++;
    int col = (int)typed;
    int top = line >= rows ? line - rows + 1 : 0;     /* scrolled so the caret shows */
    for (int r = 0; r < rows && top + r <= line; r++) {
        int l = top + r, n = l == line ? col : doc_len[l];
        for (int k = 0; k < n; k++)
            if (doc[l][k]) glyph(bx + 6 + k * GW, by + r * GH, doc[l][k], 0x202020);
    }
    if ((f / 12) % 2 == 0) rect(bx + 6 + col * GW, by + (line - top) * GH + 1, 2, GH - 2, 0x000000);

    /* The pointer glides along a slow figure. */
    double t = f / 25.0;
    pointer((int)(W / 2 + W * 0.4 * sin(t * 0.7)), (int)(H / 2 + H * 0.35 * sin(t * 1.1 + 1)));
}

/* ------------------------------------------------------------------- anim */
#define SHAPES 14
static struct shape { int kind; double x, y, vx, vy, size; uint32_t rgb; } shapes[SHAPES];

static void make_shapes(void)
{
    static const uint32_t palette[] = {0xe63946, 0xf1c453, 0x2a9d8f, 0x264653, 0xf4a261,
                                       0x8338ec, 0x3a86ff, 0xff006e, 0x06d6a0, 0xffffff};
    for (int i = 0; i < SHAPES; i++) {
        struct shape *s = &shapes[i];
        s->kind = i % 3;
        s->size = H * (0.04 + (rnd() % 100) / 100.0 * (i < 3 ? 0.2 : 0.08));
        s->x = s->size + rnd() % (unsigned)(W - 2 * (int)s->size);
        s->y = s->size + rnd() % (unsigned)(H - 2 * (int)s->size);
        s->vx = ((int)(rnd() % 9) - 4) * W / 640.0 * 1.5 + 0.5;
        s->vy = ((int)(rnd() % 7) - 3) * H / 360.0 * 1.5 + 0.5;
        s->rgb = palette[i % 10];
    }
}

static void anim_frame(int f)
{
    rect(0, 0, W, H, 0x9bd0f5);                       /* sky */
    rect(0, H * 3 / 4, W, H - H * 3 / 4, 0x58a84b);   /* grass */
    /* A windmill turning on the right. */
    double cx = W * 0.8, cy = H * 0.45, a = f * 0.08;
    rect((int)cx - 6, (int)cy, 12, H * 3 / 4 - (int)cy, 0x6b4f3a);
    for (int k = 0; k < 4; k++) {
        double b = a + k * M_PI / 2, l = H * 0.25, w = H * 0.04;
        double xs[4] = {cx + w * cos(b + M_PI / 2), cx + l * cos(b) + w * cos(b + M_PI / 2),
                        cx + l * cos(b) - w * cos(b + M_PI / 2), cx - w * cos(b + M_PI / 2)};
        double ys[4] = {cy + w * sin(b + M_PI / 2), cy + l * sin(b) + w * sin(b + M_PI / 2),
                        cy + l * sin(b) - w * sin(b + M_PI / 2), cy - w * sin(b + M_PI / 2)};
        poly(xs, ys, 4, k % 2 ? 0xf0f0f0 : 0xd04040);
    }
    disc(cx, cy, H * 0.02, 0x303030);
    for (int i = 0; i < SHAPES; i++) {
        struct shape *s = &shapes[i];
        /* position at frame f: a bounce is a reflection of the straight path */
        double span_x = W - 2 * s->size, span_y = H - 2 * s->size;
        double px_ = fmod(fabs(s->x - s->size + s->vx * f), 2 * span_x);
        double py_ = fmod(fabs(s->y - s->size + s->vy * f), 2 * span_y);
        double x = s->size + (px_ < span_x ? px_ : 2 * span_x - px_);
        double y = s->size + (py_ < span_y ? py_ : 2 * span_y - py_);
        double r = s->size;
        if (s->kind == 0) {
            disc(x, y, r, s->rgb);
        } else if (s->kind == 1) {
            rect((int)(x - r), (int)(y - r * 0.7), (int)(2 * r), (int)(1.4 * r), s->rgb);
        } else {
            double t = f * 0.05 * (i % 2 ? 1 : -1);
            double xs[3], ys[3];
            for (int k = 0; k < 3; k++) {
                xs[k] = x + r * cos(t + k * 2 * M_PI / 3);
                ys[k] = y + r * sin(t + k * 2 * M_PI / 3);
            }
            poly(xs, ys, 3, s->rgb);
        }
    }
}

int main(int argc, char **argv)
{
    if (argc != 5 || (strcmp(argv[1], "screen") && strcmp(argv[1], "anim"))) {
        fprintf(stderr, "usage: clipgen screen|anim W H FRAMES > frames.raw\n");
        return 2;
    }
    W = atoi(argv[2]);
    H = atoi(argv[3]);
    int frames = atoi(argv[4]);
    if (W < 64 || H < 64 || frames < 1) return 2;
    px = malloc((size_t)W * H * 3);
    int screen = !strcmp(argv[1], "screen");
    if (screen) {
        make_glyphs();
        make_doc(COLS);
    } else {
        make_shapes();
    }
    for (int f = 0; f < frames; f++) {
        if (screen) screen_frame(f);
        else anim_frame(f);
        if (fwrite(px, 3, (size_t)W * H, stdout) != (size_t)W * H) return 1;
    }
    return 0;
}
