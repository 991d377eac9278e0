/* Seeded random scenarios, included by standin.c after its builders.
 *
 * A random scenario ("rnd_<kind>") fills the primary with 4x4 tiles of 64x48 pixels; tile i of
 * run N draws what seed (N-1)*16+i+1 generates, clipped to the tile, so one stand-in run checks
 * 16 seeds and a difference points at its seed. The run number comes from the scenario's name:
 * "rnd_fill.3" is run 3 (seeds 33-48); plain "rnd_fill" is run 1. Drivers (run.sh,
 * client_compare.py) expand every rnd_ name to QXL_SEED_RUNS runs.
 *
 * A generator gets its tile and a PRNG already seeded; it must keep every drawing inside the
 * tile (tile_clip() clips a drawing to it) so that tiles stay independent of each other. */

#define TILE_COLS 4
#define TILE_ROWS 4
#define TILES (TILE_COLS * TILE_ROWS)
#define TILE_W (W / TILE_COLS)
#define TILE_H (H / TILE_ROWS)

struct tile { QXLRect area; uint32_t seed; };

static uint32_t rnd_run = 1; /* from the scenario name's ".N" suffix */
static uint64_t rng_state;

static void rng_seed(uint32_t seed)
{
    /* splitmix64 of the seed, so neighbouring seeds start far apart */
    uint64_t z = (uint64_t)seed * 0x9E3779B97F4A7C15ull + 0x632BE59BD9B4E019ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    rng_state = (z ^ (z >> 31)) | 1;
}

/* xorshift64*: 32 good bits per call */
static uint32_t rnd(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (uint32_t)((rng_state * 0x2545F4914F6CDD1Dull) >> 32);
}

/* lo <= value < hi (hi > lo) */
static int rnd_in(int lo, int hi) { return lo + (int)(rnd() % (uint32_t)(hi - lo)); }
static int rnd_percent(int p) { return (int)(rnd() % 100) < p; }
static uint32_t rnd_color(void) { return rnd() & 0xffffff; }
static uint32_t rnd_pick(const uint32_t *v, int n) { return v[rnd() % (uint32_t)n]; }

/* a rectangle inside `in`, at least min_w x min_h (clamped to `in`) */
static QXLRect rnd_rect_in(QXLRect in, int min_w, int min_h)
{
    int iw = in.right - in.left, ih = in.bottom - in.top;
    if (min_w > iw) min_w = iw;
    if (min_h > ih) min_h = ih;
    int w = rnd_in(min_w, iw + 1), h = rnd_in(min_h, ih + 1);
    int l = in.left + rnd_in(0, iw - w + 1), t = in.top + rnd_in(0, ih - h + 1);
    return R(l, t, l + w, t + h);
}

/* the drawing clipped to its tile: sometimes the whole tile, sometimes 1-3 rectangles in it
 * (bbox and clip are what the servers intersect; both must stay inside the tile) */
static void tile_clip(QXLDrawable *d, const struct tile *t)
{
    QXLRect rs[3];
    int n = rnd_percent(50) ? 1 : rnd_in(1, 4);
    if (n == 1 && rnd_percent(60)) rs[0] = t->area;
    else
        for (int i = 0; i < n; i++) rs[i] = rnd_rect_in(t->area, 4, 4);
    clip_rects(d, rs, n);
}

/* pixels for random images: the generator fills `px` with w*h values before building */
static uint32_t *rnd_px;
static uint32_t pat_rnd(int x, int y, int w, int h) { (void)h; return rnd_px[y * w + x]; }

enum rnd_look { LOOK_NOISE, LOOK_GRADIENT, LOOK_FLAT, LOOK_CHECKER, LOOKS };

/* w*h pixel values of a random look; `alpha` gives each pixel a random premultiplied alpha
 * (0 and 255 included often), otherwise the top byte is 0 */
static uint32_t *rnd_pixels(int w, int h, int alpha)
{
    uint32_t *p = malloc((size_t)w * h * 4);
    int look = rnd_in(0, LOOKS);
    uint32_t c0 = rnd_color(), c1 = rnd_color();
    int cell = rnd_in(1, 6);
    int a_fixed = rnd_percent(30) ? (rnd_percent(50) ? 255 : 0) : -1;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            uint32_t v;
            switch (look) {
            case LOOK_NOISE: v = rnd_color(); break;
            case LOOK_GRADIENT: v = rgb(x * 255 / (w > 1 ? w - 1 : 1), y * 255 / (h > 1 ? h - 1 : 1), (int)(c0 & 255)); break;
            case LOOK_FLAT: v = c0; break;
            default: v = ((x / cell + y / cell) & 1) ? c0 : c1; break;
            }
            if (alpha) {
                int a = a_fixed >= 0 ? a_fixed : (rnd_percent(20) ? (rnd_percent(50) ? 0 : 255) : rnd_in(0, 256));
                int r = (int)((v >> 16) & 255) * a / 255, g = (int)((v >> 8) & 255) * a / 255, b = (int)(v & 255) * a / 255;
                v = ((uint32_t)a << 24) | rgb(r, g, b);
            }
            p[y * w + x] = v;
        }
    return p;
}

/* the xRGB colour the canvas sees for pixel value v of a bitmap in fmt (palettes from
 * mk_palette) */
static uint32_t canvas_color(uint8_t fmt, uint32_t v)
{
    int n = 0;
    switch (fmt) {
    case SPICE_BITMAP_FMT_1BIT_BE: case SPICE_BITMAP_FMT_1BIT_LE: n = 2; break;
    case SPICE_BITMAP_FMT_4BIT_BE: case SPICE_BITMAP_FMT_4BIT_LE: n = 16; break;
    case SPICE_BITMAP_FMT_8BIT: n = 256; break;
    case SPICE_BITMAP_FMT_16BIT: {
        uint32_t r = (v >> 19) & 31, g = (v >> 11) & 31, b = (v >> 3) & 31;
        return rgb((int)((r << 3) | (r >> 2)), (int)((g << 3) | (g >> 2)), (int)((b << 3) | (b >> 2)));
    }
    default: return v & 0xffffff;
    }
    int i = (int)(v & (uint32_t)(n - 1));
    if (n == 2) return i ? rgb(250, 220, 30) : rgb(20, 30, 120);
    return rgb((i * 37) & 255, (i * 91 + 50) & 255, (255 - i * 13) & 255);
}

/* the canvas colour of the middle pixel of the last rnd_bitmap (a colour key that occurs) */
static uint32_t rnd_last_color;

/* a random 32-bit (or RGBA when alpha) bitmap image of w x h, random chunking and orientation */
static QXLImage *rnd_bitmap(uint8_t fmt, int w, int h)
{
    struct imgopt o = { .topdown = rnd_percent(50), .nchunks = rnd_in(1, 3) };
    /* RND_ONE_CHUNK=1: one data chunk per image (the same seeds otherwise), for the C
     * server, which aborts sending a client an image whose chunks split a row */
    if (getenv("RND_ONE_CHUNK")) o.nchunks = 1;
    rnd_px = rnd_pixels(w, h, fmt == SPICE_BITMAP_FMT_RGBA);
    QXLPalette *pal = NULL;
    if (fmt == SPICE_BITMAP_FMT_1BIT_BE || fmt == SPICE_BITMAP_FMT_1BIT_LE) pal = mk_palette(2, rnd());
    else if (fmt == SPICE_BITMAP_FMT_4BIT_BE || fmt == SPICE_BITMAP_FMT_4BIT_LE) pal = mk_palette(16, rnd());
    else if (fmt == SPICE_BITMAP_FMT_8BIT) pal = mk_palette(256, rnd());
    QXLImage *img = mk_bitmap(fmt, w, h, pat_rnd, &o, pal);
    rnd_last_color = canvas_color(fmt, rnd_px[(h / 2) * w + w / 2]);
    free(rnd_px);
    rnd_px = NULL;
    return img;
}

/* the tile's backdrop, so that rops and blends have varied pixels to work on */
static void tile_backdrop(const struct tile *t)
{
    int w = t->area.right - t->area.left, h = t->area.bottom - t->area.top;
    copy_img(0, t->area, rnd_bitmap(SPICE_BITMAP_FMT_32BIT, w, h), R(0, 0, w, h), SPICE_ROPD_OP_PUT);
}

static void rnd_tiles(void (*gen)(const struct tile *))
{
    fill(0, R(0, 0, W, H), rgb(30, 30, 30), SPICE_ROPD_OP_PUT);
    for (int i = 0; i < TILES; i++) {
        struct tile t;
        int l = (i % TILE_COLS) * TILE_W, top = (i / TILE_COLS) * TILE_H;
        t.area = R(l, top, l + TILE_W, top + TILE_H);
        t.seed = (rnd_run - 1) * TILES + (uint32_t)i + 1;
        rng_seed(t.seed);
        tile_backdrop(&t);
        gen(&t);
    }
}

/* ---- rnd_fill: FILL with a solid or pattern brush, every rop descriptor, masks ---------- */

static const uint32_t ropd_ops[] = {
    SPICE_ROPD_OP_PUT, SPICE_ROPD_OP_OR, SPICE_ROPD_OP_AND, SPICE_ROPD_OP_XOR,
    SPICE_ROPD_OP_BLACKNESS, SPICE_ROPD_OP_WHITENESS, SPICE_ROPD_OP_INVERS,
};

static uint16_t rnd_ropd(void)
{
    uint16_t r = (uint16_t)rnd_pick(ropd_ops, (int)(sizeof(ropd_ops) / sizeof(ropd_ops[0])));
    if (rnd_percent(25)) r |= SPICE_ROPD_INVERS_SRC;
    if (rnd_percent(25)) r |= SPICE_ROPD_INVERS_BRUSH;
    if (rnd_percent(15)) r |= SPICE_ROPD_INVERS_DEST;
    if (rnd_percent(15)) r |= SPICE_ROPD_INVERS_RES;
    return r;
}

static void rnd_brush(QXLBrush *b)
{
    if (rnd_percent(50)) {
        solid(b, rnd_color());
        return;
    }
    static const uint32_t fmts[] = { SPICE_BITMAP_FMT_32BIT, SPICE_BITMAP_FMT_1BIT_BE, SPICE_BITMAP_FMT_8BIT,
                                     SPICE_BITMAP_FMT_24BIT, SPICE_BITMAP_FMT_16BIT, SPICE_BITMAP_FMT_4BIT_BE,
                                     SPICE_BITMAP_FMT_RGBA };
    b->type = SPICE_BRUSH_TYPE_PATTERN;
    b->u.pattern.pat = phys(rnd_bitmap((uint8_t)rnd_pick(fmts, 7), rnd_in(1, 20), rnd_in(1, 20)));
    b->u.pattern.pos.x = rnd_in(-40, 100);
    b->u.pattern.pos.y = rnd_in(-40, 100);
}

static void rnd_mask(QXLQMask *m, QXLRect box)
{
    if (rnd_percent(60)) return;
    int w = rnd_in(1, 70), h = rnd_in(1, 60);
    rnd_px = rnd_pixels(w, h, 0);
    struct imgopt o = { .topdown = rnd_percent(50), .nchunks = 1 };
    uint8_t fmt = rnd_percent(50) ? SPICE_BITMAP_FMT_1BIT_BE : SPICE_BITMAP_FMT_1BIT_LE;
    m->bitmap = phys(mk_bitmap(fmt, w, h, pat_rnd, &o, NULL));
    free(rnd_px);
    rnd_px = NULL;
    m->flags = rnd_percent(30) ? SPICE_MASK_FLAGS_INVERS : 0;
    m->pos.x = rnd_in(-10, w + 10);
    m->pos.y = rnd_in(-10, h + 10);
    (void)box;
}

static void gen_fill(const struct tile *t)
{
    int n = rnd_in(1, 4);
    for (int i = 0; i < n; i++) {
        QXLDrawable *d = mk_draw(0, QXL_DRAW_FILL, rnd_rect_in(t->area, 1, 1), QXL_EFFECT_BLEND);
        if (rnd_percent(8)) d->u.fill.brush.type = SPICE_BRUSH_TYPE_NONE; /* rop with colour 0 */
        else rnd_brush(&d->u.fill.brush);
        d->u.fill.rop_descriptor = rnd_ropd();
        rnd_mask(&d->u.fill.mask, d->bbox);
        tile_clip(d, t);
        push_draw(d, "rnd-fill");
    }
}

static void sc_rnd_fill(void) { rnd_tiles(gen_fill); }
