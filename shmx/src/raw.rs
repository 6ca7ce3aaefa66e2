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
use crate::sample::Sample;
use crate::segment::RootLock;
use crate::service::Service;
use crate::subscriber::SubCore;
use std::path::Path;
use std::time::{Duration, Instant};

/// Opens an existing topic, whatever its type.
fn open_existing(
    root: &Path,
    name: &TopicName,
    _config: &TopicConfig,
    lock: &RootLock,
) -> Result<Service> {
    let service = Service::open_untyped(root, name)?.ok_or_else(|| Error::Io {
        path: root.join(name.encoded()),
        source: std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "no such topic: start a publisher or subscriber of it first",
        ),
    })?;
    service.sweep(lock);
    Ok(service)
}

/// A subscriber of an existing topic that receives its samples as bytes.
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
        let core = SubCore::create_with(root, topic, SubscriberConfig::default(), open_existing)?;
        let schema = core.service().schema_text();
        let size = core.service().type_facts().1;
        Ok(RawSubscriber { core, schema, size })
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
    /// microseconds).
    pub fn recv_timeout(&self, timeout: Duration) -> Result<Option<RawSample<'_>>> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(sample) = self.take()? {
                return Ok(Some(sample));
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

impl RawSample<'_> {
    /// The sample's bytes.
    /// The sample's bytes: the message, then the used part of its tail (if the type has
    /// relative pointers).
    pub fn bytes(&self) -> &[u8] {
        let len = self.sample.payload_len();
        debug_assert!(len >= self.size);
        // SAFETY: the sample points at the first payload byte of a chunk; its length was
        // checked to lie between the type's size and the chunk's payload capacity when it was
        // taken (one load, kept in the sample); the chunk stays mapped and unchanged while
        // the sample is held.
        unsafe { std::slice::from_raw_parts(&*self.sample as *const u8, len) }
    }

    /// The publisher's sequence number.
    pub fn sequence(&self) -> u64 {
        self.sample.sequence()
    }
}

/// A publisher on an existing topic that sends samples given as bytes.
pub struct RawPublisher {
    core: PubCore,
    schema: String,
}

impl RawPublisher {
    /// Publishes on the existing topic `topic` under `root`.
    pub fn new(root: &Path, topic: &str) -> Result<RawPublisher> {
        let core = PubCore::create_with(root, topic, PublisherConfig::default(), open_existing)?;
        let schema = core.service().schema_text();
        Ok(RawPublisher { core, schema })
    }

    /// The topic's schema text.
    pub fn schema(&self) -> &str {
        &self.schema
    }

    /// Bytes in a sample.
    pub fn size(&self) -> usize {
        self.core.service().type_facts().1
    }

    /// Number of subscribers currently connected.
    pub fn subscriber_count(&self) -> usize {
        self.core.subscriber_count()
    }

    /// Publishes `bytes` (exactly [`size`](Self::size) of them) as one sample. The caller
    /// vouches that they are a valid value of the topic's type; subscribers validate `bool`s
    /// and enums anyway.
    pub fn send(&self, bytes: &[u8]) -> Result<()> {
        let size = self.size();
        if bytes.len() != size {
            return Err(Error::InvalidConfig {
                topic: self.core.service().topic().to_owned(),
                reason: format!("a sample has {size} bytes, not {}", bytes.len()),
            });
        }
        let chunk = self.core.loan()?;
        let (payload, capacity) = self.core.payload(chunk);
        debug_assert!(capacity >= size);
        // SAFETY: `chunk` is loaned to us alone and its payload holds `size` bytes; `bytes`
        // is a separate slice of exactly `size` bytes.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), payload, size) };
        self.core.publish(chunk, size)
    }
}
