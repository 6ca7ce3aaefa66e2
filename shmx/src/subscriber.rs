//! [`Subscriber`]: receives the samples of every publisher of a topic, in place.

use crate::config::SubscriberConfig;
use crate::data::{DataView, NO_SEQUENCE};
use crate::error::{Error, Result};
use crate::event;
use crate::message::{ShmMessage, ValidationContext};
use crate::name::{root_dir, TopicName};
use crate::pins;
use crate::ring::{entry_tag, CHUNK_MASK};
use crate::sample::Sample;
use crate::segment::RootLock;
use crate::service::{self, Role, Service, ACTIVE, DRAINING, FREE};
use crate::sync::{fence, Ordering};
use std::cell::RefCell;
use std::collections::VecDeque;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};
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
    _t: PhantomData<fn(T) -> T>,
}

/// The type-erased state of a subscriber; samples point back to it.
pub(crate) struct SubCore {
    service: Service,
    slot: usize,
    inc: u64,
    bit: u64,
    max_held: usize,
    fingerprint: u64,
    size: usize,
    align: usize,
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
    view: usize,
    tag: u64,
    ret_head: u64,
    last_seq: u64,
    /// History samples pinned at connection time, handed out before the queue.
    pending: VecDeque<(usize, u64)>,
    draining: bool,
}

/// What a [`Sample`] needs to give its chunk back.
pub(crate) struct Held {
    pub seq: u64,
    pub origin: u64,
    view: usize,
    pub_slot: usize,
    chunk: usize,
    /// The ring entry to return, or `None` for a pinned history sample.
    entry: Option<u64>,
}

impl<T: ShmMessage> Subscriber<T> {
    /// Creates a subscriber on topic `name` with the default configuration.
    pub fn new(name: &str) -> Result<Subscriber<T>> {
        Self::builder(name).create()
    }

    /// Starts configuring a subscriber on topic `name`.
    pub fn builder(name: &str) -> SubscriberBuilder<T> {
        SubscriberBuilder {
            name: name.to_owned(),
            root: None,
            config: SubscriberConfig::default(),
            _t: PhantomData,
        }
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
    pub fn take(&self) -> Result<Option<Sample<'_, T>>> {
        let mut st = self.core.state.borrow_mut();
        self.core.take_raw::<T>(&mut st)
    }

    /// Waits for the next sample: spins briefly, then sleeps until a publisher wakes it.
    pub fn recv(&self) -> Result<Sample<'_, T>> {
        loop {
            if let Some(sample) = self.recv_until(None)? {
                return Ok(sample);
            }
        }
    }

    /// Waits up to `timeout` for the next sample; `Ok(None)` if none came.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<Option<Sample<'_, T>>> {
        self.recv_until(Some(Instant::now() + timeout))
    }

    fn recv_until(&self, deadline: Option<Instant>) -> Result<Option<Sample<'_, T>>> {
        const SPINS: u32 = 200;
        const YIELDS: u32 = 20;
        for i in 0..SPINS + YIELDS {
            if let Some(sample) = self.take()? {
                return Ok(Some(sample));
            }
            if i < SPINS {
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
        let slot = self.core.service.sub_slot(self.core.slot);
        loop {
            // PROTOCOLS.md §3, subscriber side.
            let v = event::announce_sleep(&slot.wake, &slot.sleeping);
            if !self.core.looks_empty() {
                event::end_sleep(&slot.sleeping);
                if let Some(sample) = self.take()? {
                    return Ok(Some(sample));
                }
                continue;
            }
            let now = Instant::now();
            let wait = match deadline {
                Some(d) if d <= now => {
                    event::end_sleep(&slot.sleeping);
                    return self.take();
                }
                Some(d) => (d - now).min(Duration::from_secs(1)),
                None => Duration::from_secs(1),
            };
            event::wait(&slot.wake, v, Some(wait));
            event::end_sleep(&slot.sleeping);
            if let Some(sample) = self.take()? {
                return Ok(Some(sample));
            }
        }
    }

    /// Number of publishers this subscriber is connected to.
    pub fn publisher_count(&self) -> usize {
        let mut st = self.core.state.borrow_mut();
        let _ = self.core.refresh(&mut st);
        st.active.len()
    }
}

impl<T: ShmMessage> SubscriberBuilder<T> {
    /// Samples queued from each publisher at most (default 16; capped by the publisher's).
    pub fn queue_depth(mut self, depth: usize) -> Self {
        self.config.queue_depth = depth;
        self
    }
    /// Topic limits, used if this subscriber creates the topic.
    pub fn topic_config(mut self, topic: crate::config::TopicConfig) -> Self {
        self.config.topic = topic;
        self
    }

    /// The directory that holds the topics (default: `$SHMX_ROOT`, else `/dev/shm/shmx`).
    pub fn root(mut self, root: impl Into<PathBuf>) -> Self {
        self.root = Some(root.into());
        self
    }

    /// Connects to (or creates) the topic, and picks up the history of its publishers.
    pub fn create(self) -> Result<Subscriber<T>> {
        let root = self.root.unwrap_or_else(root_dir);
        let core = SubCore::create::<T>(&root, &self.name, self.config)?;
        Ok(Subscriber {
            core,
            _t: PhantomData,
        })
    }
}

impl SubCore {
    fn create<T: ShmMessage>(root: &Path, name: &str, config: SubscriberConfig) -> Result<SubCore> {
        let name = TopicName::new(name)?;
        let lock = RootLock::acquire(root)?;
        let service = Service::open_or_create::<T>(root, &name, &config.topic, &lock)?;
        let layout = *service.layout();
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
        let (slot, inc) = match service.claim(Role::Subscriber) {
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
        s.taken.store(0, Ordering::Relaxed);
        s.sleeping.store(0, Ordering::Relaxed);
        s.state
            .store(service::state_word(inc, ACTIVE), Ordering::Release);
        service.bump_generation();
        // Dekker with a publisher that records history and then looks for subscribers.
        fence(Ordering::SeqCst);
        drop(lock);
        let core = SubCore {
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
            max_held: layout.max_held,
            fingerprint: T::FINGERPRINT,
            size: core::mem::size_of::<T>(),
            align: core::mem::align_of::<T>(),
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

    /// Whether nothing at all is waiting (used right before sleeping).
    fn looks_empty(&self) -> bool {
        let st = self.state.borrow();
        if self.service.generation() != st.gen {
            return false;
        }
        st.active.iter().all(|&p| {
            let conn = st.pubs[p].as_ref().expect("active connections exist");
            conn.pending.is_empty() && self.service.delivery(p, self.slot).is_empty()
        })
    }

    /// Notices publishers that came or went; maps new ones and pins their history.
    fn refresh(&self, st: &mut SubState) -> Result<()> {
        let gen = self.service.generation();
        if gen == st.gen {
            return Ok(());
        }
        st.gen = gen;
        let mut result = Ok(());
        for p in 0..self.service.layout().max_publishers {
            let slot = self.service.pub_slot(p);
            let word = slot.state.load(Ordering::Acquire);
            let state = service::state_of(word);
            let inc = service::incarnation_of(word);
            if let Some(conn) = st.pubs[p].as_mut() {
                if service::incarnation_of(conn.slot_word) == inc
                    && (state == ACTIVE || state == DRAINING)
                {
                    conn.draining |= state == DRAINING;
                    conn.slot_word = word;
                    continue;
                }
                self.disconnect(st, p);
            }
            let wanted = match state {
                ACTIVE => true,
                DRAINING => slot.drain_mask.load(Ordering::Acquire) & self.bit != 0,
                _ => false,
            };
            if !wanted || st.broken.contains(&inc) {
                continue;
            }
            if let Err(e) = self.connect(st, p, word) {
                st.broken.push(inc);
                result = Err(e);
            }
        }
        st.active.clear();
        let n = self.service.layout().max_publishers;
        st.active.extend((0..n).filter(|&p| st.pubs[p].is_some()));
        result
    }

    fn connect(&self, st: &mut SubState, p: usize, word: u64) -> Result<()> {
        let inc = service::incarnation_of(word);
        let path = self.service.data_path(inc);
        let Some(view) = DataView::open(&path, inc, self.fingerprint, self.size, self.align)?
        else {
            return Ok(()); // gone already
        };
        let mut pending = VecDeque::new();
        let draining = service::state_of(word) == DRAINING;
        if !draining {
            self.pin_history(p, &view, &mut pending);
        }
        let view_id = match st.views.iter().position(Option::is_none) {
            Some(i) => i,
            None => {
                st.views.push(None);
                st.views.len() - 1
            }
        };
        st.views[view_id] = Some(ViewSlot {
            view,
            held: 0,
            live: true,
        });
        st.pubs[p] = Some(PubConn {
            slot_word: word,
            view: view_id,
            tag: entry_tag(inc, self.inc),
            ret_head: self.service.returns(p, self.slot).load_head(),
            last_seq: 0,
            pending,
            draining,
        });
        Ok(())
    }

    /// PROTOCOLS.md §4, subscriber side: pins the publisher's history chunks that still carry
    /// the sequence its slot lists.
    fn pin_history(&self, p: usize, view: &DataView, pending: &mut VecDeque<(usize, u64)>) {
        let slot = self.service.pub_slot(p);
        let max = self.service.layout().max_history as u64;
        let depth = slot.history_depth.load(Ordering::Relaxed).min(max);
        if depth == 0 {
            return;
        }
        let pairs = self.service.pub_history(p);
        let head = slot.hist_head.load(Ordering::SeqCst);
        let mut last = NO_SEQUENCE;
        for j in head.saturating_sub(depth)..head {
            let k = (j % max) as usize;
            let chunk = pairs[2 * k].load(Ordering::Acquire) as usize;
            let seq = pairs[2 * k + 1].load(Ordering::Acquire);
            let (Some(pin), Some(header)) = (view.pin(chunk), view.header(chunk)) else {
                continue; // out of range: a torn or hostile entry
            };
            if seq > last && pins::pin_if_current(pin, &header.seq, self.bit, seq) {
                pending.push_back((chunk, seq));
                last = seq;
            }
        }
    }

    /// Drops the connection to publisher slot `p`: unpins what was not handed out; the
    /// mapping stays while samples of it are held.
    fn disconnect(&self, st: &mut SubState, p: usize) {
        let Some(conn) = st.pubs[p].take() else {
            return;
        };
        let Some(vs) = st.views[conn.view].as_mut() else {
            return;
        };
        for &(chunk, _) in &conn.pending {
            if let Some(pin) = vs.view.pin(chunk) {
                pins::unpin(pin, self.bit);
            }
        }
        vs.live = false;
        if vs.held == 0 {
            st.views[conn.view] = None;
        }
    }

    /// This subscriber is done with departed publisher slot `p` (state word `word`, which
    /// must still be DRAINING with our bit set): clears our bit; the last one removes the
    /// publisher's data segment and frees its slot. Call with the root lock held.
    fn release_drain(&self, p: usize, word: u64, lock: &RootLock) {
        let slot = self.service.pub_slot(p);
        if slot.state.load(Ordering::Acquire) != word || service::state_of(word) != DRAINING {
            return;
        }
        let before = slot.drain_mask.fetch_and(!self.bit, Ordering::AcqRel);
        if before & self.bit != 0 && before & !self.bit == 0 {
            let _ = std::fs::remove_file(self.service.data_path(service::incarnation_of(word)));
            if slot
                .state
                .compare_exchange(word, FREE, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
            {
                self.service.bump_generation();
            }
            self.service.remove_if_unused(lock);
        }
    }

    fn take_raw<'s, T: ShmMessage>(&'s self, st: &mut SubState) -> Result<Option<Sample<'s, T>>> {
        if !st.unreturned.is_empty() {
            self.retry_returns(st);
        }
        if st.held >= self.max_held {
            return Err(Error::HeldLimit {
                topic: self.service.topic().to_owned(),
                max_held: self.max_held,
            });
        }
        self.refresh(st)?;
        let n = st.active.len();
        for k in 0..n {
            let i = (st.next + k) % n;
            let p = st.active[i];
            if let Some(held) = self.take_from::<T>(st, p)? {
                st.next = i;
                return Ok(Some(self.hand_out(st, held)));
            }
            let conn = st.pubs[p].as_ref().expect("active connections exist");
            if conn.draining
                && conn.pending.is_empty()
                && self.service.delivery(p, self.slot).is_empty()
            {
                let word = conn.slot_word;
                self.disconnect(st, p);
                if let Ok(lock) = RootLock::acquire(self.service.root()) {
                    self.release_drain(p, word, &lock);
                }
                st.gen = u64::MAX; // rebuild `active` on the next call
            }
        }
        Ok(None)
    }

    /// Takes the next valid sample of publisher slot `p`, if any.
    fn take_from<T: ShmMessage>(&self, st: &mut SubState, p: usize) -> Result<Option<Held>> {
        let SubState {
            pubs,
            views,
            unreturned,
            ..
        } = st;
        let conn = pubs[p].as_mut().expect("active connections exist");
        let view = &views[conn.view]
            .as_ref()
            .expect("a connection's view is mapped")
            .view;
        if let Some((chunk, seq)) = conn.pending.pop_front() {
            conn.last_seq = conn.last_seq.max(seq);
            let held = Held {
                seq,
                origin: service::incarnation_of(conn.slot_word),
                view: conn.view,
                pub_slot: p,
                chunk,
                entry: None,
            };
            return match self.check::<T>(view, chunk) {
                Ok(()) => Ok(Some(held)),
                Err(reason) => {
                    if let Some(pin) = view.pin(chunk) {
                        pins::unpin(pin, self.bit);
                    }
                    Err(self.invalid(seq, reason))
                }
            };
        }
        let ring = self.service.delivery(p, self.slot);
        let returns = self.service.returns(p, self.slot);
        while let Some(entry) = ring.pop() {
            if entry & !CHUNK_MASK != conn.tag {
                continue; // left over from an earlier occupant of one of the two slots
            }
            let chunk = (entry & CHUNK_MASK) as usize;
            let Some(header) = view.header(chunk) else {
                continue; // out of range: never touch it, never return it
            };
            let seq = header.seq.load(Ordering::Acquire);
            if seq <= conn.last_seq {
                // Already handed out from history.
                if !returns.push(&mut conn.ret_head, entry) {
                    unreturned.push((p, conn.slot_word, entry));
                }
                continue;
            }
            conn.last_seq = seq;
            if let Err(reason) = self.check::<T>(view, chunk) {
                if !returns.push(&mut conn.ret_head, entry) {
                    unreturned.push((p, conn.slot_word, entry));
                }
                return Err(self.invalid(seq, reason));
            }
            return Ok(Some(Held {
                seq,
                origin: service::incarnation_of(conn.slot_word),
                view: conn.view,
                pub_slot: p,
                chunk,
                entry: Some(entry),
            }));
        }
        Ok(None)
    }

    /// Checks a chunk's declared length and, for types that need it, the value's validity.
    fn check<T: ShmMessage>(
        &self,
        view: &DataView,
        chunk: usize,
    ) -> std::result::Result<(), String> {
        let header = view.header(chunk).ok_or("chunk index out of range")?;
        let len = header.len.load(Ordering::Relaxed);
        if len != self.size as u64 {
            return Err(format!("payload length {len}, expected {}", self.size));
        }
        if !T::ALWAYS_VALID {
            let ptr = view.payload(chunk);
            let ctx = ValidationContext {
                payload_start: ptr as usize,
                payload_end: ptr as usize + self.size,
            };
            // SAFETY: `ptr` is the payload of an in-range chunk: aligned for `T` (the data
            // segment's geometry was checked against `T`'s alignment) with `size_of::<T>()`
            // mapped bytes; `validate` only reads them as integers.
            unsafe { T::validate(ptr.cast::<T>(), &ctx) }.map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    fn invalid(&self, sequence: u64, reason: String) -> Error {
        Error::InvalidSample {
            topic: self.service.topic().to_owned(),
            sequence,
            reason,
        }
    }

    fn hand_out<'s, T>(&'s self, st: &mut SubState, held: Held) -> Sample<'s, T> {
        st.held += 1;
        let vs = st.views[held.view]
            .as_mut()
            .expect("a connection's view is mapped");
        vs.held += 1;
        let ptr = vs.view.payload(held.chunk).cast::<T>();
        self.service
            .sub_slot(self.slot)
            .taken
            .fetch_add(1, Ordering::Relaxed);
        // SAFETY: `check` accepted the chunk: in range, of `T`'s size, a valid `T`; the view
        // stays mapped while `vs.held > 0`, and the publisher does not reuse the chunk while
        // we hold it (delivered and not returned, or pinned).
        unsafe { Sample::new(self, ptr, held) }
    }

    /// Gives a sample's chunk back (called when the sample is dropped).
    pub(crate) fn release(&self, held: &Held) {
        let mut st = self.state.borrow_mut();
        st.held -= 1;
        let SubState {
            pubs,
            views,
            unreturned,
            ..
        } = &mut *st;
        let Some(vs) = views[held.view].as_mut() else {
            return;
        };
        vs.held -= 1;
        match held.entry {
            None => {
                if let Some(pin) = vs.view.pin(held.chunk) {
                    pins::unpin(pin, self.bit);
                }
            }
            Some(entry) => {
                if let Some(conn) = pubs[held.pub_slot].as_mut().filter(|c| c.view == held.view) {
                    let ring = self.service.returns(held.pub_slot, self.slot);
                    if !conn.draining && !ring.push(&mut conn.ret_head, entry) {
                        unreturned.push((held.pub_slot, conn.slot_word, entry));
                    }
                }
            }
        }
        if !vs.live && vs.held == 0 {
            views[held.view] = None;
        }
    }

    fn retry_returns(&self, st: &mut SubState) {
        let SubState {
            pubs, unreturned, ..
        } = st;
        unreturned.retain(|&(p, word, entry)| match pubs[p].as_mut() {
            Some(conn) if conn.slot_word == word && !conn.draining => !self
                .service
                .returns(p, self.slot)
                .push(&mut conn.ret_head, entry),
            _ => false,
        });
    }
}

impl Drop for SubCore {
    fn drop(&mut self) {
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
        let lock = RootLock::acquire(self.service.root()).ok();
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
                self.release_drain(p, word, lock);
            }
            self.service.remove_if_unused(lock);
        }
    }
}

// SAFETY: a subscriber owns its mappings and private state outright; samples borrow it, so
// none is outstanding when it moves to another thread.
unsafe impl<T: ShmMessage> Send for Subscriber<T> {}
