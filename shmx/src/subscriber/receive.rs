//! The receive path: taking samples from the rings (or pinned history), validating them, and
//! giving their chunks back when they are dropped.
//!
//! The common case (a sample waiting, nothing changed in the topic) reads the ring slot and
//! the chunk, makes no system call and allocates nothing.

use super::check::Rejected;
use super::{Held, PubConn, SubCore, SubState, ViewSlot, COPIED, PINNED};
use crate::data::{split, ChunkHeader};
use crate::error::{Error, Result};
use crate::message::ShmMessage;
use crate::pins;
use crate::ring::CHUNK_MASK;
use crate::sample::Sample;
use crate::sync::Ordering;

/// The chunk a sample's header announces as its publisher's next, as an index to prefetch
/// (read from shared memory: out of range, or [`NO_CHUNK`](crate::data::NO_CHUNK), makes
/// the prefetch a no-op).
#[inline(always)]
fn announced(header: &ChunkHeader) -> usize {
    usize::try_from(header.next.load(Ordering::Relaxed)).unwrap_or(usize::MAX)
}

/// How many queued samples ahead a receive prefetches.
const PREFETCH: u64 = 4;

/// What looking at one publisher's queue found.
pub(super) enum Next {
    Empty,
    Sample(Held, *const u8),
    Invalid(u64, Rejected),
}

/// What the common case of taking from one queue found (see `take_common`).
pub(super) enum Common {
    Taken(Taken),
    Empty,
    /// Not the common case: for `take_from_rest`, with the entry already popped, if any.
    Rest(Option<u64>),
}

/// A sample taken from a queue, as plain values (the parts of its `Held`).
#[derive(Clone, Copy)]
pub(super) struct Taken {
    seq: u64,
    len: usize,
    entry: u64,
    payload: *const u8,
    view: u32,
    origin: u64,
}

impl Taken {
    /// Ring entry `entry` of `conn`, in view `view`, sequence `seq`, `len` payload bytes at
    /// `payload`.
    #[inline(always)]
    fn of(
        conn: &PubConn,
        view: u32,
        (seq, len): (u64, usize),
        entry: u64,
        payload: *const u8,
    ) -> Taken {
        Taken {
            seq,
            len,
            entry,
            payload,
            view,
            origin: conn.id,
        }
    }

    /// Rewrites `held`, a sample of the same connection, as this one, field by field
    /// (`origin` and `pub_slot` stay), and returns the payload.
    #[inline(always)]
    pub(super) fn refill(self, held: &mut Held) -> *const u8 {
        held.seq = self.seq;
        held.len = self.len;
        held.entry = self.entry;
        held.view = self.view;
        held.chunk = (self.entry & CHUNK_MASK) as u32;
        self.payload
    }

    /// The `Held` of this sample of publisher slot `p`.
    #[inline(always)]
    fn held(self, p: usize) -> Held {
        Held {
            seq: self.seq,
            origin: self.origin,
            len: self.len,
            entry: self.entry,
            view: self.view,
            pub_slot: p as u32,
            chunk: (self.entry & CHUNK_MASK) as u32,
        }
    }
}

impl SubCore {
    /// Inlined into `take` (its rare cases are outlined), so that the sample it returns can
    /// stay in registers in the caller: called through a function, the sample comes back
    /// in memory written field by field, and a caller that moves it whole (most do) waits
    /// for store forwarding to fail. In-process A/B, one 8-byte `publish`/`take` at a time
    /// between two pinned threads: 9.4 → 23 M msg/s.
    #[inline(always)]
    pub(super) fn take_raw<'s, T: ShmMessage>(
        &'s self,
        st: &mut SubState,
    ) -> Result<Option<Sample<'s, T>>> {
        if !st.unreturned.is_empty() {
            self.retry_returns(st);
        }
        if st.held >= self.max_held {
            return Err(self.held_limit());
        }
        self.refresh(st)?;
        // One publisher, the common case: no round robin to keep. (An empty poll of one
        // 8-byte topic: 133 → 118 instructions, ~15.5 → ~13 ns; a spinning receiver sees a
        // sample on average half a poll after it lands.)
        if let [p] = st.active[..] {
            return self.take_at::<T>(st, 0, p).unwrap_or(Ok(None));
        }
        let n = st.active.len();
        let mut i = st.next;
        for _ in 0..n {
            if i >= n {
                i = 0;
            }
            if let Some(done) = self.take_at::<T>(st, i, st.active[i]) {
                return done;
            }
            i += 1;
        }
        Ok(None)
    }

    /// [`take_raw`](Self::take_raw) from publisher slot `p`, the `i`-th active one: what
    /// `take_raw` returns, or `None` if its queue is empty (then the next one is tried).
    #[inline(always)]
    fn take_at<'s, T: ShmMessage>(
        &'s self,
        st: &mut SubState,
        i: usize,
        p: usize,
    ) -> Option<Result<Option<Sample<'s, T>>>> {
        let Some(Some(conn)) = st.pubs.get_mut(p) else {
            return None;
        };
        // The sample is built from the values themselves, not from a `Held` put together in
        // memory (see `drain`): going through `take_from` instead costs a take with a sample
        // 152 → 181 instructions.
        let next = match self.take_common::<T>(conn) {
            Common::Taken(t) => {
                st.next = i;
                return Some(Ok(Some(self.hand_out(st, t.held(p), t.payload))));
            }
            Common::Empty => Next::Empty,
            Common::Rest(first) => self.take_from_rest::<T>(st, p, first),
        };
        match next {
            Next::Sample(held, ptr) => {
                st.next = i;
                Some(Ok(Some(self.hand_out(st, held, ptr))))
            }
            Next::Invalid(seq, reason) => Some(Err(self.invalid(seq, reason))),
            Next::Empty => {
                if st.pubs[p].as_ref().is_some_and(|conn| conn.draining) {
                    self.finish_draining(st, p);
                }
                None
            }
        }
    }

    /// Makes the sample that `take_from` accepted, counting it as held.
    #[inline(always)]
    fn hand_out<'s, T>(&'s self, st: &mut SubState, held: Held, ptr: *const u8) -> Sample<'s, T> {
        st.held += 1;
        if let Some(vs) = st.views[held.view as usize].as_mut() {
            vs.held += 1;
        }
        // SAFETY: `take_from` accepted the chunk: in range, holding a valid `T` at `ptr`
        // (aligned by the validated geometry); its view stays mapped while `vs.held > 0`,
        // and the publisher does not reuse the chunk while we hold it (delivered and not
        // returned, or pinned).
        unsafe { Sample::new(self, ptr.cast::<T>(), held) }
    }

    /// The common case of taking ring entry `entry` of `conn`: ours, in range, new and
    /// valid. Records it as the connection's last and returns its sequence, length and
    /// payload; `None` (nothing recorded) sends the entry to `take_from_rest`.
    #[inline(always)]
    fn accept<T: ShmMessage>(&self, conn: &mut PubConn, entry: u64) -> Option<Taken> {
        if entry & !CHUNK_MASK != conn.tag {
            return None;
        }
        let (view, loc, i) = conn.locate((entry & CHUNK_MASK) as usize)?;
        // SAFETY: `loc` belongs to `views[view]`, mapped while `conn` lists it.
        let (header, payload) = unsafe { loc.chunk(i) }?;
        let seq = header.seq.load(Ordering::Acquire);
        if seq <= conn.last_seq {
            return None;
        }
        let len = self.check_at::<T>(header, payload, loc.capacity).ok()?;
        conn.last_seq = seq;
        conn.next_chunk = announced(header);
        Some(Taken::of(conn, view, (seq, len), entry, payload))
    }

    #[cold]
    fn held_limit(&self) -> Error {
        Error::HeldLimit {
            topic: self.service.topic().to_owned(),
            max_held: self.max_held,
        }
    }

    /// A departed publisher whose queue we emptied: let it go.
    #[cold]
    fn finish_draining(&self, st: &mut SubState, p: usize) {
        let conn = st.pubs[p].as_ref().expect("active connections exist");
        // SAFETY: `conn.delivery` points into our service mapping, alive as long as `self`.
        if !conn.pending.is_empty() || !unsafe { conn.delivery.delivery() }.is_empty() {
            return;
        }
        let word = conn.slot_word;
        self.disconnect(st, p);
        // No root lock here: nothing on the take path waits for one (see `release_drain`).
        self.release_drain(p, word);
        st.gen = u64::MAX; // rebuild `active` on the next call
    }

    /// Takes the next valid sample of publisher slot `p`, if any.
    #[inline(always)]
    pub(super) fn take_from<T: ShmMessage>(&self, st: &mut SubState, p: usize) -> Next {
        let Some(Some(conn)) = st.pubs.get_mut(p) else {
            return Next::Empty;
        };
        match self.take_common::<T>(conn) {
            Common::Taken(t) => Next::Sample(t.held(p), t.payload),
            Common::Empty => Next::Empty,
            Common::Rest(first) => self.take_from_rest::<T>(st, p, first),
        }
    }

    /// The common case of taking from `conn`'s queue, inline: the next entry is ours, in
    /// range, new and valid. Anything else is for [`take_from_rest`](Self::take_from_rest).
    #[inline(always)]
    pub(super) fn take_common<T: ShmMessage>(&self, conn: &mut PubConn) -> Common {
        // Pinned history waits, or this subscriber copies on take: not the common case.
        if conn.detour {
            return Common::Rest(None);
        }
        // Start loading the chunk the publisher announced for its next sample before reading
        // the ring slot, on every poll: on the poll that finds the slot written, both lines
        // are then on their way together, instead of the chunk's only after the slot names it
        // (a prefetch issued by an earlier, empty poll fetched the line before the publisher
        // wrote it). In-process ping-pong, two pinned threads, 8 B, alternated: one-way median
        // ~150 → ~125 ns (the guess it replaced, the last chunk's two neighbours prefetched
        // after an empty poll, was right ~57% of the time; the announcement ~100%).
        conn.prefetch(conn.next_chunk);
        // SAFETY: the ring lives in our service mapping, alive as long as `self`.
        let ring = unsafe { conn.delivery.delivery() };
        let entry = if conn.unshared {
            ring.pop_unshared()
        } else {
            ring.pop()
        };
        let Some(entry) = entry else {
            // Idle: tell the publisher how far we got (see `DeliveryRing::publish_seen`).
            ring.publish_seen();
            return Common::Empty;
        };
        match self.accept::<T>(conn, entry) {
            Some(taken) => Common::Taken(taken),
            None => Common::Rest(Some(entry)),
        }
    }

    /// `take_from` past its common case: for a subscriber that copies on take, the next
    /// sample copied (see `copy`); otherwise [`take_from_rest_in_place`](Self::take_from_rest_in_place).
    #[cold]
    #[inline(never)]
    pub(super) fn take_from_rest<T: ShmMessage>(
        &self,
        st: &mut SubState,
        p: usize,
        first: Option<u64>,
    ) -> Next {
        match &self.copies {
            Some(copies) => self.take_copied::<T>(st, p, first, copies),
            None => self.take_from_rest_in_place::<T>(st, p, first),
        }
    }

    /// Pinned history first, then ring entries that are not ours, out of range, already seen
    /// or invalid (starting with `first`, already taken from the ring), until a good one or
    /// none: the sample in its chunk.
    #[inline(always)]
    pub(super) fn take_from_rest_in_place<T: ShmMessage>(
        &self,
        st: &mut SubState,
        p: usize,
        mut first: Option<u64>,
    ) -> Next {
        let SubState {
            pubs,
            unreturned,
            views,
            ..
        } = st;
        let Some(Some(conn)) = pubs.get_mut(p) else {
            return Next::Empty;
        };
        if first.is_none() && !conn.pending.is_empty() {
            return self.take_history::<T>(conn, p, views);
        }
        // SAFETY: the ring lives in our service mapping, alive as long as `self`.
        let ring = unsafe { conn.delivery.delivery() };
        loop {
            let entry = match first.take() {
                Some(e) => Some(e),
                None if conn.unshared => ring.pop_unshared(),
                None => ring.pop(),
            };
            let Some(entry) = entry else {
                return Next::Empty;
            };
            if entry & !CHUNK_MASK != conn.tag {
                continue; // left over from an earlier occupant of one of the two slots
            }
            let chunk = (entry & CHUNK_MASK) as usize;
            if conn.locate(chunk).is_none() {
                // A segment the pool grew, not mapped yet (or given back and made again).
                self.map_segment(conn, views, split(chunk).0);
            }
            let Some((view, loc, i)) = conn.locate(chunk) else {
                // In no segment the publisher lists, or one that could not be mapped: never
                // touch it, but give it back (the publisher takes back only a chunk it gave
                // us, so a forged entry costs nothing, and a chunk of a segment we failed to
                // map is not lost to the pool).
                self.give_back(conn, p, entry, unreturned);
                continue;
            };
            // SAFETY: `loc` belongs to `views[view]`, mapped while `conn` lists it.
            let Some((header, payload)) = (unsafe { loc.chunk(i) }) else {
                continue; // out of range: never touch it, never return it
            };
            let seq = header.seq.load(Ordering::Acquire);
            if seq <= conn.last_seq {
                // Already handed out from history.
                self.give_back(conn, p, entry, unreturned);
                continue;
            }
            conn.last_seq = seq;
            conn.next_chunk = announced(header);
            let len = match self.check_at::<T>(header, payload, loc.capacity) {
                Ok(len) => len,
                Err(reason) => {
                    self.give_back(conn, p, entry, unreturned);
                    return Next::Invalid(seq, reason);
                }
            };
            let taken = Taken::of(conn, view, (seq, len), entry, payload);
            return Next::Sample(taken.held(p), payload);
        }
    }

    /// Hands out the next pinned history sample of `conn`.
    #[cold]
    fn take_history<T: ShmMessage>(
        &self,
        conn: &mut PubConn,
        p: usize,
        views: &[Option<ViewSlot>],
    ) -> Next {
        let (chunk, seq) = conn.pending.pop_front().expect("pending is not empty");
        conn.detour = self.detour(conn);
        conn.last_seq = conn.last_seq.max(seq);
        // Pinned chunks were found in a mapped segment, which stays listed while pinned.
        let Some((view, loc, i)) = conn.locate(chunk) else {
            return Next::Empty;
        };
        // SAFETY: `loc` belongs to `views[view]`, mapped while `conn` lists it.
        let Some((_, payload)) = (unsafe { loc.chunk(i) }) else {
            return Next::Empty; // cannot happen: pinned chunks were range-checked
        };
        match self.check::<T>(loc, i) {
            Ok(len) => Next::Sample(
                Held {
                    seq,
                    origin: conn.id,
                    len,
                    entry: PINNED,
                    view,
                    pub_slot: p as u32,
                    chunk: chunk as u32,
                },
                payload,
            ),
            Err(reason) => {
                let pin = views[view as usize]
                    .as_ref()
                    .and_then(|vs| vs.view.pin(chunk));
                if let Some(pin) = pin {
                    pins::unpin(pin, self.bit);
                }
                Next::Invalid(seq, reason)
            }
        }
    }

    /// Returns a ring entry to its publisher (or keeps it for later if the ring is full).
    #[inline]
    pub(super) fn give_back(
        &self,
        conn: &mut PubConn,
        p: usize,
        entry: u64,
        unreturned: &mut Vec<(usize, u64, u64)>,
    ) {
        if conn.draining {
            return; // nobody takes it back any more
        }
        // SAFETY: the ring lives in our service mapping, alive as long as `self`.
        if !unsafe { conn.returns.returns() }.push(&mut conn.ret, entry) {
            unreturned.push((p, conn.slot_word, entry));
        }
    }

    /// The tag word of a held sample's chunk as its publisher wrote it (untrusted), or
    /// `None` for a sample that lives in no chunk of ours (a private copy). `payload` is the
    /// sample's first byte (`Sample::as_ptr`).
    ///
    /// No lookup: the chunk's header lies [`payload_offset`] bytes before its payload in
    /// every segment this subscriber maps (each is checked to have the geometry of our
    /// alignment when it is mapped).
    ///
    /// [`payload_offset`]: crate::data::payload_offset
    #[inline(always)]
    pub(crate) fn tag_of(&self, held: &Held, payload: *const u8) -> Option<u64> {
        if held.entry == COPIED {
            return None;
        }
        let back = crate::data::payload_offset(self.align);
        // SAFETY: a sample that is not a private copy lies in a chunk of a mapped segment
        // (mapped while the sample is held), at `payload_offset(align)` past the chunk's
        // start, where its 64-aligned header of atomics is (the geometry `DataView::open`
        // checked); `payload` derives from the mapping's pointer, so stepping back stays
        // inside it. The header is only loaded from.
        let header = unsafe { &*payload.sub(back).cast::<crate::data::ChunkHeader>() };
        Some(header.tag.load(Ordering::Relaxed))
    }

    /// Gives a sample's chunk back (called when the sample is dropped).
    #[inline]
    pub(crate) fn release(&self, held: &Held) {
        let mut st = self.state.borrow_mut();
        self.release_in(&mut st, held);
    }

    #[inline(always)]
    pub(super) fn release_in(&self, st: &mut SubState, held: &Held) {
        // Samples that came from no ring (pinned history, private copies) are the rare case:
        // one branch, as the test for a pinned one alone was.
        if held.entry >= COPIED {
            return self.release_unqueued(st, held);
        }
        st.held -= 1;
        let SubState {
            pubs,
            views,
            unreturned,
            ..
        } = st;
        let view = held.view as usize;
        let Some(vs) = views[view].as_mut() else {
            return;
        };
        vs.held -= 1;
        if vs.live {
            let p = held.pub_slot as usize;
            if let Some(conn) = pubs[p].as_mut() {
                self.give_back(conn, p, held.entry, unreturned);
                prefetch_queued(conn);
            }
        } else if vs.held == 0 {
            views[view] = None;
        }
    }

    /// `release_in` of a sample that came from no ring: a pinned history sample is unpinned,
    /// a private copy's buffer is free again.
    #[cold]
    #[inline(never)]
    fn release_unqueued(&self, st: &mut SubState, held: &Held) {
        if held.entry != PINNED {
            return self.release_copy(st, held);
        }
        st.held -= 1;
        let view = held.view as usize;
        let Some(vs) = st.views[view].as_mut() else {
            return;
        };
        vs.held -= 1;
        if let Some(pin) = vs.view.pin(held.chunk as usize) {
            pins::unpin(pin, self.bit);
        }
        if !vs.live && vs.held == 0 {
            st.views[view] = None;
        }
    }

    #[cold]
    fn retry_returns(&self, st: &mut SubState) {
        let SubState {
            pubs, unreturned, ..
        } = st;
        unreturned.retain(|&(p, word, entry)| match pubs[p].as_mut() {
            Some(conn) if conn.slot_word == word && !conn.draining => {
                // SAFETY: the ring lives in our service mapping, alive as long as `self`.
                let ring = unsafe { conn.returns.returns() };
                !ring.push(&mut conn.ret, entry)
            }
            _ => false,
        });
    }
}

/// Starts loading the chunks of the next samples queued from `conn`, so that a stream of
/// samples waits for several cache misses at once, not one after another. Called when a
/// sample is given back, which in a stream comes just before the next take, and in a
/// request/response exchange after the response went out, off the path of the message.
/// In a steady stream the nearer entries were prefetched by the releases before: only the
/// farthest is new. Otherwise (a burst starts, a short queue) it loads those there are.
#[inline(always)]
pub(super) fn prefetch_queued(conn: &PubConn) {
    // SAFETY: the ring lives in our service mapping, alive as long as the subscriber.
    let ring = unsafe { conn.delivery.delivery() };
    let queued = |ahead| ring.peek(ahead).filter(|e| e & !CHUNK_MASK == conn.tag);
    if let Some(far) = queued(PREFETCH - 1) {
        conn.prefetch((far & CHUNK_MASK) as usize);
        return;
    }
    for ahead in 0..PREFETCH - 1 {
        match queued(ahead) {
            Some(next) => conn.prefetch((next & CHUNK_MASK) as usize),
            None => break,
        }
    }
}
