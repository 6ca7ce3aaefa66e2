//! Reclaiming what dead processes left in a topic (DESIGN.md "Liveness and cleanup").
//!
//! A slot whose owner's node is dead (see `node`) is taken back by whoever notices, with the
//! root lock held so that two sweepers never race:
//! - a dead **subscriber**'s slot is freed; its pins in every publisher's data segment and its
//!   bit in every departed publisher's drain mask are cleared. Publishers notice the freed
//!   slot through the generation and take back every chunk it held (queued or taken).
//! - a dead **publisher** is treated as one that left: if live subscribers still have its
//!   samples queued, its slot becomes DRAINING with those subscribers in its drain mask, and
//!   the last of them to drain removes its data segment; otherwise the data segment goes and
//!   the slot is freed at once.

use super::{incarnation_of, state_of, state_word, Service};
use super::{ACTIVE, CLAIMING, DRAINING, FREE};
use crate::data::DataView;
use crate::node;
use crate::root::RootLock;
use crate::sync::Ordering;

impl Service {
    /// With the root lock held: reclaims the slots of dead processes; returns how many.
    pub(crate) fn sweep(&self, _lock: &RootLock) -> usize {
        let mut reclaimed = 0;
        let mut dead_subs = 0u64;
        for s in 0..self.layout().max_subscribers {
            let slot = self.sub_slot(s);
            let word = slot.state.load(Ordering::Acquire);
            let owner = slot.node.load(Ordering::Relaxed);
            if word == FREE || node::is_alive(self.root(), owner) {
                continue;
            }
            dead_subs |= 1 << s;
            slot.sleeping.store(0, Ordering::Relaxed);
            self.dir()
                .remove_file(&crate::signal::socket_name(incarnation_of(word)));
            slot.state.store(FREE, Ordering::Release);
            node::remove_if_dead(self.root(), owner);
            reclaimed += 1;
        }
        let live_subs = self.live_subscribers();
        for p in 0..self.layout().max_publishers {
            let slot = self.pub_slot(p);
            let word = slot.state.load(Ordering::Acquire);
            let inc = incarnation_of(word);
            match state_of(word) {
                FREE => continue,
                DRAINING => {
                    if dead_subs != 0 {
                        self.clear_pins_of(inc, dead_subs);
                    }
                    let left = slot.drain_mask.fetch_and(!dead_subs, Ordering::AcqRel) & !dead_subs;
                    if left & live_subs == 0 {
                        self.free_publisher_slot(p, word);
                        reclaimed += 1;
                    }
                    continue;
                }
                ACTIVE | CLAIMING => {}
                _ => continue,
            }
            if dead_subs != 0 {
                self.clear_pins_of(inc, dead_subs);
            }
            let owner = slot.node.load(Ordering::Relaxed);
            if node::is_alive(self.root(), owner) {
                continue;
            }
            // A dead publisher: its queued samples are still delivered.
            let mut mask = 0u64;
            if state_of(word) == ACTIVE {
                for s in 0..self.layout().max_subscribers {
                    if live_subs & (1 << s) != 0 && !self.delivery(p, s).is_empty() {
                        mask |= 1 << s;
                    }
                }
            }
            if mask == 0 {
                self.free_publisher_slot(p, word);
            } else {
                slot.drain_mask.store(mask, Ordering::Release);
                slot.state
                    .store(state_word(inc, DRAINING), Ordering::Release);
            }
            node::remove_if_dead(self.root(), owner);
            reclaimed += 1;
        }
        if reclaimed > 0 {
            self.bump_generation();
        }
        // Files that processes killed half-way through creating them left behind (every
        // creation happens under the root lock, which we hold).
        node::sweep_root(self.root());
        for (name, _) in self.dir().entries().unwrap_or_default() {
            if name.to_str().is_some_and(|n| n.starts_with(".tmp.")) {
                self.dir().remove_file(&name);
            }
        }
        reclaimed
    }

    /// Takes the root lock and sweeps, if `last` is unset or older than 50 ms (the sweep opens
    /// a file per slot: it is for waits and queries, never the hot path). Never waits for the
    /// lock: if another process holds it, this sweep is skipped (the holder sweeps, or the
    /// next call does). Returns how many slots were reclaimed.
    pub(crate) fn sweep_now(&self, last: &std::cell::Cell<Option<std::time::Instant>>) -> usize {
        let now = std::time::Instant::now();
        if last
            .get()
            .is_some_and(|t| now.duration_since(t) < std::time::Duration::from_millis(50))
        {
            return 0;
        }
        last.set(Some(now));
        match self.root().try_lock(self.trust()) {
            Some(lock) => self.sweep(&lock),
            None => 0,
        }
    }

    /// Subscriber slots in use (bit per slot).
    fn live_subscribers(&self) -> u64 {
        (0..self.layout().max_subscribers)
            .filter(|&s| state_of(self.sub_slot(s).state.load(Ordering::Acquire)) == ACTIVE)
            .fold(0, |m, s| m | 1 << s)
    }

    /// Removes publisher slot `p`'s data segment and frees the slot (if it still holds
    /// `word`).
    fn free_publisher_slot(&self, p: usize, word: u64) {
        self.remove_data_files(incarnation_of(word));
        let _ = self.pub_slot(p).state.compare_exchange(
            word,
            FREE,
            Ordering::AcqRel,
            Ordering::Relaxed,
        );
    }

    /// Clears the pin bits `bits` in every data segment of publisher incarnation `inc`.
    fn clear_pins_of(&self, inc: u64, bits: u64) {
        for k in crate::data::segment_numbers(self, inc) {
            if let Ok(Some(view)) = DataView::open(self, inc, k, None, self.type_facts()) {
                view.clear_pins(bits);
            }
        }
    }
}
