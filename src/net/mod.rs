//! Sockets: the listening sockets and the reactor thread that owns every connection.

pub mod auth;
pub mod link;
pub mod listener;
pub mod reactor;
pub mod stream;
