//! The publish path: noticing subscribers, taking back returned chunks, recording history,
//! pushing into every subscriber's ring under the overflow policy, and waking sleepers.
//!
//! The common case (no subscriber came or went, nothing to wake) touches no peer's cache line
//! except the ring slot it writes, makes no system call and allocates nothing.

use super::{Conn, PubCore, PubState};
use crate::config::Overflow;
use crate::data::NO_CHUNK;
use crate::error::{Error, Result};
use crate::event;
use crate::pool::ChunkAccess;
use crate::ring::{entry_tag, Push, CHUNK_MASK};
use crate::service::{self, Service, ACTIVE};
use crate::sync::{fence, Ordering};
use std::time::{Duration, Instant};

/// How many loans ahead a batch owns its chunks' first lines (`prefetchw`), so that an
/// RFO of ~100 ns is done by the time the loan writes, at ~30 ns per message. The free stack
/// pops in order between take-backs, so the chunk `k` below its top is the `k + 1`-th loan
/// from now. In-process A/B, two pinned threads, `send_many(64)` → `drain`, 8 B, ten
/// alternated runs each: the slow-regime runs (the subscriber right behind the publisher)
/// rose from ~10 M msg/s (1 ahead) to ~15–20 M msg/s (4 to 16 ahead, all alike), the fast
/// ones from ~34–36 to ~36–38 M msg/s.
const BATCH_PREFETCH: usize = 6;

/// A sample's publish time as its tag word (see [`wall_clock_ns`]); off the common path.
///
/// [`wall_clock_ns`]: crate::data::wall_clock_ns
#[cold]
#[inline(never)]
fn publish_stamp() -> u64 {
    crate::data::wall_clock_ns()
}

impl PubCore {
    /// Notices subscribers that came or went since the last look (one load when nothing
    /// changed).
    #[inline]
    pub(super) fn refresh(&self, st: &mut PubState) {
        let gen = self.service.generation();
        if gen != st.gen {
            self.refresh_slow(st, gen);
        }
    }

    #[cold]
    fn refresh_slow(&self, st: &mut PubState, gen: u64) {
        st.gen = gen;
        let layout = self.service.layout();
        let old = std::mem::take(&mut st.conns);
        let mut old = old.into_iter().peekable();
        st.stamp = false;
        for s in 0..layout.max_subscribers {
            let slot = self.service.sub_slot(s);
            let word = slot.state.load(Ordering::Acquire);
            let live = service::state_of(word) == ACTIVE;
            st.stamp |= live && slot.wants_stamps.load(Ordering::Relaxed) == 1;
            if let Some(conn) = old.next_if(|c| c.slot == s) {
                if live && conn.slot_word == word {
                    st.conns.push(conn);
                    continue;
                }
                st.pool.forget_holder(conn.bit);
            }
            if live {
                let wanted = slot.queue_depth.load(Ordering::Relaxed).max(1);
                let delivery = self.service.delivery(self.slot, s);
                let returns = self.service.returns(self.slot, s);
                st.conns.push(Conn {
                    slot: s,
                    bit: 1 << s,
                    slot_word: word,
                    light: slot.forces_barrier.load(Ordering::Relaxed) == 1,
                    tag: entry_tag(self.inc, service::incarnation_of(word)),
                    depth: wanted.min(self.config.queue_depth as u64),
                    delivery: delivery.loc(),
                    ring: delivery.producer(),
                    returns: returns.loc(),
                    ret_tail: returns.load_tail(),
                    wake: &slot.wake,
                    sleeping: &slot.sleeping,
                    notifier: Default::default(),
                });
            }
        }
        st.light = event::publisher_light_barrier() && st.conns.iter().all(|c| c.light);
    }

    /// Takes back every chunk that subscribers returned.
    pub(super) fn collect(&self, st: &mut PubState) {
        let PubState { pool, conns, .. } = st;
        for conn in conns.iter_mut() {
            let (tag, bit) = (conn.tag, conn.bit);
            // SAFETY: `conn.returns` points into our service mapping, alive as long as `self`.
            let returns = unsafe { conn.returns.returns() };
            let ok = returns.drain(&mut conn.ret_tail, |e| {
                if e & !CHUNK_MASK == tag {
                    pool.give_back(e & CHUNK_MASK, bit);
                } else {
                    pool.ignored += 1;
                }
            });
            if !ok {
                pool.ignored += 1;
            }
        }
        // For tools: what each size class has in use now (a few stores per collection).
        for class in 0..st.segs.classes.len() {
            let (chunks, in_use) = st.pool.class_counts(class);
            st.segs.record_class(class, chunks, in_use);
        }
    }

    /// Whether every connected subscriber's queue has room for one more sample (a publish
    /// now would neither drop, fail nor wait).
    pub(crate) fn has_room(&self) -> bool {
        let mut st = self.state.borrow_mut();
        self.refresh(&mut st);
        self.first_full(&mut st).is_none()
    }

    /// Publishes loaned chunk `chunk`, whose first `len` payload bytes the sample wrote
    /// (the message and the part of its tail in use; at most the payload capacity).
    #[inline(always)]
    pub(crate) fn publish(&self, chunk: u32, len: usize) -> Result<()> {
        self.publish_tagged(chunk, len, None)
    }

    /// [`publish`](Self::publish), writing `tag` (if any) into the chunk's tag word with the
    /// rest of its header (a request's or response's routing, see `request`).
    #[inline(always)]
    pub(crate) fn publish_tagged(&self, chunk: u32, len: usize, tag: Option<u64>) -> Result<()> {
        let mut st = self.state.borrow_mut();
        let st = &mut *st;
        st.loans -= 1;
        let result = self.publish_in(st, chunk, len, true, tag);
        self.after_publish(st);
        match result {
            Ok(()) => Ok(()),
            Err(r) => Err(self.refused(r)),
        }
    }

    /// The next sample published gets sequence number `seq` if that is above every one sent
    /// so far (a bridge's relay, keeping another machine's numbers), and below 2^62 (a
    /// number from afar never brings the count near overflow).
    pub(crate) fn raise_sequence(&self, seq: u64) {
        let mut st = self.state.borrow_mut();
        st.next_seq = st.next_seq.max(seq.min(1 << 62));
    }

    /// The error a refused publish reports.
    #[cold]
    fn refused(&self, r: Refused) -> Error {
        let topic = self.service.topic().to_owned();
        match r {
            Refused::QueueFull(depth) => Error::QueueFull {
                topic,
                depth: depth as usize,
            },
            Refused::Timeout => Error::Timeout {
                topic,
                operation: "publish (Overflow::Block, subscriber queue full)",
            },
        }
    }

    /// Sends every value of `values` (see [`Publisher::send_many`](crate::Publisher)).
    ///
    /// The state is borrowed per value, after the iterator produced it, so that the iterator
    /// may use this publisher too.
    pub(crate) fn send_many<T>(&self, values: impl Iterator<Item = T>) -> Result<usize> {
        // Wakes and does the bookkeeping once the batch ends, even by a panic of `values`.
        let mut batch = BatchEnd {
            core: self,
            sent: 0,
        };
        let mut result = Ok(());
        for value in values {
            let mut st = self.state.borrow_mut();
            let chunk = match self.loan_in(&mut st, self.top_class()) {
                Ok(chunk) => chunk,
                Err(e) => {
                    result = Err(e);
                    break;
                }
            };
            st.loans -= 1;
            // SAFETY: `chunk` was just loaned to us alone; its payload is aligned for `T` and
            // holds `size_of::<T>()` bytes by the data segment's geometry (the publisher was
            // created for `T`).
            unsafe { st.segs.payload(chunk).cast::<T>().write(value) };
            if let Err(r) = self.publish_in(&mut st, chunk, size_of::<T>(), false, None) {
                result = Err(self.refused(r));
                break;
            }
            batch.sent += 1;
            self.recycle(&mut st, true);
        }
        let sent = batch.sent;
        drop(batch);
        result.map(|()| sent)
    }

    /// Publishes loaned chunk `chunk` (its loan already uncounted): pushes it to every
    /// subscriber, waking those that sleep if `wake_now` (else the caller wakes them); writes
    /// `tag` into the chunk's tag word if it is given, else the publish time if a subscriber
    /// asked for it (see [`publish_stamp`]), else 0.
    #[inline(always)]
    fn publish_in(
        &self,
        st: &mut PubState,
        chunk: u32,
        len: usize,
        wake_now: bool,
        tag: Option<u64>,
    ) -> std::result::Result<(), Refused> {
        debug_assert!(len <= st.segs.capacity(chunk));
        self.refresh(st);
        if self.config.overflow == Overflow::Fail {
            if let Some(depth) = self.first_full(st) {
                st.pool.end_loan(chunk);
                return Err(Refused::QueueFull(depth));
            }
        }
        let seq = st.next_seq;
        st.next_seq += 1;
        let header = st.segs.header(chunk);
        header.len.store(len as u64, Ordering::Relaxed);
        // The tag word shares the line of `len` and `seq`, written anyway: one store more.
        let word = match tag {
            Some(tag) => tag,
            None if st.stamp => publish_stamp(),
            None => 0,
        };
        header.tag.store(word, Ordering::Relaxed);
        // Announce the chunk the next loan will take (the free stack keeps its top until a
        // loan pops it): a subscriber spinning for the next sample loads that line while it
        // polls the ring slot, so the two arrive together instead of one after the other.
        // In-process ping-pong, two pinned threads, 8 B: one-way median ~150 → ~125 ns.
        let next = st.pool.free_ahead(st.class, 0).map_or(NO_CHUNK, u64::from);
        header.next.store(next, Ordering::Relaxed);
        header.seq.store(seq, Ordering::Release);
        if self.config.history > 0 {
            self.record_history(st, chunk, seq);
            // Dekker with a subscriber that registers and then reads the history: either it
            // finds this sample there, or `refresh` below sees the subscriber.
            fence(Ordering::SeqCst);
            self.refresh(st);
        }
        let result = self.deliver(st, chunk, wake_now);
        st.published = seq;
        result
    }

    /// After each sample published (in a batch too): takes back what subscribers returned,
    /// every so often, so that their return rings never fill, and starts loading the chunk the
    /// next loan will take, or in a batch owning the one [`BATCH_PREFETCH`] loans ahead (see
    /// [`DataSegment::prefetch_chunk`]).
    ///
    /// [`DataSegment::prefetch_chunk`]: crate::data::DataSegment::prefetch_chunk
    #[inline(always)]
    fn recycle(&self, st: &mut PubState, batch: bool) {
        st.since_collect += 1;
        if st.since_collect >= self.collect_every {
            st.since_collect = 0;
            self.collect(st);
        }
        let ahead = if batch { BATCH_PREFETCH } else { 0 };
        let class = st.class;
        if let Some(next) = st
            .pool
            .free_ahead(class, ahead)
            .or_else(|| st.pool.free_ahead(class, 0))
        {
            st.segs.prefetch(next, batch);
        }
    }

    /// After one publish or a batch, off the path from loan to publish: tools' counters,
    /// taking back what subscribers returned (every so often), and loading the chunk the next
    /// loan will take, so that writing it then waits less (a subscriber read it last).
    #[inline(always)]
    fn after_publish(&self, st: &mut PubState) {
        // For tools (`shmx monitor`): a line only this publisher writes and peers read rarely.
        let slot = self.service.pub_slot(self.slot);
        slot.published.store(st.published, Ordering::Relaxed);
        // Counts chunks returned but not yet taken back too: tools subtract those, which
        // they see in the return rings.
        slot.chunks_in_use
            .store(st.pool.in_use() as u64, Ordering::Relaxed);
        self.recycle(st, false);
        for conn in &mut st.conns {
            // SAFETY: `conn.delivery` points into our service mapping, alive as long as `self`.
            unsafe { conn.delivery.delivery() }.refresh_tail(&mut conn.ring, conn.depth);
        }
    }

    /// The depth of the first full subscriber queue, if any (for `Overflow::Fail`).
    fn first_full(&self, st: &mut PubState) -> Option<u64> {
        st.conns.iter_mut().find_map(|conn| {
            // SAFETY: `conn.delivery` points into our service mapping, alive as long as `self`.
            let ring = unsafe { conn.delivery.delivery() };
            (!ring.has_room(&mut conn.ring, conn.depth)).then_some(conn.depth)
        })
    }

    #[cold]
    fn record_history(&self, st: &mut PubState, chunk: u32, seq: u64) {
        st.pool.set_history(chunk, true);
        st.history.push_back(chunk);
        if st.history.len() > self.config.history {
            let old = st.history.pop_front().expect("history is not empty");
            st.pool.set_history(old, false);
        }
        let max = self.service.layout().max_history as u64;
        let pairs = self.service.pub_history(self.slot);
        let k = (st.hist_written % max) as usize;
        pairs[2 * k].store(u64::from(chunk), Ordering::Relaxed);
        pairs[2 * k + 1].store(seq, Ordering::Relaxed);
        st.hist_written += 1;
        let slot = self.service.pub_slot(self.slot);
        slot.hist_head.store(st.hist_written, Ordering::SeqCst);
    }

    /// Pushes `chunk` into every subscriber's queue under the overflow policy, then records
    /// in the pool who holds it and ends its loan (also when a `Block` wait fails part way).
    ///
    /// The common case (every queue has room by the cached `tail`) is this loop; the first
    /// queue that needs more goes to [`deliver_rest`](Self::deliver_rest).
    #[inline(always)]
    fn deliver(
        &self,
        st: &mut PubState,
        chunk: u32,
        wake_now: bool,
    ) -> std::result::Result<(), Refused> {
        let mut holders = 0u64;
        for i in 0..st.conns.len() {
            let conn = &mut st.conns[i];
            // SAFETY: `conn.delivery` points into our service mapping, alive as long as `self`.
            let ring = unsafe { conn.delivery.delivery() };
            if !ring.try_push(&mut conn.ring, conn.depth, conn.tag | u64::from(chunk)) {
                return self.deliver_rest(st, chunk, wake_now, i, holders);
            }
            holders |= conn.bit;
        }
        st.pool.publish(chunk, holders);
        if holders != 0 && wake_now {
            wake(&self.service, &st.conns, st.light);
        }
        Ok(())
    }

    /// `deliver` from connection `from` on, when its queue looked full by the cached `tail`:
    /// re-reads it, and steals, waits or skips as the policy says. `holders` are the bits of
    /// the connections before `from`, already pushed to.
    #[cold]
    #[inline(never)]
    fn deliver_rest(
        &self,
        st: &mut PubState,
        chunk: u32,
        wake_now: bool,
        from: usize,
        mut holders: u64,
    ) -> std::result::Result<(), Refused> {
        let steal = self.config.overflow == Overflow::DropOldest;
        let PubState {
            pool, conns, light, ..
        } = st;
        let mut result = Ok(());
        let mut i = from;
        while let Some(conn) = conns.get_mut(i) {
            i += 1;
            // SAFETY: `conn.delivery` points into our service mapping, alive as long as `self`.
            let ring = unsafe { conn.delivery.delivery() };
            let entry = conn.tag | u64::from(chunk);
            match ring.push(&mut conn.ring, conn.depth, entry, steal) {
                Push::Pushed => {}
                Push::PushedAfterSteal(old) => {
                    if old & !CHUNK_MASK == conn.tag {
                        pool.give_back(old & CHUNK_MASK, conn.bit);
                    }
                }
                Push::Full => {
                    // Overflow::Block (Fail is checked before; DropOldest never is full).
                    // Wake first whoever has samples not yet woken for: the subscribers
                    // before this one, and in a batch (`!wake_now`) any of them.
                    if !wake_now {
                        wake(&self.service, conns, *light);
                    } else if holders != 0 {
                        wake(&self.service, &conns[..i - 1], *light);
                    }
                    let conn = &mut conns[i - 1];
                    match self.block(conn, entry) {
                        Ok(true) => {}
                        Ok(false) => continue, // the subscriber left
                        Err(e) => {
                            result = Err(e);
                            break;
                        }
                    }
                }
            }
            holders |= conns[i - 1].bit;
        }
        pool.publish(chunk, holders);
        if holders != 0 && wake_now {
            wake(&self.service, conns, *light);
        }
        result
    }

    /// `Overflow::Block`: waits until `conn`'s queue has room and pushes `entry`. `Ok(false)`
    /// if the subscriber left meanwhile.
    #[cold]
    fn block(&self, conn: &mut Conn, entry: u64) -> std::result::Result<bool, Refused> {
        // A timeout that ends past the clock's range (`Duration::MAX`) waits forever.
        let deadline = self
            .config
            .block_timeout
            .and_then(|t| Instant::now().checked_add(t));
        // SAFETY: `conn.delivery` points into our service mapping, alive as long as `self`.
        let ring = unsafe { conn.delivery.delivery() };
        let slot = self.service.sub_slot(conn.slot);
        let mut round = 0u32;
        loop {
            if ring.push(&mut conn.ring, conn.depth, entry, false) != Push::Full {
                return Ok(true);
            }
            if slot.state.load(Ordering::Acquire) != conn.slot_word {
                return Ok(false); // `refresh` will forget it
            }
            if round % 1024 == 1023 {
                // Waiting long: is the subscriber still alive? (rate-limited, off the hot
                // path: it opens a file per slot)
                self.service.sweep_now(&self.last_sweep);
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(Refused::Timeout);
            }
            round = round.saturating_add(1);
            pause(round);
        }
    }
}

/// Why a publish was refused; made into an [`Error`] only on the way out, so that the hot
/// path passes one word instead of a whole `Result<(), Error>`.
#[derive(Debug, Clone, Copy)]
enum Refused {
    /// `Overflow::Fail`: a queue of this depth is full.
    QueueFull(u64),
    /// `Overflow::Block`: the wait timed out.
    Timeout,
}

/// The end of a `send_many` batch: wakes the subscribers that sleep (once for the batch) and
/// does the bookkeeping of `after_publish`.
struct BatchEnd<'a> {
    core: &'a PubCore,
    sent: usize,
}

impl Drop for BatchEnd<'_> {
    fn drop(&mut self) {
        // Never borrowed here: `send_many` holds the state only while it publishes a value.
        let mut st = self.core.state.borrow_mut();
        if self.sent > 0 {
            wake(&self.core.service, &st.conns, st.light);
        }
        self.core.after_publish(&mut st);
    }
}

/// Wakes the subscribers of `conns` that sleep or wait on their descriptor (PROTOCOLS.md §3,
/// publisher side; `signal`).
#[inline]
fn wake(service: &Service, conns: &[Conn], light: bool) {
    event::before_notify(light);
    for conn in conns {
        // SAFETY: the words live in our service mapping, alive as long as the publisher.
        if unsafe { event::notify(&*conn.wake, &*conn.sleeping) } {
            let sent = conn
                .notifier
                .notify(service.dir(), service::incarnation_of(conn.slot_word));
            // SAFETY: as above.
            unsafe { event::rearm_if_failed(&*conn.sleeping, sent) };
        }
    }
}

/// Backs off while waiting for room: spin, then yield, then sleep briefly.
fn pause(round: u32) {
    if round < 256 {
        std::hint::spin_loop();
    } else if round < 512 {
        std::thread::yield_now();
    } else {
        std::thread::sleep(Duration::from_micros(20));
    }
}
