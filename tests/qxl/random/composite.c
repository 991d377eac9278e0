/* Seeded random COMPOSITE and ALPHA_BLEND drawings (included by standin.c after seeded.c).
 *
 * rnd_composite: every pixman operator the protocol names (CLEAR..SATURATE, the PDF blend
 * modes; sometimes pixman's disjoint/conjoint ones and the unnamed codes), sources and masks in several bitmap formats (32-bit, RGBA, A8, 24-bit), filters
 * 0-4 (FAST, GOOD, BEST, NEAREST, BILINEAR) with each repeat mode, affine transforms (scale,
 * shear, translation on fractions of a pixel), origins that leave the box partly uncovered,
 * the component-alpha flag and the *_OPAQUE hint flags; sources and masks also read from
 * off-screen xRGB surfaces.
 * rnd_alpha_blend: RGBA, 32-bit, 24-bit and A8 bitmaps, with and without
 * SRC_SURFACE_HAS_ALPHA and DEST_HAS_ALPHA, alpha 0, 1, 255 or any, same size or scaled,
 * source areas reaching past the bitmap; sometimes from an off-screen xRGB surface.
 *
 * Not sent (the C server crashes on them): filters 5 and 6 (pixman dereferences the NULL
 * convolution parameters spice-common passes), filter 7 with a transform (pixman leaves the
 * sample unset), and the HAS_MASK / HAS_*_TRANSFORM flag bits without the data. */

static const uint32_t composite_ops[] = {
    0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d,
    0x30, 0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3a, 0x3b, 0x3c, 0x3d, 0x3e,
};

/* a random bitmap in one chunk: the C server aborts when it sends a client a bitmap whose
 * chunks split rows (see client-known-differences.txt, c:img_chunked), and this scenario is
 * also checked with the C server serving spice-gtk */
static QXLImage *comp_bitmap(uint8_t fmt, int w, int h)
{
    struct imgopt o = { .topdown = rnd_percent(50), .nchunks = 1 };
    rnd_px = rnd_pixels(w, h, fmt == SPICE_BITMAP_FMT_RGBA);
    QXLImage *img = mk_bitmap(fmt, w, h, pat_rnd, &o, NULL);
    free(rnd_px);
    rnd_px = NULL;
    return img;
}

/* a 16.16 value: whole, half, quarter or any fraction */
static int32_t rnd_fixed(int lo, int hi)
{
    int32_t v = rnd_in(lo, hi) << 16;
    switch (rnd_in(0, 4)) {
    case 0: return v;
    case 1: return v + 0x8000;
    case 2: return v + 0x4000 * rnd_in(0, 4);
    default: return v + (int32_t)(rnd() & 0xffff);
    }
}

/* an affine transform with moderate coefficients (pixman fails on overflowing ones) */
static QXLPHYSICAL rnd_transform(void)
{
    if (rnd_percent(45)) return 0;
    uint32_t *t = galloc(6 * 4);
    static const int32_t scales[] = { 0x4000, 0x8000, 0xc000, 0x10000, 0x18000, 0x20000, 0x30000 };
    int32_t sx = rnd_percent(20) ? rnd_fixed(0, 3) : scales[rnd_in(0, 7)];
    int32_t sy = rnd_percent(50) ? sx : (rnd_percent(20) ? rnd_fixed(0, 3) : scales[rnd_in(0, 7)]);
    if (sx == 0) sx = 0x2000;
    if (sy == 0) sy = 0x2000;
    if (rnd_percent(20)) sx = -sx;
    if (rnd_percent(15)) sy = -sy;
    t[0] = (uint32_t)sx;
    t[4] = (uint32_t)sy;
    t[1] = rnd_percent(25) ? (uint32_t)(rnd_in(-0x8000, 0x8000)) : 0;
    t[3] = rnd_percent(25) ? (uint32_t)(rnd_in(-0x8000, 0x8000)) : 0;
    t[2] = (uint32_t)rnd_fixed(-20, 20);
    t[5] = (uint32_t)rnd_fixed(-20, 20);
    return phys(t);
}

static QXLImage *rnd_composite_image(int mask)
{
    static const uint32_t src_fmts[] = { SPICE_BITMAP_FMT_32BIT, SPICE_BITMAP_FMT_RGBA, SPICE_BITMAP_FMT_RGBA,
                                         SPICE_BITMAP_FMT_8BIT_A, SPICE_BITMAP_FMT_24BIT };
    static const uint32_t mask_fmts[] = { SPICE_BITMAP_FMT_8BIT_A, SPICE_BITMAP_FMT_8BIT_A, SPICE_BITMAP_FMT_RGBA,
                                          SPICE_BITMAP_FMT_RGBA, SPICE_BITMAP_FMT_32BIT };
    uint8_t fmt = (uint8_t)(mask ? rnd_pick(mask_fmts, 5) : rnd_pick(src_fmts, 5));
    int small = rnd_percent(15);
    int w = small ? rnd_in(1, 3) : rnd_in(1, 48), h = small ? rnd_in(1, 3) : rnd_in(1, 40);
    /* A8 takes the low byte of rnd_pixels' values as the alpha */
    return comp_bitmap(fmt, w, h);
}

/* an off-screen xRGB surface `sid` of w x h filled with a random bitmap, as an image for a
 * drawing to read (the caller sets the drawing's surfaces_dest so that the C server renders
 * the surface first, and destroys the surface after the drawing) */
static QXLImage *rnd_surface_image(uint32_t sid)
{
    int w = rnd_in(1, 48), h = rnd_in(1, 40);
    surface_cmd(sid, 1, w, h, rnd_percent(30), NULL);
    copy_img(sid, R(0, 0, w, h), comp_bitmap(SPICE_BITMAP_FMT_32BIT, w, h), R(0, 0, w, h), SPICE_ROPD_OP_PUT);
    return mk_surface_image(sid, w, h);
}

static void read_surface(QXLDrawable *d, int slot, QXLImage *img)
{
    d->surfaces_dest[slot] = (int32_t)img->surface_image.surface_id;
    d->surfaces_rects[slot] = R(0, 0, (int)img->descriptor.width, (int)img->descriptor.height);
}

static void gen_composite(const struct tile *t)
{
    int n = rnd_in(1, 4);
    for (int i = 0; i < n; i++) {
        QXLDrawable *d = mk_draw(0, QXL_DRAW_COMPOSITE, rnd_rect_in(t->area, 1, 1), QXL_EFFECT_BLEND);
        QXLComposite *c = &d->u.composite;
        uint32_t flags = rnd_pick(composite_ops, (int)(sizeof(composite_ops) / sizeof(composite_ops[0])));
        /* sometimes pixman's disjoint/conjoint operators or the unnamed codes between the
         * groups: the protocol does not name them, the C canvas passes them to pixman */
        if (rnd_percent(12)) flags = (uint32_t)rnd_in(0x0e, 0x30);
        flags |= (uint32_t)rnd_in(0, 5) << 8;  /* src filter */
        flags |= (uint32_t)rnd_in(0, 4) << 14; /* src repeat */
        QXLImage *src = rnd_percent(15) ? rnd_surface_image(1) : rnd_composite_image(0);
        if (src->descriptor.type == SPICE_IMAGE_TYPE_SURFACE) read_surface(d, 0, src);
        c->src = phys(src);
        c->src_transform = rnd_transform();
        c->src_origin.x = (int16_t)rnd_in(-24, 40);
        c->src_origin.y = (int16_t)rnd_in(-24, 40);
        if (rnd_percent(55)) {
            flags |= (uint32_t)rnd_in(0, 5) << 11; /* mask filter */
            flags |= (uint32_t)rnd_in(0, 4) << 16; /* mask repeat */
            if (rnd_percent(30)) flags |= SPICE_COMPOSITE_COMPONENT_ALPHA;
            QXLImage *mask = rnd_percent(12) ? rnd_surface_image(2) : rnd_composite_image(1);
            if (mask->descriptor.type == SPICE_IMAGE_TYPE_SURFACE) read_surface(d, 1, mask);
            c->mask = phys(mask);
            c->mask_transform = rnd_transform();
            c->mask_origin.x = (int16_t)rnd_in(-24, 40);
            c->mask_origin.y = (int16_t)rnd_in(-24, 40);
        }
        if (rnd_percent(20)) flags |= SPICE_COMPOSITE_SOURCE_OPAQUE;
        if (rnd_percent(20)) flags |= SPICE_COMPOSITE_MASK_OPAQUE;
        if (rnd_percent(20)) flags |= SPICE_COMPOSITE_DEST_OPAQUE;
        c->flags = flags;
        tile_clip(d, t);
        push_draw(d, "rnd-composite");
        for (int k = 0; k < 2; k++)
            if (d->surfaces_dest[k] != -1) surface_cmd((uint32_t)d->surfaces_dest[k], 0, 0, 0, 0, NULL);
    }
}

static void sc_rnd_composite(void) { rnd_tiles(gen_composite); }

static void gen_alpha_blend(const struct tile *t)
{
    static const uint32_t fmts[] = { SPICE_BITMAP_FMT_RGBA, SPICE_BITMAP_FMT_RGBA, SPICE_BITMAP_FMT_32BIT,
                                     SPICE_BITMAP_FMT_24BIT, SPICE_BITMAP_FMT_8BIT_A };
    int n = rnd_in(1, 4);
    for (int i = 0; i < n; i++) {
        QXLRect box = rnd_rect_in(t->area, 1, 1);
        QXLDrawable *d = mk_draw(0, QXL_DRAW_ALPHA_BLEND, box, QXL_EFFECT_BLEND);
        QXLAlphaBlend *a = &d->u.alpha_blend;
        uint8_t fmt = (uint8_t)rnd_pick(fmts, 5);
        int bw = box.right - box.left, bh = box.bottom - box.top;
        int sw = bw, sh = bh;
        if (rnd_percent(55)) {
            sw = rnd_in(1, 60);
            sh = rnd_in(1, 50);
        }
        /* the bitmap: the source area, sometimes smaller (the area reaches past it) */
        int left = rnd_percent(70) ? 0 : rnd_in(0, 6), top = rnd_percent(70) ? 0 : rnd_in(0, 6);
        int iw = left + sw, ih = top + sh;
        if (rnd_percent(20)) iw = rnd_in(1, iw + 1);
        if (rnd_percent(20)) ih = rnd_in(1, ih + 1);
        /* sometimes from an off-screen xRGB surface, without SRC_SURFACE_HAS_ALPHA (with it the
         * C canvas reads the surface's unused top bytes as alpha: that belongs to ARGB
         * surfaces, issue 14's surface part) */
        int from_surface = rnd_percent(15);
        QXLImage *img = from_surface ? rnd_surface_image(1) : comp_bitmap(fmt, iw, ih);
        if (from_surface) read_surface(d, 0, img);
        a->src_bitmap = phys(img);
        a->src_area = R(left, top, left + sw, top + sh);
        a->alpha_flags = 0;
        if (!from_surface && rnd_percent(50)) a->alpha_flags |= SPICE_ALPHA_FLAGS_SRC_SURFACE_HAS_ALPHA;
        if (rnd_percent(20)) a->alpha_flags |= SPICE_ALPHA_FLAGS_DEST_HAS_ALPHA;
        switch (rnd_in(0, 5)) {
        case 0: a->alpha = 255; break;
        case 1: a->alpha = (uint8_t)rnd_pick((const uint32_t[]){ 0, 1, 254 }, 3); break;
        default: a->alpha = (uint8_t)rnd_in(0, 256); break;
        }
        tile_clip(d, t);
        push_draw(d, "rnd-alpha-blend");
        if (from_surface) surface_cmd(1, 0, 0, 0, 0, NULL);
    }
}

static void sc_rnd_alpha_blend(void) { rnd_tiles(gen_alpha_blend); }
