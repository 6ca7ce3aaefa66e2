//! The memory this process reads samples from, chunk by chunk: mapped data segments and the
//! private copies of [`copy_on_take`](crate::SubscriberBuilder::copy_on_take).
//!
//! A relative pointer is checked when its sample is taken, but its bytes may stay in memory
//! that the publisher can still write: a hostile publisher could rewrite an offset after the
//! check. So each read of a relative pointer checks again, here: it finds the registered
//! region that holds the pointer *itself*, the chunk of that region that holds it, and accepts
//! its elements only if they lie, aligned, inside that chunk's payload. Otherwise the read is
//! empty. Whatever a peer writes, a relative pointer never leads out of its own sample's chunk
//! (into another chunk, another topic's segment or unmapped memory).
//!
//! The pointer handed back is derived from the region's base pointer (the `mmap` or allocation
//! pointer, whose provenance covers the whole region), never from the field's reference or an
//! integer.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::RwLock;

/// Where the chunks of a region are: `count` chunks of `stride` bytes from byte `first`, each
/// with `capacity` payload bytes from byte `payload_off` of the chunk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Chunks {
    pub first: usize,
    pub stride: usize,
    pub payload_off: usize,
    pub capacity: usize,
    pub count: usize,
}

impl Chunks {
    /// A region that is one chunk, all payload (a private copy).
    pub(crate) fn single(len: usize) -> Chunks {
        Chunks {
            first: 0,
            stride: len,
            payload_off: 0,
            capacity: len,
            count: 1,
        }
    }

    /// Whether the chunks lie inside `len` bytes (with a non-zero stride).
    fn fit(&self, len: usize) -> bool {
        let end = self
            .count
            .checked_mul(self.stride)
            .and_then(|n| n.checked_add(self.first));
        self.stride > 0
            && self.payload_off.checked_add(self.capacity) <= Some(self.stride)
            && end.is_some_and(|end| end <= len)
    }
}

/// The base pointer of a region, kept with its provenance.
#[derive(Clone, Copy)]
struct Base(*const u8);

// SAFETY: a `Base` is only an address with its provenance; the registry never reads through
// it. Readers that get a pointer derived from it hold a reference into the same region, which
// keeps it alive (see `resolve`).
unsafe impl Send for Base {}
// SAFETY: as for `Send`: shared `Base`s are only copied.
unsafe impl Sync for Base {}

struct Entry {
    id: u64,
    base: Base,
    addr: usize,
    len: usize,
    chunks: Chunks,
}

static REGIONS: RwLock<Vec<Entry>> = RwLock::new(Vec::new());
static NEXT_ID: AtomicU64 = AtomicU64::new(0);

/// A registered region; unregistered when dropped (so it must be dropped before its memory
/// goes).
#[derive(Debug)]
pub(crate) struct Region {
    id: u64,
}

impl Region {
    /// Registers the `len` bytes at `base`, laid out as `chunks`, which stay mapped (and
    /// allocated) while the region lives. Chunks that do not fit in `len` bytes register
    /// nothing readable (every read through the region is then empty).
    pub(crate) fn register(base: *const u8, len: usize, chunks: Chunks) -> Region {
        let chunks = if chunks.fit(len) {
            chunks
        } else {
            Chunks {
                first: 0,
                stride: 1,
                payload_off: 0,
                capacity: 0,
                count: 0,
            }
        };
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        REGIONS
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push(Entry {
                id,
                base: Base(base),
                addr: base as usize,
                len,
                chunks,
            });
        Region { id }
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        let mut regions = REGIONS.write().unwrap_or_else(|e| e.into_inner());
        if let Some(i) = regions.iter().position(|r| r.id == self.id) {
            regions.swap_remove(i);
        }
    }
}

/// The elements of a relative pointer at address `field`, `offset` bytes after it and `bytes`
/// long: a pointer to them derived from the base pointer of the region that holds `field`, if
/// they lie, with their start aligned to `align` (a power of two), inside the payload of the
/// chunk that holds `field` (which must lie in that payload too); `None` otherwise.
///
/// The pointer is valid for reads of `bytes` bytes for as long as the memory at `field` is:
/// both lie in one region, registered while its memory lives.
#[inline]
pub(crate) fn resolve(
    field: usize,
    offset: usize,
    bytes: usize,
    align: usize,
) -> Option<*const u8> {
    let regions = REGIONS.read().unwrap_or_else(|e| e.into_inner());
    let r = regions
        .iter()
        .find(|r| field.wrapping_sub(r.addr) < r.len)?;
    let c = r.chunks;
    let at = field - r.addr;
    let k = at.checked_sub(c.first)? / c.stride;
    if k >= c.count {
        return None;
    }
    // Inside the region: `fit` checked `first + count * stride ≤ len`.
    let payload = c.first + k * c.stride + c.payload_off;
    let payload_end = payload + c.capacity;
    if at < payload || at >= payload_end {
        return None; // the field is not in a payload (a chunk header, alignment padding)
    }
    let start = at.checked_add(offset)?;
    let end = start.checked_add(bytes)?;
    if end > payload_end || (r.addr + start) & (align - 1) != 0 {
        return None;
    }
    // `start < end ≤ payload_end ≤ len` (or `start = end` for no bytes): the result stays
    // inside the region, derived from its base pointer.
    Some(r.base.0.wrapping_add(start))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 4 chunks of 64 bytes after a 32-byte header; each chunk: 16 header bytes, 48 payload.
    #[repr(C, align(64))]
    struct Segment([u8; 32 + 4 * 64]);

    const CHUNKS: Chunks = Chunks {
        first: 32,
        stride: 64,
        payload_off: 16,
        capacity: 48,
        count: 4,
    };

    fn payload(seg: &Segment, k: usize) -> usize {
        seg.0.as_ptr() as usize + 32 + k * 64 + 16
    }

    #[test]
    fn reads_resolve_only_inside_the_chunk_that_holds_the_field() {
        let seg = Segment([0; 32 + 4 * 64]);
        let base = seg.0.as_ptr();
        let p1 = payload(&seg, 1);
        assert_eq!(resolve(p1, 8, 8, 8), None, "not registered yet");
        let region = Region::register(base, seg.0.len(), CHUNKS);
        let got = resolve(p1, 8, 8, 8).expect("inside chunk 1's payload");
        assert_eq!(got as usize, p1 + 8);
        assert_eq!(
            got,
            base.wrapping_add(p1 + 8 - base as usize),
            "from the base"
        );
        assert!(resolve(p1, 40, 8, 8).is_some(), "its last 8 bytes");
        assert_eq!(resolve(p1, 41, 8, 1), None, "one past the payload's end");
        assert_eq!(resolve(p1, 64, 8, 8), None, "the next chunk's payload");
        assert_eq!(resolve(p1, 9, 2, 2), None, "misaligned");
        assert_eq!(resolve(p1, usize::MAX, 1, 1), None, "overflows");
        assert_eq!(resolve(p1 + 4, 0, usize::MAX, 1), None, "overflows");
        assert_eq!(resolve(p1 - 8, 8, 8, 8), None, "a field in a chunk header");
        assert_eq!(
            resolve(base as usize + 8, 40, 8, 8),
            None,
            "before the chunks"
        );
        let p3 = payload(&seg, 3);
        assert!(resolve(p3, 0, 48, 8).is_some(), "the last chunk, whole");
        drop(region);
        assert_eq!(resolve(p1, 8, 8, 8), None, "unregistered");
    }

    #[test]
    fn a_field_in_one_region_never_reaches_into_another() {
        let a = Segment([0; 32 + 4 * 64]);
        let b = Segment([0; 32 + 4 * 64]);
        let _ra = Region::register(a.0.as_ptr(), a.0.len(), CHUNKS);
        let _rb = Region::register(b.0.as_ptr(), b.0.len(), CHUNKS);
        let (pa, pb) = (payload(&a, 0), payload(&b, 0));
        // Whichever way round the two lie, an offset from `a` to `b`'s payload is refused.
        if pb > pa {
            assert_eq!(resolve(pa, pb - pa, 8, 8), None);
        } else {
            assert_eq!(resolve(pb, pa - pb, 8, 8), None);
        }
        assert!(resolve(pb, 0, 8, 8).is_some());
    }

    #[test]
    fn a_single_chunk_region_is_all_payload_and_bad_geometry_reads_nothing() {
        let buf = Segment([0; 32 + 4 * 64]);
        let p = buf.0.as_ptr() as usize;
        let one = Region::register(buf.0.as_ptr(), 64, Chunks::single(64));
        assert!(resolve(p, 0, 64, 64).is_some());
        assert_eq!(resolve(p, 1, 64, 1), None);
        assert_eq!(resolve(p + 64, 0, 1, 1), None, "past the region");
        drop(one);
        let chunks = Chunks {
            count: 5, // 32 + 5 * 64 > the segment
            ..CHUNKS
        };
        assert!(!chunks.fit(buf.0.len()));
        assert!(CHUNKS.fit(buf.0.len()));
    }
}
