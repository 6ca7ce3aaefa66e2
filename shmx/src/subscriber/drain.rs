//! Draining a queue: [`Subscriber::drain`](crate::Subscriber::drain) hands every waiting
//! sample to a callback, moving one sample along its publisher's queue instead of taking
//! each one through the full receive path.

use super::check::Rejected;
use super::receive::{prefetch_queued, Common, Next};
use super::{Held, SubCore, SubState, COPIED};
use crate::error::Result;
use crate::message::ShmMessage;
use crate::sample::Sample;

/// What moving a sample on to its publisher's next one did (see `swap_next`).
enum Step {
    /// The sample now holds the next one.
    Next,
    /// The sample's chunk was given back and nothing is waiting.
    Empty,
    /// The sample's chunk was given back; the next entry was invalid.
    Invalid(u64, Rejected),
}

impl Step {
    /// What the general path found, as a step of the sample at `held` and `ptr`: a sample
    /// found is written there (whole: this is not the common case).
    fn of<T>(next: Next, held: &mut Held, ptr: &mut *const T) -> Step {
        match next {
            Next::Sample(next, payload) => {
                *held = next;
                *ptr = payload.cast();
                Step::Next
            }
            Next::Empty => Step::Empty,
            Next::Invalid(seq, reason) => Step::Invalid(seq, reason),
        }
    }
}

impl SubCore {
    /// Hands every waiting sample, up to `max`, to `f`; returns how many (see
    /// [`Subscriber::drain`](crate::Subscriber::drain)).
    ///
    /// After the first sample, which goes through `take_raw` (refresh, round robin,
    /// history), it stays on that publisher's queue while it has samples: one borrow of the
    /// state per sample, which gives the last sample back and takes the next. The state is
    /// never borrowed while `f` runs, so `f` may use this subscriber too.
    #[inline]
    pub(crate) fn drain<T: ShmMessage>(
        &self,
        max: usize,
        f: &mut impl FnMut(&Sample<'_, T>),
    ) -> Result<usize> {
        let mut done = 0;
        while done < max {
            let first = {
                let mut st = self.state.borrow_mut();
                self.take_raw::<T>(&mut st)?
            };
            let Some(mut sample) = first else { break };
            let p = sample.held().pub_slot as usize;
            loop {
                // If `f` panics, the sample's own `Drop` gives it back.
                f(&sample);
                done += 1;
                if done == max {
                    return Ok(done); // dropping the sample gives it back
                }
                let mut st = self.state.borrow_mut();
                // The sample moves on in place: its fields are rewritten one by one, never
                // copied whole (a whole copy of fields just written one by one cannot take
                // them from the store buffer, and stalled this loop for a third of its time).
                // SAFETY: `swap_next` rewrites them only with a sample it accepted, as
                // `take_from` does (see `hand_out`), counted as held.
                let (held, ptr) = unsafe { sample.parts_mut() };
                match self.swap_next::<T>(&mut st, held, ptr, p) {
                    Step::Next => {}
                    Step::Empty => {
                        drop(st);
                        let _given_back = sample.into_held();
                        break;
                    }
                    Step::Invalid(seq, reason) => {
                        drop(st);
                        let _given_back = sample.into_held();
                        return Err(self.invalid(seq, reason));
                    }
                }
            }
        }
        Ok(done)
    }

    /// For `drain`: gives back `held` (a sample of publisher slot `p`) and takes that
    /// publisher's next sample, counted as held (see `hand_out`). In the common case (a
    /// queued sample of a live connection, nothing changed in the topic) the two cancel out
    /// in the counts and share one look-up of the connection.
    ///
    /// On [`Step::Next`], `held` and `ptr` describe the next sample; otherwise `held` was
    /// given back and must not be used again.
    #[inline(always)]
    fn swap_next<T: ShmMessage>(
        &self,
        st: &mut SubState,
        held: &mut Held,
        ptr: &mut *const T,
        p: usize,
    ) -> Step {
        if held.entry < COPIED // a ring entry: neither pinned nor copied
            && held.pub_slot as usize == p
            && st.unreturned.is_empty()
            && self.service.generation() == st.gen
        {
            let live = st
                .views
                .get(held.view as usize)
                .and_then(Option::as_ref)
                .is_some_and(|vs| vs.live);
            if let Some(Some(conn)) = st.pubs.get_mut(p) {
                // SAFETY: the ring lives in our service mapping, alive as long as `self`.
                let returns = unsafe { conn.returns.returns() };
                if !conn.draining && live && returns.push(&mut conn.ret, held.entry) {
                    prefetch_queued(conn);
                    let view = held.view as usize;
                    return match self.take_queued::<T>(st, p, held, ptr) {
                        // One out, one in, of another segment of the pool: the counts move.
                        Step::Next if held.view as usize != view => {
                            uncount(&mut st.views, view);
                            if let Some(Some(vs)) = st.views.get_mut(held.view as usize) {
                                vs.held += 1;
                            }
                            Step::Next
                        }
                        Step::Next => Step::Next, // one out, one in
                        other => {
                            // Only given back: as `release_in` counts it.
                            st.held -= 1;
                            uncount(&mut st.views, view);
                            other
                        }
                    };
                }
            }
        }
        self.release_in(st, held);
        let next = self.take_next::<T>(st, p);
        if let Next::Sample(next, _) = &next {
            st.held += 1;
            if let Some(Some(vs)) = st.views.get_mut(next.view as usize) {
                vs.held += 1;
            }
        }
        Step::of(next, held, ptr)
    }

    /// `take_from` for `swap_next`: writes the sample it takes into `held` and `ptr` field
    /// by field (on [`Step::Next`]; they are left alone otherwise).
    #[inline(always)]
    fn take_queued<T: ShmMessage>(
        &self,
        st: &mut SubState,
        p: usize,
        held: &mut Held,
        ptr: &mut *const T,
    ) -> Step {
        let first = match st.pubs.get_mut(p) {
            Some(Some(conn)) => match self.take_common::<T>(conn) {
                Common::Taken(t) => {
                    *ptr = t.refill(held).cast();
                    return Step::Next;
                }
                Common::Empty => return Step::Empty,
                Common::Rest(first) => first,
            },
            _ => None,
        };
        self.rest_into(st, p, first, held, ptr)
    }

    /// `take_from_rest` for `take_queued`.
    #[cold]
    #[inline(never)]
    fn rest_into<T: ShmMessage>(
        &self,
        st: &mut SubState,
        p: usize,
        first: Option<u64>,
        held: &mut Held,
        ptr: &mut *const T,
    ) -> Step {
        Step::of(self.take_from_rest::<T>(st, p, first), held, ptr)
    }

    /// The next sample of publisher slot `p` for `drain`, or `Empty` whenever anything
    /// needs the general path (the topic changed, returns are pending, the held limit).
    #[inline(always)]
    fn take_next<T: ShmMessage>(&self, st: &mut SubState, p: usize) -> Next {
        if self.service.generation() != st.gen
            || !st.unreturned.is_empty()
            || st.held >= self.max_held
            || st.pubs[p].is_none()
        {
            return Next::Empty;
        }
        self.take_from::<T>(st, p)
    }
}

/// One sample of view `view` less is out: a view the connection let go of meanwhile (the
/// taking of the next sample can map a segment again, see `segments`) goes with its last.
fn uncount(views: &mut [Option<super::ViewSlot>], view: usize) {
    if let Some(place) = views.get_mut(view) {
        if let Some(vs) = place.as_mut() {
            vs.held -= 1;
            if !vs.live && vs.held == 0 {
                *place = None;
            }
        }
    }
}
