//! [`Publisher`]: loans chunks of its pool of data segments and publishes them to every subscriber.

mod builder;
mod create;
mod deliver;
mod grow;
mod loan;
mod segments;

use crate::config::PublisherConfig;
use crate::error::{Error, Result};
use crate::message::ShmMessage;
use crate::node::Node;
use crate::pool::{ClassStats, Pool, PoolStats};
use crate::ring::{Producer, RingLoc};
use crate::sample::SampleMut;
use crate::service::Service;
use crate::sync::AtomicU32;
use segments::Segments;
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::marker::PhantomData;
use std::mem::MaybeUninit;
use std::path::PathBuf;
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
    /// Never give back a segment while the endpoint lives (see `RawPublisher::open`).
    keep_segments: Cell<bool>,
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
    /// Some connected subscriber asked for publish times (see `SubSlot::wants_stamps`).
    stamp: bool,
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

    /// Whether a publish now would find room in every subscriber's queue.
    pub(crate) fn has_room(&self) -> bool {
        self.core.has_room()
    }

    /// Subscribers connected, without looking for dead ones (see `subscriber_count`).
    pub(crate) fn connected(&self) -> usize {
        self.core.connected()
    }

    /// A publisher on topic `name` as `open` opens it (a part of a request/response service).
    pub(crate) fn create_part(
        root: Option<&std::path::Path>,
        name: &crate::name::TopicName,
        config: PublisherConfig,
        open: impl FnOnce(
            &Arc<crate::root::Root>,
            &crate::name::TopicName,
            &crate::config::TopicConfig,
            &crate::trust::Trust,
            &crate::root::RootLock,
        ) -> Result<Service>,
    ) -> Result<Publisher<T>> {
        let trust = crate::trust::Trust::of(&config.topic);
        Ok(Publisher {
            core: PubCore::create_with(root, name, config, trust, open)?,
            _t: PhantomData,
        })
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
        self.core.pool_stats()
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

// SAFETY: a publisher owns its mappings and private state outright; nothing in it is tied to
// the creating thread (the shared words are atomics, as between processes).
unsafe impl<T: ShmMessage> Send for Publisher<T> {}
