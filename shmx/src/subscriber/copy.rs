//! Copy on take ([`SubscriberBuilder::copy_on_take`](crate::SubscriberBuilder::copy_on_take)):
//! each sample is copied into memory private to the subscriber before it is validated, and
//! handed out from the copy, so that a publisher that rewrites its chunk after the take
//! changes nothing the subscriber reads.
//!
//! - Every take of such a subscriber goes past the common case of the receive path
//!   (`take_common`) to `take_from_rest`, and so here ([`SubCore::take_copied`]): each of its
//!   connections has `detour` set, the flag that pinned history samples set too.
//! - The sample is taken in place as bytes (`take_from_rest_in_place::<u8>`): nothing
//!   validated, but its published length (read once from the chunk's header) checked against
//!   the type's size and the chunk's payload capacity. Those bytes are copied, and the chunk
//!   is given back at once (returned to its publisher, or unpinned).
//! - The copy lies in one of at most `max_held` private buffers, each allocated (zeroed) when
//!   first needed and grown when a publisher with a larger payload capacity appears; each is
//!   registered as a one-chunk region (see `regions`), so that the relative pointers of a
//!   copy are re-checked against the copy. They are kept until the subscriber is dropped.
//! - The copy is placed at the same address modulo [`PHASE`] (or the type's alignment, if
//!   larger) as the chunk's payload, so every alignment check (of the message, of the
//!   elements of each relative pointer) gives the copy the verdict it gives the chunk.
//! - Then the copy is validated as a `T`, and handed out (through `hand_out`, as any sample)
//!   with a `Held` whose entry is `COPIED` (no ring's) and whose `chunk` names its buffer,
//!   which goes back to the free list when the sample is dropped (`release_copy`).
//!
//! The zero-copy path pays no new branch and carries no new field for this: `take_common`
//! tests `detour` where it tested for pending history, `release_in` sends a sample here from
//! the test that sent pinned history samples to their own path (entries at or above `COPIED`
//! come from no ring), and a copied sample is described by the fields every sample has. (An
//! earlier version that branched to the copy path at the top of `take_raw` cost ~20 more
//! instructions per publish, take and drop of an 8-byte message, in-process: the sample
//! merged from two paths there no longer stayed in registers.) `drain` copies too: it takes
//! through the same paths.

use super::check::Rejected;
use super::receive::Next;
use super::{Held, PubConn, SubCore, SubState, COPIED, PINNED};
use crate::message::{ShmMessage, ValidationContext};
use crate::pins;
use crate::regions::{Chunks, Region};
use std::alloc::Layout;
use std::cell::RefCell;
use std::ptr::NonNull;

/// A copy lies at its payload's address modulo this (a page), at least.
const PHASE: usize = 4096;

// A copied sample is described by the fields every sample has: a sample is no larger for it
// (the zero-copy path keeps samples in registers, see `take_raw`).
#[cfg(target_pointer_width = "64")]
const _: () = assert!(core::mem::size_of::<Held>() == 48);

/// One private buffer: `layout.size()` bytes at `ptr`, registered as a one-chunk region.
struct Buf {
    /// Unregistered before the memory is freed (see `Drop`).
    region: Option<Region>,
    ptr: NonNull<u8>,
    layout: Layout,
}

impl Buf {
    /// A zeroed buffer of `layout` (of non-zero size), or `None` if there is no memory.
    fn new(layout: Layout) -> Option<Buf> {
        if layout.size() == 0 {
            return None;
        }
        // SAFETY: `layout` has a non-zero size (checked above).
        let ptr = NonNull::new(unsafe { std::alloc::alloc_zeroed(layout) })?;
        let chunks = Chunks::single(layout.size());
        let region = Region::register(ptr.as_ptr(), layout.size(), chunks);
        Some(Buf {
            region: Some(region),
            ptr,
            layout,
        })
    }
}

impl Drop for Buf {
    fn drop(&mut self) {
        drop(self.region.take());
        // SAFETY: `ptr` was allocated with `layout` by `Buf::new` and is freed once, here,
        // after its region was unregistered; no sample points into it any more (samples
        // borrow the subscriber that owns it, and a buffer is replaced only while free).
        unsafe { std::alloc::dealloc(self.ptr.as_ptr(), self.layout) };
    }
}

/// The private buffers of a subscriber that copies on take.
pub(super) struct Copies {
    /// A copy lies at its payload's address modulo this: a power of two, at least [`PHASE`]
    /// and the type's alignment.
    phase: usize,
    state: RefCell<CopyState>,
}

struct CopyState {
    /// `None`: not allocated yet, or its allocation failed.
    bufs: Vec<Option<Buf>>,
    /// Indices of the buffers that no sample lives in.
    free: Vec<u32>,
}

impl Copies {
    fn new(align: usize) -> Copies {
        Copies {
            phase: align
                .max(PHASE)
                .checked_next_power_of_two()
                .unwrap_or(PHASE),
            state: RefCell::new(CopyState {
                bufs: Vec::new(),
                free: Vec::new(),
            }),
        }
    }

    /// A free buffer with room for `room` bytes after an offset below `phase`: its index and
    /// first byte; `None` if there is no memory for it. A new buffer is made when none is
    /// free; a free one too small is replaced.
    fn acquire(&self, room: usize) -> Option<(u32, *mut u8)> {
        let mut st = self.state.borrow_mut();
        let i = match st.free.pop() {
            Some(i) => i,
            None => {
                st.bufs.push(None);
                u32::try_from(st.bufs.len() - 1).ok()?
            }
        };
        let size = self.phase.checked_add(room);
        let slot = &mut st.bufs[i as usize];
        let fits = matches!((&*slot, size), (Some(b), Some(size)) if b.layout.size() >= size);
        if !fits {
            *slot = None; // the smaller one goes first
            *slot = size
                .and_then(|size| Layout::from_size_align(size, self.phase).ok())
                .and_then(Buf::new);
        }
        match slot {
            Some(buf) => Some((i, buf.ptr.as_ptr())),
            None => {
                st.free.push(i);
                None
            }
        }
    }

    /// Buffer `index` is free again.
    fn release(&self, index: u32) {
        self.state.borrow_mut().free.push(index);
    }
}

impl SubCore {
    /// Makes this subscriber copy each sample before it validates it (see
    /// [`SubscriberBuilder::copy_on_take`](crate::SubscriberBuilder::copy_on_take)); no
    /// sample is out (they borrow the subscriber).
    pub(crate) fn copy_on_take(&mut self) {
        self.copies = Some(Copies::new(self.align));
        let st = self.state.get_mut();
        for conn in st.pubs.iter_mut().flatten() {
            conn.detour = true;
        }
    }

    /// Whether takes from `conn` go past the common case: history waits, or this subscriber
    /// copies on take (see `PubConn::detour`).
    #[inline]
    pub(super) fn detour(&self, conn: &PubConn) -> bool {
        !conn.pending.is_empty() || self.copies.is_some()
    }

    /// `take_from_rest` for a subscriber that copies on take: the next sample of publisher
    /// slot `p` that has a valid length, copied into a free buffer of `copies`, its chunk
    /// given back at once, the copy validated as a `T`. The sample is not counted as held
    /// yet (`hand_out` does that, as for a sample in its chunk).
    #[cold]
    #[inline(never)]
    pub(super) fn take_copied<T: ShmMessage>(
        &self,
        st: &mut SubState,
        p: usize,
        first: Option<u64>,
        copies: &Copies,
    ) -> Next {
        // In place, as bytes: nothing validated yet, but the length checked against the type's
        // size and the chunk's capacity (read once from the chunk's header).
        let (held, src) = match self.take_from_rest_in_place::<u8>(st, p, first) {
            Next::Sample(held, src) => (held, src),
            Next::Empty => {
                // Idle: tell the publisher how far we got, as `take_common` does.
                if let Some(Some(conn)) = st.pubs.get(p) {
                    // SAFETY: the ring lives in our service mapping, alive as long as `self`.
                    unsafe { conn.delivery.delivery() }.publish_seen();
                }
                return Next::Empty;
            }
            other => return other,
        };
        let len = held.len;
        let capacity = match st.views.get(held.view as usize) {
            Some(Some(vs)) => vs.view.loc().capacity,
            _ => 0,
        };
        let copied = copies.acquire(len.max(capacity)).map(|(index, buf)| {
            // SAFETY: the buffer holds `phase + max(len, capacity)` bytes, so the copy, at an
            // offset below `phase`, fits; it is free (no sample lives in it). The source is
            // the `len` published bytes of a chunk that is still ours (delivered to us and
            // not given back, or pinned), mapped, its length checked against the chunk's
            // payload capacity, derived from the mapping's pointer; the two never overlap
            // (private memory and a shared mapping). The publisher may write the chunk
            // meanwhile: then the copy holds whatever it read, which is what gets validated.
            unsafe {
                let dst = buf.add(src as usize % copies.phase);
                core::ptr::copy_nonoverlapping(src, dst, len);
                (index, dst)
            }
        });
        // The chunk goes back at once: from here on, only the copy is read.
        self.give_back_now(st, p, &held);
        let Some((index, dst)) = copied else {
            return Next::Invalid(held.seq, Rejected::NoCopy { bytes: len });
        };
        if !T::ALWAYS_VALID {
            let ctx = ValidationContext::new(dst, self.size, len);
            // SAFETY: `dst` lies at the chunk payload's address modulo `phase` (a multiple of
            // `T`'s alignment), so it is aligned for `T` as the payload was; it is followed by
            // the `len ≥ size_of::<T>()` bytes just copied, in the buffer that `dst` is
            // derived from, which `ctx` describes; `validate` only reads them as integers.
            let checked = unsafe { T::validate(dst.cast::<T>(), &ctx) };
            if let Err(e) = checked {
                copies.release(index);
                return Next::Invalid(held.seq, Rejected::Invalid(e));
            }
        }
        // `dst` points to a valid `T` (validated just above, or every bit pattern is one),
        // aligned (see above), derived from the buffer's own pointer; the buffer is private to
        // this subscriber and neither written nor freed until `release_copy` frees it, when
        // the sample is dropped: what `hand_out` relies on. The view stays counted (mapped)
        // until then too, though no chunk of it is held.
        let held = Held {
            entry: COPIED,
            chunk: index,
            ..held
        };
        Next::Sample(held, dst.cast_const())
    }

    /// Gives back the chunk of a sample that was just copied: unpins a history sample,
    /// returns a ring entry.
    fn give_back_now(&self, st: &mut SubState, p: usize, held: &Held) {
        if held.entry == PINNED {
            let view = st.views.get(held.view as usize).and_then(Option::as_ref);
            if let Some(pin) = view.and_then(|vs| vs.view.pin(held.chunk as usize)) {
                pins::unpin(pin, self.bit);
            }
        } else if let Some(Some(conn)) = st.pubs.get_mut(p) {
            self.give_back(conn, p, held.entry, &mut st.unreturned);
        }
    }

    /// Gives back a sample that lives in a private copy: its buffer is free again, and its
    /// view is no longer counted.
    pub(super) fn release_copy(&self, st: &mut SubState, held: &Held) {
        st.held -= 1;
        let view = held.view as usize;
        if let Some(Some(vs)) = st.views.get_mut(view) {
            vs.held -= 1;
            if !vs.live && vs.held == 0 {
                st.views[view] = None;
            }
        }
        if let Some(copies) = &self.copies {
            copies.release(held.chunk);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_are_reused_grown_and_placed_in_phase() {
        let copies = Copies::new(8);
        assert_eq!(copies.phase, PHASE);
        let (a, pa) = copies.acquire(100).unwrap();
        assert_eq!(
            pa as usize % PHASE,
            0,
            "page-aligned, so any offset keeps the phase"
        );
        let (b, _) = copies.acquire(100).unwrap();
        assert_ne!(a, b, "two samples, two buffers");
        copies.release(a);
        let (again, p) = copies.acquire(50).unwrap();
        assert_eq!((again, p), (a, pa), "a free buffer large enough is reused");
        copies.release(again);
        let (grown, _) = copies.acquire(1 << 20).unwrap();
        assert_eq!(grown, a, "the free one, grown");
        let size = copies.state.borrow().bufs[a as usize]
            .as_ref()
            .unwrap()
            .layout
            .size();
        assert!(size >= PHASE + (1 << 20));
        assert_eq!(copies.state.borrow().bufs.len(), 2);
        assert!(copies.acquire(usize::MAX).is_none(), "no memory: refused");
        assert_eq!(Copies::new(1 << 13).phase, 1 << 13, "types aligned to more");
    }

    #[test]
    fn relative_pointers_in_a_buffer_resolve_inside_it() {
        let copies = Copies::new(8);
        let (_, p) = copies.acquire(64).unwrap();
        let at = p as usize + 8;
        assert_eq!(
            crate::regions::resolve(at, 8, 8, 8),
            Some(p.wrapping_add(16).cast_const())
        );
        assert_eq!(crate::regions::resolve(at, PHASE + 64, 8, 1), None);
    }
}
