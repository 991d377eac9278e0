//! The guest's cursor as the cursor channel shows it: latest shape, position and
//! visibility, with a generation number per kind of change so a slow client skips
//! straight to the newest state.

use crate::qxl::command::{CursorCommand, CursorShape};
use parking_lot::Mutex;
use std::sync::Arc;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct CursorState {
    pub shape: Option<Arc<CursorShape>>,
    pub x: i16,
    pub y: i16,
    pub visible: bool,
    /// Bumped when the shape or visibility changes (a SET is needed).
    pub shape_generation: u64,
    /// Bumped when only the position changes (a MOVE is enough).
    pub move_generation: u64,
}

/// Shared between the worker (writer) and cursor channel clients (readers).
#[derive(Clone, Default)]
pub(crate) struct Pointer {
    state: Arc<Mutex<CursorState>>,
    notify: Arc<Mutex<Option<super::Notify>>>,
}

impl Pointer {
    pub(crate) fn set_notify(&self, notify: super::Notify) {
        *self.notify.lock() = Some(notify);
    }

    pub(crate) fn apply(&self, command: CursorCommand) {
        {
            let mut s = self.state.lock();
            match command {
                CursorCommand::Set {
                    x,
                    y,
                    visible,
                    shape,
                } => {
                    s.x = x;
                    s.y = y;
                    s.visible = visible;
                    s.shape = shape.map(Arc::new);
                    s.shape_generation += 1;
                }
                CursorCommand::Move { x, y } => {
                    s.x = x;
                    s.y = y;
                    if !s.visible {
                        s.visible = true;
                        s.shape_generation += 1;
                    } else {
                        s.move_generation += 1;
                    }
                }
                CursorCommand::Hide => {
                    s.visible = false;
                    s.shape_generation += 1;
                }
                CursorCommand::Trail => return,
            }
        }
        let notify = self.notify.lock().clone();
        if let Some(n) = notify {
            n();
        }
    }

    pub(crate) fn reset(&self) {
        let mut s = self.state.lock();
        let generation = s.shape_generation + 1;
        *s = CursorState {
            shape_generation: generation,
            ..CursorState::default()
        };
    }

    pub(crate) fn snapshot(&self) -> CursorState {
        self.state.lock().clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moves_and_sets_bump_their_generations() {
        let p = Pointer::default();
        p.apply(CursorCommand::Set {
            x: 1,
            y: 2,
            visible: true,
            shape: None,
        });
        let a = p.snapshot();
        assert_eq!((a.x, a.y, a.visible, a.shape_generation), (1, 2, true, 1));
        p.apply(CursorCommand::Move { x: 5, y: 6 });
        let b = p.snapshot();
        assert_eq!((b.shape_generation, b.move_generation), (1, 1));
        p.apply(CursorCommand::Hide);
        p.apply(CursorCommand::Move { x: 0, y: 0 });
        let c = p.snapshot();
        assert!(c.visible);
        assert_eq!(c.shape_generation, 3);
    }
}
