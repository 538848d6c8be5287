//! **mongo-standin is a test stand-in, not MongoDB.** It speaks enough of MongoDB's wire
//! protocol (OP_MSG, the legacy OP_QUERY handshake) for the official drivers to do simple
//! CRUD against a standalone server, with SCRAM-SHA-256 authentication and on-disk
//! persistence, plus dump/restore/shell subcommands shaped like MongoDB's tools.
//! See README.md for exactly what it supports and what it does not.

pub mod client;
pub mod query;
pub mod scram;
pub mod server;
pub mod store;
pub mod tools;
pub mod wire;

pub use server::{Config, Server};
