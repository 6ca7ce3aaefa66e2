//! The publish path: noticing subscribers, taking back returned chunks, recording history,
//! pushing into every subscriber's ring under the overflow policy, and waking sleepers.

use super::{Conn, PubCore, PubState};
use crate::config::Overflow;
use crate::error::{Error, Result};
use crate::event;
use crate::ring::{entry_tag, Push, CHUNK_MASK};
use crate::service::{self, ACTIVE};
use crate::sync::{fence, Ordering};
use std::time::{Duration, Instant};

impl PubCore {
    /// Notices subscribers that came or went since the last look (one load when nothing
    /// changed).
    pub(super) fn refresh(&self, st: &mut PubState) {
        let gen = self.service.generation();
        if gen == st.gen {
            return;
        }
        st.gen = gen;
        let layout = self.service.layout();
        for s in 0..layout.max_subscribers {
            let slot = self.service.sub_slot(s);
            let word = slot.state.load(Ordering::Acquire);
            let live = service::state_of(word) == ACTIVE;
            if let Some(conn) = &st.conns[s] {
                if live && conn.slot_word == word {
                    continue;
                }
                st.conns[s] = None;
                st.pool.forget_holder(1 << s);
            }
            if live {
                let wanted = slot.queue_depth.load(Ordering::Relaxed).max(1);
                let depth = wanted.min(self.config.queue_depth as u64);
                st.conns[s] = Some(Conn {
                    slot_word: word,
                    light: slot.forces_barrier.load(Ordering::Relaxed) == 1,
                    tag: entry_tag(self.inc, service::incarnation_of(word)),
                    depth,
                    ring: self.service.delivery(self.slot, s).producer(),
                    ret_tail: self.service.returns(self.slot, s).load_tail(),
                });
            }
        }
        st.active.clear();
        st.active
            .extend((0..layout.max_subscribers).filter(|&s| st.conns[s].is_some()));
        st.light = event::publisher_light_barrier() && st.conns.iter().flatten().all(|c| c.light);
    }

    /// Takes back every chunk that subscribers returned.
    pub(super) fn collect(&self, st: &mut PubState) {
        let PubState {
            pool,
            conns,
            active,
            ..
        } = st;
        for &s in active.iter() {
            let Some(conn) = conns[s].as_mut() else {
                continue;
            };
            let tag = conn.tag;
            let ok = self
                .service
                .returns(self.slot, s)
                .drain(&mut conn.ret_tail, |e| {
                    if e & !CHUNK_MASK == tag {
                        pool.give_back(e & CHUNK_MASK, 1 << s);
                    } else {
                        pool.ignored += 1;
                    }
                });
            if !ok {
                pool.ignored += 1;
            }
        }
    }

    /// Publishes loaned chunk `chunk`.
    pub(crate) fn publish(&self, chunk: u32) -> Result<()> {
        let mut st = self.state.borrow_mut();
        st.loans -= 1;
        let c = chunk as usize;
        self.refresh(&mut st);
        if self.config.overflow == Overflow::Fail {
            let PubState { active, conns, .. } = &mut *st;
            let full = active.iter().find_map(|&s| {
                let conn = conns[s].as_mut().expect("active connections exist");
                let ring = self.service.delivery(self.slot, s);
                (!ring.has_room(&mut conn.ring, conn.depth)).then_some(conn.depth)
            });
            if let Some(depth) = full {
                st.pool.end_loan(chunk);
                return Err(Error::QueueFull {
                    topic: self.service.topic().to_owned(),
                    depth: depth as usize,
                });
            }
        }
        let seq = st.next_seq;
        st.next_seq += 1;
        let header = self.data.header(c);
        header
            .len
            .store(self.payload_size as u64, Ordering::Relaxed);
        header.origin.store(self.inc, Ordering::Relaxed);
        header.seq.store(seq, Ordering::Release);
        let slot = self.service.pub_slot(self.slot);
        if self.config.history > 0 {
            self.record_history(&mut st, chunk, seq);
            // Dekker with a subscriber that registers and then reads the history: either it
            // finds this sample there, or `refresh` below sees the subscriber.
            fence(Ordering::SeqCst);
            self.refresh(&mut st);
        }
        let result = self.deliver(&mut st, chunk);
        slot.published.store(seq, Ordering::Relaxed);
        st.pool.end_loan(chunk);
        result
    }

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
        self.service
            .pub_slot(self.slot)
            .hist_head
            .store(st.hist_written, Ordering::SeqCst);
    }

    fn deliver(&self, st: &mut PubState, chunk: u32) -> Result<()> {
        let steal = self.config.overflow == Overflow::DropOldest;
        let deadline = self.config.block_timeout.map(|t| Instant::now() + t);
        let mut pushed: u64 = 0;
        let mut result = Ok(());
        let active = std::mem::take(&mut st.active);
        for &s in &active {
            let bit = 1u64 << s;
            let ring = self.service.delivery(self.slot, s);
            let mut backoff = 0u32;
            loop {
                let conn = st.conns[s].as_mut().expect("active connections exist");
                let entry = conn.tag | u64::from(chunk);
                match ring.push(&mut conn.ring, conn.depth, entry, steal) {
                    Push::Pushed => {}
                    Push::PushedAfterSteal(old) => {
                        if old & !CHUNK_MASK == conn.tag {
                            st.pool.give_back(old & CHUNK_MASK, bit);
                        }
                    }
                    Push::Full => {
                        // Overflow::Block (Fail checked before; DropOldest never reports Full).
                        self.wake(pushed, st.light);
                        pushed = 0;
                        if deadline.is_some_and(|d| Instant::now() >= d) {
                            result = Err(Error::Timeout {
                                topic: self.service.topic().to_owned(),
                                operation: "publish (Overflow::Block, subscriber queue full)",
                            });
                            break;
                        }
                        let word = self.service.sub_slot(s).state.load(Ordering::Acquire);
                        if word != conn.slot_word {
                            break; // the subscriber left; `refresh` will forget it
                        }
                        backoff = backoff.saturating_add(1);
                        pause(backoff);
                        continue;
                    }
                }
                st.pool.deliver(chunk, bit);
                pushed |= bit;
                break;
            }
            if result.is_err() {
                break;
            }
        }
        st.active = active;
        self.wake(pushed, st.light);
        result
    }

    /// Wakes the subscribers in `mask` that sleep (PROTOCOLS.md §3, publisher side).
    fn wake(&self, mask: u64, light: bool) {
        if mask == 0 {
            return;
        }
        event::before_notify(light);
        let mut m = mask;
        while m != 0 {
            let s = m.trailing_zeros() as usize;
            m &= m - 1;
            let slot = self.service.sub_slot(s);
            event::notify(&slot.wake, &slot.sleeping);
        }
    }
}

/// Backs off while waiting for room: spin, then yield, then sleep briefly.
fn pause(round: u32) {
    if round < 64 {
        std::hint::spin_loop();
    } else if round < 128 {
        std::thread::yield_now();
    } else {
        std::thread::sleep(Duration::from_micros(50));
    }
}
