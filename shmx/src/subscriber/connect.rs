//! How a subscriber follows the topic's publishers: noticing them, mapping their data
//! segments, pinning their history, and letting go of them.

use super::segments::{insert_view, let_go};
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
                    // The publisher may have given segments back.
                    Self::prune_segments(conn, &mut st.views);
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
        let facts = (self.fingerprint, self.size, self.align);
        let Some(view) = DataView::open(&self.service, inc, 0, None, facts)? else {
            return Ok(()); // gone already
        };
        let draining = service::state_of(word) == DRAINING;
        let chunks = view.loc();
        let table = view.segment_table();
        let view_id = insert_view(&mut st.views, view);
        let returns = self.service.returns(p, self.slot);
        // Written before the slot turned ACTIVE, which `word` was read (Acquire) after.
        let id = match self.service.pub_slot(p).id.load(Ordering::Relaxed) {
            0 => inc,
            id => id,
        };
        st.pubs[p] = Some(PubConn {
            slot_word: word,
            id,
            view: view_id,
            chunks,
            table,
            segs: Vec::new(),
            tag: entry_tag(inc, self.inc),
            delivery: self.service.delivery(p, self.slot).loc(),
            returns: returns.loc(),
            ret: returns.producer(),
            last_seq: 0,
            next_chunk: usize::MAX,
            detour: self.copies.is_some(),
            pending: VecDeque::new(),
            draining,
            unshared: self.service.pub_slot(p).overflow.load(Ordering::Relaxed)
                != Overflow::DropOldest.code(),
        });
        if !draining {
            let SubState { pubs, views, .. } = st;
            let conn = pubs[p].as_mut().expect("just connected");
            self.pin_history(p, conn, views);
            self.keep_history_before_queue(p, inc, conn, views);
            conn.detour = self.detour(conn);
        }
        Ok(())
    }

    /// PROTOCOLS.md §4, subscriber side: pins the publisher's history chunks that still carry
    /// the sequence its slot lists (mapping the segments they are in).
    fn pin_history(&self, p: usize, conn: &mut PubConn, views: &mut Vec<Option<ViewSlot>>) {
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
            let Some(id) = self.view_of(conn, views, chunk) else {
                continue; // in no listed segment: a torn or hostile entry
            };
            let Some(Some(vs)) = views.get(id) else {
                continue;
            };
            let (Some(pin), Some(header)) = (vs.view.pin(chunk), vs.view.header(chunk)) else {
                continue; // out of range: a torn or hostile entry
            };
            if seq > last && pins::pin_if_current(pin, &header.seq, self.bit, seq) {
                conn.pending.push_back((chunk, seq));
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
        conn: &mut PubConn,
        views: &mut Vec<Option<ViewSlot>>,
    ) {
        if conn.pending.is_empty() {
            return;
        }
        let entry = self
            .service
            .delivery(p, self.slot)
            .peek(0)
            .filter(|e| e & !CHUNK_MASK == entry_tag(inc, self.inc));
        let Some(entry) = entry else {
            return;
        };
        // Pairs with the publisher's Release store of the slot (`peek` loads it Relaxed):
        // the header read below sees the sample the entry names.
        fence(Ordering::Acquire);
        let chunk = (entry & CHUNK_MASK) as usize;
        let first = self
            .view_of(conn, views, chunk)
            .and_then(|id| views.get(id)?.as_ref()?.view.header(chunk))
            .map(|header| header.seq.load(Ordering::Acquire));
        let Some(first) = first else {
            return;
        };
        while let Some(&(chunk, seq)) = conn.pending.back() {
            if seq < first {
                break;
            }
            conn.pending.pop_back();
            unpin_in(conn, views, chunk, self.bit);
        }
    }

    /// Drops the connection to publisher slot `p`: unpins what was not handed out; the
    /// mappings stay while samples of them are held.
    pub(super) fn disconnect(&self, st: &mut SubState, p: usize) {
        let Some(conn) = st.pubs[p].take() else {
            return;
        };
        for &(chunk, _) in &conn.pending {
            unpin_in(&conn, &st.views, chunk, self.bit);
        }
        for seg in &conn.segs {
            if seg.generation != 0 {
                let_go(&mut st.views, seg.view as usize);
            }
        }
        let_go(&mut st.views, conn.view);
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
            .remove_data_files(service::incarnation_of(word));
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

/// Unpins chunk index `chunk` of `conn` for `bit`, if it is in a segment still mapped.
fn unpin_in(conn: &PubConn, views: &[Option<ViewSlot>], chunk: usize, bit: u64) {
    let Some((id, _, _)) = conn.locate(chunk) else {
        return;
    };
    if let Some(pin) = views
        .get(id as usize)
        .and_then(Option::as_ref)
        .and_then(|vs| vs.view.pin(chunk))
    {
        pins::unpin(pin, bit);
    }
}
