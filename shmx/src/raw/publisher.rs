//! [`RawPublisher`]: a publisher without a Rust type, sending samples given as bytes or
//! written in place through a [`RawLoan`].

use super::{open_existing, opener};
use crate::config::PublisherConfig;
use crate::error::{Error, Result};
use crate::publisher::PubCore;
use crate::schema_text::MessageType;
use crate::trust::Trust;
use std::marker::PhantomData;
use std::path::Path;

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
        let core = PubCore::create_with(
            Some(root),
            &crate::name::TopicName::new(topic)?,
            config,
            Trust::for_tools(),
            open_existing,
        )?;
        Ok(Self::of(core))
    }

    /// Publishes on topic `topic` under `root` (`None`: the default root, as
    /// [`Publisher::new`](crate::Publisher::new)), configured by `config` and trusting what
    /// its `config.topic` shares (as typed endpoints do). With `ty` the topic has that
    /// message type (it is created if it does not exist, [`Error::TypeMismatch`] if it holds
    /// another type); without, it must exist and its type is adopted. See
    /// [`RawSubscriber::open`](super::RawSubscriber::open).
    ///
    /// Unlike typed publishers, it never gives back a segment its pool grew while it lives
    /// (see [`RawLoan::as_mut_ptr`]): memory that another language may still point into stays
    /// mapped until the publisher is dropped.
    pub fn open(
        root: Option<&Path>,
        topic: &str,
        ty: Option<&MessageType>,
        config: PublisherConfig,
    ) -> Result<RawPublisher> {
        let trust = Trust::of(&config.topic);
        let core = PubCore::create_with(
            root,
            &crate::name::TopicName::new(topic)?,
            config,
            trust,
            opener(ty),
        )?;
        Ok(Self::of(core))
    }

    /// [`open`](Self::open) for a bridge: a publisher that publishes, on this machine, the
    /// samples of a publisher of another machine, whose id (`publisher_id`, as that
    /// machine's subscribers saw it) its samples carry here too, so that
    /// ([`publisher_id`](crate::Sample::publisher_id), [`sequence`](crate::Sample::sequence))
    /// names a sample on every machine. Send with [`send_relayed`](Self::send_relayed).
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// use shmx::inspect::RawPublisher;
    /// use shmx::schema_text::MessageType;
    /// use shmx::{PublisherConfig, Subscriber};
    /// let sub = Subscriber::<u64>::builder("doc/relay").root(dir.path()).create()?;
    /// let ty = MessageType::of::<u64>();
    /// let config = PublisherConfig::default();
    /// let relay = RawPublisher::open_relay(Some(dir.path()), "doc/relay", Some(&ty), config, 0xabc)?;
    /// relay.send_relayed(&7u64.to_ne_bytes(), 40, None)?;
    /// let s = sub.take()?.unwrap();
    /// assert_eq!((s.publisher_id(), s.sequence(), *s), (0xabc, 40, 7));
    /// # Ok::<(), shmx::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`open`](Self::open); [`Error::InvalidConfig`] for id 0.
    pub fn open_relay(
        root: Option<&Path>,
        topic: &str,
        ty: Option<&MessageType>,
        config: PublisherConfig,
        publisher_id: u64,
    ) -> Result<RawPublisher> {
        let name = crate::name::TopicName::new(topic)?;
        if publisher_id == 0 {
            return Err(Error::InvalidConfig {
                topic: topic.to_owned(),
                reason: "a relayed publisher's id is not 0".into(),
            });
        }
        let trust = Trust::of(&config.topic);
        let core = PubCore::create_as(root, &name, config, trust, opener(ty), Some(publisher_id))?;
        Ok(Self::of(core))
    }

    /// [`open_relay`](Self::open_relay) for a topic of archived rkyv values
    /// ([`archive`](crate::archive)), made here if need be from what the other machine's
    /// topic records: its schema text (`rkyv:` and the type's name) and fingerprint. A topic
    /// of that name here must carry the same fingerprint ([`Error::TypeMismatch`]), and
    /// typed endpoints check it as they open the topic, as for any topic.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// use shmx::archive::ArchiveSubscriber;
    /// use shmx::inspect::{RawPublisher, RawSubscriber};
    /// use shmx::PublisherConfig;
    /// // What the other machine's topic records (here taken from a topic of this one).
    /// let model = ArchiveSubscriber::<String>::builder("doc/model").root(dir.path()).create()?;
    /// let raw = RawSubscriber::new(dir.path(), "doc/model")?;
    /// let (schema, fingerprint) = (raw.schema().to_owned(), raw.fingerprint());
    /// let config = PublisherConfig { max_tail_bytes: 256, ..PublisherConfig::default() };
    /// let relay =
    ///     RawPublisher::open_archived_relay(Some(dir.path()), "doc/far", &schema, fingerprint, config, 9)?;
    /// let sub = ArchiveSubscriber::<String>::builder("doc/far").root(dir.path()).create()?;
    /// # drop((model, raw));
    /// # let _ = (relay, sub);
    /// # Ok::<(), shmx::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`open_relay`](Self::open_relay); [`Error::InvalidConfig`] for a schema text that
    /// is not an archived type's.
    #[cfg(all(feature = "rkyv", not(loom)))]
    pub fn open_archived_relay(
        root: Option<&Path>,
        topic: &str,
        schema: &str,
        fingerprint: u64,
        config: PublisherConfig,
        publisher_id: u64,
    ) -> Result<RawPublisher> {
        let name = crate::name::TopicName::new(topic)?;
        let bad = |reason: String| Error::InvalidConfig {
            topic: topic.to_owned(),
            reason,
        };
        if publisher_id == 0 {
            return Err(bad("a relayed publisher's id is not 0".into()));
        }
        let facts = crate::archive::facts_from(schema, fingerprint)
            .ok_or_else(|| bad(format!("{schema:?} is not the schema of archived values")))?;
        let trust = Trust::of(&config.topic);
        let open = |root: &_, name: &_, config: &_, trust: &_, lock: &_| {
            crate::service::Service::open_or_create_as(root, name, config, trust, lock, &facts)
        };
        let core = PubCore::create_as(root, &name, config, trust, open, Some(publisher_id))?;
        Ok(Self::of(core))
    }

    /// Publishes on part `name` of a service (a server's request queue), which must exist
    /// with message type `ty`: `Ok(None)` if it does not (the server is gone).
    pub(crate) fn open_part(
        root: Option<&Path>,
        name: &crate::name::TopicName,
        ty: &MessageType,
        config: PublisherConfig,
    ) -> Result<Option<RawPublisher>> {
        let trust = Trust::of(&config.topic);
        let facts = ty.facts();
        let gone = || Error::PeerGone {
            service: name.as_str().to_owned(),
            reason: "gone".into(),
        };
        let core = PubCore::create_with(root, name, config, trust, |root, name, _, trust, lock| {
            crate::service::Service::open_existing_as(root, name, trust, lock, &facts)?
                .ok_or_else(gone)
        });
        match core {
            Ok(core) => Ok(Some(Self::of(core))),
            Err(Error::PeerGone { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Subscribers connected, without looking for dead ones.
    pub(crate) fn connected(&self) -> usize {
        self.core.connected()
    }

    fn of(core: PubCore) -> RawPublisher {
        core.keep_segments();
        let schema = core.service().schema_text();
        let size = core.service().type_facts().1;
        // Samples of a type without relative pointers have exactly the type's size: typed
        // subscribers refuse anything else.
        let capacity = if core.service().has_tail() {
            core.payload_capacity()
        } else {
            size
        };
        RawPublisher {
            core,
            schema,
            size,
            capacity,
        }
    }

    /// The topic's name.
    pub fn topic(&self) -> &str {
        self.core.service().topic()
    }

    /// The topic's schema text.
    pub fn schema(&self) -> &str {
        &self.schema
    }

    /// Bytes in a message (without its tail).
    pub fn size(&self) -> usize {
        self.size
    }

    /// The structural fingerprint of the topic's message type.
    pub fn fingerprint(&self) -> u64 {
        self.core.service().type_facts().0
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

    /// The pool's chunks by state, after taking back what subscribers returned (as
    /// [`Publisher::pool_stats`](crate::Publisher::pool_stats)).
    pub fn pool_stats(&self) -> crate::PoolStats {
        self.core.pool_stats()
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
        self.send_with(bytes, None)
    }

    /// [`send`](Self::send), with `tag` (if any) in the chunk's tag word.
    fn send_with(&self, bytes: &[u8], tag: Option<u64>) -> Result<()> {
        self.check_len(bytes.len())?;
        let mut loan = self.loan(bytes.len())?;
        let len = bytes.len().min(loan.capacity);
        // SAFETY: the chunk is loaned to us alone and its payload holds `loan.capacity`
        // bytes, of which we write `len` ≤ that; `bytes` is a separate slice (our own
        // memory, not the loaned chunk) of at least `len` bytes.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), loan.as_mut_ptr(), len) };
        loan.publish_with(len, tag)
    }

    /// [`send`](Self::send) for a bridge: marks the sample as come from another machine
    /// ([`RawSample::is_relayed`](super::RawSample::is_relayed), so that bridges do not send
    /// it out again), with its sequence number there (kept if it is above every one this
    /// publisher sent, else the next of its own: sequence numbers only grow) and its publish
    /// time there (nanoseconds since the Unix epoch; now if `None`) as the publish time
    /// subscribers see. With [`open_relay`](Self::open_relay), subscribers here see the
    /// sample as subscribers there did.
    ///
    /// # Errors
    /// As [`send`](Self::send).
    pub fn send_relayed(
        &self,
        bytes: &[u8],
        sequence: u64,
        publish_time_ns: Option<u64>,
    ) -> Result<()> {
        self.check_len(bytes.len())?;
        let mut loan = self.loan(bytes.len())?;
        loan.copy_from(0, bytes)?;
        loan.publish_relayed(bytes.len(), sequence, publish_time_ns)
    }

    /// `Ok` if a sample may have `len` bytes (between [`size`](Self::size) and
    /// [`capacity`](Self::capacity)).
    fn check_len(&self, len: usize) -> Result<()> {
        let (size, capacity) = (self.size, self.capacity);
        if (size..=capacity).contains(&len) {
            return Ok(());
        }
        let reason = if capacity > size {
            format!("a sample has {size} to {capacity} bytes (the message and its tail), not {len}")
        } else {
            format!("a sample has {size} bytes, not {len}")
        };
        Err(Error::InvalidConfig {
            topic: self.core.service().topic().to_owned(),
            reason,
        })
    }

    /// Loans a chunk that holds at least `bytes` bytes (the smallest class that does; between
    /// [`size`](Self::size) and [`capacity`](Self::capacity)), for a sample written in place
    /// and then [published](RawLoan::publish). Its first [`size`](Self::size) bytes (the
    /// message) are zeros, so relative pointers in it are empty; the rest holds whatever an
    /// earlier sample left. Dropped without publishing, the chunk goes back to the pool.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// use shmx::inspect::RawPublisher;
    /// use shmx::Subscriber;
    /// let typed = Subscriber::<u64>::builder("doc/rawloan").root(dir.path()).create()?;
    /// let raw = RawPublisher::new(dir.path(), "doc/rawloan")?;
    /// let mut loan = raw.loan(8)?;
    /// assert!(loan.capacity() >= 8);
    /// // SAFETY: the loan's pointer is valid for `capacity()` bytes and aligned for u64.
    /// unsafe { loan.as_mut_ptr().cast::<u64>().write(42) };
    /// loan.publish(8)?;
    /// assert_eq!(*typed.take()?.unwrap(), 42);
    /// # Ok::<(), shmx::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] when `bytes` is out of that range; otherwise as
    /// [`Publisher::loan`](crate::Publisher::loan).
    pub fn loan(&self, bytes: usize) -> Result<RawLoan<'_>> {
        self.check_len(bytes)?;
        let class = self.core.class_for(bytes, self.size)?;
        let (chunk, payload) = self.core.loan(class)?;
        let capacity = self.core.payload(chunk).1.min(self.capacity);
        debug_assert!(capacity >= bytes && capacity >= self.size);
        // SAFETY: `chunk` is loaned to us alone; its payload holds at least `bytes` ≥
        // `self.size` bytes (the class was chosen to hold `bytes`, which `check_len` bounded
        // below by the size).
        unsafe { std::ptr::write_bytes(payload, 0, self.size.min(capacity)) };
        Ok(RawLoan {
            publisher: self,
            chunk: Some(chunk),
            payload,
            capacity,
            _not_send: PhantomData,
        })
    }
}

/// A chunk loaned by a [`RawPublisher`], written in place through
/// [`as_mut_ptr`](Self::as_mut_ptr) and sent with [`publish`](Self::publish); dropped
/// unpublished, it goes back to the pool.
pub struct RawLoan<'p> {
    publisher: &'p RawPublisher,
    /// `None` once published.
    chunk: Option<u32>,
    payload: *mut u8,
    capacity: usize,
    _not_send: PhantomData<*mut u8>,
}

impl RawLoan<'_> {
    /// The chunk's first payload byte: valid for [`capacity`](Self::capacity) bytes of
    /// reads and writes while the loan lives, aligned to at least
    /// [`RawPublisher::PAYLOAD_ALIGN`] and the topic's sample alignment. After
    /// [`publish`](Self::publish) the memory belongs to the subscribers: it stays mapped
    /// while the publisher lives (a raw publisher never gives segments back), but writing
    /// it then changes what they read.
    pub fn as_mut_ptr(&mut self) -> *mut u8 {
        self.payload
    }

    /// Bytes the chunk holds for this sample: at least the `bytes` asked for, at most the
    /// publisher's [`capacity`](RawPublisher::capacity).
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Copies `bytes` into the chunk at `offset`.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] when they would pass the chunk's
    /// [`capacity`](Self::capacity) (nothing is written).
    pub fn copy_from(&mut self, offset: usize, bytes: &[u8]) -> Result<()> {
        if offset
            .checked_add(bytes.len())
            .is_none_or(|end| end > self.capacity)
        {
            return Err(Error::InvalidConfig {
                topic: self.publisher.topic().to_owned(),
                reason: format!(
                    "{} bytes at {offset} in a chunk of {}",
                    bytes.len(),
                    self.capacity
                ),
            });
        }
        // SAFETY: the chunk is loaned to us alone and its payload holds `capacity` bytes, of
        // which `offset..offset + bytes.len()` was just checked to lie within; `copy` allows
        // `bytes` to overlap them (a caller's unsafe slice of this very chunk).
        unsafe { std::ptr::copy(bytes.as_ptr(), self.payload.add(offset), bytes.len()) };
        Ok(())
    }

    /// [`publish`](Self::publish) for a bridge, as
    /// [`RawPublisher::send_relayed`] publishes: marked as relayed, with its sequence number
    /// and publish time on the machine it came from.
    ///
    /// # Errors
    /// As [`publish`](Self::publish).
    pub fn publish_relayed(
        self,
        len: usize,
        sequence: u64,
        publish_time_ns: Option<u64>,
    ) -> Result<()> {
        let time = publish_time_ns.unwrap_or_else(crate::data::wall_clock_ns);
        let tag = crate::data::RELAYED | (time & !crate::data::RELAYED);
        self.publisher.core.raise_sequence(sequence);
        self.publish_with(len, Some(tag))
    }

    /// Publishes the chunk's first `len` bytes (the message, then the used part of its tail;
    /// between the publisher's [`size`](RawPublisher::size) and [`capacity`](Self::capacity))
    /// as one sample.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] when `len` is out of that range (the chunk goes back to the
    /// pool, nothing is published); otherwise as [`Publisher::send`](crate::Publisher::send).
    pub fn publish(self, len: usize) -> Result<()> {
        self.publish_with(len, None)
    }

    /// [`publish`](Self::publish) with `tag` in the chunk's tag word (see `request`).
    pub(crate) fn publish_tagged(self, len: usize, tag: u64) -> Result<()> {
        self.publish_with(len, Some(tag))
    }

    fn publish_with(mut self, len: usize, tag: Option<u64>) -> Result<()> {
        let publisher = self.publisher;
        if len > self.capacity {
            return Err(Error::InvalidConfig {
                topic: publisher.topic().to_owned(),
                reason: format!("a sample of {len} bytes in a chunk of {}", self.capacity),
            });
        }
        publisher.check_len(len)?;
        // Always `Some`: `publish` takes the loan by value, and only it and `drop` take it.
        match self.chunk.take() {
            Some(chunk) => publisher.core.publish_tagged(chunk, len, tag),
            None => Ok(()),
        }
    }
}

impl Drop for RawLoan<'_> {
    fn drop(&mut self) {
        if let Some(chunk) = self.chunk.take() {
            self.publisher.core.cancel(chunk);
        }
    }
}

// SAFETY: as `Publisher`'s: a raw publisher owns its mappings and private state outright;
// nothing in it is tied to the creating thread (the shared words are atomics, as between
// processes), and loans borrow it, so none is outstanding when it moves.
unsafe impl Send for RawPublisher {}
static_assertions::assert_not_impl_any!(RawPublisher: Sync);
