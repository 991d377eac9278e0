//! `spice-migration.h`: migration interface (QEMU is told when client migration steps
//! complete).

use super::core::{SpiceBaseInstance, SpiceBaseInterface};
use std::marker::{PhantomData, PhantomPinned};

/// `SpiceBaseInterface.type` of the migration interface.
pub const SPICE_INTERFACE_MIGRATION: &str = "migration";
/// Major version of the migration interface.
pub const SPICE_INTERFACE_MIGRATION_MAJOR: u32 = 1;
/// Minor version of the migration interface.
pub const SPICE_INTERFACE_MIGRATION_MINOR: u32 = 1;

/// The library's migration state behind `SpiceMigrateInstance.st`.
pub struct SpiceMigrateState {
    _private: [u8; 0],
    _marker: PhantomData<(*mut u8, PhantomPinned)>,
}

/// Migration interface (`SPICE_INTERFACE_MIGRATION`, 1.1).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct SpiceMigrateInterface {
    /// "migration", 1.1.
    pub base: SpiceBaseInterface,
    /// Clients have connected to the migration target (after `spice_server_migrate_connect`).
    pub migrate_connect_complete: Option<unsafe extern "C" fn(sin: *mut SpiceMigrateInstance)>,
    /// Client-side migration finished (after `spice_server_migrate_end`).
    pub migrate_end_complete: Option<unsafe extern "C" fn(sin: *mut SpiceMigrateInstance)>,
}

/// A migration instance.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct SpiceMigrateInstance {
    /// `base.sif` points to a `SpiceMigrateInterface`.
    pub base: SpiceBaseInstance,
    /// The library's state; the caller never touches it.
    pub st: *mut SpiceMigrateState,
}
