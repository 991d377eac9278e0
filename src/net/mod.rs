//! Sockets: the listening sockets and the reactor thread that owns every connection.

pub(crate) mod auth;
pub(crate) mod link;
pub(crate) mod listener;
pub(crate) mod reactor;
pub(crate) mod records;
pub(crate) mod sasl;
pub(crate) mod stream;
pub(crate) mod tls;
pub(crate) mod websocket;
