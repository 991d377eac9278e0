//! The guest's monitor layout (`monitors_config_async`) as display clients are told it.

use crate::canvas::framebuffer::Framebuffer;
use crate::proto::display::Head;

#[derive(Default)]
pub(super) struct Monitors {
    /// Empty: one head covering the surface.
    heads: Vec<Head>,
    /// Bumped when the layout (or the surface) changes.
    generation: u64,
}

impl Monitors {
    pub(super) fn set(&mut self, heads: Vec<Head>) {
        self.heads = heads;
        self.changed();
    }

    /// A new primary surface: the layout becomes one head covering it (spice-server's
    /// `display_channel_set_monitors_config_to_primary`), a guest's layout from before
    /// (another boot, another mode) is forgotten. `announce`: clients are sent it now.
    pub(super) fn reset_to_surface(&mut self, announce: bool) {
        self.heads.clear();
        if announce {
            self.changed();
        }
    }

    fn changed(&mut self) {
        self.generation += 1;
    }

    /// (generation, heads) of the layout on `surface`.
    pub(super) fn layout(&self, surface: Option<&Framebuffer>) -> (u64, Vec<Head>) {
        let heads = if self.heads.is_empty() {
            surface
                .map(|fb| {
                    vec![Head {
                        width: fb.width,
                        height: fb.height,
                        ..Head::default()
                    }]
                })
                .unwrap_or_default()
        } else {
            self.heads.clone()
        };
        (self.generation, heads)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_a_layout_one_head_covers_the_surface() {
        let mut m = Monitors::default();
        let fb = Framebuffer::new(640, 480).unwrap();
        let (first, heads) = m.layout(Some(&fb));
        assert_eq!(
            (heads.len(), heads[0].width, heads[0].height),
            (1, 640, 480)
        );
        assert!(m.layout(None).1.is_empty());
        let two = vec![Head::default(), Head::default()];
        m.set(two.clone());
        let (second, heads) = m.layout(Some(&fb));
        assert_eq!(heads, two);
        assert_ne!(first, second, "clients see a new generation");
        // A new primary (a reboot): one head covering it again, announced or not.
        m.reset_to_surface(false);
        let (third, heads) = m.layout(Some(&fb));
        assert_eq!((third, heads.len(), heads[0].width), (second, 1, 640));
        m.reset_to_surface(true);
        assert_ne!(m.layout(Some(&fb)).0, second);
    }
}
