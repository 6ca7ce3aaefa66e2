//! [`Publisher`]: loans chunks of its data segment and publishes them to every subscriber.

mod deliver;
mod grow;
mod segments;

use crate::config::{Overflow, PublisherConfig, TopicConfig};
use crate::error::{Error, Result};
use crate::message::ShmMessage;
use crate::name::TopicName;
use crate::node::Node;
use crate::pool::{classes, ClassStats, Pool, PoolStats};
use crate::ring::{Producer, RingLoc};
use crate::root::{Root, RootLock};
use crate::sample::SampleMut;
use crate::service::{self, Role, Service, ACTIVE, DRAINING, FREE};
use crate::sync::{AtomicU32, Ordering};
use crate::trust::Trust;
use segments::Segments;
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::marker::PhantomData;
use std::mem::MaybeUninit;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Publishes samples of `T` on one topic.
///
/// ```
/// # let dir = tempfile::tempdir().unwrap();
/// # std::env::set_var("SHMX_ROOT", dir.path());
/// use shmx::{Publisher, Subscriber};
/// let publisher = Publisher::<u64>::new("doc/publisher")?;
/// let subscriber = Subscriber::<u64>::new("doc/publisher")?;
/// let mut sample = publisher.loan()?;
/// *sample = 42;
/// sample.publish()?;
/// assert_eq!(*subscriber.take()?.unwrap(), 42);
/// # Ok::<(), shmx::Error>(())
/// ```
///
/// # Threads
///
/// `Publisher` is `Send` but not `Sync`: move it to the thread that publishes, but do not share it
/// between threads (`Arc<Publisher<_>>` cannot cross to another thread; a compile error says so).
/// Its state lives in plain memory, unlocked, which keeps the hot path free of atomics and
/// locks of its own. To publish from several threads, give each thread its own publisher (a topic takes up to `max_publishers`), or
/// send values over a channel to the one thread that owns it.
///
/// ```compile_fail
/// fn shared_between_threads<T: Sync>() {}
/// shared_between_threads::<shmx::Publisher<u64>>(); // `Publisher` is not `Sync`
/// ```
///
/// ```
/// fn moved_to_a_thread<T: Send>() {}
/// moved_to_a_thread::<shmx::Publisher<u64>>();
/// ```
pub struct Publisher<T: ShmMessage> {
    core: PubCore,
    _t: PhantomData<fn(T) -> T>,
}

/// Builds a [`Publisher`] with non-default settings.
#[derive(Debug, Clone)]
#[must_use]
pub struct PublisherBuilder<T: ShmMessage> {
    name: String,
    root: Option<PathBuf>,
    config: PublisherConfig,
    _t: PhantomData<fn(T) -> T>,
}

/// The type-erased state of a publisher; samples point back to it.
pub(crate) struct PubCore {
    service: Service,
    /// Keeps this process's node file locked while the endpoint lives (dropped last).
    _node: Arc<Node>,
    /// When this endpoint last looked for dead peers (see `Service::sweep`).
    last_sweep: Cell<Option<Instant>>,
    slot: usize,
    inc: u64,
    config: PublisherConfig,
    /// Take back returned chunks at least every this many loans.
    collect_every: usize,
    /// What the pool may grow to (see `grow`).
    limits: grow::Limits,
    state: RefCell<PubState>,
}

struct PubState {
    pool: Pool,
    segs: Segments,
    /// The class of the last loan: the one whose next chunk is announced and prefetched.
    class: usize,
    /// Classes (bit per class) that could not grow for headroom (see `keep_headroom`).
    no_headroom: u64,
    /// Loans since returned chunks were last taken back.
    since_collect: usize,
    /// Every connected subscriber allows the light barrier (see `event`).
    light: bool,
    loans: usize,
    history: VecDeque<u32>,
    hist_written: u64,
    next_seq: u64,
    /// The sequence number of the last sample published (for tools).
    published: u64,
    gen: u64,
    /// The connected subscribers, in slot order.
    conns: Vec<Conn>,
}

/// The publisher's side of one connection to a subscriber slot.
struct Conn {
    /// The subscriber's slot.
    slot: usize,
    /// `1 << slot`.
    bit: u64,
    /// The slot's state word when we connected (its incarnation).
    slot_word: u64,
    /// The subscriber forces a barrier on our core before it sleeps.
    light: bool,
    tag: u64,
    depth: u64,
    delivery: RingLoc,
    ring: Producer,
    returns: RingLoc,
    ret_tail: u64,
    wake: *const AtomicU32,
    sleeping: *const AtomicU32,
    /// The subscriber's socket, once it armed one (see `signal`).
    notifier: crate::signal::Notifier,
}

impl<T: ShmMessage> Publisher<T> {
    /// Creates a publisher on topic `name` with the default configuration: the built-in
    /// values, with what the defaults file sets (see [`defaults`](crate::defaults)).
    pub fn new(name: &str) -> Result<Publisher<T>> {
        Self::builder(name).create()
    }

    /// Starts configuring a publisher on topic `name`, from the defaults of this process
    /// ([`Defaults::get`](crate::defaults::Defaults::get)`().publisher()`: the defaults
    /// file's values over the built-in ones); what the builder sets wins over both.
    pub fn builder(name: &str) -> PublisherBuilder<T> {
        PublisherBuilder {
            name: name.to_owned(),
            root: None,
            config: crate::defaults::publisher(),
            _t: PhantomData,
        }
    }

    /// The topic's name.
    pub fn topic(&self) -> &str {
        self.core.service.topic()
    }

    /// Loans a zero-initialised sample to write in place.
    ///
    /// Only for types where all-zero bytes are a valid value: a type holding a fieldless enum
    /// without a variant `= 0` is refused at compile time. Use
    /// [`loan_uninit`](Self::loan_uninit) for those, or to skip the zeroing of a large
    /// message.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// use shmx::Publisher;
    /// let publisher = Publisher::<[u32; 4]>::builder("doc/loan").root(dir.path()).create()?;
    /// let mut sample = publisher.loan()?;
    /// assert_eq!(*sample, [0; 4]);
    /// sample[1] = 7;
    /// sample.publish()?;
    /// # Ok::<(), shmx::Error>(())
    /// ```
    pub fn loan(&self) -> Result<SampleMut<'_, T>> {
        const {
            assert!(
                T::ZEROABLE,
                "loan() zero-fills the sample, but all-zero bytes are not a valid value of this type \
                 (an enum in it has no variant = 0): use loan_uninit() and write the value"
            )
        };
        let mut sample = self.loan_uninit()?;
        // SAFETY: the chunk holds at least `size_of::<T>()` writable bytes at an aligned
        // address, loaned exclusively to this sample; all-zero is a valid `T` (ZEROABLE).
        unsafe {
            sample.as_mut_ptr().write_bytes(0, 1);
            Ok(sample.assume_init())
        }
    }

    /// Loans a zero-initialised sample from the smallest size class whose tail holds
    /// `tail_bytes` for relative pointers ([`RelSlice`](crate::RelSlice),
    /// [`RelStr`](crate::RelStr)). Ask for what the sample will need: a sample never moves
    /// to a larger chunk while it is written, so an allocation past its chunk's tail fails
    /// with [`Error::TailFull`] (see [`SampleMut::tail_capacity`]). [`loan`](Self::loan)
    /// takes a chunk of the largest class, with the whole tail.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// use shmx::{Publisher, RelSlice, ShmMessage};
    ///
    /// #[derive(ShmMessage)]
    /// #[repr(C)]
    /// struct Jpeg {
    ///     frame: u64,
    ///     bytes: RelSlice<u8>,
    /// }
    ///
    /// let publisher = Publisher::<Jpeg>::builder("doc/jpeg")
    ///     .root(dir.path())
    ///     .max_tail_bytes(2 << 20)
    ///     .create()?;
    /// let jpeg = vec![0xff; 50_000];
    /// let mut sample = publisher.loan_with_tail(jpeg.len())?;
    /// // A chunk of the 64 KiB class, not one sized for 2 MiB.
    /// assert!(sample.tail_capacity() >= jpeg.len() && sample.tail_capacity() < 128 << 10);
    /// sample.writer().set_bytes(&jpeg)?;
    /// sample.publish()?;
    /// # Ok::<(), shmx::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::TailFull`] when `tail_bytes` is more than the largest class holds
    /// ([`tail_capacity`](Self::tail_capacity)); the errors of [`loan`](Self::loan).
    pub fn loan_with_tail(&self, tail_bytes: usize) -> Result<SampleMut<'_, T>> {
        const {
            assert!(
                T::ZEROABLE,
                "loan_with_tail() zero-fills the sample, but all-zero bytes are not a valid value \
                 of this type (an enum in it has no variant = 0)"
            )
        };
        let class = self
            .core
            .class_for(size_of::<T>().saturating_add(tail_bytes), size_of::<T>())?;
        let mut sample = self.loan_in_class(class)?;
        // SAFETY: as in `loan`: an exclusively loaned, aligned chunk of at least
        // `size_of::<T>()` bytes; all-zero is a valid `T` (ZEROABLE).
        unsafe {
            sample.as_mut_ptr().write_bytes(0, 1);
            Ok(sample.assume_init())
        }
    }

    /// Bytes of the tail of a chunk of the largest size class (`max_tail_bytes`, rounded up
    /// to the chunk's alignment): the most a sample can carry after the message.
    pub fn tail_capacity(&self) -> usize {
        self.core.payload_capacity() - size_of::<T>()
    }

    /// A loan of a chunk of class `class`.
    #[inline(always)]
    fn loan_in_class(&self, class: usize) -> Result<SampleMut<'_, MaybeUninit<T>>> {
        let (chunk, ptr) = self.core.loan(class)?;
        // SAFETY: `chunk` was just loaned to this sample alone; its payload is aligned for
        // `T` and holds at least `size_of::<T>()` bytes (every class does).
        Ok(unsafe { SampleMut::new(&self.core, chunk, ptr.cast::<MaybeUninit<T>>()) })
    }

    /// Loans a sample without initialising it: write it with
    /// [`SampleMut::write`] or through [`SampleMut::as_mut_ptr`].
    // Inlined whole, as `SampleMut::publish` is: the loaned sample then stays in registers
    // (cross-process 8-byte ping-pong, `bench_report`, interleaved: ~190 → ~160 ns one-way
    // with `Subscriber::take` inlined too).
    #[inline(always)]
    pub fn loan_uninit(&self) -> Result<SampleMut<'_, MaybeUninit<T>>> {
        self.loan_in_class(self.core.top_class())
    }

    /// Copies `value` into a loaned sample and publishes it.
    pub fn send(&self, value: T) -> Result<()> {
        self.loan_uninit()?.write(value).publish()
    }

    /// Sends every value of `values`, in order, each in a chunk of its own as
    /// [`send`](Self::send) would; returns how many were sent.
    ///
    /// Cheaper per message than `send` in a loop for streams of small messages: the
    /// bookkeeping that a single publish does for tools and for sleeping subscribers is done
    /// once for the batch. Subscribers that sleep are woken after the last value, or earlier
    /// when a queue fills up (before `Overflow::Block` waits), not after every value; those
    /// that poll see each value as soon as it is written.
    ///
    /// Stops at the first error (pool exhausted, a full queue under `Overflow::Fail`, a
    /// timeout under `Overflow::Block`) and returns it: the values before it were published,
    /// those after it were not, and the one that failed reached nobody, except under
    /// `Overflow::Block`, where it reached the subscribers before the one whose queue stayed
    /// full (as with [`send`](Self::send)).
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// # std::env::set_var("SHMX_ROOT", dir.path());
    /// use shmx::{Publisher, Subscriber};
    /// let subscriber = Subscriber::<[f32; 2]>::new("doc/send_many")?;
    /// let publisher = Publisher::<[f32; 2]>::new("doc/send_many")?;
    /// let sent = publisher.send_many((0..10).map(|i| [i as f32, 0.5]))?;
    /// assert_eq!(sent, 10);
    /// assert_eq!(subscriber.take()?.unwrap()[0], 0.0);
    /// # Ok::<(), shmx::Error>(())
    /// ```
    pub fn send_many(&self, values: impl IntoIterator<Item = T>) -> Result<usize> {
        self.core.send_many(values.into_iter())
    }

    /// Number of subscribers currently connected.
    pub fn subscriber_count(&self) -> usize {
        self.core.subscriber_count()
    }

    /// Waits until at least `n` subscribers are connected (without spinning: it sleeps until
    /// the topic's participants change), and returns how many are.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// use shmx::{Publisher, Subscriber};
    /// use std::time::Duration;
    ///
    /// let publisher = Publisher::<u64>::builder("doc/ready").root(dir.path()).create()?;
    /// let root = dir.path().to_owned();
    /// let subscriber = std::thread::spawn(move || {
    ///     let sub = Subscriber::<u64>::builder("doc/ready").root(root).create()?;
    ///     sub.recv().map(|s| *s)
    /// });
    /// publisher.wait_for_subscribers(1, Duration::from_secs(10))?;
    /// publisher.send(7)?;
    /// assert_eq!(subscriber.join().unwrap()?, 7);
    /// # Ok::<(), shmx::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Timeout`] when fewer than `n` are connected after `timeout` (any `Duration`:
    /// a timeout past the clock's range waits forever).
    pub fn wait_for_subscribers(&self, n: usize, timeout: Duration) -> Result<usize> {
        let deadline = Instant::now().checked_add(timeout);
        loop {
            let token = self.core.service().change_token();
            // Sweep at every look, not at most every 50 ms as `subscriber_count` does: a
            // subscriber that died just after the last sweep must not count. (Each look
            // follows a change of the slots or a second without one: never a hot loop.)
            self.core.last_sweep.set(None);
            let count = self.core.subscriber_count();
            if count >= n {
                return Ok(count);
            }
            let left = match deadline {
                None => Duration::from_secs(1),
                Some(d) => d.saturating_duration_since(Instant::now()),
            };
            if left.is_zero() {
                return Err(Error::Timeout {
                    topic: self.topic().to_owned(),
                    operation: "waiting for subscribers",
                });
            }
            // At most a second at a time: subscribers that died are noticed by the sweep in
            // `subscriber_count`, which no participant may announce.
            self.core
                .service()
                .wait_for_change(token, left.min(Duration::from_secs(1)));
        }
    }

    /// Counts of this publisher's chunks by state, after taking back what subscribers
    /// returned.
    pub fn pool_stats(&self) -> PoolStats {
        let mut st = self.core.state.borrow_mut();
        self.core.refresh(&mut st);
        self.core.collect(&mut st);
        st.pool.stats()
    }

    /// This publisher's pool class by class, after taking back what subscribers returned.
    pub fn pool_classes(&self) -> Vec<ClassStats> {
        let mut st = self.core.state.borrow_mut();
        self.core.refresh(&mut st);
        self.core.collect(&mut st);
        self.core.class_stats(&st)
    }

    /// Bytes of shared memory this publisher's pool takes now (its segment files).
    pub fn reserved_bytes(&self) -> u64 {
        self.core.state.borrow().segs.reserved_bytes()
    }

    /// Gives back every segment of the pool, but the first, whose chunks are all free (none
    /// loaned, queued, held, kept as history or pinned by a late subscriber); returns how
    /// many. The pool grows again when the traffic needs it. A pool also gives idle segments
    /// back by itself when it would otherwise pass a limit or a budget.
    pub fn shrink_pool(&self) -> usize {
        let mut st = self.core.state.borrow_mut();
        self.core.refresh(&mut st);
        self.core.shrink_in(&mut st)
    }

    /// Number of entries that subscribers returned but that this publisher had not
    /// delivered to them (a misbehaving peer); they were ignored.
    pub fn ignored_returns(&self) -> u64 {
        self.core.state.borrow().pool.ignored
    }
}

impl<T: ShmMessage> PublisherBuilder<T> {
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
    /// Samples loaned at once at most (default 4, or the defaults file's).
    pub fn max_loans(mut self, max_loans: usize) -> Self {
        self.config.max_loans = max_loans;
        self
    }
    /// What to do when a subscriber's queue is full (default [`Overflow::DropOldest`], or
    /// the defaults file's).
    pub fn overflow(mut self, overflow: Overflow) -> Self {
        self.config.overflow = overflow;
        self
    }
    /// How long [`Overflow::Block`] waits before `Error::Timeout` (default: forever, or the
    /// defaults file's; a timeout that ends past the clock's range, such as `Duration::MAX`,
    /// waits forever too).
    pub fn block_timeout(mut self, timeout: Duration) -> Self {
        self.config.block_timeout = Some(timeout);
        self
    }
    /// Topic limits, used if this publisher creates the topic, and the mode and group it
    /// accepts. This replaces the whole [`TopicConfig`] the builder started from (the
    /// defaults file's `[topic]`); to keep the file's other values, start from
    /// [`Defaults::get`](crate::defaults::Defaults::get)`()?.topic()`.
    pub fn topic_config(mut self, topic: crate::config::TopicConfig) -> Self {
        self.config.topic = topic;
        self
    }
    /// Bytes after the message, at most, for the data of its relative pointers
    /// ([`RelSlice`](crate::RelSlice), [`RelStr`](crate::RelStr)); default 0, or the defaults
    /// file's. The chunks of the largest size class have this room (those of
    /// [`loan`](Publisher::loan)); smaller classes hold less (see
    /// [`loan_with_tail`](Publisher::loan_with_tail)). A sample is published with the part it
    /// used.
    pub fn max_tail_bytes(mut self, bytes: usize) -> Self {
        self.config.max_tail_bytes = bytes;
        self
    }
    /// The size classes of the pool's chunks, as the tails they hold (each under
    /// `max_tail_bytes`; the whole tail is always a class): `None`, the default, gives powers
    /// of two. See [`PoolClasses`](crate::PoolClasses).
    ///
    /// # Panics
    /// If the list is empty or longer than [`PoolClasses::MAX`](crate::PoolClasses::MAX).
    pub fn pool_classes(mut self, tails: &[usize]) -> Self {
        self.config.pool_classes = crate::PoolClasses::list(tails)
            .expect("pool_classes takes 1 to PoolClasses::MAX tails");
        self
    }
    /// Chunks each size class starts with and adds at least when it grows (default: about
    /// 1 MiB's worth, at least 2; or the defaults file's). `usize::MAX` reserves the worst
    /// case that the limits allow up front, as a fixed pool.
    pub fn reserve_chunks(mut self, chunks: usize) -> Self {
        self.config.reserve_chunks = Some(chunks);
        self
    }
    /// Bytes of shared memory the pool may take at most (default: no budget, or the
    /// defaults file's); a loan that would need more is [`Error::BudgetExceeded`].
    pub fn max_pool_bytes(mut self, bytes: u64) -> Self {
        self.config.max_pool_bytes = Some(bytes);
        self
    }
    /// Bytes of shared memory the data segments of every publisher under the root may take
    /// together, checked when this publisher reserves or grows its pool (default: no
    /// budget, or the defaults file's).
    pub fn max_root_bytes(mut self, bytes: u64) -> Self {
        self.config.max_root_bytes = Some(bytes);
        self
    }
    /// Shorthand to set `topic_config().max_subscribers`.
    pub fn max_subscribers(mut self, n: usize) -> Self {
        self.config.topic.max_subscribers = n;
        self
    }

    /// The directory that holds the topics (default: `$SHMX_ROOT`, else the defaults file's
    /// `root`, else the private `/dev/shm/shmx-<uid>`; see
    /// [`name::root_dir`](crate::name::root_dir)).
    pub fn root(mut self, root: impl Into<PathBuf>) -> Self {
        self.root = Some(root.into());
        self
    }

    /// Connects to (or creates) the topic and reserves this publisher's pool of chunks.
    ///
    /// # Errors
    /// [`Error::Config`] while the defaults file cannot be used; the errors of opening,
    /// checking and joining the topic.
    pub fn create(self) -> Result<Publisher<T>> {
        crate::defaults::check()?;
        let core = PubCore::create::<T>(self.root.as_deref(), &self.name, self.config)?;
        Ok(Publisher {
            core,
            _t: PhantomData,
        })
    }
}

impl PubCore {
    fn create<T: ShmMessage>(
        root: Option<&Path>,
        name: &str,
        config: PublisherConfig,
    ) -> Result<PubCore> {
        let trust = Trust::of(&config.topic);
        Self::create_with(root, name, config, trust, Service::open_or_create::<T>)
    }

    /// Creates a publisher on the topic that `open` opens (or creates); its message type is
    /// the one stored in the topic. `root` is the root's path (`None`: the default root);
    /// `trust` what the endpoint accepts of the files it finds there (see
    /// [`trust`](crate::trust)).
    pub(crate) fn create_with(
        root: Option<&Path>,
        name: &str,
        config: PublisherConfig,
        trust: Trust,
        open: impl FnOnce(&Arc<Root>, &TopicName, &TopicConfig, &Trust, &RootLock) -> Result<Service>,
    ) -> Result<PubCore> {
        let name = TopicName::new(name)?;
        let bad = |reason: String| Error::InvalidConfig {
            topic: name.as_str().to_owned(),
            reason,
        };
        if config.queue_depth == 0 || config.max_loans == 0 {
            return Err(bad("queue_depth and max_loans must be at least 1".into()));
        }
        let root = Root::open(root, &trust)?;
        // Declared before the lock, so dropped after it on every path: a node that goes takes
        // the root lock to remove its file.
        let node;
        let lock = root.lock(&trust)?;
        node = root.node(&trust, &lock)?;
        let service = open(&root, &name, &config.topic, &trust, &lock)?;
        let layout = *service.layout();
        let result = (|| {
            if config.queue_depth > layout.ring_capacity {
                return Err(bad(format!(
                    "queue_depth {} exceeds the topic's max_queue_depth {}",
                    config.queue_depth, layout.ring_capacity
                )));
            }
            if config.history > layout.max_history {
                return Err(bad(format!(
                    "history {} exceeds the topic's max_history {}",
                    config.history, layout.max_history
                )));
            }
            let (slot, inc) = service.claim(Role::Publisher, node.id())?;
            let made = Self::make_pool(&service, &root, &config, &trust, inc).and_then(|made| {
                made.ok_or_else(|| {
                    bad(
                        "the pool would be too large; lower queue_depth, max_subscribers or \
                     max_tail_bytes"
                            .into(),
                    )
                })
            });
            let (limits, segs) = match made {
                Ok(made) => made,
                Err(e) => {
                    service.pub_slot(slot).state.store(FREE, Ordering::Release);
                    return Err(e);
                }
            };
            let s = service.pub_slot(slot);
            s.pid
                .store(u64::from(std::process::id()), Ordering::Relaxed);
            s.chunk_count
                .store(segs.reserved_chunks(), Ordering::Relaxed);
            s.history_depth
                .store(config.history as u64, Ordering::Relaxed);
            s.queue_depth
                .store(config.queue_depth as u64, Ordering::Relaxed);
            s.overflow.store(config.overflow.code(), Ordering::Relaxed);
            s.drain_mask.store(0, Ordering::Relaxed);
            s.published.store(0, Ordering::Relaxed);
            s.hist_head.store(0, Ordering::Relaxed);
            s.state
                .store(service::state_word(inc, ACTIVE), Ordering::Release);
            service.bump_generation();
            // Waiting subscribers learn that a publisher joined.
            service.notify_subscribers();
            Ok((slot, inc, limits, segs))
        })();
        let (slot, inc, limits, segs) = match result {
            Ok(v) => v,
            Err(e) => {
                service.remove_if_unused(&lock);
                return Err(e);
            }
        };
        drop(lock);
        let mut pool = Pool::new(limits.caps.len(), config.history > 0);
        pool.add_segment(0, segs.class_of_first(), segs.reserved_chunks() as usize);
        Ok(PubCore {
            _node: node,
            last_sweep: Cell::new(None),
            state: RefCell::new(PubState {
                pool,
                segs,
                class: limits.caps.len() - 1,
                no_headroom: 0,
                since_collect: 0,
                light: false,
                loans: 0,
                history: VecDeque::with_capacity(config.history + 1),
                hist_written: 0,
                next_seq: 1,
                published: 0,
                gen: u64::MAX,
                conns: Vec::with_capacity(layout.max_subscribers),
            }),
            service,
            slot,
            inc,
            config,
            collect_every: (layout.return_capacity / 2).max(1),
            limits,
        })
    }

    /// The limits of a new publisher's pool, and its first segment (`Ok(None)` if the
    /// limits make a pool too large to lay out). Called with the root locked.
    fn make_pool(
        service: &Service,
        root: &Root,
        config: &PublisherConfig,
        trust: &Trust,
        inc: u64,
    ) -> Result<Option<(grow::Limits, Segments)>> {
        let (fingerprint, size, align) = service.type_facts();
        let layout = service.layout();
        let per_sub = config.queue_depth + layout.max_held + config.history;
        let worst = layout
            .max_subscribers
            .checked_mul(per_sub)
            .and_then(|n| n.checked_add(config.history + config.max_loans));
        let caps = classes::capacities(size, align, config.max_tail_bytes, &config.pool_classes);
        let Some((worst, caps)) = worst.zip(caps) else {
            return Ok(None);
        };
        let Some(top_stride) = caps.last().and_then(|&c| crate::data::stride(c, align)) else {
            return Ok(None);
        };
        let Some(mut limits) = grow::Limits::new(worst, caps, top_stride, config) else {
            return Ok(None);
        };
        // Segment 0 holds the smallest class; a fixed pool (the worst case up front) the
        // largest, which `loan()` takes, with every chunk the limits allow.
        let class = match config.reserve_chunks {
            Some(usize::MAX) => limits.caps.len() - 1,
            _ => 0,
        };
        let Some(first_stride) = crate::data::stride(limits.caps[class], align) else {
            return Ok(None);
        };
        let count = limits.reserve(first_stride);
        let Some(bytes) = crate::data::segment_bytes(count, limits.caps[class], align) else {
            return Ok(None);
        };
        limits.check_pool(service.topic(), 0, bytes as u64)?;
        limits.check_root(root, trust, service.topic(), bytes as u64)?;
        if class != limits.caps.len() - 1 {
            // Segment 0's small chunks come on top of the worst case of the largest class,
            // so that `loan()` alone can still reach it.
            limits.worst_bytes = limits
                .worst_bytes
                .saturating_add((count * first_stride) as u64);
        }
        let first = (class, count);
        match Segments::create(service, &limits.caps, first, (fingerprint, inc, align)) {
            Some(segs) => Ok(Some((limits, segs?))),
            None => Ok(None),
        }
    }

    fn topic_err_pool_in(&self, st: &PubState) -> Error {
        Error::PoolExhausted {
            topic: self.service.topic().to_owned(),
            chunks: st.pool.total(),
        }
    }

    /// Takes a chunk of class `class` for a new sample: its index and first payload byte.
    #[inline(always)]
    pub(crate) fn loan(&self, class: usize) -> Result<(u32, *mut u8)> {
        let mut st = self.state.borrow_mut();
        let chunk = self.loan_in(&mut st, class)?;
        Ok((chunk, st.segs.payload(chunk)))
    }

    /// Takes a chunk of class `class` from its free list for a loan: the common case, inline.
    #[inline(always)]
    fn loan_in(&self, st: &mut PubState, class: usize) -> Result<u32> {
        if st.loans < self.config.max_loans {
            if let Some(chunk) = st.pool.alloc(class, &st.segs) {
                st.loans += 1;
                st.class = class;
                return Ok(chunk);
            }
        }
        self.loan_slow(st, class)
    }

    /// `loan_in` when the loan limit is reached or the class's free list is empty.
    #[cold]
    #[inline(never)]
    fn loan_slow(&self, st: &mut PubState, class: usize) -> Result<u32> {
        if st.loans >= self.config.max_loans {
            return Err(Error::LoanLimit {
                topic: self.service.topic().to_owned(),
                max_loans: self.config.max_loans,
            });
        }
        // Returned chunks are taken back lazily: every so often after a publish (see
        // `publish`), so that return rings never fill up, and here when the free list runs
        // dry. A loan reads no peer's cache line.
        let chunk = match st.pool.alloc(class, &st.segs) {
            Some(c) => c,
            None => {
                self.refresh(st);
                self.collect(st);
                match st.pool.alloc(class, &st.segs) {
                    Some(c) => {
                        self.keep_headroom(st, class);
                        c
                    }
                    None => {
                        // Maybe a dead subscriber holds chunks: reclaim, then look again.
                        self.service.sweep_now(&self.last_sweep);
                        self.refresh(st);
                        match st.pool.alloc(class, &st.segs) {
                            Some(c) => c,
                            None => {
                                // The traffic needs more chunks of this class than it has.
                                match self.grow(st, class) {
                                    Ok(()) => st
                                        .pool
                                        .alloc(class, &st.segs)
                                        .ok_or_else(|| self.topic_err_pool_in(st))?,
                                    // At a limit: a free chunk of a larger class will do.
                                    Err(e) => (class + 1..st.segs.classes.len())
                                        .find_map(|c| st.pool.alloc(c, &st.segs))
                                        .ok_or(e)?,
                                }
                            }
                        }
                    }
                }
            }
        };
        st.loans += 1;
        st.class = class;
        Ok(chunk)
    }

    /// The class a chunk for `bytes` of payload comes from, or `Error::TailFull` (naming the
    /// tail past `size`) when no class holds that many.
    pub(crate) fn class_for(&self, bytes: usize, size: usize) -> Result<usize> {
        classes::class_for(&self.limits.caps, bytes).ok_or_else(|| Error::TailFull {
            topic: self.service.topic().to_owned(),
            requested: bytes.saturating_sub(size),
            available: self.payload_capacity().saturating_sub(size),
        })
    }

    /// The largest class (the one of `loan`: the whole tail).
    #[inline(always)]
    pub(crate) fn top_class(&self) -> usize {
        self.limits.caps.len() - 1
    }

    /// Number of subscribers currently connected (after reclaiming dead ones).
    pub(crate) fn subscriber_count(&self) -> usize {
        self.service.sweep_now(&self.last_sweep);
        let mut st = self.state.borrow_mut();
        self.refresh(&mut st);
        st.conns.len()
    }

    /// The topic's service segment.
    pub(crate) fn service(&self) -> &Service {
        &self.service
    }

    /// The payload of loaned chunk `chunk`, and how many bytes it holds (the message and
    /// its tail).
    #[inline]
    pub(crate) fn payload(&self, chunk: u32) -> (*mut u8, usize) {
        let st = self.state.borrow();
        (st.segs.payload(chunk), st.segs.capacity(chunk))
    }

    /// Payload bytes of a chunk of the largest class (the message and its whole tail).
    pub(crate) fn payload_capacity(&self) -> usize {
        self.state.borrow().segs.classes[self.top_class()].capacity
    }

    /// A loaned sample is dropped without being published.
    pub(crate) fn cancel(&self, chunk: u32) {
        let mut st = self.state.borrow_mut();
        st.loans -= 1;
        st.pool.end_loan(chunk);
    }
}

impl Drop for PubCore {
    fn drop(&mut self) {
        // Bounded: a peer that holds the lock must not keep this process from leaving (what
        // is left then goes with the next participant, or `shmx clean`).
        let lock = self
            .service
            .root()
            .lock_within(self.service.trust(), crate::root::LEAVING_WAIT);
        // With the root lock held no subscriber comes or goes: after `refresh`, `conns` are
        // exactly the subscribers still connected.
        let mut st = self.state.borrow_mut();
        self.refresh(&mut st);
        let mut mask = 0u64;
        for conn in &st.conns {
            if self
                .service
                .delivery(self.slot, conn.slot)
                .len_from(conn.ring.head)
                > 0
            {
                mask |= conn.bit;
            }
        }
        drop(st);
        let slot = self.service.pub_slot(self.slot);
        // Left, not died: a slot freed (or draining) with its node still set was reclaimed
        // from a dead process by a sweep (see `waitset::peers`). Only with the lock held: a
        // sweep would take an active slot without a node for a dead one.
        if lock.is_some() {
            slot.node.store(0, Ordering::Relaxed);
        }
        if mask == 0 {
            self.service.remove_data_files(self.inc);
            slot.state.store(FREE, Ordering::Release);
        } else {
            // Subscribers in `mask` still have samples of ours queued: they drain them, and
            // the last one removes our data segment and frees the slot.
            slot.drain_mask.store(mask, Ordering::Release);
            slot.state
                .store(service::state_word(self.inc, DRAINING), Ordering::Release);
        }
        self.service.bump_generation();
        // Waiting subscribers learn that a publisher left.
        self.service.notify_subscribers();
        if let Some(lock) = &lock {
            self.service.remove_if_unused(lock);
        }
    }
}

// SAFETY: a publisher owns its mappings and private state outright; nothing in it is tied to
// the creating thread (the shared words are atomics, as between processes).
unsafe impl<T: ShmMessage> Send for Publisher<T> {}
