//! Endpoints without a Rust type, for tools: they adopt the message type stored in an
//! existing topic and move its samples as bytes (decode them with the topic's schema text).
//!
//! ```
//! # let dir = tempfile::tempdir().unwrap();
//! use shmx::inspect::{RawPublisher, RawSubscriber};
//! use shmx::Subscriber;
//! use std::time::Duration;
//! let typed = Subscriber::<[u16; 2]>::builder("doc/raw").root(dir.path()).create()?;
//! let raw_sub = RawSubscriber::new(dir.path(), "doc/raw")?;
//! let raw_pub = RawPublisher::new(dir.path(), "doc/raw")?;
//! assert_eq!((raw_pub.schema(), raw_pub.size()), ("[u16;2]", 4));
//! raw_pub.send(&[1, 0, 2, 0])?;
//! assert_eq!(*typed.take()?.unwrap(), [1, 2]);
//! let sample = raw_sub.recv_timeout(Duration::from_secs(1))?.unwrap();
//! assert_eq!((sample.bytes(), sample.sequence()), (&[1u8, 0, 2, 0][..], 1));
//! # Ok::<(), shmx::Error>(())
//! ```

use crate::config::{PublisherConfig, SubscriberConfig, TopicConfig};
use crate::error::{Error, Result};
use crate::name::TopicName;
use crate::publisher::PubCore;
use crate::root::{Root, RootLock};
use crate::sample::Sample;
use crate::service::Service;
use crate::subscriber::SubCore;
use crate::trust::Trust;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Opens an existing topic, whatever its type.
fn open_existing(
    root: &Arc<Root>,
    name: &TopicName,
    _config: &TopicConfig,
    trust: &Trust,
    lock: &RootLock,
) -> Result<Service> {
    let service = Service::open_untyped(root, name, trust)?.ok_or_else(|| Error::Io {
        path: root.path().join(name.encoded()),
        source: std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "no such topic: start a publisher or subscriber of it first",
        ),
    })?;
    service.sweep(lock);
    Ok(service)
}

/// A subscriber of an existing topic that receives its samples as bytes.
///
/// `Send` but not `Sync`, like [`Subscriber`](crate::Subscriber): one per thread, or a channel to the
/// thread that owns it.
pub struct RawSubscriber {
    core: SubCore,
    schema: String,
    size: usize,
}

/// A received sample, as bytes; handed back when dropped.
pub struct RawSample<'s> {
    sample: Sample<'s, u8>,
    size: usize,
}

impl RawSubscriber {
    /// Subscribes to the existing topic `topic` under `root`.
    pub fn new(root: &Path, topic: &str) -> Result<RawSubscriber> {
        let config = SubscriberConfig::default();
        let core =
            SubCore::create_with(Some(root), topic, config, Trust::for_tools(), open_existing)?;
        let schema = core.service().schema_text();
        let size = core.service().type_facts().1;
        Ok(RawSubscriber { core, schema, size })
    }

    /// The same subscriber, copying each sample into memory of its own before handing it
    /// out, for publishers that are not trusted: what [`RawSample::bytes`] shows is then
    /// exactly what was copied, however the publisher rewrites its chunk later. The sample's
    /// published length is read once and checked against the chunk's capacity, and the chunk
    /// is given back as soon as it is copied. Costs a copy of the sample's bytes per take;
    /// see [`SubscriberBuilder::copy_on_take`](crate::SubscriberBuilder::copy_on_take).
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// use shmx::inspect::{RawPublisher, RawSubscriber};
    /// use shmx::Subscriber;
    /// let _typed = Subscriber::<u32>::builder("doc/rawcopy").root(dir.path()).create()?;
    /// let raw_sub = RawSubscriber::new(dir.path(), "doc/rawcopy")?.copy_on_take();
    /// let raw_pub = RawPublisher::new(dir.path(), "doc/rawcopy")?;
    /// raw_pub.send(&7u32.to_ne_bytes())?;
    /// let sample = raw_sub.take()?.unwrap();
    /// assert_eq!(sample.bytes(), 7u32.to_ne_bytes());
    /// # Ok::<(), shmx::Error>(())
    /// ```
    pub fn copy_on_take(mut self) -> RawSubscriber {
        self.core.copy_on_take();
        self
    }

    /// The topic's schema text (`Schema::describe` of its message type).
    pub fn schema(&self) -> &str {
        &self.schema
    }

    /// Bytes in a sample.
    pub fn size(&self) -> usize {
        self.size
    }

    /// Takes the next sample if one is waiting.
    pub fn take(&self) -> Result<Option<RawSample<'_>>> {
        let sample = self.core.take_bytes()?;
        Ok(sample.map(|sample| RawSample {
            sample,
            size: self.size,
        }))
    }

    /// Waits up to `timeout` for the next sample, polling every millisecond (tools need no
    /// microseconds). A `timeout` past the clock's range (`Duration::MAX`) waits forever.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<Option<RawSample<'_>>> {
        // Past the clock's range (`Duration::MAX`): no deadline.
        let deadline = Instant::now().checked_add(timeout);
        loop {
            if let Some(sample) = self.take()? {
                return Ok(Some(sample));
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Ok(None);
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

impl RawSample<'_> {
    /// The sample's bytes: the message, then the used part of its tail (if the type has
    /// relative pointers).
    pub fn bytes(&self) -> &[u8] {
        let len = self.sample.payload_len();
        debug_assert!(len >= self.size);
        // SAFETY: `as_ptr` is the sample's first payload byte (in a chunk or in the private
        // copy), derived from the mapping's (the copy's) own pointer, so it covers the whole
        // payload; its length was checked to lie between the type's size and the chunk's
        // payload capacity when it was taken (one load, kept in the sample); the bytes stay
        // mapped and unchanged while the sample is held.
        unsafe { std::slice::from_raw_parts(self.sample.as_ptr(), len) }
    }

    /// The publisher's sequence number.
    pub fn sequence(&self) -> u64 {
        self.sample.sequence()
    }
}

/// A publisher on an existing topic that sends samples given as bytes.
///
/// `Send` but not `Sync`, like [`Publisher`](crate::Publisher): one per thread, or a channel to the
/// thread that owns it.
pub struct RawPublisher {
    core: PubCore,
    schema: String,
    size: usize,
    capacity: usize,
}

impl RawPublisher {
    /// The alignment (at least) of every sample's first byte in memory: the largest alignment
    /// of a primitive, so that tail data placed at a multiple of its alignment within a
    /// sample's bytes is aligned (see [`send`](Self::send)).
    pub const PAYLOAD_ALIGN: usize = 16;

    /// Publishes on the existing topic `topic` under `root`, with the default configuration
    /// ([`PublisherConfig::default`]: no tail; a sample of a type without relative pointers
    /// is exactly [`size`](Self::size) bytes, see [`capacity`](Self::capacity)).
    pub fn new(root: &Path, topic: &str) -> Result<RawPublisher> {
        Self::with_config(root, topic, PublisherConfig::default())
    }

    /// Publishes on the existing topic `topic` under `root`, configured by `config`. For a
    /// type with relative pointers, `config.max_tail_bytes` sets the room for their data
    /// after the message (the topic's schema text shows `rel[..]` or `relstr` then); samples
    /// may then be up to [`capacity`](Self::capacity) bytes long.
    /// (`config.topic` is not used: the topic exists already.)
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// use shmx::inspect::RawPublisher;
    /// use shmx::{PublisherConfig, RelStr, ShmMessage, Subscriber};
    ///
    /// #[derive(ShmMessage)]
    /// #[repr(C)]
    /// struct Note {
    ///     id: u32,
    ///     text: RelStr,
    /// }
    ///
    /// let typed = Subscriber::<Note>::builder("doc/note").root(dir.path()).create()?;
    /// let config = PublisherConfig {
    ///     max_tail_bytes: 256,
    ///     ..PublisherConfig::default()
    /// };
    /// let raw = RawPublisher::with_config(dir.path(), "doc/note", config)?;
    /// assert_eq!(raw.schema(), "Note(12,4){id@0:u32,text@4:relstr}");
    /// assert!(raw.capacity() >= 12 + 256);
    /// // The message (12 bytes), then its tail: `text` points 8 bytes past itself (to byte
    /// // 12), where its 2 bytes lie.
    /// let mut bytes = Vec::new();
    /// bytes.extend_from_slice(&5u32.to_ne_bytes()); // id
    /// bytes.extend_from_slice(&8u32.to_ne_bytes()); // text: offset from byte 4
    /// bytes.extend_from_slice(&2u32.to_ne_bytes()); // text: length
    /// bytes.extend_from_slice(b"hi");
    /// raw.send(&bytes)?;
    /// let note = typed.take()?.unwrap();
    /// assert_eq!((note.id, note.text()), (5, "hi"));
    /// # Ok::<(), shmx::Error>(())
    /// ```
    pub fn with_config(root: &Path, topic: &str, config: PublisherConfig) -> Result<RawPublisher> {
        let core =
            PubCore::create_with(Some(root), topic, config, Trust::for_tools(), open_existing)?;
        let schema = core.service().schema_text();
        let size = core.service().type_facts().1;
        // Samples of a type without relative pointers have exactly the type's size: typed
        // subscribers refuse anything else.
        let capacity = if core.service().has_tail() {
            core.payload_capacity()
        } else {
            size
        };
        Ok(RawPublisher {
            core,
            schema,
            size,
            capacity,
        })
    }

    /// The topic's schema text.
    pub fn schema(&self) -> &str {
        &self.schema
    }

    /// Bytes in a message (without its tail).
    pub fn size(&self) -> usize {
        self.size
    }

    /// The most bytes one sample may have: [`size`](Self::size) for a type without relative
    /// pointers; otherwise the message and the tail after it (at least `size` plus the
    /// configured `max_tail_bytes`; the chunk's rounding may add a few).
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Number of subscribers currently connected.
    pub fn subscriber_count(&self) -> usize {
        self.core.subscriber_count()
    }

    /// Publishes `bytes` as one sample: the message ([`size`](Self::size) bytes) followed,
    /// for a type with relative pointers, by the used part of its tail, so between `size`
    /// and [`capacity`](Self::capacity) bytes in all. Subscribers receive exactly these
    /// bytes.
    ///
    /// The caller vouches that they are a valid value of the topic's type; typed subscribers
    /// validate `bool`s, enums and relative pointers anyway (and report and drop samples
    /// that fail).
    /// Relative pointers hold offsets from their own position in `bytes`: the publisher
    /// places `bytes` at the start of the chunk's payload, which is aligned for the message
    /// type, for every element type of its relative slices
    /// ([`Schema::sample_align`](crate::message::Schema::sample_align), stored with the topic)
    /// and to at least [`PAYLOAD_ALIGN`](Self::PAYLOAD_ALIGN) bytes, so data placed within
    /// `bytes` at a multiple of its alignment is aligned in memory too.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] when `bytes` is shorter than a message or longer than the
    /// capacity (nothing is published); otherwise as
    /// [`Publisher::send`](crate::Publisher::send).
    pub fn send(&self, bytes: &[u8]) -> Result<()> {
        let (size, capacity) = (self.size, self.capacity);
        if bytes.len() < size || bytes.len() > capacity {
            let reason = if capacity > size {
                format!(
                    "a sample has {size} to {capacity} bytes (the message and its tail), not {}",
                    bytes.len()
                )
            } else {
                format!("a sample has {size} bytes, not {}", bytes.len())
            };
            return Err(Error::InvalidConfig {
                topic: self.core.service().topic().to_owned(),
                reason,
            });
        }
        // The smallest class that holds the sample.
        let class = self.core.class_for(bytes.len(), size)?;
        let (chunk, payload) = self.core.loan(class)?;
        let chunk_capacity = self.core.payload(chunk).1;
        debug_assert!(bytes.len() <= chunk_capacity);
        let len = bytes.len().min(chunk_capacity);
        // SAFETY: `chunk` is loaned to us alone and its payload holds `chunk_capacity` bytes,
        // of which we write `len` ≤ `chunk_capacity`; `bytes` is a separate slice (our own
        // memory, not the loaned chunk) of at least `len` bytes.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), payload, len) };
        self.core.publish(chunk, len)
    }
}
