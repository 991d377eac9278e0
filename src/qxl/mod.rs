//! Guest memory and QXL commands: everything the guest hands us is checked here
//! before anything reads it.

pub mod command;
pub mod draw;
pub mod guest;
pub mod image;
pub mod memslot;
#[cfg(test)]
pub mod testmem;
