//! Any [`rkyv`] value through shared memory (feature `rkyv`, on by default): strings, vectors,
//! maps, enums with data, whatever `#[derive(rkyv::Archive, rkyv::Serialize)]` accepts.
//!
//! An [`ArchivePublisher`] serializes a value straight into a loaned chunk (no intermediate
//! buffer: rkyv's writer is the chunk itself) and publishes it; an [`ArchiveSubscriber`]
//! checks the archive in place with rkyv's validator (bytecheck) and hands out
//! `&Archived<T>` that points into the publisher's chunk: zero copies. A corrupt or hostile
//! archive yields [`Error::InvalidSample`] and the subscriber moves on.
//!
//! ```
//! # let dir = tempfile::tempdir().unwrap();
//! use shmx::archive::{ArchivePublisher, ArchiveSubscriber};
//! use std::collections::HashMap;
//!
//! #[derive(rkyv::Archive, rkyv::Serialize)]
//! struct Inventory {
//!     site: String,
//!     stock: HashMap<String, u32>,
//!     temperatures: Vec<f32>,
//! }
//!
//! let subscriber = ArchiveSubscriber::<Inventory>::builder("doc/inventory")
//!     .root(dir.path())
//!     .create()?;
//! let publisher = ArchivePublisher::<Inventory>::builder("doc/inventory")
//!     .root(dir.path())
//!     .max_bytes(4096)
//!     .create()?;
//! let value = Inventory {
//!     site: "depot 7".into(),
//!     stock: HashMap::from([("bolts".into(), 1200), ("nuts".into(), 800)]),
//!     temperatures: vec![4.5, 4.25],
//! };
//! publisher.send(&value)?;
//!
//! let sample = subscriber.take()?.unwrap(); // checked, in place
//! assert_eq!(sample.site, "depot 7");
//! assert_eq!(sample.stock.get("bolts").map(|n| n.to_native()), Some(1200));
//! assert_eq!(sample.temperatures.len(), 2);
//! # Ok::<(), shmx::Error>(())
//! ```
//!
//! The topic records the type by name (without module paths) and the archived root's size
//! and alignment; two processes must use the same rkyv version and the same type definition.
//! The check on receive catches any archive that is not a valid `Archived<T>`, but two
//! different types with the same name and compatible layouts cannot be told apart.

use crate::config::{PublisherConfig, SubscriberConfig};
use crate::error::{Error, Result};
use crate::message::{hash_str, hash_u64, FNV_OFFSET};
use crate::publisher::PubCore;
use crate::sample::Sample;
use crate::service::{Service, TypeFacts};
use crate::subscriber::SubCore;
use crate::trust::Trust;
use core::marker::PhantomData;
use core::mem::{align_of, size_of, MaybeUninit};
use core::ops::Deref;
use rkyv::api::high::{HighSerializer, HighValidator};
use rkyv::bytecheck::CheckBytes;
use rkyv::rancor;
use rkyv::ser::allocator::ArenaHandle;
use rkyv::ser::writer::Buffer;
use rkyv::{Archive, Archived, Portable, Serialize};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Archives are aligned to this in the chunk (rkyv's largest alignment).
const ARCHIVE_ALIGN: usize = 16;

/// The serializer [`ArchivePublisher::send`] uses: rkyv's high-level serializer writing into
/// the chunk.
pub type ChunkSerializer<'a, 'b> = HighSerializer<Buffer<'b>, ArenaHandle<'a>, rancor::Error>;

/// What the topic records for archives of `T`.
fn facts<T: Archive>() -> TypeFacts {
    let name = strip_paths(std::any::type_name::<T>());
    let size = size_of::<Archived<T>>();
    let align = align_of::<Archived<T>>();
    let mut h = hash_str(FNV_OFFSET, "rkyv-0.8");
    h = hash_str(h, &name);
    h = hash_u64(h, size as u64);
    h = hash_u64(h, align as u64);
    TypeFacts {
        name: name.clone(),
        fingerprint: h,
        // The whole sample is the archive: the fixed part is empty.
        size: 0,
        align: ARCHIVE_ALIGN,
        sample_align: ARCHIVE_ALIGN,
        has_tail: true,
        schema: format!("rkyv:{name}"),
    }
}

/// What a topic of archived values records, from another machine's record of it: its
/// schema text (`rkyv:` and the type's name) and fingerprint. `None` for a text that is not
/// an archived type's.
pub(crate) fn facts_from(schema: &str, fingerprint: u64) -> Option<TypeFacts> {
    let name = schema.strip_prefix(crate::schema_text::ARCHIVED_PREFIX)?;
    if !crate::schema_text::is_archived(schema)
        || name.is_empty()
        || schema.len() > MAX_ARCHIVED_SCHEMA
    {
        return None;
    }
    Some(TypeFacts {
        name: name.to_owned(),
        fingerprint,
        size: 0,
        align: ARCHIVE_ALIGN,
        sample_align: ARCHIVE_ALIGN,
        has_tail: true,
        schema: schema.to_owned(),
    })
}

/// The longest schema text of an archived type taken from another machine.
const MAX_ARCHIVED_SCHEMA: usize = 4096;

/// `alloc::string::String` → `String`, `std::collections::HashMap<a::B, u32>` →
/// `HashMap<B, u32>`: type names as two binaries agree on them.
fn strip_paths(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut ident = String::new();
    let mut chars = name.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_alphanumeric() || c == '_' {
            ident.push(c);
        } else if c == ':' && chars.peek() == Some(&':') {
            chars.next();
            ident.clear(); // a module path segment: drop it
        } else {
            out.push_str(&ident);
            ident.clear();
            out.push(c);
        }
    }
    out.push_str(&ident);
    out
}

/// Publishes rkyv archives of `T`, each serialized in place into a chunk of shared memory.
///
/// `Send` but not `Sync`, like [`Publisher`](crate::Publisher): one per thread, or a channel to the
/// thread that owns it.
pub struct ArchivePublisher<T> {
    core: PubCore,
    /// Bytes of the last archive sent: the next one starts in the class that holds this.
    last_len: std::cell::Cell<usize>,
    _t: PhantomData<fn(&T)>,
}

/// Builds an [`ArchivePublisher`].
#[derive(Debug, Clone)]
#[must_use]
pub struct ArchivePublisherBuilder<T> {
    name: String,
    root: Option<PathBuf>,
    config: PublisherConfig,
    _t: PhantomData<fn(&T)>,
}

impl<T: Archive> ArchivePublisher<T> {
    /// Starts configuring a publisher of archives on topic `name`, from the defaults of this
    /// process (see [`defaults`](crate::defaults)) but for `max_bytes`, 64 KiB.
    pub fn builder(name: &str) -> ArchivePublisherBuilder<T> {
        let config = PublisherConfig {
            max_tail_bytes: 64 * 1024,
            ..crate::defaults::publisher()
        };
        ArchivePublisherBuilder {
            name: name.to_owned(),
            root: None,
            config,
            _t: PhantomData,
        }
    }

    /// Serializes `value` directly into a loaned chunk and publishes it to every subscriber.
    ///
    /// # Errors
    /// [`Error::Archive`] when the archive does not fit in `max_bytes` (or rkyv fails); the
    /// errors of [`Publisher::loan`](crate::Publisher::loan) and
    /// [`SampleMut::publish`](crate::SampleMut::publish).
    ///
    /// The archive's size is known only once it is written: it is written into a chunk of
    /// the size class that held the last archive, and if it does not fit, written again into
    /// one of the largest class (so a stream of archives of about one size takes chunks of
    /// that size, not of `max_bytes`).
    pub fn send(&self, value: &T) -> Result<()>
    where
        T: for<'a, 'b> Serialize<ChunkSerializer<'a, 'b>>,
    {
        let top = self.core.top_class();
        let mut class = self.core.class_for(self.last_len.get(), 0).unwrap_or(top);
        loop {
            let (chunk, payload) = self.core.loan(class)?;
            let capacity = self.core.payload(chunk).1;
            // SAFETY: `chunk` is loaned to this call alone; its payload is `capacity` writable
            // bytes, seen as `MaybeUninit<u8>` (rkyv writes them before anyone reads them).
            let buffer = unsafe {
                core::slice::from_raw_parts_mut(payload.cast::<MaybeUninit<u8>>(), capacity)
            };
            match rkyv::api::high::to_bytes_in::<_, rancor::Error>(value, Buffer::from(buffer)) {
                Ok(written) => {
                    let len = written.len();
                    self.last_len.set(len);
                    return self.core.publish(chunk, len);
                }
                Err(_) if class < top => {
                    self.core.cancel(chunk);
                    class = top;
                }
                Err(e) => {
                    self.core.cancel(chunk);
                    return Err(Error::Archive {
                        topic: self.topic().to_owned(),
                        reason: format!("{e} (max_bytes is {capacity})"),
                    });
                }
            }
        }
    }

    /// The topic's name.
    pub fn topic(&self) -> &str {
        self.core.service().topic()
    }

    /// Number of subscribers currently connected.
    pub fn subscriber_count(&self) -> usize {
        self.core.subscriber_count()
    }
}

impl<T: Archive> ArchivePublisherBuilder<T> {
    /// Largest archive in bytes (default 64 KiB): the largest size class of the pool holds
    /// this much; smaller archives take chunks of smaller classes.
    pub fn max_bytes(mut self, bytes: usize) -> Self {
        self.config.max_tail_bytes = bytes;
        self
    }

    /// Samples queued per subscriber at most (default 16, or the defaults file's).
    pub fn queue_depth(mut self, depth: usize) -> Self {
        self.config.queue_depth = depth;
        self
    }

    /// Samples kept for late subscribers (default 0, or the defaults file's).
    pub fn history(mut self, history: usize) -> Self {
        self.config.history = history;
        self
    }

    /// What to do when a subscriber's queue is full (default `Overflow::DropOldest`, or the
    /// defaults file's).
    pub fn overflow(mut self, overflow: crate::Overflow) -> Self {
        self.config.overflow = overflow;
        self
    }

    /// The directory that holds the topics (default: `$SHMX_ROOT`, else the defaults file's
    /// `root`, else the private `/dev/shm/shmx-<uid>`; see
    /// [`name::root_dir`](crate::name::root_dir)).
    pub fn root(mut self, root: impl Into<PathBuf>) -> Self {
        self.root = Some(root.into());
        self
    }

    /// Connects to (or creates) the topic and reserves the pool of chunks.
    ///
    /// # Errors
    /// [`Error::Config`] while the defaults file cannot be used; the errors of opening,
    /// checking and joining the topic.
    pub fn create(self) -> Result<ArchivePublisher<T>> {
        crate::defaults::check()?;
        let facts = facts::<T>();
        let trust = Trust::of(&self.config.topic);
        let open =
            |r: &_, n: &_, c: &_, t: &_, l: &_| Service::open_or_create_as(r, n, c, t, l, &facts);
        let core = PubCore::create_with(
            self.root.as_deref(),
            &crate::name::TopicName::new(&self.name)?,
            self.config,
            trust,
            open,
        )?;
        Ok(ArchivePublisher {
            core,
            last_len: std::cell::Cell::new(0),
            _t: PhantomData,
        })
    }
}

/// Receives rkyv archives of `T`, checked in place.
///
/// `Send` but not `Sync`, like [`Subscriber`](crate::Subscriber): one per thread, or a channel to the
/// thread that owns it.
pub struct ArchiveSubscriber<T> {
    core: SubCore,
    _t: PhantomData<fn() -> T>,
}

/// Builds an [`ArchiveSubscriber`].
#[derive(Debug, Clone)]
#[must_use]
pub struct ArchiveSubscriberBuilder<T> {
    name: String,
    root: Option<PathBuf>,
    config: SubscriberConfig,
    copy_on_take: bool,
    _t: PhantomData<fn() -> T>,
}

/// A received archive: `&Archived<T>` in the publisher's chunk, handed back when dropped.
pub struct ArchivedSample<'s, T: Archive> {
    sample: Sample<'s, u8>,
    archived: *const Archived<T>,
}

impl<T> ArchiveSubscriber<T>
where
    T: Archive,
    Archived<T>: Portable + for<'a> CheckBytes<HighValidator<'a, rancor::Error>>,
{
    /// Subscribes to archives of `T` on topic `name` with the default configuration.
    pub fn new(name: &str) -> Result<ArchiveSubscriber<T>> {
        Self::builder(name).create()
    }

    /// Starts configuring a subscriber on topic `name`, from the defaults of this process
    /// (see [`defaults`](crate::defaults)).
    pub fn builder(name: &str) -> ArchiveSubscriberBuilder<T> {
        ArchiveSubscriberBuilder {
            name: name.to_owned(),
            root: None,
            config: crate::defaults::subscriber(),
            copy_on_take: false,
            _t: PhantomData,
        }
    }

    /// Takes the next archive if one is waiting, after checking it.
    ///
    /// # Errors
    /// [`Error::InvalidSample`] when the bytes are not a valid `Archived<T>` (the sample is
    /// dropped; the next call goes on with the next one).
    pub fn take(&self) -> Result<Option<ArchivedSample<'_, T>>> {
        let Some(sample) = self.core.take_bytes()? else {
            return Ok(None);
        };
        let len = sample.payload_len();
        // SAFETY: `as_ptr` is the sample's first payload byte (in a chunk or in the private
        // copy), derived from the mapping's (the copy's) own pointer, so it covers the whole
        // payload; its length was checked against the chunk's payload capacity when it was
        // taken (one load, kept in the sample); the bytes stay mapped and unchanged while the
        // sample is held.
        let bytes = unsafe { core::slice::from_raw_parts(sample.as_ptr(), len) };
        match rkyv::access::<Archived<T>, rancor::Error>(bytes) {
            Ok(archived) => {
                let archived = archived as *const Archived<T>;
                Ok(Some(ArchivedSample { sample, archived }))
            }
            Err(e) => Err(Error::InvalidSample {
                topic: self.core.service().topic().to_owned(),
                sequence: sample.sequence(),
                reason: format!("not a valid archive: {e}"),
            }),
        }
    }

    /// Waits for the next archive: spins briefly, then sleeps until a publisher wakes it.
    pub fn recv(&self) -> Result<ArchivedSample<'_, T>> {
        loop {
            if let Some(sample) = self.core.recv_until(None, || self.take())? {
                return Ok(sample);
            }
        }
    }

    /// Waits up to `timeout` for the next archive; `Ok(None)` if none came.
    ///
    /// Any `timeout` is accepted: one that ends past the clock's range (`Duration::MAX`)
    /// waits as long as [`recv`](Self::recv).
    pub fn recv_timeout(&self, timeout: Duration) -> Result<Option<ArchivedSample<'_, T>>> {
        let deadline = Instant::now().checked_add(timeout);
        loop {
            let sample = self.core.recv_until(deadline, || self.take())?;
            if sample.is_some() || deadline.is_some() {
                return Ok(sample);
            }
        }
    }

    /// The topic's name.
    pub fn topic(&self) -> &str {
        self.core.service().topic()
    }
}

impl<T> ArchiveSubscriberBuilder<T>
where
    T: Archive,
    Archived<T>: Portable + for<'a> CheckBytes<HighValidator<'a, rancor::Error>>,
{
    /// Samples queued from each publisher at most (default 16, or the defaults file's;
    /// capped by the publisher's).
    pub fn queue_depth(mut self, depth: usize) -> Self {
        self.config.queue_depth = depth;
        self
    }

    /// The directory that holds the topics (default: `$SHMX_ROOT`, else the defaults file's
    /// `root`, else the private `/dev/shm/shmx-<uid>`; see
    /// [`name::root_dir`](crate::name::root_dir)).
    pub fn root(mut self, root: impl Into<PathBuf>) -> Self {
        self.root = Some(root.into());
        self
    }

    /// Copies each archive into memory private to this subscriber before checking it, and
    /// hands it out from the copy: for publishers that are not trusted. What the subscriber
    /// reads after the take is exactly what rkyv's validator checked, however the publisher
    /// rewrites its chunk later (in place, a rewritten relative offset of an archived string
    /// could point anywhere). Costs a copy of the archive's bytes per take; the chunk is
    /// given back as soon as it is copied. See
    /// [`SubscriberBuilder::copy_on_take`](crate::SubscriberBuilder::copy_on_take).
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// use shmx::archive::{ArchivePublisher, ArchiveSubscriber};
    /// let subscriber = ArchiveSubscriber::<String>::builder("doc/archive-copy")
    ///     .root(dir.path())
    ///     .copy_on_take()
    ///     .create()?;
    /// let publisher = ArchivePublisher::<String>::builder("doc/archive-copy")
    ///     .root(dir.path())
    ///     .create()?;
    /// publisher.send(&"checked in the copy".to_owned())?;
    /// let sample = subscriber.take()?.unwrap();
    /// assert_eq!(sample.as_str(), "checked in the copy");
    /// # Ok::<(), shmx::Error>(())
    /// ```
    pub fn copy_on_take(mut self) -> Self {
        self.copy_on_take = true;
        self
    }

    /// Connects to (or creates) the topic.
    ///
    /// # Errors
    /// [`Error::Config`] while the defaults file cannot be used; the errors of opening,
    /// checking and joining the topic.
    pub fn create(self) -> Result<ArchiveSubscriber<T>> {
        crate::defaults::check()?;
        let facts = facts::<T>();
        let trust = Trust::of(&self.config.topic);
        let open =
            |r: &_, n: &_, c: &_, t: &_, l: &_| Service::open_or_create_as(r, n, c, t, l, &facts);
        let mut core = SubCore::create_with(
            self.root.as_deref(),
            &crate::name::TopicName::new(&self.name)?,
            self.config,
            trust,
            open,
        )?;
        if self.copy_on_take {
            core.copy_on_take();
        }
        Ok(ArchiveSubscriber {
            core,
            _t: PhantomData,
        })
    }
}

impl<T: Archive> ArchivedSample<'_, T> {
    /// The publisher's sequence number for this sample.
    pub fn sequence(&self) -> u64 {
        self.sample.sequence()
    }

    /// The id of the publisher that sent it (see
    /// [`Sample::publisher_id`](crate::Sample::publisher_id)).
    pub fn publisher_id(&self) -> u64 {
        self.sample.publisher_id()
    }

    /// Bytes of the archive. (Not `len`: that would hide the `len` of an archived
    /// collection behind the deref.)
    pub fn archive_len(&self) -> usize {
        self.sample.payload_len()
    }
}

impl<T: Archive> Deref for ArchivedSample<'_, T> {
    type Target = Archived<T>;
    fn deref(&self) -> &Archived<T> {
        // SAFETY: `archived` was returned by rkyv's checked `access` over the bytes of the
        // chunk this sample holds (or of its private copy); they stay mapped and unchanged
        // until it is dropped.
        unsafe { &*self.archived }
    }
}

// SAFETY: as for `Publisher`: the endpoint owns its mappings and private state; the shared
// words are atomics, used the same way between processes.
unsafe impl<T> Send for ArchivePublisher<T> {}
// SAFETY: as for `Subscriber`.
unsafe impl<T> Send for ArchiveSubscriber<T> {}

#[cfg(test)]
mod tests {
    use super::strip_paths;

    #[test]
    fn type_names_lose_their_module_paths() {
        assert_eq!(strip_paths("alloc::string::String"), "String");
        assert_eq!(
            strip_paths("std::collections::hash::map::HashMap<alloc::string::String, u32>"),
            "HashMap<String, u32>"
        );
        assert_eq!(
            strip_paths("app::msgs::Pair<[f32; 3], ()>"),
            "Pair<[f32; 3], ()>"
        );
    }
}
