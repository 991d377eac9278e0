//! The guest's monitor layout (`monitors_config_async`) as display clients are told it.

use crate::canvas::framebuffer::Framebuffer;
use crate::proto::display::Head;

pub(super) struct Monitors {
    /// Empty: one head covering the surface.
    heads: Vec<Head>,
    /// The monitors the guest's driver can drive (what clients may enable); 1 until it
    /// says, and kept across new surfaces as spice-server keeps it.
    max_allowed: u16,
    /// Bumped when the layout (or the surface) changes.
    generation: u64,
}

impl Default for Monitors {
    fn default() -> Self {
        Monitors {
            heads: Vec::new(),
            max_allowed: 1,
            generation: 0,
        }
    }
}

/// A monitor layout as clients are told it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Layout {
    /// Bumped whenever it changes.
    pub generation: u64,
    pub heads: Vec<Head>,
    pub max_allowed: u16,
}

impl Monitors {
    pub(super) fn set(&mut self, heads: Vec<Head>, max_allowed: u16) {
        self.heads = heads;
        self.max_allowed = max_allowed;
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

    /// The layout on `surface`.
    pub(super) fn layout(&self, surface: Option<&Framebuffer>) -> Layout {
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
        Layout {
            generation: self.generation,
            heads,
            max_allowed: self.max_allowed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_a_layout_one_head_covers_the_surface() {
        let mut m = Monitors::default();
        let fb = Framebuffer::new(640, 480).unwrap();
        let first = m.layout(Some(&fb));
        assert_eq!(
            (
                first.heads.len(),
                first.heads[0].width,
                first.heads[0].height
            ),
            (1, 640, 480)
        );
        assert_eq!(first.max_allowed, 1);
        assert!(m.layout(None).heads.is_empty());
        let two = vec![Head::default(), Head::default()];
        m.set(two.clone(), 4);
        let second = m.layout(Some(&fb));
        assert_eq!((&second.heads, second.max_allowed), (&two, 4));
        assert_ne!(
            first.generation, second.generation,
            "clients see a new generation"
        );
        // A new primary (a reboot): one head covering it again, announced or not; the
        // driver's maximum stays.
        m.reset_to_surface(false);
        let third = m.layout(Some(&fb));
        assert_eq!(third.generation, second.generation);
        assert_eq!(
            (third.heads.len(), third.heads[0].width, third.max_allowed),
            (1, 640, 4)
        );
        m.reset_to_surface(true);
        assert_ne!(m.layout(Some(&fb)).generation, second.generation);
    }
}
