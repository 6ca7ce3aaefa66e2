//! The segments of a publisher's pool as a subscriber follows them: segment 0 is mapped when
//! the subscriber connects; a segment the pool grew is mapped the first time a sample (or a
//! history entry) names one of its chunks, and let go of when the publisher gives it back.
//!
//! Which segment a chunk index names, and which generation of that segment is current, comes
//! from shared memory: the segment table is read (Acquire) at every use of a segment past the
//! first, and a mapping is used only while the table lists the generation it was made from.
//! A segment number the table does not list, or a file that disagrees with the table, makes
//! the chunk index out of range: never a read outside a mapping.

use super::{PubConn, SubCore, ViewSlot};
use crate::data::{split, ChunkLoc, DataView, MAX_SEGMENTS};
use crate::service;
use crate::sync::Ordering;

/// A mapped segment past the first, as a connection keeps it.
#[derive(Clone, Copy)]
pub(super) struct SegRef {
    /// The generation it was mapped from (0: nothing mapped).
    pub generation: u64,
    /// Its view in `SubState::views`.
    pub view: u32,
    pub loc: ChunkLoc,
}

impl SegRef {
    pub(super) const NONE: SegRef = SegRef {
        generation: 0,
        view: 0,
        loc: ChunkLoc::EMPTY,
    };
}

impl PubConn {
    /// The generation that the publisher's segment table lists for segment `k` now (0:
    /// none, or `k` out of range).
    #[inline(always)]
    pub(super) fn listed(&self, k: usize) -> u64 {
        if k >= MAX_SEGMENTS || self.table.is_null() {
            return 0;
        }
        // SAFETY: `table` points to `MAX_SEGMENTS` atomic words in the mapping of segment 0,
        // which lives as long as this connection (`views[self.view]`); loads only.
        unsafe { &*self.table.add(k) }.load(Ordering::Acquire)
    }

    /// The view, chunk location and place of chunk index `chunk` among the segments this
    /// connection has mapped and that are still current; `None` if it names none of them
    /// (then [`SubCore::map_segment`] may map it).
    #[inline(always)]
    pub(super) fn locate(&self, chunk: usize) -> Option<(u32, ChunkLoc, usize)> {
        let (k, i) = split(chunk);
        if k == 0 {
            return Some((self.view as u32, self.chunks, i));
        }
        let seg = self.segs.get(k)?;
        let listed = self.listed(k);
        (listed != 0 && listed == seg.generation).then_some((seg.view, seg.loc, i))
    }

    /// Starts loading the first line of chunk index `chunk`, if it is in a mapped segment.
    #[inline(always)]
    pub(super) fn prefetch(&self, chunk: usize) {
        let (k, i) = split(chunk);
        if k == 0 {
            self.chunks.prefetch(i);
        } else if let Some(seg) = self.segs.get(k) {
            seg.loc.prefetch(i);
        }
    }
}

/// Puts `view` in the first free place of `views`; returns its index.
pub(super) fn insert_view(views: &mut Vec<Option<ViewSlot>>, view: DataView) -> usize {
    let slot = Some(ViewSlot {
        view,
        held: 0,
        live: true,
    });
    match views.iter().position(Option::is_none) {
        Some(i) => {
            views[i] = slot;
            i
        }
        None => {
            views.push(slot);
            views.len() - 1
        }
    }
}

/// The connection no longer uses view `id`: it stays mapped while samples of it are held.
pub(super) fn let_go(views: &mut [Option<ViewSlot>], id: usize) {
    if let Some(place) = views.get_mut(id) {
        if let Some(vs) = place.as_mut() {
            vs.live = false;
            if vs.held == 0 {
                *place = None;
            }
        }
    }
}

impl SubCore {
    /// Maps segment `k` of `conn`'s publisher as its segment table lists it now; returns
    /// whether it is mapped and current afterwards. A segment that is gone, or whose file
    /// does not match the table, stays unmapped (its chunks are out of range).
    #[cold]
    #[inline(never)]
    pub(super) fn map_segment(
        &self,
        conn: &mut PubConn,
        views: &mut Vec<Option<ViewSlot>>,
        k: usize,
    ) -> bool {
        let generation = conn.listed(k);
        if k == 0 || generation == 0 {
            return false;
        }
        if conn.segs.get(k).is_some_and(|s| s.generation == generation) {
            return true;
        }
        let inc = service::incarnation_of(conn.slot_word);
        let facts = (self.fingerprint, self.size, self.align);
        let Ok(Some(view)) = DataView::open(&self.service, inc, k, Some(generation), facts) else {
            return false;
        };
        let loc = view.loc();
        let id = insert_view(views, view);
        if conn.segs.len() <= k {
            conn.segs.resize(k + 1, SegRef::NONE);
        }
        let old = std::mem::replace(
            &mut conn.segs[k],
            SegRef {
                generation,
                view: id as u32,
                loc,
            },
        );
        if old.generation != 0 {
            let_go(views, old.view as usize);
        }
        true
    }

    /// Lets go of the segments of `conn` that its publisher gave back (the table no longer
    /// lists the generation mapped).
    pub(super) fn prune_segments(conn: &mut PubConn, views: &mut [Option<ViewSlot>]) {
        for k in 1..conn.segs.len() {
            let seg = conn.segs[k];
            if seg.generation != 0 && conn.listed(k) != seg.generation {
                let_go(views, seg.view as usize);
                conn.segs[k] = SegRef::NONE;
            }
        }
    }

    /// The view of the segment that holds chunk index `chunk` of `conn`, mapping it if need
    /// be; `None` if the chunk is in no segment the publisher lists.
    pub(super) fn view_of(
        &self,
        conn: &mut PubConn,
        views: &mut Vec<Option<ViewSlot>>,
        chunk: usize,
    ) -> Option<usize> {
        if let Some((view, _, _)) = conn.locate(chunk) {
            return Some(view as usize);
        }
        if !self.map_segment(conn, views, split(chunk).0) {
            return None;
        }
        conn.locate(chunk).map(|(view, _, _)| view as usize)
    }
}
