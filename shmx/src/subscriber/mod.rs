//! [`Subscriber`]: receives the samples of every publisher of a topic, in place.

#[cfg(feature = "tokio")]
mod asynchronous;
mod builder;
mod check;
mod connect;
mod copy;
mod drain;
mod ready;
#[cfg(feature = "tokio")]
pub(crate) use asynchronous::AsyncWait;
#[cfg(feature = "tokio")]
pub use asynchronous::{Recv, SampleStream};
mod receive;
mod segments;
mod wait;

use crate::config::{SubscriberConfig, TopicConfig};
use crate::data::ChunkLoc;
use crate::data::DataView;
use crate::error::{Error, Result};
use crate::event;
use crate::message::ShmMessage;
use crate::name::TopicName;
use crate::node::Node;
use crate::ring::{Producer, RingLoc};
use crate::root::{Root, RootLock};
use crate::sample::Sample;
use crate::service::{self, Role, Service, ACTIVE, FREE};
use crate::spin::Spinner;
use crate::sync::{fence, Ordering};
use crate::trust::Trust;
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Receives samples of `T` from every publisher of one topic.
///
/// ```
/// # let dir = tempfile::tempdir().unwrap();
/// # std::env::set_var("SHMX_ROOT", dir.path());
/// use shmx::{Publisher, Subscriber};
/// use std::time::Duration;
/// let subscriber = Subscriber::<[f32; 3]>::new("doc/subscriber")?;
/// let publisher = Publisher::<[f32; 3]>::new("doc/subscriber")?;
/// publisher.send([1.0, 2.0, 3.0])?;
/// let sample = subscriber.recv_timeout(Duration::from_secs(1))?.expect("published above");
/// assert_eq!(sample[2], 3.0);
/// assert_eq!(sample.sequence(), 1);
/// # Ok::<(), shmx::Error>(())
/// ```
///
/// # Threads
///
/// `Subscriber` is `Send` but not `Sync`: move it to the thread that receives, but do not share it
/// between threads (`Arc<Subscriber<_>>` cannot cross to another thread; a compile error says so).
/// Its state lives in plain memory, unlocked, which keeps the hot path free of atomics and
/// locks of its own. To receive from several threads, give each thread its own subscriber (a topic takes up to `max_subscribers`; each receives every sample), or
/// send values over a channel to the one thread that owns it.
///
/// ```compile_fail
/// fn shared_between_threads<T: Sync>() {}
/// shared_between_threads::<shmx::Subscriber<u64>>(); // `Subscriber` is not `Sync`
/// ```
///
/// ```
/// fn moved_to_a_thread<T: Send>() {}
/// moved_to_a_thread::<shmx::Subscriber<u64>>();
/// ```
pub struct Subscriber<T: ShmMessage> {
    core: SubCore,
    _t: PhantomData<fn(T) -> T>,
}

/// Builds a [`Subscriber`] with non-default settings.
#[derive(Debug, Clone)]
#[must_use]
pub struct SubscriberBuilder<T: ShmMessage> {
    name: String,
    root: Option<PathBuf>,
    config: SubscriberConfig,
    copy_on_take: bool,
    _t: PhantomData<fn(T) -> T>,
}

/// The type-erased state of a subscriber; samples point back to it.
pub(crate) struct SubCore {
    service: Service,
    /// Keeps this process's node file locked while the endpoint lives (dropped last).
    _node: Arc<Node>,
    /// When this endpoint last looked for dead peers (see `Service::sweep`).
    last_sweep: Cell<Option<Instant>>,
    slot: usize,
    inc: u64,
    bit: u64,
    /// This subscriber issues a membarrier before it sleeps (see `event`).
    forces_barrier: bool,
    /// How `recv` and `recv_async` spin before they sleep (see `spin`).
    spinner: Cell<Spinner>,
    max_held: usize,
    fingerprint: u64,
    size: usize,
    align: usize,
    /// Samples may be longer than `size` (the message type has relative pointers, or this is
    /// an endpoint without a Rust type); otherwise they are exactly `size` bytes.
    tails: bool,
    /// Whether samples of no bytes are taken, as markers (response streams' ends, see
    /// `request`); a typed value is never read from one.
    pub(crate) markers: bool,
    /// This subscriber asked publishers for publish times (see `ask_publish_times`).
    stamps: bool,
    /// The topic is a part of a request/response service (its tag word is routing).
    part: bool,
    /// The private copies of a subscriber that copies on take (`None`: zero-copy).
    copies: Option<copy::Copies>,
    /// The socket that makes a descriptor readable, once one was asked for (see `ready`).
    listener: std::cell::OnceCell<crate::signal::Listener>,
    /// The program asked for the descriptor (`fd`): a take that finds nothing arms it.
    arm_on_take: Cell<bool>,
    /// `spin` took the arm back itself: no publisher sent a wake-up for it.
    disarmed_by_spin: Cell<bool>,
    /// When the last `spin` that found nothing began, and when it armed the descriptor.
    fd_slept: Cell<Option<(Instant, Instant)>>,
    /// That socket registered with a tokio runtime, once an async receive asked.
    #[cfg(feature = "tokio")]
    async_fd: RefCell<
        Option<(
            tokio::runtime::Id,
            tokio::io::unix::AsyncFd<rustix::fd::OwnedFd>,
        )>,
    >,
    state: RefCell<SubState>,
}

struct SubState {
    gen: u64,
    pubs: Vec<Option<PubConn>>,
    active: Vec<usize>,
    next: usize,
    held: usize,
    views: Vec<Option<ViewSlot>>,
    /// Returns that found the return ring full, retried on the next receive.
    unreturned: Vec<(usize, u64, u64)>,
    /// Publisher incarnations whose data segment could not be opened: skipped.
    broken: Vec<u64>,
}

/// A mapped data segment and how many samples of it are out.
struct ViewSlot {
    view: DataView,
    held: usize,
    /// Still the data segment of a connected publisher.
    live: bool,
}

/// This subscriber's side of its connection to one publisher slot.
struct PubConn {
    slot_word: u64,
    /// The id its samples carry (`PubSlot::id`, or the incarnation if that is 0).
    id: u64,
    /// The view of the publisher's segment 0.
    view: usize,
    /// Where the chunks of segment 0 are (inside `views[view]`).
    chunks: ChunkLoc,
    /// The publisher's segment table, in segment 0's mapping (see `data`): `MAX_SEGMENTS`
    /// words, read only through [`PubConn::listed`].
    table: *const crate::sync::AtomicU64,
    /// The segments past the first that this subscriber mapped, by number (see `segments`).
    segs: Vec<segments::SegRef>,
    tag: u64,
    delivery: RingLoc,
    returns: RingLoc,
    ret: Producer,
    last_seq: u64,
    /// The chunk the publisher announced, with the last sample taken from the queue, as the
    /// one its next loan takes ([`ChunkHeader::next`](crate::data::ChunkHeader)): loaded
    /// while polling. Read from shared memory: only ever a prefetch's bounds-checked index.
    next_chunk: usize,
    /// History samples pinned at connection time, handed out before the queue.
    pending: VecDeque<(usize, u64)>,
    /// `pending` is not empty or this subscriber copies on take: every take goes past the
    /// common case (`take_common`) to `take_from_rest` (see `SubCore::detour`).
    detour: bool,
    draining: bool,
    /// The publisher never steals from our queue (its policy is not drop-oldest), so taking
    /// needs no CAS.
    unshared: bool,
}

/// What a [`Sample`] needs to give its chunk back.
#[derive(Clone, Copy)]
pub(crate) struct Held {
    pub seq: u64,
    pub origin: u64,
    /// Payload bytes the publisher declared (checked against the chunk's capacity).
    pub len: usize,
    /// The ring entry to return, [`PINNED`] for a pinned history sample, or [`COPIED`] for a
    /// sample that lives in a private copy (see `copy`), whose buffer `chunk` then names.
    entry: u64,
    view: u32,
    pub_slot: u32,
    chunk: u32,
}

/// `Held::entry` of a history sample, which is pinned rather than delivered (ring entries
/// never have their top bits set).
const PINNED: u64 = u64::MAX;
/// `Held::entry` of a sample that lives in a private copy (see `copy`). It and [`PINNED`] are
/// the only entries at or above it.
const COPIED: u64 = u64::MAX - 1;

impl<T: ShmMessage> Subscriber<T> {
    /// Creates a subscriber on topic `name` with the default configuration: the built-in
    /// values, with what the defaults file sets (see [`defaults`](crate::defaults)).
    pub fn new(name: &str) -> Result<Subscriber<T>> {
        Self::builder(name).create()
    }

    /// Starts configuring a subscriber on topic `name`, from the defaults of this process
    /// ([`Defaults::get`](crate::defaults::Defaults::get)`().subscriber()`: the defaults
    /// file's values over the built-in ones); what the builder sets wins over both.
    pub fn builder(name: &str) -> SubscriberBuilder<T> {
        SubscriberBuilder {
            name: name.to_owned(),
            root: None,
            config: crate::defaults::subscriber(),
            copy_on_take: false,
            _t: PhantomData,
        }
    }

    /// A subscriber of topic `name` of type `T`, created if it does not exist (a part of a
    /// request/response service); with `markers`, it takes samples of no bytes too.
    pub(crate) fn create_part(
        root: Option<&Path>,
        name: &TopicName,
        config: SubscriberConfig,
        markers: bool,
    ) -> Result<Subscriber<T>> {
        let trust = Trust::of(&config.topic);
        let mut core =
            SubCore::create_with(root, name, config, trust, Service::open_or_create::<T>)?;
        core.tails = const { T::SCHEMA.has_relative() };
        core.markers = markers;
        Ok(Subscriber {
            core,
            _t: PhantomData,
        })
    }

    /// The topic's name.
    pub fn topic(&self) -> &str {
        self.core.service.topic()
    }

    /// Takes the next sample if one is waiting; never blocks.
    ///
    /// Errors: [`Error::HeldLimit`] when this subscriber already holds `max_held` samples,
    /// [`Error::InvalidSample`] when a publisher wrote bytes that are not a valid `T` (that
    /// sample is dropped; the next call goes on with the next one).
    // Inlined whole, with the receive path's common case (see `SubCore::take_raw`): a
    // sample returned through memory costs the caller a failed store forwarding.
    #[inline(always)]
    pub fn take(&self) -> Result<Option<Sample<'_, T>>> {
        let sample = self.take_quietly()?;
        if sample.is_none() && self.core.arms_on_take() && self.core.arm() {
            return self.take_quietly();
        }
        Ok(sample)
    }

    /// The type-erased endpoint (for wait sets).
    pub(crate) fn core(&self) -> &SubCore {
        &self.core
    }

    /// [`take`](Self::take) without arming the descriptor (for the waits of this crate).
    #[inline(always)]
    pub(super) fn take_quietly(&self) -> Result<Option<Sample<'_, T>>> {
        let mut st = self.core.state.borrow_mut();
        self.core.take_raw::<T>(&mut st)
    }

    /// Hands every sample waiting now, up to `max`, to `f` in turn, and returns how many it
    /// handed over (0 if none was waiting); never blocks.
    ///
    /// Each sample is given back as soon as `f` returns. For streams of small messages this
    /// is cheaper per sample than calling [`take`](Self::take) in a loop: it stays on one
    /// publisher's queue while that has samples instead of starting over for each. Samples of
    /// one publisher arrive in order, as with `take`.
    ///
    /// Errors as for `take`. A sample that is not a valid `T` ends the call with
    /// [`Error::InvalidSample`] (the samples before it were handed to `f`, the next call goes
    /// on after it).
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// # std::env::set_var("SHMX_ROOT", dir.path());
    /// use shmx::{Publisher, Subscriber};
    /// let subscriber = Subscriber::<u64>::new("doc/drain")?;
    /// let publisher = Publisher::<u64>::new("doc/drain")?;
    /// assert_eq!(publisher.send_many([1, 2, 3])?, 3);
    /// let mut sum = 0;
    /// assert_eq!(subscriber.drain(usize::MAX, |sample| sum += **sample)?, 3);
    /// assert_eq!(sum, 6);
    /// # Ok::<(), shmx::Error>(())
    /// ```
    pub fn drain(&self, max: usize, mut f: impl FnMut(&Sample<'_, T>)) -> Result<usize> {
        let n = self.core.drain::<T>(max, &mut f)?;
        if n == 0 && max > 0 && self.core.arms_on_take() && self.core.arm() {
            return self.core.drain::<T>(max, &mut f);
        }
        Ok(n)
    }

    /// Waits for the next sample: spins briefly, then sleeps until a publisher wakes it.
    #[inline(always)]
    pub fn recv(&self) -> Result<Sample<'_, T>> {
        loop {
            if let Some(sample) = self.recv_until(None)? {
                return Ok(sample);
            }
        }
    }

    /// Waits up to `timeout` for the next sample; `Ok(None)` if none came.
    #[inline(always)]
    ///
    /// Any `timeout` is accepted: one that ends past the clock's range (`Duration::MAX`)
    /// waits as long as [`recv`](Self::recv).
    pub fn recv_timeout(&self, timeout: Duration) -> Result<Option<Sample<'_, T>>> {
        let deadline = Instant::now().checked_add(timeout);
        loop {
            let sample = self.recv_until(deadline)?;
            if sample.is_some() || deadline.is_some() {
                return Ok(sample);
            }
        }
    }

    #[inline(always)]
    fn recv_until(&self, deadline: Option<Instant>) -> Result<Option<Sample<'_, T>>> {
        self.core.recv_until(deadline, || self.take_quietly())
    }

    /// Number of publishers this subscriber is connected to.
    pub fn publisher_count(&self) -> usize {
        self.core.publisher_count()
    }
}

impl SubCore {
    fn create<T: ShmMessage>(
        root: Option<&Path>,
        name: &str,
        config: SubscriberConfig,
    ) -> Result<SubCore> {
        let trust = Trust::of(&config.topic);
        let mut core = Self::create_with(
            root,
            &TopicName::new(name)?,
            config,
            trust,
            Service::open_or_create::<T>,
        )?;
        core.tails = const { T::SCHEMA.has_relative() };
        Ok(core)
    }

    /// Creates a subscriber on the topic that `open` opens (or creates); its message type is
    /// the one stored in the topic. `root` is the root's path (`None`: the default root);
    /// `trust` what the endpoint accepts of the files it finds there (see
    /// [`trust`](crate::trust)).
    pub(crate) fn create_with(
        root: Option<&Path>,
        name: &TopicName,
        config: SubscriberConfig,
        trust: Trust,
        open: impl FnOnce(&Arc<Root>, &TopicName, &TopicConfig, &Trust, &RootLock) -> Result<Service>,
    ) -> Result<SubCore> {
        let root = Root::open(root, &trust)?;
        // Declared before the lock, so dropped after it on every path: a node that goes takes
        // the root lock to remove its file.
        let node;
        let lock = root.lock(&trust)?;
        node = root.node(&trust, &lock)?;
        let service = open(&root, name, &config.topic, &trust, &lock)?;
        let (fingerprint, size, align) = service.type_facts();
        let layout = *service.layout();
        let mut config = config;
        if config.queue_depth == usize::MAX {
            // As deep as the topic allows: the publishers' depths decide.
            config.queue_depth = layout.ring_capacity;
        }
        if config.queue_depth == 0 || config.queue_depth > layout.ring_capacity {
            let err = Error::InvalidConfig {
                topic: name.as_str().to_owned(),
                reason: format!(
                    "queue_depth {} is not in 1..={} (the topic's max_queue_depth)",
                    config.queue_depth, layout.ring_capacity
                ),
            };
            service.remove_if_unused(&lock);
            return Err(err);
        }
        let (slot, inc) = match service.claim(Role::Subscriber, node.id()) {
            Ok(v) => v,
            Err(e) => {
                service.remove_if_unused(&lock);
                return Err(e);
            }
        };
        let s = service.sub_slot(slot);
        s.pid
            .store(u64::from(std::process::id()), Ordering::Relaxed);
        s.queue_depth
            .store(config.queue_depth as u64, Ordering::Relaxed);
        for p in 0..layout.max_publishers {
            service.delivery(p, slot).skip_all();
        }
        let forces_barrier = event::sleeper_forces_barrier();
        s.forces_barrier
            .store(u64::from(forces_barrier), Ordering::Relaxed);
        // Set before the slot is live, so that publishers stamp from their first sample to
        // it (and a slot a dead recorder left behind does not ask any more).
        let stamps = config.publish_times && !name.is_part();
        s.wants_stamps.store(u64::from(stamps), Ordering::Relaxed);
        s.sleeping.store(0, Ordering::Relaxed);
        s.state
            .store(service::state_word(inc, ACTIVE), Ordering::Release);
        service.bump_generation();
        // Dekker with a publisher that records history and then looks for subscribers.
        fence(Ordering::SeqCst);
        drop(lock);
        let core = SubCore {
            _node: node,
            last_sweep: Cell::new(None),
            state: RefCell::new(SubState {
                gen: u64::MAX,
                pubs: (0..layout.max_publishers).map(|_| None).collect(),
                active: Vec::with_capacity(layout.max_publishers),
                next: 0,
                held: 0,
                views: Vec::new(),
                unreturned: Vec::new(),
                broken: Vec::new(),
            }),
            service,
            slot,
            inc,
            bit: 1 << slot,
            forces_barrier,
            spinner: Cell::new(Spinner::default()),
            max_held: layout.max_held,
            fingerprint,
            size,
            align,
            tails: true,
            markers: false,
            stamps,
            part: name.is_part(),
            copies: None,
            listener: std::cell::OnceCell::new(),
            arm_on_take: Cell::new(false),
            disarmed_by_spin: Cell::new(false),
            fd_slept: Cell::new(None),
            #[cfg(feature = "tokio")]
            async_fd: RefCell::new(None),
        };
        {
            let mut st = core.state.borrow_mut();
            if core.refresh(&mut st).is_err() {
                // A publisher whose data segment is unreadable must not keep this subscriber
                // from the others: retry it, and report it, on the first receive.
                st.gen = u64::MAX;
                st.broken.clear();
            }
        }
        Ok(core)
    }

    /// The topic's service segment.
    /// Asks the topic's publishers to stamp each sample with its publish time from their next
    /// publish on (each notices at its next publish, through the generation). Topics only:
    /// a part of a service keeps its tag word for routing.
    pub(crate) fn ask_publish_times(&mut self) {
        if self.part {
            return;
        }
        self.stamps = true;
        let slot = self.service.sub_slot(self.slot);
        slot.wants_stamps.store(1, Ordering::Relaxed);
        // Publishers read the flag after an acquire load that sees this bump of the
        // generation (`refresh`), so they see the store above.
        self.service.bump_generation();
    }

    /// The publish time a sample's tag word carries, if this subscriber asked for publish
    /// times and its publisher stamped it: nanoseconds since the Unix epoch.
    #[inline]
    pub(crate) fn publish_time_of(&self, tag: Option<u64>) -> Option<u64> {
        let time = tag? & !crate::data::RELAYED;
        (self.stamps && time != 0).then_some(time)
    }

    pub(crate) fn service(&self) -> &Service {
        &self.service
    }

    /// Number of publishers connected (after reclaiming dead ones).
    pub(crate) fn publisher_count(&self) -> usize {
        self.service.sweep_now(&self.last_sweep);
        let mut st = self.state.borrow_mut();
        let _ = self.refresh(&mut st);
        st.active.len()
    }

    /// Takes the next sample, seen as its first byte (for endpoints without a Rust type:
    /// `u8` needs no validation, and the caller knows the sample's size).
    pub(crate) fn take_bytes(&self) -> Result<Option<Sample<'_, u8>>> {
        let mut st = self.state.borrow_mut();
        self.take_raw::<u8>(&mut st)
    }
}

impl Drop for SubCore {
    fn drop(&mut self) {
        // The socket goes first, while the topic's directory certainly holds it (its tokio
        // registration before it).
        #[cfg(feature = "tokio")]
        drop(self.async_fd.get_mut().take());
        drop(self.listener.take());
        let mut st = std::mem::replace(
            self.state.get_mut(),
            SubState {
                gen: 0,
                pubs: Vec::new(),
                active: Vec::new(),
                next: 0,
                held: 0,
                views: Vec::new(),
                unreturned: Vec::new(),
                broken: Vec::new(),
            },
        );
        for p in 0..st.pubs.len() {
            self.disconnect(&mut st, p);
        }
        // Bounded: a peer that holds the lock must not keep this process from leaving (what
        // is left then goes with the next participant, or `shmx clean`).
        let lock = self
            .service
            .root()
            .lock_within(self.service.trust(), crate::root::LEAVING_WAIT);
        self.service
            .sub_slot(self.slot)
            .state
            .store(FREE, Ordering::Release);
        self.service.bump_generation();
        if let Some(lock) = &lock {
            // Publishers that left samples queued for us wait for our bit: clear it, so the
            // last one out removes their data segment. With the lock held no publisher can
            // start or finish leaving meanwhile.
            for p in 0..self.service.layout().max_publishers {
                let word = self.service.pub_slot(p).state.load(Ordering::Acquire);
                self.release_drain(p, word);
            }
            self.service.remove_if_unused(lock);
        }
    }
}

// SAFETY: a subscriber owns its mappings and private state outright; samples borrow it, so
// none is outstanding when it moves to another thread.
unsafe impl<T: ShmMessage> Send for Subscriber<T> {}
