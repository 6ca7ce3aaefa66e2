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

mod publisher;

pub use publisher::{RawLoan, RawPublisher};

use crate::config::{SubscriberConfig, TopicConfig};
use crate::error::{Error, Result};
use crate::name::TopicName;
use crate::root::{Root, RootLock};
use crate::sample::Sample;
use crate::schema_text::MessageType;
use crate::service::Service;
use crate::subscriber::SubCore;
use crate::trust::Trust;
use std::os::fd::BorrowedFd;
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
    check_schema(&service, &root.path().join(name.encoded()).join("service"))?;
    Ok(service)
}

/// `Ok` if the schema text a topic stores describes the type it records (its fingerprint,
/// which covers every size, alignment and name, its size and whether samples have a tail):
/// an endpoint that adopts the text reads samples by it, so a file whose text and header
/// disagree is corrupt. Archived rkyv topics store a name, not a layout.
fn check_schema(service: &Service, path: &Path) -> Result<()> {
    let schema = service.schema_text();
    if crate::schema_text::is_archived(&schema) {
        return Ok(());
    }
    let (fingerprint, size, _) = service.type_facts();
    match MessageType::parse(&schema) {
        Ok(t)
            if t.fingerprint() == fingerprint
                && t.size() == size
                && t.has_tail() == service.has_tail() =>
        {
            Ok(())
        }
        Ok(t) => Err(Error::corrupt(
            path,
            format!(
                "its schema text describes a type ({:#018x}, {} bytes) other than the one it \
                 records ({fingerprint:#018x}, {size} bytes)",
                t.fingerprint(),
                t.size(),
            ),
        )),
        Err(e) => Err(Error::corrupt(
            path,
            format!("its schema text does not describe a message type: {e}"),
        )),
    }
}

/// Opens topic `name` with message type `ty` if given (creating it if it does not exist,
/// [`Error::TypeMismatch`] if it holds another type), or the existing topic whatever its
/// type otherwise.
fn opener(
    ty: Option<&MessageType>,
) -> impl FnOnce(&Arc<Root>, &TopicName, &TopicConfig, &Trust, &RootLock) -> Result<Service> + '_ {
    move |root, name, config, trust, lock| match ty {
        Some(ty) => Service::open_or_create_as(root, name, config, trust, lock, &ty.facts()),
        None => open_existing(root, name, config, trust, lock),
    }
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
    /// Subscribes to the existing topic `topic` under `root`, as a tool: it trusts files of
    /// its own user only (see [`open`](Self::open) for an application's subscriber).
    pub fn new(root: &Path, topic: &str) -> Result<RawSubscriber> {
        let config = SubscriberConfig::default();
        let core = SubCore::create_with(
            Some(root),
            &TopicName::new(topic)?,
            config,
            Trust::for_tools(),
            open_existing,
        )?;
        Ok(Self::of(core))
    }

    /// Subscribes to topic `topic` under `root` (`None`: the default root, as
    /// [`Subscriber::new`](crate::Subscriber::new)), configured by `config` and trusting
    /// what its `config.topic` shares (as typed endpoints do). With `ty` the topic has that
    /// message type (it is created if it does not exist); without, it must exist and its
    /// type is adopted.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// use shmx::inspect::{RawPublisher, RawSubscriber};
    /// use shmx::schema_text::MessageType;
    /// use shmx::{Publisher, PublisherConfig, SubscriberConfig};
    /// let ty = MessageType::parse("[u16;2]")?;
    /// let sub = RawSubscriber::open(Some(dir.path()), "doc/open", Some(&ty), SubscriberConfig::default())?;
    /// let typed = Publisher::<[u16; 2]>::builder("doc/open").root(dir.path()).create()?;
    /// typed.send([1, 2])?;
    /// let sample = sub.recv()?;
    /// assert_eq!(sample.bytes(), &[1, 0, 2, 0]);
    /// // A type that differs from the topic's is refused.
    /// let other = MessageType::parse("[u32;1]")?;
    /// let err = RawPublisher::open(Some(dir.path()), "doc/open", Some(&other), PublisherConfig::default());
    /// assert!(matches!(err, Err(shmx::Error::TypeMismatch { .. })));
    /// # Ok::<(), shmx::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`Subscriber::new`](crate::Subscriber::new); [`Error::Io`] (not found) when `ty`
    /// is `None` and the topic does not exist.
    pub fn open(
        root: Option<&Path>,
        topic: &str,
        ty: Option<&MessageType>,
        config: SubscriberConfig,
    ) -> Result<RawSubscriber> {
        let trust = Trust::of(&config.topic);
        let core = SubCore::create_with(root, &TopicName::new(topic)?, config, trust, opener(ty))?;
        Ok(Self::of(core))
    }

    /// Subscribes to part `name` of a service (a client's response queue) of message type
    /// `ty`, created if it does not exist; it takes markers (samples of no bytes) too.
    pub(crate) fn open_part(
        root: Option<&Path>,
        name: &TopicName,
        ty: &MessageType,
        config: SubscriberConfig,
    ) -> Result<RawSubscriber> {
        let trust = Trust::of(&config.topic);
        let mut core = SubCore::create_with(root, name, config, trust, opener(Some(ty)))?;
        core.markers = true;
        Ok(Self::of(core))
    }

    fn of(core: SubCore) -> RawSubscriber {
        let schema = core.service().schema_text();
        let size = core.service().type_facts().1;
        RawSubscriber { core, schema, size }
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

    /// The same subscriber, asking the topic's publishers for publish times (see
    /// [`SubscriberBuilder::publish_times`](crate::SubscriberBuilder::publish_times) and
    /// [`RawSample::publish_time_ns`]).
    pub fn with_publish_times(mut self) -> RawSubscriber {
        self.core.ask_publish_times();
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

    /// The structural fingerprint of the topic's message type.
    pub fn fingerprint(&self) -> u64 {
        self.core.service().type_facts().0
    }

    /// The topic's name.
    pub fn topic(&self) -> &str {
        self.core.service().topic()
    }

    /// The topic's message type, if its schema text describes a layout (`None` for archived
    /// rkyv topics).
    pub fn message_type(&self) -> Option<MessageType> {
        MessageType::parse(&self.schema).ok()
    }

    /// Takes the next sample if one is waiting; never blocks. As
    /// [`Subscriber::take`](crate::Subscriber::take), it arms [`fd`](Self::fd) when nothing
    /// waits.
    pub fn take(&self) -> Result<Option<RawSample<'_>>> {
        let mut sample = self.core.take_bytes()?;
        if sample.is_none() && self.core.arms_on_take() && self.core.arm() {
            sample = self.core.take_bytes()?;
        }
        Ok(sample.map(|sample| self.raw(sample)))
    }

    fn raw<'s>(&'s self, sample: Sample<'s, u8>) -> RawSample<'s> {
        RawSample {
            sample,
            size: self.size,
        }
    }

    /// Waits for the next sample as [`Subscriber::recv`](crate::Subscriber::recv) does:
    /// spins briefly, then sleeps until a publisher wakes it.
    pub fn recv(&self) -> Result<RawSample<'_>> {
        loop {
            if let Some(sample) = self.core.recv_until(None, || self.core.take_bytes())? {
                return Ok(self.raw(sample));
            }
        }
    }

    /// Waits up to `timeout` for the next sample (as
    /// [`Subscriber::recv_timeout`](crate::Subscriber::recv_timeout)); `Ok(None)` if none
    /// came. A `timeout` past the clock's range (`Duration::MAX`) waits forever.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<Option<RawSample<'_>>> {
        let Some(deadline) = Instant::now().checked_add(timeout) else {
            return self.recv().map(Some);
        };
        let sample = self
            .core
            .recv_until(Some(deadline), || self.core.take_bytes())?;
        Ok(sample.map(|sample| self.raw(sample)))
    }

    /// A descriptor that polls readable while samples wait, as
    /// [`Subscriber::fd`](crate::Subscriber::fd) (for event loops in other languages).
    pub fn fd(&self) -> Result<BorrowedFd<'_>> {
        self.core.program_fd()
    }

    /// Spins until samples wait or the adaptive budget passes, as
    /// [`Subscriber::spin`](crate::Subscriber::spin).
    pub fn spin(&self) -> bool {
        self.core.spin()
    }

    /// Whether samples wait now, without taking any, as
    /// [`Subscriber::samples_waiting`](crate::Subscriber::samples_waiting).
    pub fn samples_waiting(&self) -> bool {
        self.core.samples_waiting()
    }

    /// Number of publishers this subscriber is connected to.
    pub fn publisher_count(&self) -> usize {
        self.core.publisher_count()
    }
}

impl RawSample<'_> {
    /// The tag word its publisher set (see `request`), and whether it has no bytes at all.
    pub(crate) fn tag(&self) -> (Option<u64>, bool) {
        (self.sample.tag(), self.sample.payload_len() == 0)
    }

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

    /// The id of the publisher that sent it.
    pub fn publisher_id(&self) -> u64 {
        self.sample.publisher_id()
    }

    /// Whether it came from another machine through a bridge (published with
    /// [`RawPublisher::send_relayed`]): a bridge does not send it out again.
    pub fn is_relayed(&self) -> bool {
        self.sample
            .tag()
            .is_some_and(|w| w & crate::data::RELAYED != 0)
    }

    /// When its publisher published it, in nanoseconds since the Unix epoch, if the
    /// subscriber asked ([`RawSubscriber::with_publish_times`]) and the publisher stamped it
    /// (see [`Sample::publish_time`](crate::Sample::publish_time)).
    pub fn publish_time_ns(&self) -> Option<u64> {
        self.sample.publish_time_ns()
    }
}

// SAFETY: as `Subscriber`'s: a raw subscriber owns its mappings and private state outright;
// samples borrow it, so none is outstanding when it moves to another thread.
unsafe impl Send for RawSubscriber {}
static_assertions::assert_not_impl_any!(RawSubscriber: Sync);
