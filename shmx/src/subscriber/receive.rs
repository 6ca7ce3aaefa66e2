//! The receive path: taking samples from the rings (or pinned history), validating them, and
//! giving their chunks back when they are dropped.

use super::{Held, SubCore, SubState};
use crate::data::DataView;
use crate::error::{Error, Result};
use crate::message::{ShmMessage, ValidationContext};
use crate::pins;
use crate::ring::CHUNK_MASK;
use crate::sample::Sample;
use crate::segment::RootLock;
use crate::service;
use crate::sync::Ordering;

impl SubCore {
    pub(super) fn take_raw<'s, T: ShmMessage>(
        &'s self,
        st: &mut SubState,
    ) -> Result<Option<Sample<'s, T>>> {
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
                if !returns.push(&mut conn.ret, entry) {
                    unreturned.push((p, conn.slot_word, entry));
                }
                continue;
            }
            conn.last_seq = seq;
            if let Err(reason) = self.check::<T>(view, chunk) {
                if !returns.push(&mut conn.ret, entry) {
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
                    if !conn.draining && !ring.push(&mut conn.ret, entry) {
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
                .push(&mut conn.ret, entry),
            _ => false,
        });
    }
}
