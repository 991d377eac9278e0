/* Seeded random raster drawings (included by standin.c after random/seeded.c): COPY, BLEND,
 * OPAQUE, ROP3, BLACKNESS / WHITENESS / INVERS and TRANSPARENT, each with random source
 * images (every bitmap format, both row orders, chunked), source areas, scaling (both scale
 * modes), rop descriptors, brushes and masks, clipped to their tile (see seeded.c). */

/* the bitmap formats a source image may have (palettes for the paletted ones); not 1BIT_LE
 * and 4BIT_LE: spice-common's spice_bitmap_to_pixman has no conversion for them and
 * spice_error()s (aborts the C server) */
static const uint32_t src_fmts[] = {
    SPICE_BITMAP_FMT_32BIT, SPICE_BITMAP_FMT_24BIT, SPICE_BITMAP_FMT_16BIT, SPICE_BITMAP_FMT_8BIT,
    SPICE_BITMAP_FMT_4BIT_BE, SPICE_BITMAP_FMT_1BIT_BE, SPICE_BITMAP_FMT_RGBA,
};

/* a random source: an image of a random format and size, an area inside it, and the
 * destination box inside the tile (the area's size, or another one: scaled) */
struct rnd_src { QXLImage *img; QXLRect area; QXLRect bbox; uint8_t scale_mode; };

/* QXL_DRAWS=bits: push only the drawings whose index (in their tile) has its bit set, to
 * find which drawing of a differing seed differs */
static int skip_draw(int i)
{
    const char *e = getenv("QXL_DRAWS");
    return e && !((strtoul(e, NULL, 0) >> i) & 1);
}

/* QXL_TRACE=1: each drawing's parameters on stderr, to read a differing seed */
static void trace_src(const char *what, const struct tile *t, const struct rnd_src *s)
{
    if (!getenv("QXL_TRACE")) return;
    fprintf(stderr, "seed %u %s fmt=%u img=%ux%u top_down=%d area=(%d,%d)-(%d,%d) bbox=(%d,%d)-(%d,%d) scale=%u\n",
            t->seed, what, s->img->bitmap.format, s->img->bitmap.x, s->img->bitmap.y,
            !!(s->img->bitmap.flags & QXL_BITMAP_TOP_DOWN), s->area.left, s->area.top, s->area.right,
            s->area.bottom, s->bbox.left, s->bbox.top, s->bbox.right, s->bbox.bottom, s->scale_mode);
}

static void trace_brush(const struct tile *t, const QXLBrush *b, const QXLQMask *m, unsigned rop)
{
    if (!getenv("QXL_TRACE")) return;
    if (b && b->type == SPICE_BRUSH_TYPE_PATTERN) {
        const QXLImage *p = (const QXLImage *)(bar + (b->u.pattern.pat & 0xffffffffffffull) - BAR_PHYS);
        fprintf(stderr, "seed %u   brush pattern fmt=%u %ux%u top_down=%d pos=(%d,%d)", t->seed, p->bitmap.format,
                p->bitmap.x, p->bitmap.y, !!(p->bitmap.flags & QXL_BITMAP_TOP_DOWN), b->u.pattern.pos.x,
                b->u.pattern.pos.y);
    } else if (b) {
        fprintf(stderr, "seed %u   brush type=%u color=%06x", t->seed, b->type, b->u.color);
    } else {
        fprintf(stderr, "seed %u  ", t->seed);
    }
    fprintf(stderr, " rop=%#x mask=%s flags=%u pos=(%d,%d)\n", rop, m && m->bitmap ? "yes" : "no",
            m ? m->flags : 0, m ? m->pos.x : 0, m ? m->pos.y : 0);
}

static struct rnd_src rnd_source(const struct tile *t, int allow_scale)
{
    struct rnd_src s;
    uint8_t fmt = (uint8_t)rnd_pick(src_fmts, (int)(sizeof(src_fmts) / sizeof(src_fmts[0])));
    int w = rnd_in(1, 48), h = rnd_in(1, 40);
    s.img = rnd_bitmap(fmt, w, h);
    s.area = rnd_percent(40) ? R(0, 0, w, h) : rnd_rect_in(R(0, 0, w, h), 1, 1);
    int aw = s.area.right - s.area.left, ah = s.area.bottom - s.area.top;
    int tw = t->area.right - t->area.left, th = t->area.bottom - t->area.top;
    if (allow_scale && rnd_percent(40)) {
        /* scaled: any size up to the tile, often an integer factor or a shrink */
        int bw, bh;
        switch (rnd_in(0, 3)) {
        case 0: bw = aw * rnd_in(1, 4); bh = ah * rnd_in(1, 4); break;
        case 1: bw = aw / rnd_in(1, 4); bh = ah / rnd_in(1, 4); break;
        default: bw = rnd_in(1, tw + 1); bh = rnd_in(1, th + 1); break;
        }
        if (bw < 1) bw = 1;
        if (bh < 1) bh = 1;
        if (bw > tw) bw = tw;
        if (bh > th) bh = th;
        int l = t->area.left + rnd_in(0, tw - bw + 1), top = t->area.top + rnd_in(0, th - bh + 1);
        s.bbox = R(l, top, l + bw, top + bh);
    } else {
        if (aw > tw) aw = tw;
        if (ah > th) ah = th;
        s.area.right = s.area.left + aw;
        s.area.bottom = s.area.top + ah;
        int l = t->area.left + rnd_in(0, tw - aw + 1), top = t->area.top + rnd_in(0, th - ah + 1);
        s.bbox = R(l, top, l + aw, top + ah);
    }
    s.scale_mode = rnd_percent(50) ? SPICE_IMAGE_SCALE_MODE_NEAREST : SPICE_IMAGE_SCALE_MODE_INTERPOLATE;
    return s;
}

/* QXL_EFFECT_OPAQUE only for a drawing that covers its whole box (the C server drops the
 * drawings an OPAQUE one covers, as the guest promises, even when a mask makes it not) */
static void honest_effect(QXLDrawable *d, int covers, const QXLQMask *mask)
{
    d->effect = covers && !mask->bitmap && rnd_percent(70) ? QXL_EFFECT_OPAQUE : QXL_EFFECT_BLEND;
}

/* COPY and BLEND share their layout (QXLCopy == QXLBlend) */
static void gen_copy_like(const struct tile *t, uint8_t type)
{
    int n = rnd_in(1, 4);
    for (int i = 0; i < n; i++) {
        struct rnd_src s = rnd_source(t, 1);
        uint16_t rop = rnd_percent(30) ? SPICE_ROPD_OP_PUT : rnd_ropd();
        QXLDrawable *d = mk_draw(0, type, s.bbox, QXL_EFFECT_BLEND);
        QXLCopy *c = type == QXL_DRAW_COPY ? &d->u.copy : &d->u.blend;
        c->src_bitmap = phys(s.img);
        c->src_area = s.area;
        c->rop_descriptor = rop;
        c->scale_mode = s.scale_mode;
        rnd_mask(&c->mask, d->bbox);
        honest_effect(d, rop == SPICE_ROPD_OP_PUT, &c->mask);
        trace_src("copy", t, &s);
        trace_brush(t, NULL, &c->mask, rop);
        tile_clip(d, t);
        if (skip_draw(i)) continue;
        push_draw(d, type == QXL_DRAW_COPY ? "rnd-copy" : "rnd-blend");
    }
}

static void gen_copy(const struct tile *t) { gen_copy_like(t, QXL_DRAW_COPY); }
static void gen_blend(const struct tile *t) { gen_copy_like(t, QXL_DRAW_BLEND); }

static void gen_opaque(const struct tile *t)
{
    int n = rnd_in(1, 4);
    for (int i = 0; i < n; i++) {
        struct rnd_src s = rnd_source(t, 1);
        QXLDrawable *d = mk_draw(0, QXL_DRAW_OPAQUE, s.bbox, QXL_EFFECT_OPAQUE);
        d->u.opaque.src_bitmap = phys(s.img);
        d->u.opaque.src_area = s.area;
        if (rnd_percent(10)) d->u.opaque.brush.type = SPICE_BRUSH_TYPE_NONE;
        else rnd_brush(&d->u.opaque.brush);
        d->u.opaque.rop_descriptor = rnd_ropd();
        d->u.opaque.scale_mode = s.scale_mode;
        rnd_mask(&d->u.opaque.mask, d->bbox);
        honest_effect(d, 1, &d->u.opaque.mask);
        trace_src("opaque", t, &s);
        trace_brush(t, &d->u.opaque.brush, &d->u.opaque.mask, d->u.opaque.rop_descriptor);
        tile_clip(d, t);
        if (skip_draw(i)) continue;
        push_draw(d, "rnd-opaque");
    }
}

/* the 218 codes spice-common's rop3.c implements (the other 38 abort the C canvas) */
static int rop3_implemented(uint8_t c)
{
    static const uint8_t missing[] = { 0x00, 0x03, 0x05, 0x0a, 0x0c, 0x0f, 0x11, 0x22, 0x30, 0x33, 0x3c,
                                       0x3f, 0x44, 0x50, 0x55, 0x5a, 0x5f, 0x66, 0x77, 0x88, 0x99, 0xa0,
                                       0xa5, 0xaa, 0xaf, 0xbb, 0xc0, 0xc3, 0xcc, 0xcf, 0xdd, 0xee, 0xf0,
                                       0xf3, 0xf5, 0xfa, 0xfc, 0xff };
    for (size_t i = 0; i < sizeof(missing); i++)
        if (missing[i] == c) return 0;
    return 1;
}

static void gen_rop3(const struct tile *t)
{
    int n = rnd_in(1, 4);
    for (int i = 0; i < n; i++) {
        struct rnd_src s = rnd_source(t, 1);
        QXLDrawable *d = mk_draw(0, QXL_DRAW_ROP3, s.bbox, QXL_EFFECT_BLEND);
        d->u.rop3.src_bitmap = phys(s.img);
        d->u.rop3.src_area = s.area;
        rnd_brush(&d->u.rop3.brush);
        if (d->u.rop3.brush.type == SPICE_BRUSH_TYPE_PATTERN) {
            /* the pattern's origin left of and above the box (right of or below it, the
             * canvas reads outside the pattern: rnd_rop3_origin) */
            d->u.rop3.brush.u.pattern.pos.x = s.bbox.left - rnd_in(0, 50);
            d->u.rop3.brush.u.pattern.pos.y = s.bbox.top - rnd_in(0, 50);
        }
        uint8_t code;
        do code = (uint8_t)rnd(); while (!rop3_implemented(code));
        d->u.rop3.rop3 = code;
        d->u.rop3.scale_mode = s.scale_mode;
        rnd_mask(&d->u.rop3.mask, d->bbox);
        trace_src("rop3", t, &s);
        trace_brush(t, &d->u.rop3.brush, &d->u.rop3.mask, code);
        tile_clip(d, t);
        if (skip_draw(i)) continue;
        push_draw(d, "rnd-rop3");
    }
}

/* ROP3 with a pattern whose origin lies right of or below the box: spice-common starts the
 * pattern at (box - origin) % size, negative there (C's remainder) */
static void gen_rop3_origin(const struct tile *t)
{
    struct rnd_src s = rnd_source(t, 0);
    QXLDrawable *d = mk_draw(0, QXL_DRAW_ROP3, s.bbox, QXL_EFFECT_BLEND);
    d->u.rop3.src_bitmap = phys(s.img);
    d->u.rop3.src_area = s.area;
    do rnd_brush(&d->u.rop3.brush); while (d->u.rop3.brush.type != SPICE_BRUSH_TYPE_PATTERN);
    int right = rnd_percent(60), below = !right || rnd_percent(40);
    d->u.rop3.brush.u.pattern.pos.x = s.bbox.left + (right ? rnd_in(1, 30) : -rnd_in(0, 30));
    d->u.rop3.brush.u.pattern.pos.y = s.bbox.top + (below ? rnd_in(1, 30) : -rnd_in(0, 30));
    uint8_t code;
    do code = (uint8_t)rnd(); while (!rop3_implemented(code) || !((code ^ (code >> 4)) & 0x0f));
    d->u.rop3.rop3 = code; /* one that depends on the pattern */
    d->u.rop3.scale_mode = s.scale_mode;
    trace_src("rop3-origin", t, &s);
    trace_brush(t, &d->u.rop3.brush, &d->u.rop3.mask, d->u.rop3.rop3);
    tile_clip(d, t);
    push_draw(d, "rnd-rop3-origin");
}

static void gen_bwi(const struct tile *t)
{
    static const uint32_t types[] = { QXL_DRAW_BLACKNESS, QXL_DRAW_WHITENESS, QXL_DRAW_INVERS };
    int n = rnd_in(1, 5);
    for (int i = 0; i < n; i++) {
        uint8_t type = (uint8_t)rnd_pick(types, 3);
        QXLDrawable *d = mk_draw(0, type, rnd_rect_in(t->area, 1, 1), QXL_EFFECT_BLEND);
        rnd_mask(&d->u.blackness.mask, d->bbox); /* the three share QXLBlackness */
        tile_clip(d, t);
        if (skip_draw(i)) continue;
        push_draw(d, "rnd-bwi");
    }
}

static void gen_transparent(const struct tile *t)
{
    int n = rnd_in(1, 4);
    for (int i = 0; i < n; i++) {
        struct rnd_src s = rnd_source(t, 1);
        QXLDrawable *d = mk_draw(0, QXL_DRAW_TRANSPARENT, s.bbox, QXL_EFFECT_BLEND);
        d->u.transparent.src_bitmap = phys(s.img);
        d->u.transparent.src_area = s.area;
        /* the key: usually a colour of the image (its middle pixel), sometimes any; the
         * top byte, which the canvas ignores, sometimes set */
        uint32_t key = rnd_percent(80) ? rnd_last_color : rnd_color();
        if (rnd_percent(20)) key |= rnd() & 0xff000000u;
        d->u.transparent.src_color = key;
        d->u.transparent.true_color = key;
        tile_clip(d, t);
        if (skip_draw(i)) continue;
        push_draw(d, "rnd-transparent");
    }
}

static void sc_rnd_copy(void) { rnd_tiles(gen_copy); }
static void sc_rnd_blend(void) { rnd_tiles(gen_blend); }
static void sc_rnd_opaque(void) { rnd_tiles(gen_opaque); }
static void sc_rnd_rop3(void) { rnd_tiles(gen_rop3); }
static void sc_rnd_rop3_origin(void) { rnd_tiles(gen_rop3_origin); }
static void sc_rnd_bwi(void) { rnd_tiles(gen_bwi); }
static void sc_rnd_transparent(void) { rnd_tiles(gen_transparent); }
