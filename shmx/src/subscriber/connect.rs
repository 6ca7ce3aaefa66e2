//! How a subscriber follows the topic's publishers: noticing them, mapping their data
//! segments, pinning their history, and letting go of them.

use super::{PubConn, SubCore, SubState, ViewSlot};
use crate::config::Overflow;
use crate::data::{DataView, NO_SEQUENCE};
use crate::error::Result;
use crate::pins;
use crate::ring::{entry_tag, CHUNK_MASK};
use crate::service::{self, ACTIVE, DRAINING, FREE};
use crate::sync::{fence, Ordering};
use std::collections::VecDeque;

impl SubCore {
    /// Notices publishers that came or went; maps new ones and pins their history.
    #[inline]
    pub(super) fn refresh(&self, st: &mut SubState) -> Result<()> {
        let gen = self.service.generation();
        if gen == st.gen {
            return Ok(());
        }
        self.refresh_slow(st, gen)
    }

    #[cold]
    fn refresh_slow(&self, st: &mut SubState, gen: u64) -> Result<()> {
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
        let Some(view) =
            DataView::open(&self.service, inc, self.fingerprint, self.size, self.align)?
        else {
            return Ok(()); // gone already
        };
        let mut pending = VecDeque::new();
        let draining = service::state_of(word) == DRAINING;
        if !draining {
            self.pin_history(p, &view, &mut pending);
            self.keep_history_before_queue(p, inc, &view, &mut pending);
        }
        let view_id = match st.views.iter().position(Option::is_none) {
            Some(i) => i,
            None => {
                st.views.push(None);
                st.views.len() - 1
            }
        };
        let chunks = view.loc();
        st.views[view_id] = Some(ViewSlot {
            view,
            held: 0,
            live: true,
        });
        let returns = self.service.returns(p, self.slot);
        st.pubs[p] = Some(PubConn {
            slot_word: word,
            view: view_id,
            chunks,
            tag: entry_tag(inc, self.inc),
            delivery: self.service.delivery(p, self.slot).loc(),
            returns: returns.loc(),
            ret: returns.producer(),
            last_seq: 0,
            next_chunk: usize::MAX,
            detour: !pending.is_empty() || self.copies.is_some(),
            pending,
            draining,
            unshared: self.service.pub_slot(p).overflow.load(Ordering::Relaxed)
                != Overflow::DropOldest.code(),
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

    /// History is what was published before this subscriber was connected: the samples that
    /// are also queued for it (a subscriber that existed before the publisher, and connects on
    /// its first receive) come through the queue, in order and once. Unpins the history
    /// entries from the first queued sample's sequence on. (A queued entry stolen meanwhile
    /// only leaves more history pinned; the queue then skips what history handed out.)
    fn keep_history_before_queue(
        &self,
        p: usize,
        inc: u64,
        view: &DataView,
        pending: &mut VecDeque<(usize, u64)>,
    ) {
        if pending.is_empty() {
            return;
        }
        let first = self
            .service
            .delivery(p, self.slot)
            .peek(0)
            .filter(|e| e & !CHUNK_MASK == entry_tag(inc, self.inc))
            .and_then(|e| {
                // Pairs with the publisher's Release store of the slot (`peek` loads it
                // Relaxed): the header read below sees the sample the entry names.
                fence(Ordering::Acquire);
                view.header((e & CHUNK_MASK) as usize)
            })
            .map(|header| header.seq.load(Ordering::Acquire));
        let Some(first) = first else {
            return;
        };
        while let Some(&(chunk, seq)) = pending.back() {
            if seq < first {
                break;
            }
            pending.pop_back();
            if let Some(pin) = view.pin(chunk) {
                pins::unpin(pin, self.bit);
            }
        }
    }

    /// Drops the connection to publisher slot `p`: unpins what was not handed out; the
    /// mapping stays while samples of it are held.
    pub(super) fn disconnect(&self, st: &mut SubState, p: usize) {
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
    /// publisher's data segment and frees its slot. Needs no lock: the mask and the slot
    /// change by atomic operations, the slot is freed by a CAS on the word it was read as
    /// (a sweeper freeing it meanwhile makes the CAS fail), and data file names carry the
    /// incarnation, so no other publisher's file is ever removed. Returns whether it freed
    /// the slot.
    pub(super) fn release_drain(&self, p: usize, word: u64) -> bool {
        let slot = self.service.pub_slot(p);
        if slot.state.load(Ordering::Acquire) != word || service::state_of(word) != DRAINING {
            return false;
        }
        let before = slot.drain_mask.fetch_and(!self.bit, Ordering::AcqRel);
        if before & self.bit == 0 || before & !self.bit != 0 {
            return false;
        }
        self.service
            .dir()
            .remove_file(&service::data_file_name(service::incarnation_of(word)));
        let freed = slot
            .state
            .compare_exchange(word, FREE, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok();
        if freed {
            self.service.bump_generation();
        }
        freed
    }
}
