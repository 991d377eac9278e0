//! Which drawings on the primary surface go to clients as drawings rather than pixels.

use super::draw;
use super::Forward;
use crate::geometry::Area;
use crate::geometry::Rect;
use crate::proto::display::ROPD_OP_PUT as OP_PUT;
use crate::qxl::draw::{Brush, Draw, Op};
use std::sync::Arc;

/// The drawing as clients should receive it, or `None` to send its pixels instead.
///
/// A plain unscaled copy of an image is sent as pixels: the damage path carries the same
/// image and merges it with neighbouring updates (and, for video, with newer frames).
pub(crate) fn for_client(d: &Draw) -> Option<Forward> {
    if is_plain_copy(&d.op, &d.bbox) {
        return None;
    }
    let bbox = d.bbox.to_area()?;
    let reads = match d.op {
        Op::CopyBits { x, y } => {
            let (x, y) = (u32::try_from(x).ok()?, u32::try_from(y).ok()?);
            Some(Area::new(
                x,
                y,
                x.saturating_add(bbox.width()),
                y.saturating_add(bbox.height()),
            ))
        }
        _ => None,
    };
    let opaque = d.clip.is_none()
        && matches!(
            d.op,
            Op::Fill {
                brush: Brush::Solid(_) | Brush::Pattern { .. },
                rop: OP_PUT,
                mask: None,
            } | Op::Blackness { mask: None }
                | Op::Whiteness { mask: None }
                | Op::CopyBits { .. }
        );
    // C's `src_allowed_lossy`, narrowed to the drawings whose result stays close to the
    // picture when their source is close: a copy that puts, an alpha blend.
    let lossy_source = matches!(
        d.op,
        Op::Copy {
            rop: OP_PUT,
            mask: None,
            ..
        } | Op::AlphaBlend { .. }
    );
    let msg = draw::encode(0, d).ok()?;
    Some(Forward {
        msg: Arc::new(msg),
        bbox,
        reads,
        opaque,
        lossy_source,
    })
}

fn is_plain_copy(op: &Op, bbox: &Rect) -> bool {
    match op {
        Op::Copy {
            src,
            rop: OP_PUT,
            mask: None,
        } => {
            src.area.right - src.area.left == bbox.right - bbox.left
                && src.area.bottom - src.area.top == bbox.bottom - bbox.top
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::msg::display as m;
    use crate::qxl::draw::Source;
    use crate::qxl::image::{Image, Pixels};

    fn draw(op: Op) -> Draw {
        Draw {
            surface_id: 0,
            depends_on: vec![],
            bbox: Rect {
                top: 0,
                left: 0,
                bottom: 4,
                right: 4,
            },
            clip: None,
            op,
        }
    }

    fn copy(rop: u16, src_size: i32) -> Op {
        Op::Copy {
            src: Source {
                image: Image::Pixels(Pixels {
                    width: 8,
                    height: 8,
                    data: vec![0; 64],
                    alpha: false,
                    format: 8,
                }),
                area: Rect {
                    top: 0,
                    left: 0,
                    bottom: src_size,
                    right: src_size,
                },
                scale_mode: 0,
            },
            rop,
            mask: None,
        }
    }

    #[test]
    fn plain_copies_stay_pixels_other_copies_are_forwarded() {
        assert!(for_client(&draw(copy(OP_PUT, 4))).is_none());
        let scaled = for_client(&draw(copy(OP_PUT, 8))).unwrap();
        assert_eq!(scaled.msg.msg_type, m::DRAW_COPY);
        let xor = for_client(&draw(copy(1 << 6, 4))).unwrap();
        assert!(!xor.opaque, "XOR reads its destination");
    }

    #[test]
    fn copy_bits_reads_its_source_and_fills_are_opaque() {
        let f = for_client(&draw(Op::CopyBits { x: 10, y: 20 })).unwrap();
        assert_eq!(f.reads, Some(Area::new(10, 20, 14, 24)));
        assert!(f.opaque);
        let fill = for_client(&draw(Op::Fill {
            brush: Brush::Solid(3),
            rop: OP_PUT,
            mask: None,
        }))
        .unwrap();
        assert!(fill.opaque && fill.reads.is_none());
        assert_eq!(fill.bbox, Area::new(0, 0, 4, 4));
        let mut clipped = draw(Op::Whiteness { mask: None });
        clipped.clip = Some(vec![clipped.bbox]);
        assert!(!for_client(&clipped).unwrap().opaque);
    }
}
