/* ---- rnd_surfaces: off-screen surfaces in every format, drawn on and drawn from -------- *
 *
 * Each tile creates an off-screen surface (32-bit xRGB or ARGB, 16-bit 565 or 555; positive
 * or negative stride; KEEP_DATA over random guest pixels or not), draws on it (solid fills
 * with any rop descriptor, copies of bitmaps of several formats, alpha blends of RGBA or
 * opaque bitmaps with and without SRC_SURFACE_HAS_ALPHA and DEST_HAS_ALPHA, COMPOSITE with
 * any operator, so that an ARGB surface's alpha takes part), then draws it onto the primary
 * (COPY, or ALPHA_BLEND using its alpha), asks for update_area on it and shows its guest
 * memory in the tile, byte for byte, so both servers are compared on what they wrote back
 * (alpha included for ARGB). Sometimes the same id is created again over the same memory
 * with KEEP_DATA (another format, maybe) and drawn from. Some drawings carry the
 * QXL_COMMAND_FLAG_COMPAT_16BPP command flag (16-bit brush colours and palettes).
 *
 * Tile layout (64x48): the left 32 columns receive the surface; columns 32-63 show its memory,
 * rows 0-23 the colour bits, rows 24-47 the alpha byte (ARGB) or the high byte (16-bit). */

#define SURF_MAX_W 30
#define SURF_MAX_H 22

static const uint32_t surf_fmts[] = {
    SPICE_SURFACE_FMT_32_xRGB, SPICE_SURFACE_FMT_32_ARGB, SPICE_SURFACE_FMT_16_565, SPICE_SURFACE_FMT_16_555,
};

struct rsurf {
    uint32_t sid, fmt;
    int w, h, neg;
    uint32_t pitch; /* |stride| */
    uint8_t *mem;   /* lowest address */
};

static int surf_bpp(uint32_t fmt) { return (fmt == SPICE_SURFACE_FMT_16_565 || fmt == SPICE_SURFACE_FMT_16_555) ? 2 : 4; }

static void rsurf_create(struct rsurf *s, int keep)
{
    QXLSurfaceCmd *c = galloc(sizeof(QXLSurfaceCmd));
    c->surface_id = s->sid;
    c->type = QXL_SURFACE_CMD_CREATE;
    c->flags = keep ? QXL_SURF_FLAG_KEEP_DATA : 0;
    c->u.surface_create.format = s->fmt;
    c->u.surface_create.width = (uint32_t)s->w;
    c->u.surface_create.height = (uint32_t)s->h;
    c->u.surface_create.stride = s->neg ? -(int32_t)s->pitch : (int32_t)s->pitch;
    c->u.surface_create.data = phys(s->mem);
    issue(&c->release_info, keep ? "surface-create-keep" : "surface-create");
    qpush(&cmdq, phys(c), QXL_CMD_SURFACE);
}

static void rsurf_destroy(const struct rsurf *s)
{
    QXLSurfaceCmd *c = galloc(sizeof(QXLSurfaceCmd));
    c->surface_id = s->sid;
    c->type = QXL_SURFACE_CMD_DESTROY;
    issue(&c->release_info, "surface-destroy");
    qpush(&cmdq, phys(c), QXL_CMD_SURFACE);
}

/* a random colour for a surface of format fmt: 16-bit surfaces take the colour in their own
 * format (the low 16 bits); the top bits are random too, as a guest may leave them */
static uint32_t surf_color(void)
{
    return rnd_percent(50) ? rnd() : rnd_color() | (rnd_percent(50) ? 0xff000000u : 0);
}

static void surf_draw_fill(const struct rsurf *s, QXLRect box)
{
    uint16_t rop = rnd_percent(50) ? SPICE_ROPD_OP_PUT : rnd_ropd();
    QXLDrawable *d = mk_draw(s->sid, QXL_DRAW_FILL, box, rop == SPICE_ROPD_OP_PUT ? QXL_EFFECT_OPAQUE : QXL_EFFECT_BLEND);
    solid(&d->u.fill.brush, surf_color());
    d->u.fill.rop_descriptor = rop;
    if (getenv("QXL_DESCRIBE")) fprintf(stderr, "  fill %08x rop %x\n", d->u.fill.brush.u.color, rop);
    push_draw(d, "surf-fill");
}

static void surf_draw_copy(const struct rsurf *s, QXLRect box)
{
    static const uint32_t fmts[] = { SPICE_BITMAP_FMT_32BIT, SPICE_BITMAP_FMT_RGBA, SPICE_BITMAP_FMT_24BIT,
                                     SPICE_BITMAP_FMT_16BIT, SPICE_BITMAP_FMT_8BIT };
    int w = box.right - box.left, h = box.bottom - box.top;
    uint16_t rop = rnd_percent(60) ? SPICE_ROPD_OP_PUT : rnd_ropd();
    /* spice-common has no palette conversion to 565 (the C server aborts) */
    int nfmts = s->fmt == SPICE_SURFACE_FMT_16_565 ? 4 : 5;
    QXLImage *img = rnd_bitmap((uint8_t)rnd_pick(fmts, nfmts), w, h);
    QXLDrawable *d = mk_draw(s->sid, QXL_DRAW_COPY, box, rop == SPICE_ROPD_OP_PUT ? QXL_EFFECT_OPAQUE : QXL_EFFECT_BLEND);
    d->u.copy.src_bitmap = phys(img);
    d->u.copy.src_area = R(0, 0, w, h);
    d->u.copy.rop_descriptor = rop;
    d->u.copy.scale_mode = SPICE_IMAGE_SCALE_MODE_NEAREST;
    if (getenv("QXL_DESCRIBE")) fprintf(stderr, "  copy fmt %u rop %x\n", img->bitmap.format, rop);
    push_draw(d, "surf-copy");
}

static void surf_draw_alpha(const struct rsurf *s, QXLRect box)
{
    int w = box.right - box.left, h = box.bottom - box.top;
    QXLDrawable *d = mk_draw(s->sid, QXL_DRAW_ALPHA_BLEND, box, QXL_EFFECT_BLEND);
    int rgba = rnd_percent(70);
    d->u.alpha_blend.alpha_flags = rnd_percent(60) ? SPICE_ALPHA_FLAGS_SRC_SURFACE_HAS_ALPHA : 0;
    /* an xRGB surface's X byte then keeps the blended alpha (read back by to-primary) */
    if (rnd_percent(40)) d->u.alpha_blend.alpha_flags |= SPICE_ALPHA_FLAGS_DEST_HAS_ALPHA;
    d->u.alpha_blend.alpha = (uint8_t)(rnd_percent(40) ? 255 : rnd_in(0, 256));
    d->u.alpha_blend.src_bitmap = phys(rnd_bitmap(rgba ? SPICE_BITMAP_FMT_RGBA : SPICE_BITMAP_FMT_32BIT, w, h));
    d->u.alpha_blend.src_area = R(0, 0, w, h);
    if (getenv("QXL_DESCRIBE")) fprintf(stderr, "  alpha rgba %d flags %u alpha %u\n", rgba, d->u.alpha_blend.alpha_flags, d->u.alpha_blend.alpha);
    push_draw(d, "surf-alpha");
}

/* COMPOSITE on the surface: any operator (an ARGB destination's alpha takes part), an RGBA
 * or 32-bit source, sometimes an A8 or RGBA mask, nearest sampling without a transform */
static void surf_draw_composite(const struct rsurf *s, QXLRect box)
{
    static const uint32_t ops[] = {
        0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d,
        0x30, 0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3a, 0x3b, 0x3c, 0x3d, 0x3e,
    };
    int w = box.right - box.left, h = box.bottom - box.top;
    QXLDrawable *d = mk_draw(s->sid, QXL_DRAW_COMPOSITE, box, QXL_EFFECT_BLEND);
    QXLComposite *c = &d->u.composite;
    uint32_t flags = rnd_pick(ops, (int)(sizeof(ops) / sizeof(ops[0])));
    c->src = phys(rnd_bitmap(rnd_percent(70) ? SPICE_BITMAP_FMT_RGBA : SPICE_BITMAP_FMT_32BIT, w, h));
    if (rnd_percent(40)) {
        c->mask = phys(rnd_bitmap(rnd_percent(50) ? SPICE_BITMAP_FMT_8BIT_A : SPICE_BITMAP_FMT_RGBA, w, h));
        if (rnd_percent(30)) flags |= SPICE_COMPOSITE_COMPONENT_ALPHA;
    }
    if (rnd_percent(20)) flags |= SPICE_COMPOSITE_DEST_OPAQUE;
    c->flags = flags;
    if (getenv("QXL_DESCRIBE")) fprintf(stderr, "  composite flags %x mask %d\n", flags, c->mask != 0);
    push_draw(d, "surf-composite");
}

/* the surface (or a part of it) onto the primary, in the tile's left half */
static void surf_to_primary(const struct rsurf *s, const struct tile *t)
{
    QXLRect src = rnd_percent(60) ? R(0, 0, s->w, s->h) : rnd_rect_in(R(0, 0, s->w, s->h), 1, 1);
    int w = src.right - src.left, h = src.bottom - src.top;
    int l = t->area.left + rnd_in(0, 32 - w + 1), top = t->area.top + rnd_in(0, TILE_H - h + 1);
    QXLRect box = R(l, top, l + w, top + h);
    QXLImage *img = mk_surface_image(s->sid, s->w, s->h);
    QXLDrawable *d;
    /* spice-common blits (COPY) only between surfaces of one depth: a 16-bit surface copied
     * onto the 32-bit primary aborts the C server (pixman_utils.c: depth == src_depth) */
    if (surf_bpp(s->fmt) == 4 && rnd_percent(50)) {
        uint16_t rop = rnd_percent(70) ? SPICE_ROPD_OP_PUT : rnd_ropd();
        d = mk_draw(0, QXL_DRAW_COPY, box, rop == SPICE_ROPD_OP_PUT ? QXL_EFFECT_OPAQUE : QXL_EFFECT_BLEND);
        d->u.copy.src_bitmap = phys(img);
        d->u.copy.src_area = src;
        d->u.copy.rop_descriptor = rop;
        d->u.copy.scale_mode = SPICE_IMAGE_SCALE_MODE_NEAREST;
    } else {
        d = mk_draw(0, QXL_DRAW_ALPHA_BLEND, box, QXL_EFFECT_BLEND);
        d->u.alpha_blend.alpha_flags = rnd_percent(70) ? SPICE_ALPHA_FLAGS_SRC_SURFACE_HAS_ALPHA : 0;
        if (rnd_percent(30)) d->u.alpha_blend.alpha_flags |= SPICE_ALPHA_FLAGS_DEST_HAS_ALPHA;
        d->u.alpha_blend.alpha = (uint8_t)(rnd_percent(50) ? 255 : rnd_in(0, 256));
        d->u.alpha_blend.src_bitmap = phys(img);
        d->u.alpha_blend.src_area = src;
    }
    d->surfaces_dest[0] = (int32_t)s->sid;
    d->surfaces_rects[0] = src;
    if (getenv("QXL_DESCRIBE"))
        fprintf(stderr, "  to-primary %s src %d,%d-%d,%d at %d,%d alpha %u\n",
                d->type == QXL_DRAW_COPY ? "copy" : d->u.alpha_blend.alpha_flags & 2 ? "alpha-flag" : "alpha",
                src.left, src.top, src.right, src.bottom, l - t->area.left, top - t->area.top,
                d->type == QXL_DRAW_COPY ? 255u : d->u.alpha_blend.alpha);
    push_draw(d, "surf-to-primary");
}

/* update_area on the surface, then its guest memory (rows in address order) as two images
 * in the tile's right half: colour bits above, alpha / high byte below */
static uint32_t *dump_px;
static uint32_t pat_dump(int x, int y, int w, int h) { (void)h; return dump_px[y * w + x]; }

static void surf_dump(const struct rsurf *s, const struct tile *t)
{
    kick();
    QXLRect all = R(0, 0, s->w, s->h);
    spice_qxl_update_area(&qxl, s->sid, &all, NULL, 0, 0);
    uint32_t *lo = malloc((size_t)s->w * s->h * 4), *hi = malloc((size_t)s->w * s->h * 4);
    for (int y = 0; y < s->h; y++)
        for (int x = 0; x < s->w; x++) {
            const uint8_t *p = s->mem + (size_t)y * s->pitch + (size_t)x * surf_bpp(s->fmt);
            uint32_t v;
            if (surf_bpp(s->fmt) == 2) {
                v = (uint32_t)p[0] | (uint32_t)p[1] << 8;
                lo[y * s->w + x] = rgb(0, 0, (int)(v & 255));
                hi[y * s->w + x] = rgb((int)(v >> 8), 0, 0);
            } else {
                memcpy(&v, p, 4);
                lo[y * s->w + x] = v & 0xffffff;
                /* an xRGB surface's X byte is left as the drawing left it: not compared */
                int a = s->fmt == SPICE_SURFACE_FMT_32_ARGB ? (int)(v >> 24) : 0;
                hi[y * s->w + x] = rgb(a, a, a);
            }
        }
    struct imgopt o = { .topdown = 1, .nchunks = 1 };
    dump_px = lo;
    copy_img(0, R(t->area.left + 32, t->area.top, t->area.left + 32 + s->w, t->area.top + s->h),
             mk_bitmap(SPICE_BITMAP_FMT_32BIT, s->w, s->h, pat_dump, &o, NULL), all, SPICE_ROPD_OP_PUT);
    dump_px = hi;
    copy_img(0, R(t->area.left + 32, t->area.top + 24, t->area.left + 32 + s->w, t->area.top + 24 + s->h),
             mk_bitmap(SPICE_BITMAP_FMT_32BIT, s->w, s->h, pat_dump, &o, NULL), all, SPICE_ROPD_OP_PUT);
    dump_px = NULL;
    free(lo);
    free(hi);
}

/* COMPAT_16BPP drawings on the primary: solid colours and palettes given as 16-bit 555 */
static void compat16_draws(const struct tile *t)
{
    QXLRect left = R(t->area.left, t->area.top, t->area.left + 32, t->area.bottom);
    cmd_flags = QXL_COMMAND_FLAG_COMPAT_16BPP;
    QXLDrawable *d = mk_draw(0, QXL_DRAW_FILL, rnd_rect_in(left, 1, 1), QXL_EFFECT_OPAQUE);
    solid(&d->u.fill.brush, rnd());
    d->u.fill.rop_descriptor = rnd_percent(70) ? SPICE_ROPD_OP_PUT : rnd_ropd();
    /* an honest effect: a rop that reads the destination is no OPAQUE drawing (spice-server
     * trusts OPAQUE and drops the unrendered drawings it covers; see known-differences) */
    if (d->u.fill.rop_descriptor != SPICE_ROPD_OP_PUT) d->effect = QXL_EFFECT_BLEND;
    if (getenv("QXL_DESCRIBE"))
        fprintf(stderr, "  compat16 fill %08x rop %x at %d,%d-%d,%d\n", d->u.fill.brush.u.color, d->u.fill.rop_descriptor,
                d->bbox.left - t->area.left, d->bbox.top - t->area.top, d->bbox.right - t->area.left, d->bbox.bottom - t->area.top);
    push_draw(d, "compat16-fill");
    if (rnd_percent(60)) {
        static const uint32_t fmts[] = { SPICE_BITMAP_FMT_8BIT, SPICE_BITMAP_FMT_1BIT_BE, SPICE_BITMAP_FMT_4BIT_BE };
        QXLRect box = rnd_rect_in(left, 1, 1);
        int w = box.right - box.left, h = box.bottom - box.top;
        uint8_t f = (uint8_t)rnd_pick(fmts, 3);
        if (getenv("QXL_DESCRIBE")) fprintf(stderr, "  compat16 copy fmt %u at %d,%d %dx%d\n", f, box.left - t->area.left, box.top - t->area.top, w, h);
        copy_img(0, box, rnd_bitmap(f, w, h), R(0, 0, w, h), SPICE_ROPD_OP_PUT);
    }
    cmd_flags = 0;
}

static void gen_surfaces(const struct tile *t)
{
    struct rsurf s;
    s.sid = 1 + (t->seed - 1) % TILES;
    s.fmt = rnd_pick(surf_fmts, 4);
    s.w = rnd_percent(10) ? 1 : rnd_in(1, SURF_MAX_W + 1);
    s.h = rnd_percent(10) ? 1 : rnd_in(1, SURF_MAX_H + 1);
    s.neg = rnd_percent(40);
    /* pixman wants rows of whole 32-bit words */
    s.pitch = (uint32_t)((s.w * surf_bpp(s.fmt) + 3) & ~3) + 4u * (uint32_t)(rnd_percent(30) ? rnd_in(1, 4) : 0);
    size_t bytes = (size_t)s.pitch * s.h;
    s.mem = galloc(bytes);
    int keep = rnd_percent(50);
    if (keep) {
        int look = rnd_in(0, 3);
        uint32_t c = rnd();
        for (size_t i = 0; i < bytes; i++) s.mem[i] = look == 0 ? (uint8_t)rnd() : look == 1 ? (uint8_t)(c >> (8 * (i % 4))) : (uint8_t)(i * 7);
    } else {
        memset(s.mem, 0x77, bytes); /* garbage the server must clear */
    }
    rsurf_create(&s, keep);
    if (getenv("QXL_DESCRIBE"))
        fprintf(stderr, "seed %u: fmt %u %dx%d neg %d pitch %u keep %d\n", t->seed, s.fmt, s.w, s.h, s.neg, s.pitch, keep);

    int n = rnd_in(0, 5);
    for (int i = 0; i < n; i++) {
        QXLRect box = rnd_rect_in(R(0, 0, s.w, s.h), 1, 1);
        int kind = rnd_in(0, 12);
        if (kind < 4) surf_draw_fill(&s, box);
        else if (kind < 7) surf_draw_copy(&s, box);
        else if (kind < 10) surf_draw_alpha(&s, box);
        /* not on xRGB: the X byte pixman leaves there (read back as alpha by to-primary) is
         * not modelled yet */
        else if (s.fmt != SPICE_SURFACE_FMT_32_xRGB) surf_draw_composite(&s, box);
        else surf_draw_alpha(&s, box);
    }
    surf_to_primary(&s, t);
    if (rnd_percent(30)) compat16_draws(t);
    surf_dump(&s, t);
    rsurf_destroy(&s);

    /* the same id again over the same memory, keeping what is there */
    if (rnd_percent(25)) {
        s.fmt = rnd_percent(50) ? s.fmt : rnd_pick(surf_fmts, 4);
        if (surf_bpp(s.fmt) * s.w > (int)s.pitch) s.fmt = SPICE_SURFACE_FMT_16_565;
        if (getenv("QXL_DESCRIBE")) fprintf(stderr, "  recreate fmt %u\n", s.fmt);
        rsurf_create(&s, 1);
        surf_to_primary(&s, t);
        rsurf_destroy(&s);
    }
}

static void sc_rnd_surfaces(void) { rnd_tiles(gen_surfaces); }
