/* ---- rnd_text: DRAW_TEXT with 1-, 4- and 8-bit glyphs (random coverage, full and empty
 * values often, overlapping glyphs, zero-sized ones, glyphs reaching past the tile), fore
 * and back brushes (solid, pattern, none), every fore_mode and back_mode, back areas empty,
 * inside the tile, or inverted. Included by standin.c after seeded.c. Never sends what the C
 * canvas aborts on: a string without glyphs, or a back area with a fore_mode other than PUT. */

/* RND_DEBUG=1: what each seed's texts are, on stderr */
static void debug_text(const struct tile *t, const QXLDrawable *d, int bpp, const uint8_t *glyphs, int n)
{
    if (!getenv("RND_DEBUG")) return;
    const QXLText *x = &d->u.text;
    fprintf(stderr, "seed %u text bpp %d bbox %d,%d-%d,%d back %d,%d-%d,%d fore %u@%d,%d back %u@%d,%d modes 0x%x 0x%x\n",
            t->seed, bpp, d->bbox.left, d->bbox.top, d->bbox.right, d->bbox.bottom, x->back_area.left,
            x->back_area.top, x->back_area.right, x->back_area.bottom, x->fore_brush.type,
            x->fore_brush.u.pattern.pos.x, x->fore_brush.u.pattern.pos.y, x->back_brush.type,
            x->back_brush.u.pattern.pos.x, x->back_brush.u.pattern.pos.y, x->fore_mode, x->back_mode);
    for (int i = 0; i < n; i++) {
        const QXLRasterGlyph *g = (const QXLRasterGlyph *)glyphs;
        fprintf(stderr, "  glyph pos %d,%d origin %d,%d %ux%u\n", g->render_pos.x, g->render_pos.y,
                g->glyph_origin.x, g->glyph_origin.y, g->width, g->height);
        glyphs += sizeof(QXLRasterGlyph) + (size_t)((g->width * bpp + 7) / 8) * g->height;
    }
}

static void gen_text(const struct tile *t)
{
    int ndraw = rnd_in(1, 3);
    for (int k = 0; k < ndraw; k++) {
        static const uint16_t fmts[] = { SPICE_STRING_FLAGS_RASTER_A1, SPICE_STRING_FLAGS_RASTER_A4,
                                         SPICE_STRING_FLAGS_RASTER_A8 };
        static const int bpps[] = { 1, 4, 8 };
        int f = rnd_in(0, 3), bpp = bpps[f];
        int n = rnd_in(1, 7);
        /* glyphs built in a scratch buffer, then copied into guest memory */
        size_t cap = (size_t)n * (sizeof(QXLRasterGlyph) + 24 * 24);
        uint8_t *buf = calloc(1, cap);
        size_t used = 0;
        for (int i = 0; i < n; i++) {
            QXLRasterGlyph *g = (QXLRasterGlyph *)(buf + used);
            int w = rnd_percent(8) ? 0 : rnd_in(1, 24), h = rnd_percent(8) ? 0 : rnd_in(1, 24);
            if (bpp == 8) {
                /* the canvas shows an 8-bit glyph's rows one late, its top row being the
                 * 20-byte header of the next glyph as spice-server lays the string out:
                 * keep that row inside that header (at most 20 wide, no padding before
                 * it: w*h a multiple of 4) and the last glyph empty (past it lies heap) */
                w = w > 20 ? 20 : w;
                h = h & ~3;
                if (i == n - 1) h = 0;
            }
            g->width = (uint16_t)w;
            g->height = (uint16_t)h;
            g->glyph_origin.x = rnd_in(-4, 3);
            g->glyph_origin.y = -h + rnd_in(-3, 4);
            g->render_pos.x = rnd_in(t->area.left - 10, t->area.right + 4);
            g->render_pos.y = rnd_in(t->area.top - 4, t->area.bottom + 14);
            int rowb = (w * bpp + 7) / 8;
            int look = rnd_in(0, 3); /* noise, full, sparse */
            for (int b = 0; b < rowb * h; b++) {
                uint8_t v = (uint8_t)rnd();
                if (look == 1 && rnd_percent(70)) v = 0xff;
                if (look == 2 && rnd_percent(60)) v = 0;
                if (bpp == 4 && rnd_percent(20)) v = (uint8_t)(rnd_percent(50) ? 0xf0 : 0x0f);
                g->data[b] = v;
            }
            used += sizeof(QXLRasterGlyph) + (size_t)rowb * h;
        }
        QXLString *s = galloc(sizeof(QXLString) + used);
        s->data_size = (uint32_t)used;
        s->length = (uint16_t)n;
        s->flags = fmts[f] | (rnd_percent(50) ? SPICE_STRING_FLAGS_RASTER_TOP_DOWN : 0);
        s->chunk.data_size = (uint32_t)used;
        memcpy(s->chunk.data, buf, used);
        free(buf);

        QXLDrawable *d = mk_draw(0, QXL_DRAW_TEXT, rnd_rect_in(t->area, 1, 1), QXL_EFFECT_BLEND);
        d->u.text.str = phys(s);
        int back = rnd_in(0, 10);
        QXLRect ba;
        if (back < 3) { /* empty: an edge equal to its opposite */
            int x = rnd_in(t->area.left, t->area.right), y = rnd_in(t->area.top, t->area.bottom);
            ba = rnd_percent(50) ? R(x, y, x, y + rnd_in(0, 10)) : R(x, y, x + rnd_in(0, 10), y);
            if (rnd_percent(30)) ba = R(0, 0, 0, 0);
        } else if (back < 9) {
            ba = rnd_rect_in(t->area, 1, 1);
        } else { /* inverted: not empty to the canvas, yet no area */
            QXLRect r = rnd_rect_in(t->area, 2, 2);
            ba = R(r.right, r.top, r.left, r.bottom);
            if (rnd_percent(50)) ba = R(r.left, r.bottom, r.right, r.top);
        }
        d->u.text.back_area = ba;
        int empty = ba.top == ba.bottom || ba.left == ba.right;
        if (rnd_percent(10)) d->u.text.fore_brush.type = SPICE_BRUSH_TYPE_NONE;
        else rnd_brush(&d->u.text.fore_brush);
        if (rnd_percent(15)) d->u.text.back_brush.type = SPICE_BRUSH_TYPE_NONE;
        else rnd_brush(&d->u.text.back_brush);
        d->u.text.fore_mode = empty ? rnd_ropd() : SPICE_ROPD_OP_PUT;
        d->u.text.back_mode = rnd_percent(30) ? 0 : rnd_ropd();
        tile_clip(d, t);
        debug_text(t, d, bpp, s->chunk.data, n);
        push_draw(d, "rnd-text");
    }
}

static void sc_rnd_text(void) { rnd_tiles(gen_text); }
