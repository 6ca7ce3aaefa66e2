//! A data segment as a subscriber (or a tool) sees it: chunks read-only, pins writable.

use super::{
    segment_file_name, split, ChunkHeader, DataParams, Geometry, DATA_MAGIC, MAX_CLASSES,
    MAX_SEGMENTS, SEGMENT_TABLE_OFF,
};
use crate::error::{Error, Result};
use crate::regions::Region;
use crate::segment::{self, Access, Mapping};
use crate::service::{Service, LAYOUT_VERSION};
use crate::sync::{AtomicU64, Ordering};

/// Where a mapped data segment's chunks are, kept by a subscriber beside the mapping so the
/// receive path finds a chunk without going through its table of mappings.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ChunkLoc {
    chunks: *const u8,
    stride: usize,
    payload_off: usize,
    count: usize,
    /// Payload bytes per chunk (the message and its tail).
    pub capacity: usize,
}

impl ChunkLoc {
    /// A location with no chunks (every look-up is `None`).
    pub(crate) const EMPTY: ChunkLoc = ChunkLoc {
        chunks: core::ptr::null(),
        stride: 0,
        payload_off: 0,
        count: 0,
        capacity: 0,
    };

    /// Header and payload of chunk `i` of this segment, or `None` if `i` is out of range
    /// (indices come from shared memory and are never trusted).
    ///
    /// # Safety
    /// The mapping this location was taken from must still be mapped while the results are
    /// used.
    #[inline(always)]
    pub(crate) unsafe fn chunk<'a>(self, i: usize) -> Option<(&'a ChunkHeader, *const u8)> {
        if i >= self.count {
            return None;
        }
        // SAFETY: `i < count`, so the chunk lies inside the mapping (kept alive by the
        // caller); its header is 64-aligned and made of atomics, only ever loaded from.
        unsafe {
            let c = self.chunks.add(i * self.stride);
            Some((&*c.cast::<ChunkHeader>(), c.add(self.payload_off)))
        }
    }

    /// Asks the CPU to start loading chunk `i`'s first cache line (no effect if out of range
    /// or on targets without a prefetch hint).
    #[inline(always)]
    pub(crate) fn prefetch(self, i: usize) {
        if i >= self.count {
            return;
        }
        #[cfg(target_arch = "x86_64")]
        // SAFETY: prefetching is a hint that never faults, and `i < count` keeps the address
        // inside the mapping anyway; SSE is part of the x86_64 baseline.
        unsafe {
            use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
            _mm_prefetch::<_MM_HINT_T0>(self.chunks.add(i * self.stride).cast::<i8>());
        }
    }
}

/// What the tools learn of one segment file of a publisher (read from its header, checked).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SegmentFile {
    /// The segment's number.
    pub segment: usize,
    /// Its size class.
    pub class: usize,
    /// Payload bytes per chunk.
    pub capacity: u64,
    /// Bytes per chunk.
    pub stride: u64,
    /// Chunks in it.
    pub chunks: u64,
    /// Bytes of shared memory its file holds (allocated blocks).
    pub allocated: u64,
}

/// Reads one page of `name` in `service`'s directory as a data segment's header, checked
/// for magic, version and incarnation; with its file's length and allocated bytes.
fn read_params(
    service: &Service,
    name: &str,
    access: Access,
) -> Result<Option<(std::fs::File, DataParams, u64)>> {
    let Some(file) = service.dir().open_file(name, access, service.trust())? else {
        return Ok(None);
    };
    let path = &service.dir().join(name);
    let page = segment::page_size();
    let file_len = segment::file_len(&file, path)?;
    if file_len < page as u64 {
        return Err(Error::corrupt(
            path,
            format!("file is only {file_len} bytes"),
        ));
    }
    let head = segment::map(&file, path, 0, page, Access::ReadOnly)?;
    // SAFETY: one page is mapped; `DataParams` is plain integers (all bit patterns valid)
    // and smaller than a page; a volatile read takes one snapshot, validated by the callers.
    let p = unsafe { head.ptr().cast::<DataParams>().read_volatile() };
    if p.magic != DATA_MAGIC {
        return Err(Error::corrupt(path, "not a shmx data segment (bad magic)"));
    }
    if p.version != LAYOUT_VERSION {
        return Err(Error::Version {
            path: path.to_owned(),
            found: p.version,
            expected: LAYOUT_VERSION,
        });
    }
    Ok(Some((file, p, file_len)))
}

/// The segment files of publisher incarnation `inc` that exist now, with what their headers
/// say (for the tools: what the pool costs, class by class); files that are not sound
/// segments of this incarnation are left out.
pub(crate) fn segment_files(service: &Service, inc: u64) -> Vec<SegmentFile> {
    let mut out = Vec::new();
    for k in segment_numbers(service, inc) {
        let name = segment_file_name(inc, k);
        let Ok(Some((file, p, file_len))) = read_params(service, &name, Access::ReadOnly) else {
            continue;
        };
        let sound = p.incarnation == inc
            && p.segment as usize == k
            && p.chunk_stride > 0
            && p.class < MAX_CLASSES as u64
            && p.chunk_count
                .checked_mul(p.chunk_stride)
                .is_some_and(|n| n <= file_len);
        if !sound {
            continue;
        }
        let allocated = rustix::fs::fstat(&file)
            .map(|st| (st.st_blocks as u64).saturating_mul(512))
            .unwrap_or(0);
        out.push(SegmentFile {
            segment: k,
            class: p.class as usize,
            capacity: p.payload_capacity,
            stride: p.chunk_stride,
            chunks: p.chunk_count,
            allocated,
        });
    }
    out
}

/// The segment numbers of incarnation `inc` that have a file in `service`'s directory now,
/// in order (from the directory's names: `data.<inc>` is 0, `data.<inc>.<k>` is `k`).
pub(crate) fn segment_numbers(service: &Service, inc: u64) -> Vec<usize> {
    let base = segment_file_name(inc, 0);
    let mut ks: Vec<usize> = service
        .dir()
        .entries()
        .unwrap_or_default()
        .iter()
        .filter_map(|(name, _)| {
            let name = name.to_str()?;
            if name == base {
                return Some(0);
            }
            let k: usize = name.strip_prefix(&base)?.strip_prefix('.')?.parse().ok()?;
            // Only the canonical spelling (no leading zeroes or signs) of a possible number.
            (k > 0 && k < MAX_SEGMENTS && segment_file_name(inc, k) == name).then_some(k)
        })
        .collect();
    ks.sort_unstable();
    ks
}

/// What segment 0 of publisher incarnation `inc` lists of its pool's classes: payload
/// bytes, chunk bytes, chunks, chunks in use (as the publisher last wrote them; for tools,
/// so only classes with a plausible record are kept).
pub(crate) fn class_records(service: &Service, inc: u64) -> Vec<[u64; 4]> {
    let name = segment_file_name(inc, 0);
    let Ok(Some((file, p, _))) = read_params(service, &name, Access::ReadOnly) else {
        return Vec::new();
    };
    if p.incarnation != inc || p.segment != 0 {
        return Vec::new();
    }
    let path = service.dir().join(&name);
    let Ok(head) = segment::map(&file, &path, 0, segment::page_size(), Access::ReadOnly) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for c in 0..MAX_CLASSES {
        // SAFETY: the class table lies in the mapped first page (8-aligned atomics); loads
        // only, of plain integers that are checked for plausibility below.
        let rec: &super::ClassRecord =
            unsafe { &*head.ptr().add(super::CLASS_TABLE_OFF + 32 * c).cast() };
        let r = [
            rec.capacity.load(Ordering::Relaxed),
            rec.stride.load(Ordering::Relaxed),
            rec.chunks.load(Ordering::Relaxed),
            rec.in_use.load(Ordering::Relaxed),
        ];
        if r[0] == 0 || r[1] < r[0] {
            break;
        }
        out.push(r);
    }
    out
}

pub(crate) struct DataView {
    /// Registered, with its chunks, for the reads of relative pointers (dropped before the
    /// mapping).
    _region: Region,
    map: Mapping,
    pins: Mapping,
    geo: Geometry,
    /// The segment's number.
    segment: usize,
}

impl DataView {
    /// Opens segment `k` of publisher incarnation `incarnation` in `service`'s directory,
    /// checks it belongs to a publisher of the type with `fingerprint` and `size`/`align`
    /// (its chunks hold at least `size` payload bytes: more when the publisher gave them a
    /// tail) and, for `k > 0`, that it is generation `generation` (the one the segment table
    /// lists), and maps it. `Ok(None)` if it is gone.
    pub(crate) fn open(
        service: &Service,
        incarnation: u64,
        k: usize,
        generation: Option<u64>,
        (fingerprint, size, align): (u64, usize, usize),
    ) -> Result<Option<DataView>> {
        let name = segment_file_name(incarnation, k);
        let Some((file, p, file_len)) = read_params(service, &name, Access::ReadWrite)? else {
            return Ok(None);
        };
        let path = &service.dir().join(&name);
        if p.fingerprint != fingerprint || p.incarnation != incarnation {
            return Err(Error::corrupt(
                path,
                "data segment belongs to another publisher or message type",
            ));
        }
        if p.segment as usize != k || generation.is_some_and(|g| g != p.generation) {
            return Err(Error::corrupt(
                path,
                format!(
                    "data segment is number {} generation {}, not the one the pool lists \
                     (number {k}, generation {generation:?})",
                    p.segment, p.generation
                ),
            ));
        }
        let geo = usize::try_from(p.chunk_count)
            .ok()
            .zip(usize::try_from(p.payload_capacity).ok())
            .filter(|&(_, capacity)| capacity >= size)
            .and_then(|(n, capacity)| Geometry::new(n, capacity, align))
            .filter(|g| {
                g.chunk_stride as u64 == p.chunk_stride
                    && g.payload_capacity as u64 == p.payload_capacity
                    && g.payload_off as u64 == p.payload_off
                    && g.pins_off as u64 == p.pins_off
                    && g.chunks_off as u64 == p.chunks_off
                    && g.total_len as u64 == p.total_len
                    && g.total_len as u64 == file_len
            })
            .ok_or_else(|| Error::corrupt(path, "data segment geometry does not add up"))?;
        let map = segment::map(&file, path, 0, geo.total_len, Access::ReadOnly)?;
        let pins = segment::map(
            &file,
            path,
            geo.pins_off as u64,
            geo.pins_len,
            Access::ReadWrite,
        )?;
        Ok(Some(DataView {
            _region: Region::register(map.ptr(), map.len(), geo.chunks()),
            map,
            pins,
            geo,
            segment: k,
        }))
    }

    /// Where the chunks are (valid while this view lives).
    pub(crate) fn loc(&self) -> ChunkLoc {
        ChunkLoc {
            // SAFETY: `chunks_off` is inside the mapping by the validated geometry.
            chunks: unsafe { self.map.ptr().add(self.geo.chunks_off) },
            stride: self.geo.chunk_stride,
            payload_off: self.geo.payload_off,
            count: self.geo.chunk_count,
            capacity: self.geo.payload_capacity,
        }
    }

    /// The segment table (`MAX_SEGMENTS` atomic words) of this view, which must be segment
    /// 0; null otherwise. Valid while the view lives.
    pub(crate) fn segment_table(&self) -> *const AtomicU64 {
        if self.segment != 0 {
            return core::ptr::null();
        }
        // SAFETY: the table lies in the first page of the mapped file (8-aligned atomics).
        unsafe { self.map.ptr().add(SEGMENT_TABLE_OFF).cast() }
    }

    /// Header of chunk index `chunk` (a full index: segment number and place), or `None` if
    /// it is not a chunk of this segment (indices come from shared memory and are never
    /// trusted).
    #[inline]
    pub(crate) fn header(&self, chunk: usize) -> Option<&ChunkHeader> {
        let (k, i) = split(chunk);
        if k != self.segment || i >= self.geo.chunk_count {
            return None;
        }
        // SAFETY: `i` is in range, so the 64-aligned header lies inside the read-only
        // mapping; it is only ever loaded from (atomic loads on read-only memory of at most
        // 8 bytes are fine).
        Some(unsafe {
            &*self
                .map
                .ptr()
                .add(self.geo.chunks_off + i * self.geo.chunk_stride)
                .cast()
        })
    }

    /// Clears pin bits `bits` on every chunk (a dead subscriber's pins).
    pub(crate) fn clear_pins(&self, bits: u64) {
        for i in 0..self.geo.chunk_count {
            // SAFETY: the writable pin mapping holds `chunk_count` 8-aligned atomic words.
            let pin: &AtomicU64 = unsafe { &*self.pins.ptr().add(i * 8).cast() };
            pin.fetch_and(!bits, Ordering::Release);
        }
    }

    /// Pin word of chunk index `chunk` (a full index), or `None` if it is not a chunk of
    /// this segment.
    #[inline]
    pub(crate) fn pin(&self, chunk: usize) -> Option<&AtomicU64> {
        let (k, i) = split(chunk);
        if k != self.segment || i >= self.geo.chunk_count {
            return None;
        }
        // SAFETY: the writable pin mapping holds `chunk_count` 8-aligned atomic words.
        Some(unsafe { &*self.pins.ptr().add(i * 8).cast() })
    }
}
