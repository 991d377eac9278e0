//! The interfaces QEMU registers with `spice_server_add_interface`, and the version
//! check spice-server applies: same major, minor not newer than ours.

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Kind {
    Keyboard,
    Mouse,
    Tablet,
    Migration,
    Qxl,
    Playback,
    Record,
    CharDevice,
}

impl Kind {
    pub(crate) fn from_type(name: &str) -> Option<Kind> {
        Some(match name {
            "keyboard" => Kind::Keyboard,
            "mouse" => Kind::Mouse,
            "tablet" => Kind::Tablet,
            "migration" => Kind::Migration,
            "qxl" => Kind::Qxl,
            "playback" => Kind::Playback,
            "record" => Kind::Record,
            "char_device" => Kind::CharDevice,
            _ => return None,
        })
    }

    /// (major, minor) this library implements, as in spice-server 0.15's headers.
    pub(crate) fn version(self) -> (u32, u32) {
        match self {
            Kind::Keyboard | Kind::Mouse | Kind::Tablet | Kind::Migration => (1, 1),
            Kind::Qxl => (3, 3),
            Kind::Playback => (1, 3),
            Kind::Record => (2, 3),
            Kind::CharDevice => (1, 3),
        }
    }

    /// Only one of these may be registered at a time.
    pub(crate) fn is_singleton(self) -> bool {
        matches!(
            self,
            Kind::Keyboard | Kind::Mouse | Kind::Tablet | Kind::Migration
        )
    }

    pub(crate) fn accepts(self, major: u32, minor: u32) -> bool {
        let (our_major, our_minor) = self.version();
        major == our_major && minor <= our_minor
    }
}

/// An instance QEMU registered, identified by its address (QEMU embeds instances in its
/// own structs and never moves them while registered).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct InstanceId(pub usize);

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum InterfaceError {
    AlreadyRegistered(Kind),
    NotRegistered,
    DuplicateQxlId(i32),
    NegativeQxlId(i32),
}

impl std::fmt::Display for InterfaceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            InterfaceError::AlreadyRegistered(k) => {
                write!(f, "a {k:?} interface is already registered")
            }
            InterfaceError::NotRegistered => write!(f, "interface is not registered"),
            InterfaceError::DuplicateQxlId(id) => {
                write!(f, "a QXL instance with id {id} already exists")
            }
            InterfaceError::NegativeQxlId(id) => write!(f, "QXL instance id {id} is negative"),
        }
    }
}

#[derive(Default)]
pub(crate) struct Registry {
    entries: Vec<(Kind, InstanceId)>,
}

impl Registry {
    pub(crate) fn check_add(&self, kind: Kind, id: InstanceId) -> Result<(), InterfaceError> {
        if kind.is_singleton() && self.entries.iter().any(|(k, _)| *k == kind) {
            return Err(InterfaceError::AlreadyRegistered(kind));
        }
        if self.entries.iter().any(|(_, i)| *i == id) {
            return Err(InterfaceError::AlreadyRegistered(kind));
        }
        Ok(())
    }

    pub(crate) fn add(&mut self, kind: Kind, id: InstanceId) {
        self.entries.push((kind, id));
    }

    pub(crate) fn remove(&mut self, id: InstanceId) -> Option<Kind> {
        let pos = self.entries.iter().position(|(_, i)| *i == id)?;
        Some(self.entries.remove(pos).0)
    }

    pub(crate) fn all(&self) -> Vec<(Kind, InstanceId)> {
        self.entries.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_rule_matches_spice_server() {
        assert!(Kind::Qxl.accepts(3, 3));
        assert!(Kind::Qxl.accepts(3, 0));
        assert!(!Kind::Qxl.accepts(3, 4));
        assert!(!Kind::Qxl.accepts(2, 3));
        assert!(Kind::Record.accepts(2, 3));
        assert!(!Kind::Record.accepts(1, 3));
    }

    #[test]
    fn singletons_and_duplicates() {
        let mut r = Registry::default();
        r.check_add(Kind::Keyboard, InstanceId(1)).unwrap();
        r.add(Kind::Keyboard, InstanceId(1));
        assert_eq!(
            r.check_add(Kind::Keyboard, InstanceId(2)),
            Err(InterfaceError::AlreadyRegistered(Kind::Keyboard))
        );
        r.check_add(Kind::CharDevice, InstanceId(3)).unwrap();
        r.add(Kind::CharDevice, InstanceId(3));
        r.check_add(Kind::CharDevice, InstanceId(4)).unwrap();
        assert_eq!(r.remove(InstanceId(1)), Some(Kind::Keyboard));
        assert_eq!(r.remove(InstanceId(1)), None);
        r.check_add(Kind::Keyboard, InstanceId(2)).unwrap();
    }
}
