/* ---- rnd_stroke: DRAW_STROKE paths (lines, beziers, closed subpaths, 28.4 coordinates on
 * and off half pixels, in every direction), solid and styled (dashed, with and without
 * START_WITH_GAP), any width (the canvas draws zero-width lines), brushes, rop descriptors.
 * Included by standin.c after seeded.c. Never sends what the C canvas aborts or hangs on:
 * a bezier run that is not whole curves or has no start point, a segment beginning without
 * a point, a dash list without a dash of a pixel or more. */

/* a 28.4 coordinate near pixel v: often on the pixel, on its half (which the canvas rounds
 * down) or just either side of the half */
static int32_t rnd_fix(int v)
{
    static const int fracs[] = { 0, 0, 8, 8, 7, 9, 1, 15 };
    int f = rnd_percent(70) ? fracs[rnd() % 8] : rnd_in(0, 16);
    return (int32_t)(v * 16 + f);
}

/* a point near the tile (up to 12 px outside it, so that lines leave the clip and, on the
 * surface's edges, the surface) or a step from `prev` along an axis, a diagonal or a slope
 * whose Bresenham error term ties */
static void rnd_point(const struct tile *t, const int32_t *prev, int32_t *out)
{
    int px = prev ? (prev[0] >> 4) : 0, py = prev ? (prev[1] >> 4) : 0;
    int x, y;
    if (!prev || rnd_percent(40)) {
        x = rnd_in(t->area.left - 12, t->area.right + 12);
        y = rnd_in(t->area.top - 12, t->area.bottom + 12);
    } else {
        int k = rnd_in(1, 24), sx = rnd_percent(50) ? 1 : -1, sy = rnd_percent(50) ? 1 : -1;
        switch (rnd() % 5) {
        case 0: x = px + sx * k; y = py; break;            /* horizontal */
        case 1: x = px; y = py + sy * k; break;            /* vertical */
        case 2: x = px + sx * k; y = py + sy * k; break;   /* diagonal */
        case 3: x = px + sx * 2 * k; y = py + sy * (2 * rnd_in(0, k) + 1); break; /* x-major, ties */
        default: x = px + sx * (2 * rnd_in(0, k) + 1); y = py + sy * 2 * k; break; /* y-major, ties */
        }
    }
    out[0] = rnd_fix(x);
    out[1] = rnd_fix(y);
}

struct path_build { uint8_t *buf; size_t used, cap; };

static QXLPathSeg *path_seg(struct path_build *b, uint32_t flags, int n)
{
    size_t sz = sizeof(QXLPathSeg) + sizeof(QXLPointFix) * (size_t)n;
    if (b->used + sz > b->cap) die("rnd_stroke: path buffer too small");
    QXLPathSeg *s = (QXLPathSeg *)(b->buf + b->used);
    s->flags = flags;
    s->count = (uint32_t)n;
    b->used += sz;
    return s;
}

/* one subpath: a BEGIN segment, maybe more segments continuing it (lines or whole bezier
 * curves), maybe CLOSE; END on the last segment (or, sometimes, left open) */
static void rnd_subpath(struct path_build *b, const struct tile *t)
{
    int nsegs = rnd_in(1, 4);
    int32_t last[2] = { 0, 0 };
    for (int s = 0; s < nsegs; s++) {
        int bezier = rnd_percent(35);
        uint32_t flags = bezier ? QXL_PATH_BEZIER : 0;
        if (s == 0) flags |= QXL_PATH_BEGIN;
        int is_last = s == nsegs - 1;
        if (is_last && rnd_percent(85)) {
            flags |= QXL_PATH_END;
            if (rnd_percent(35)) flags |= QXL_PATH_CLOSE;
        }
        int n = bezier ? 3 * rnd_in(1, 3) : rnd_in(1, 5);
        int total = n + (s == 0 ? 1 : 0);
        QXLPathSeg *seg = path_seg(b, flags, total);
        int first = s == 0 ? 1 : 0;
        int32_t curve_start[2] = { last[0], last[1] };
        for (int i = 0; i < total; i++) {
            int32_t *pt = (int32_t *)(void *)&seg->points[i];
            rnd_point(t, (s == 0 && i == 0) ? NULL : last, pt);
            if (bezier && i >= first) {
                int j = (i - first) % 3;
                if (j == 0) { curve_start[0] = last[0]; curve_start[1] = last[1]; }
                /* an end well away from the curve's start: the canvas subdivides a curve
                 * ending where it starts until its stack runs out */
                if (j == 2 && abs((pt[0] >> 4) - (curve_start[0] >> 4)) < 3 &&
                    abs((pt[1] >> 4) - (curve_start[1] >> 4)) < 3)
                    pt[0] += 6 * 16;
            }
            last[0] = pt[0];
            last[1] = pt[1];
        }
    }
}

static QXLPath *rnd_path(const struct tile *t)
{
    enum { CAP = 4096 };
    struct path_build b = { .buf = malloc(CAP), .used = 0, .cap = CAP };
    int nsub = rnd_in(1, 4);
    for (int i = 0; i < nsub; i++) rnd_subpath(&b, t);
    QXLPath *p = galloc(sizeof(QXLPath) + b.used);
    p->data_size = (uint32_t)b.used;
    p->chunk.data_size = (uint32_t)b.used;
    memcpy(p->chunk.data, b.buf, b.used);
    free(b.buf);
    return p;
}

static void rnd_line_style(QXLLineAttr *a)
{
    a->flags = 0;
    a->width = rnd_percent(50) ? 0 : (rnd_percent(50) ? 16 : rnd_in(0, 200));
    if (!rnd_percent(45) || getenv("RND_STROKE_SOLID")) return; /* the env: to tell solid from dashed faults */
    a->flags |= SPICE_LINE_FLAGS_STYLED;
    if (rnd_percent(50)) a->flags |= SPICE_LINE_FLAGS_START_WITH_GAP;
    int n = rnd_in(1, 7);
    QXLFIXED *style = galloc(sizeof(QXLFIXED) * (size_t)n);
    int positive = 0;
    for (int i = 0; i < n; i++) {
        /* dashes of 0 to 9 pixels, on and off the half */
        style[i] = rnd_percent(15) ? rnd_in(0, 8) : rnd_fix(rnd_in(0, 10));
        if ((style[i] >> 4) + ((style[i] & 15) > 8) > 0) positive = 1; /* rounds to 1+ px */
    }
    if (!positive) style[rnd() % (uint32_t)n] = rnd_fix(rnd_in(1, 6));
    a->style_nseg = (uint8_t)n;
    a->style = phys(style);
}

/* RND_DEBUG=1: what each seed's strokes are, on stderr */
static void debug_stroke(const struct tile *t, const QXLDrawable *d, const QXLPath *p)
{
    if (!getenv("RND_DEBUG")) return;
    const QXLStroke *s = &d->u.stroke;
    fprintf(stderr, "seed %u stroke bbox %d,%d-%d,%d attr 0x%x style", t->seed, d->bbox.left, d->bbox.top,
            d->bbox.right, d->bbox.bottom, s->attr.flags);
    const QXLFIXED *st = s->attr.style ? (const QXLFIXED *)(bar + (s->attr.style - phys(bar))) : NULL;
    for (int i = 0; st && i < s->attr.style_nseg; i++) fprintf(stderr, " %d/16", st[i]);
    fprintf(stderr, " brush %u fore 0x%x clip", s->brush.type, s->fore_mode);
    if (d->clip.type == SPICE_CLIP_TYPE_RECTS) {
        const QXLClipRects *c = (const QXLClipRects *)(bar + (d->clip.data - phys(bar)));
        const QXLRect *r = (const QXLRect *)c->chunk.data;
        for (uint32_t i = 0; i < c->num_rects; i++)
            fprintf(stderr, " %d,%d-%d,%d", r[i].left, r[i].top, r[i].right, r[i].bottom);
    }
    fprintf(stderr, "\n");
    const uint8_t *at = p->chunk.data, *end = at + p->data_size;
    while (at < end) {
        const QXLPathSeg *g = (const QXLPathSeg *)at;
        fprintf(stderr, "  seg 0x%x:", g->flags);
        for (uint32_t i = 0; i < g->count; i++) fprintf(stderr, " (%d/16,%d/16)", g->points[i].x, g->points[i].y);
        fprintf(stderr, "\n");
        at += sizeof(QXLPathSeg) + sizeof(QXLPointFix) * g->count;
    }
}

static void gen_stroke(const struct tile *t)
{
    int n = rnd_in(1, 4);
    for (int i = 0; i < n; i++) {
        QXLDrawable *d = mk_draw(0, QXL_DRAW_STROKE, rnd_rect_in(t->area, 1, 1), QXL_EFFECT_BLEND);
        QXLPath *path = rnd_path(t);
        d->u.stroke.path = phys(path);
        rnd_line_style(&d->u.stroke.attr);
        if (rnd_percent(8)) d->u.stroke.brush.type = SPICE_BRUSH_TYPE_NONE;
        else rnd_brush(&d->u.stroke.brush);
        d->u.stroke.fore_mode = rnd_ropd();
        d->u.stroke.back_mode = rnd_ropd();
        tile_clip(d, t);
        debug_stroke(t, d, path);
        push_draw(d, "rnd-stroke");
    }
}

static void sc_rnd_stroke(void) { rnd_tiles(gen_stroke); }
