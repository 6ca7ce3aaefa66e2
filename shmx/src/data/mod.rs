//! Data segments: the files that hold a publisher's chunks.
//!
//! A publisher's pool is made of *segments*, each a file of fixed-size chunks of one *size
//! class* (see `pool::classes`): `<root>/<topic>/data.<incarnation>` is segment 0, made with
//! the publisher; segments 1 to [`MAX_SEGMENTS`]` - 1` are `data.<incarnation>.<k>`, added
//! while the pool grows and possibly given back later. Every segment file has the layout
//!
//! ```text
//! page 0         DataParams: magic, version, fingerprint, incarnation, segment number,
//!                generation, class, geometry; in segment 0 also the pool's tables (below)
//! pins_off       one AtomicU64 pin word per chunk (bit per subscriber slot), page-aligned;
//!                the only part subscribers map writable (PROTOCOLS.md §4)
//! chunks_off     chunk_count × chunk_stride bytes, page-aligned; each chunk is
//!                  ChunkHeader (sequence, payload length, next chunk, tag) at +0
//!                  payload at +payload_off (aligned for the message type)
//! ```
//!
//! Segment 0's first page also holds, after its `DataParams`, the *segment table* (a word
//! per segment number: the generation of the segment that has that number now, 0 for none)
//! and the *class table* (per class: payload bytes, chunk stride, chunks reserved, chunks in
//! use; for tools only). A chunk's index, as it travels in a ring entry (24 bits), is the
//! segment number times 2^[`SEG_SHIFT`] plus the chunk's place in that segment.
//!
//! Only the publisher writes the headers and the chunks; subscribers map them read-only, so a
//! subscriber can never corrupt a message. The free lists live in the publisher's private
//! memory (see `pool`), out of any peer's reach. Everything a subscriber reads from a
//! segment's header or the tables is checked before use: a segment number without a live
//! entry, a file whose header disagrees with the table, or a geometry that does not add up is
//! an error, never an access outside a mapping.

mod segment;
mod view;

pub(crate) use segment::{DataSegment, SegmentId};
pub(crate) use view::{class_records, segment_files, segment_numbers, ChunkLoc, DataView};

use crate::regions::Chunks;
use crate::segment as seg;
use crate::sync::AtomicU64;

const DATA_MAGIC: u64 = u64::from_le_bytes(*b"SHMXDAT\0");
pub(crate) use crate::pins::NO_SEQUENCE;
/// [`ChunkHeader::next`] when the publisher had no free chunk to announce.
pub(crate) const NO_CHUNK: u64 = u64::MAX;
/// Bits of a chunk index that number the chunk inside its segment.
pub(crate) const SEG_SHIFT: u32 = 16;
/// Largest chunk count of one segment.
pub(crate) const MAX_SEGMENT_CHUNKS: usize = (1 << SEG_SHIFT) - 1;
/// Segments a publisher may have (chunk indices travel in 24 bits of a ring entry).
pub(crate) const MAX_SEGMENTS: usize = 1 << (24 - SEG_SHIFT);
/// Size classes a publisher may have.
pub(crate) const MAX_CLASSES: usize = 48;

/// Offset of the class table in segment 0's first page.
const CLASS_TABLE_OFF: usize = 256;
/// Offset of the segment table in segment 0's first page.
const SEGMENT_TABLE_OFF: usize = 2048;
const _: () = assert!(core::mem::size_of::<DataParams>() <= CLASS_TABLE_OFF);
const _: () = assert!(CLASS_TABLE_OFF + MAX_CLASSES * 32 <= SEGMENT_TABLE_OFF);
const _: () = assert!(SEGMENT_TABLE_OFF + MAX_SEGMENTS * 8 <= 4096);

/// Splits a chunk index into its segment number and its place in that segment.
#[inline(always)]
pub(crate) fn split(chunk: usize) -> (usize, usize) {
    (chunk >> SEG_SHIFT, chunk & MAX_SEGMENT_CHUNKS)
}

/// The chunk index of chunk `local` of segment `k`.
#[inline(always)]
pub(crate) fn join(k: usize, local: usize) -> u32 {
    ((k << SEG_SHIFT) | local) as u32
}

/// File name of segment `k` of publisher incarnation `inc`.
pub(crate) fn segment_file_name(inc: u64, k: usize) -> String {
    match k {
        0 => format!("data.{inc}"),
        _ => format!("data.{inc}.{k}"),
    }
}

/// Header of a data segment, at offset 0.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
struct DataParams {
    magic: u64,
    version: u32,
    /// The segment's number (0 to `MAX_SEGMENTS - 1`).
    segment: u32,
    total_len: u64,
    fingerprint: u64,
    incarnation: u64,
    chunk_count: u64,
    chunk_stride: u64,
    payload_off: u64,
    payload_capacity: u64,
    pins_off: u64,
    chunks_off: u64,
    /// The generation the segment table lists for this segment while it is live.
    generation: u64,
    /// The size class the chunks belong to.
    class: u64,
}

/// One entry of the class table (segment 0, for tools).
#[repr(C)]
pub(crate) struct ClassRecord {
    /// Payload bytes of a chunk of the class (0: no such class).
    pub capacity: AtomicU64,
    /// Bytes a chunk of the class takes in its segment.
    pub stride: AtomicU64,
    /// Chunks of the class in the pool.
    pub chunks: AtomicU64,
    /// Chunks of the class in use (as of the publisher's last look).
    pub in_use: AtomicU64,
}

/// Header of every chunk.
#[repr(C)]
pub(crate) struct ChunkHeader {
    /// The publisher's sequence number of the sample in this chunk, or [`NO_SEQUENCE`].
    pub seq: AtomicU64,
    /// Payload bytes the publisher wrote.
    pub len: AtomicU64,
    /// The chunk the publisher's next loan will take, as of this publish, or [`NO_CHUNK`]:
    /// a hint, so that a subscriber waiting for the next sample can start loading that
    /// chunk's line while it polls the ring slot, instead of only once the slot names it.
    /// Only ever used as the index of a prefetch, which is bounds-checked.
    pub next: AtomicU64,
    /// A word a request or response carries beside its payload (see `request`: its
    /// routing), in the line the receiver reads anyway; topics leave it 0. Written by the
    /// publisher before it publishes the chunk, read by the receiver, never trusted.
    pub tag: AtomicU64,
}

const HEADER: usize = core::mem::size_of::<ChunkHeader>();

/// The bit of a topic sample's tag word that says it came from another machine, through a
/// bridge (`shmx-zenoh`): bridges do not send such samples out again. The other bits are
/// its publish time (nanoseconds since the Unix epoch, which stay below 2^63 until 2262).
pub(crate) const RELAYED: u64 = 1 << 63;

/// The wall clock in nanoseconds since the Unix epoch (as publish times keep it), never 0
/// (a tag word of 0 means "not stamped").
pub(crate) fn wall_clock_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos().min(u128::from(u64::MAX)) as u64)
        .max(1)
}

/// Where everything is inside a data segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Geometry {
    pub chunk_count: usize,
    pub chunk_stride: usize,
    pub payload_off: usize,
    pub payload_capacity: usize,
    pub pins_off: usize,
    pub pins_len: usize,
    pub chunks_off: usize,
    pub total_len: usize,
}

impl Geometry {
    /// The geometry for `chunk_count` chunks of a payload of `size` bytes aligned to `align`.
    pub(crate) fn new(chunk_count: usize, size: usize, align: usize) -> Option<Geometry> {
        let page = seg::page_size();
        if chunk_count == 0
            || chunk_count > MAX_SEGMENT_CHUNKS
            || !align.is_power_of_two()
            || align > page
        {
            return None;
        }
        let chunk_stride = stride(size, align)?;
        let payload_off = seg::round_up(HEADER, align)?;
        let pins_off = page;
        let pins_len = seg::round_up(chunk_count.checked_mul(8)?, page)?;
        let chunks_off = pins_off.checked_add(pins_len)?;
        let total_len = seg::round_up(
            chunks_off.checked_add(chunk_count.checked_mul(chunk_stride)?)?,
            page,
        )?;
        Some(Geometry {
            chunk_count,
            chunk_stride,
            payload_off,
            payload_capacity: chunk_stride - payload_off,
            pins_off,
            pins_len,
            chunks_off,
            total_len,
        })
    }

    /// Where the chunks are, for the reads of relative pointers (see `regions`).
    pub(crate) fn chunks(&self) -> Chunks {
        Chunks {
            first: self.chunks_off,
            stride: self.chunk_stride,
            payload_off: self.payload_off,
            capacity: self.payload_capacity,
            count: self.chunk_count,
        }
    }
}

/// Where the payload starts in a chunk whose payload is aligned to `align` (a power of two):
/// right after the header, rounded up to `align`. Every chunk of a segment has its payload
/// there (the geometry that `Geometry::new` makes, and that every mapped segment is checked
/// to have).
#[inline(always)]
pub(crate) const fn payload_offset(align: usize) -> usize {
    if align > HEADER {
        align
    } else {
        HEADER
    }
}

/// Bytes one chunk of a payload of `size` bytes aligned to `align` takes (header included).
pub(crate) fn stride(size: usize, align: usize) -> Option<usize> {
    let payload_off = seg::round_up(HEADER, align)?;
    seg::round_up(payload_off.checked_add(size)?, align.max(64))
}

/// Bytes a segment of `chunk_count` chunks of `size`-byte payloads aligned to `align` takes
/// in all (`None` if impossible).
pub(crate) fn segment_bytes(chunk_count: usize, size: usize, align: usize) -> Option<usize> {
    Geometry::new(chunk_count, size, align).map(|g| g.total_len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_offset_is_the_geometry_s() {
        for align in [1, 2, 8, 32, 64, 256, 4096] {
            let g = Geometry::new(4, 100, align).unwrap();
            assert_eq!(super::payload_offset(align), g.payload_off, "align {align}");
        }
    }

    #[test]
    fn geometry_aligns_payloads_and_pages() {
        let g = Geometry::new(10, 24, 8).unwrap();
        assert_eq!(g.payload_off, 32);
        assert_eq!(g.chunk_stride, 64);
        assert_eq!(g.chunks_off % seg::page_size(), 0);
        let g = Geometry::new(3, 1 << 20, 256).unwrap();
        assert_eq!(g.payload_off, 256);
        assert_eq!(g.chunk_stride % 256, 0);
        assert!(g.payload_capacity >= 1 << 20);
        assert!(Geometry::new(0, 8, 8).is_none());
        assert!(Geometry::new(MAX_SEGMENT_CHUNKS + 1, 8, 8).is_none());
        assert!(Geometry::new(MAX_SEGMENT_CHUNKS, usize::MAX / 2, 8).is_none());
    }

    #[test]
    fn chunk_indices_split_into_segment_and_place() {
        assert_eq!(split(join(0, 5) as usize), (0, 5));
        assert_eq!(
            split(join(3, MAX_SEGMENT_CHUNKS) as usize),
            (3, MAX_SEGMENT_CHUNKS)
        );
        assert_eq!(
            split(join(MAX_SEGMENTS - 1, 0) as usize),
            (MAX_SEGMENTS - 1, 0)
        );
        assert!(join(MAX_SEGMENTS - 1, MAX_SEGMENT_CHUNKS) < 1 << 24);
    }
}
