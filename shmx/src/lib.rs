//! shmx: typed, zero-copy, shared-memory publish/subscribe.
#![deny(
    unsafe_op_in_unsafe_fn,
    missing_docs,
    clippy::undocumented_unsafe_blocks,
    clippy::missing_safety_doc
)]

extern crate self as shmx;

pub mod message;

pub use message::ShmMessage;
pub use shmx_derive::ShmMessage;

#[doc(hidden)]
pub mod __private;
