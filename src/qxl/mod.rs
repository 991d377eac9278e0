//! Guest memory and QXL commands: everything the guest hands us is checked here
//! before anything reads it.

pub(crate) mod command;
pub(crate) mod draw;
#[allow(unsafe_code)]
pub(crate) mod guest;
pub(crate) mod image;
pub(crate) mod memslot;
#[cfg(test)]
pub(crate) mod testmem;
