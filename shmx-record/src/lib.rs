//! Record shmx topics to [MCAP](https://mcap.dev) files and play them back.
//!
//! Every shmx topic stores its message type's schema, so a [`Recorder`] records any topic
//! without its Rust type, and a [`Player`] recreates the topic from the recording and
//! publishes the very bytes that were recorded, to typed subscribers.
//!
//! ```
//! # let dir = tempfile::tempdir().unwrap();
//! # let root = dir.path().join("root");
//! # let file = dir.path().join("demo.mcap");
//! use shmx::{Publisher, Subscriber};
//! use shmx_record::{Player, Recorder, Recording};
//! use std::time::Duration;
//!
//! let publisher = Publisher::<[u32; 2]>::builder("demo/pair").root(&root).create()?;
//! let mut recorder = Recorder::builder(&file).root(&root).topics(["demo/*"]).create()?;
//! recorder.poll(Duration::ZERO)?; // joins the topic
//! for i in 0..3 {
//!     publisher.send([i, i * 10])?;
//! }
//! while recorder.stats()[0].messages < 3 {
//!     recorder.poll(Duration::from_millis(10))?;
//! }
//! let summary = recorder.finish()?;
//! assert_eq!(summary.topics[0].messages, 3);
//! drop(publisher);
//!
//! // What the file holds, without shmx running.
//! let recording = Recording::open(&file)?;
//! let info = recording.info()?;
//! assert_eq!((info.channels.len(), info.messages), (1, 3));
//!
//! // Played back to a typed subscriber.
//! let subscriber = Subscriber::<[u32; 2]>::builder("demo/pair")
//!     .root(&root)
//!     .queue_depth(8)
//!     .create()?;
//! Player::new(&file).root(&root).rate(100.0).play()?;
//! assert_eq!(*subscriber.take()?.unwrap(), [0, 0]);
//! assert_eq!(*subscriber.take()?.unwrap(), [1, 10]);
//! # Ok::<(), shmx_record::Error>(())
//! ```
//!
//! # What a recording holds
//! One MCAP channel per topic, with a schema of encoding `shmx` named after the message
//! type whose data is the topic's schema text (see `shmx::schema_text`), and channel
//! metadata `shmx.fingerprint`, `shmx.size`, `shmx.schema` and `shmx.endian`. Each message is
//! one sample: its bytes exactly as published (the message, then the used part of its tail:
//! relative pointers are self-relative, so the bytes replay as they are; archived rkyv
//! values too), message encoding `shmx`; its publish time (the publisher's wall clock, see
//! `shmx::SubscriberBuilder::publish_times`; for samples published before the recorder
//! joined, the time it took them), the time it was recorded, and the low 32 bits of the
//! publisher's sequence number. Which publisher sent it is a private record (opcode
//! [`format::PUBLISHER_OP`]) in the chunk before the first message of each run of messages
//! of one publisher on a channel; readers that do not know it skip it.
//!
//! With a [`Transcode`] (the `shmx` tool's `--encoding json`), schemas and messages are
//! written in another encoding instead; the `shmx.*` metadata stays.
//!
//! # Crashes
//! The recorder writes chunks (of `chunk_size` bytes, and at least every second): a
//! recorder that is killed leaves a file whose complete chunks [`Recording`] reads (and,
//! of the chunk it was writing, the records that reached the file whole), and says that the
//! file was cut off ([`Info::truncated`]): at most the last second is lost.

mod convert;
mod error;
pub mod format;
mod player;
mod reader;
mod recorder;
mod select;
mod transcode;
mod watch;

pub use convert::{convert, Converted};
pub use error::{Error, Result};
pub use player::{Played, Player};
pub use reader::{ChannelInfo, Entry, Info, Message, Recording, RecordingReader, TopicCount};
pub use recorder::{Compression, Recorder, RecorderBuilder, Summary, TopicStats};
pub use select::Selection;
pub use transcode::{Encoding, TopicType, Transcode};
