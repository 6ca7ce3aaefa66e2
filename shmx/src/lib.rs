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
mod ring;
mod sync;

#[cfg(not(loom))]
pub mod config;
#[cfg(not(loom))]
mod data;
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
mod sample;
#[cfg(not(loom))]
mod segment;
#[cfg(not(loom))]
mod service;
#[cfg(not(loom))]
mod subscriber;
mod validation;

#[cfg(not(loom))]
pub use config::{Overflow, PublisherConfig, SubscriberConfig, TopicConfig};
#[cfg(not(loom))]
pub use error::{Error, Result};
pub use message::ShmMessage;
#[cfg(not(loom))]
pub use pool::PoolStats;
#[cfg(not(loom))]
pub use publisher::{Publisher, PublisherBuilder};
#[cfg(not(loom))]
pub use rel::{RelSlice, RelStr, Tail, Writable};
#[cfg(not(loom))]
pub use sample::{Sample, SampleMut};
#[cfg(not(loom))]
pub use service::LAYOUT_VERSION;
pub use shmx_derive::ShmMessage;
#[cfg(not(loom))]
pub use subscriber::{Subscriber, SubscriberBuilder, MAX_SPIN, MIN_SPIN};

#[doc(hidden)]
pub mod __private;

/// The `rkyv` crate this version of shmx archives with (feature `rkyv`).
#[cfg(feature = "rkyv")]
pub use rkyv;
