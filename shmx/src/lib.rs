//! shmx: typed, zero-copy, shared-memory publish/subscribe.
//!
//! A [`Publisher`] loans a chunk of shared memory, the caller writes a message in place and
//! publishes it; every [`Subscriber`] of the topic, in any process on the machine, receives a
//! [`Sample`] that points at those very bytes. Message types derive [`ShmMessage`], which
//! proves at compile time that they can live in shared memory.
//!
//! ```
//! # let dir = tempfile::tempdir().unwrap();
//! # std::env::set_var("SHMX_ROOT", dir.path());
//! use shmx::{Publisher, Subscriber, ShmMessage};
//!
//! #[derive(ShmMessage, Clone, Copy, Debug, PartialEq)]
//! #[repr(C)]
//! struct Pose { seq: u64, x: f64, y: f64, z: f64 }
//!
//! let subscriber = Subscriber::<Pose>::new("robot/pose")?;
//! let publisher = Publisher::<Pose>::new("robot/pose")?;
//! let mut sample = publisher.loan()?;
//! sample.x = 1.0;
//! sample.publish()?;
//! let received = subscriber.take()?.expect("published above");
//! assert_eq!(received.x, 1.0);
//! # Ok::<(), shmx::Error>(())
//! ```
//!
//! # Trust model
//!
//! - **Files.** Topics live under a root: a builder's `root(..)`, `$SHMX_ROOT`, the defaults
//!   file's `root`, or the private per-user [`name::root_dir`] (`/dev/shm/shmx-<uid>`,
//!   created `0700`). Every endpoint checks the root, the topic's directory and each file
//!   before it uses them: owned by the caller (or by the group named in
//!   [`TopicConfig::group`]), never writable by others, never a symbolic link (entries are
//!   opened relative to their directory's descriptor with `O_NOFOLLOW`), and no wider than
//!   the caller's [`TopicConfig::mode`]. A topic whose stored mode is wider than the caller's
//!   is refused, never joined (so no participant creates a file wider than its own
//!   configuration allows). Failures are [`Error::PermissionDenied`], naming the path, what
//!   is wrong and how to fix it.
//! - **Defaults file.** A `shmx.toml` (see [`defaults`]) sets the root and the mode of a
//!   program's topics, so it is refused unless it is owned by the caller or root, neither its
//!   group nor others may write it, and no symbolic link of another user leads to it.
//! - **Peers.** Processes of the same user can do anything to each other (they can `ptrace`
//!   one another and write every segment); so can every participant of a topic to the
//!   delivery of the others, since all of them write the topic's rings and slots. Another user
//!   is a participant only of topics shared with its group.
//! - **Validation.** A subscriber checks each sample when it takes it: chunk index, length,
//!   relative pointers, `bool`s, enum discriminants, UTF-8, rkyv archives. Zero-copy samples
//!   stay in the publisher's chunk: number fields rewritten afterwards just change, relative
//!   pointers are re-checked against the sample's own chunk at every read, but an invalid
//!   `bool`, enum or rkyv archive written after the take is read unchecked. For publishers that
//!   are not trusted, `SubscriberBuilder::copy_on_take` (and its archive counterpart) copies
//!   each sample into private memory before validating it: what is read is what was checked.
//! - **`SIGBUS`.** Pages are reserved when a file is created, so a full `/dev/shm` is
//!   [`Error::OutOfSpace`] then, never a `SIGBUS` later; but a process that may write a
//!   topic's files can truncate one that others have mapped, and their next access to the cut
//!   pages raises `SIGBUS`.
#![deny(
    unsafe_op_in_unsafe_fn,
    missing_docs,
    clippy::undocumented_unsafe_blocks,
    clippy::missing_safety_doc
)]
#![cfg_attr(loom, allow(dead_code))]

extern crate self as shmx;

#[cfg(all(feature = "rkyv", not(loom)))]
pub mod archive;
pub mod message;
#[cfg(not(loom))]
mod regions;
#[cfg(not(loom))]
pub mod rel;
#[cfg(not(loom))]
pub mod request;
mod ring;
mod sync;

#[cfg(not(loom))]
pub mod config;
#[cfg(not(loom))]
mod data;
#[cfg(not(loom))]
pub mod defaults;
#[cfg(not(loom))]
mod dir;
#[cfg(not(loom))]
pub mod error;
mod event;
#[cfg(not(loom))]
pub mod inspect;
#[cfg(not(loom))]
pub mod name;
#[cfg(not(loom))]
mod node;
mod pins;
#[cfg(not(loom))]
mod pool;
#[cfg(not(loom))]
mod publisher;
#[cfg(not(loom))]
mod raw;
#[cfg(not(loom))]
mod root;
#[cfg(not(loom))]
mod sample;
pub mod schema_text;
#[cfg(not(loom))]
mod segment;
#[cfg(not(loom))]
mod service;
#[cfg(not(loom))]
mod signal;
#[cfg(not(loom))]
mod spin;
#[cfg(not(loom))]
mod subscriber;
#[cfg(not(loom))]
mod trust;
mod validation;
#[cfg(all(target_os = "linux", not(loom)))]
pub mod waitset;

#[cfg(not(loom))]
pub use config::{Overflow, PoolClasses, PublisherConfig, SubscriberConfig, TopicConfig};
#[cfg(not(loom))]
pub use error::{Error, Result};
pub use message::ShmMessage;
#[cfg(not(loom))]
pub use pool::{ClassStats, PoolStats};
#[cfg(not(loom))]
pub use publisher::{Publisher, PublisherBuilder};
#[cfg(not(loom))]
pub use rel::{RelSlice, RelStr, Tail, Writable};
#[cfg(not(loom))]
pub use request::{Client, Server};
#[cfg(not(loom))]
pub use sample::{Sample, SampleMut};
#[cfg(not(loom))]
pub use service::LAYOUT_VERSION;
pub use shmx_derive::ShmMessage;
#[cfg(not(loom))]
pub use spin::{MAX_SPIN, MIN_SPIN};
#[cfg(all(feature = "tokio", not(loom)))]
pub use subscriber::{Recv, SampleStream};
#[cfg(not(loom))]
pub use subscriber::{Subscriber, SubscriberBuilder};
#[cfg(all(target_os = "linux", not(loom)))]
pub use waitset::WaitSet;

#[doc(hidden)]
pub mod __private;

/// The `rkyv` crate this version of shmx archives with (feature `rkyv`).
#[cfg(feature = "rkyv")]
pub use rkyv;
