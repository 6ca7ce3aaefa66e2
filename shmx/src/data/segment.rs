//! A data segment as its publisher sees it: writable.

use super::{
    segment_file_name, ChunkHeader, ClassRecord, DataParams, Geometry, CLASS_TABLE_OFF, DATA_MAGIC,
    MAX_CLASSES, MAX_SEGMENTS, NO_CHUNK, SEGMENT_TABLE_OFF,
};
use crate::error::{Error, Result};
use crate::regions::Region;
use crate::segment::{self, Mapping};
use crate::service::{Service, LAYOUT_VERSION};
use crate::sync::{AtomicU64, Ordering};

/// A data segment as its publisher sees it: writable.
pub(crate) struct DataSegment {
    /// Registered, with its chunks, for the reads of relative pointers (dropped before the
    /// mapping).
    _region: Region,
    map: Mapping,
    geo: Geometry,
    /// The CPU has `prefetchw` (see [`DataSegment::prefetch_chunk`]).
    prefetchw: bool,
}

/// Whether this CPU has the `prefetchw` instruction (CPUID 8000_0001h, ECX bit 8:
/// "3DNowPrefetch", which AMD and Intel since Broadwell report).
fn cpu_has_prefetchw() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        // Leaf 8000_0000h says how far the extended leaves go before we ask for 8000_0001h.
        use std::arch::x86_64::__cpuid;
        __cpuid(0x8000_0000).eax >= 0x8000_0001 && __cpuid(0x8000_0001).ecx & (1 << 8) != 0
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// What a new segment is: whose, which number and generation, which class.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SegmentId {
    pub fingerprint: u64,
    pub incarnation: u64,
    pub segment: usize,
    pub generation: u64,
    pub class: usize,
}

impl DataSegment {
    /// Creates and links segment `id.segment` of publisher incarnation `id.incarnation` in
    /// `service`'s directory, with `geo`'s layout and the topic's mode and group. Its pages
    /// are reserved first (`fallocate`): a full `/dev/shm` is [`Error::OutOfSpace`] here,
    /// never a `SIGBUS` later.
    pub(crate) fn create(service: &Service, geo: Geometry, id: SegmentId) -> Result<DataSegment> {
        let (dir, name) = (
            service.dir(),
            &segment_file_name(id.incarnation, id.segment),
        );
        let params = DataParams {
            magic: DATA_MAGIC,
            version: LAYOUT_VERSION,
            segment: id.segment as u32,
            total_len: geo.total_len as u64,
            fingerprint: id.fingerprint,
            incarnation: id.incarnation,
            generation: id.generation,
            class: id.class as u64,
            chunk_count: geo.chunk_count as u64,
            chunk_stride: geo.chunk_stride as u64,
            payload_off: geo.payload_off as u64,
            payload_capacity: geo.payload_capacity as u64,
            pins_off: geo.pins_off as u64,
            chunks_off: geo.chunks_off as u64,
        };
        let map = segment::create(
            dir,
            name,
            geo.total_len,
            service.mode(),
            service.group(),
            |m| {
                // SAFETY: the fresh mapping is `total_len ≥ page` bytes, page-aligned; the params
                // are plain integers written before anyone else can see the file.
                unsafe { m.ptr().cast::<DataParams>().write(params) };
                for i in 0..geo.chunk_count {
                    // SAFETY: chunk `i` lies inside the mapping by the geometry; its header is
                    // 64-aligned and made of atomics.
                    let header: &ChunkHeader =
                        unsafe { &*m.ptr().add(geo.chunks_off + i * geo.chunk_stride).cast() };
                    header.tag.store(0, Ordering::Relaxed);
                    header.next.store(NO_CHUNK, Ordering::Relaxed);
                }
                Ok(())
            },
        )?
        .ok_or_else(|| {
            Error::corrupt(
                dir.join(name),
                "a data segment of this incarnation and number exists already",
            )
        })?;
        Ok(DataSegment {
            prefetchw: cpu_has_prefetchw(),
            _region: Region::register(map.ptr(), map.len(), geo.chunks()),
            map,
            geo,
        })
    }

    pub(crate) fn geometry(&self) -> &Geometry {
        &self.geo
    }

    /// Segment 0's entry for segment `k < MAX_SEGMENTS` in the segment table (only segment 0
    /// holds the table; the publisher calls this on segment 0 alone).
    pub(crate) fn segment_word(&self, k: usize) -> &AtomicU64 {
        assert!(k < MAX_SEGMENTS);
        // SAFETY: the table lies in the first page (≥ 4096 bytes, asserted at compile time),
        // 8-aligned, made of atomics.
        unsafe { &*self.map.ptr().add(SEGMENT_TABLE_OFF + 8 * k).cast() }
    }

    /// Segment 0's record of class `c < MAX_CLASSES`.
    pub(crate) fn class_record(&self, c: usize) -> &ClassRecord {
        assert!(c < MAX_CLASSES);
        // SAFETY: the class table lies in the first page, 8-aligned, made of atomics.
        unsafe { &*self.map.ptr().add(CLASS_TABLE_OFF + 32 * c).cast() }
    }

    /// Header of chunk `i < chunk_count` of this segment (panics otherwise: the publisher
    /// indexes only with numbers it checked against its own pool).
    #[inline]
    pub(crate) fn header(&self, i: usize) -> &ChunkHeader {
        assert!(i < self.geo.chunk_count);
        // SAFETY: chunk `i` lies inside the mapping by the geometry; its header is 64-aligned
        // (page-aligned area, stride a multiple of 64) and made of atomics.
        unsafe {
            &*self
                .map
                .ptr()
                .add(self.geo.chunks_off + i * self.geo.chunk_stride)
                .cast()
        }
    }

    /// First payload byte of chunk `i < chunk_count` of this segment.
    #[inline]
    pub(crate) fn payload(&self, i: usize) -> *mut u8 {
        assert!(i < self.geo.chunk_count);
        // SAFETY: inside the mapping by the geometry (payload_off + capacity = stride).
        unsafe {
            self.map
                .ptr()
                .add(self.geo.chunks_off + i * self.geo.chunk_stride + self.geo.payload_off)
        }
    }

    /// Asks the CPU to start loading chunk `i`'s first cache line, which the next loan will
    /// write (a hint: no effect if out of range or on targets without one). With `own`, it
    /// asks for the line owned (`prefetchw`, where the CPU has it), so that the writes do
    /// not wait for it; else for a shared copy.
    ///
    /// Which is better depends on the traffic, as measured in A/B runs between two cores:
    /// `send_many` batches of 8-byte messages went from ~26 to ~33 M msg/s with `prefetchw`,
    /// while one `publish` at a time to a subscriber keeping pace fell from ~10 to ~7.5 M msg/s
    /// (the publisher then takes lines the subscriber is still working next to), so the
    /// batch path owns and the single path loads.
    #[inline(always)]
    pub(crate) fn prefetch_chunk(&self, i: usize, own: bool) {
        if i >= self.geo.chunk_count {
            return;
        }
        #[cfg(target_arch = "x86_64")]
        {
            // SAFETY: `i < chunk_count` keeps the address inside the mapping.
            let line = unsafe {
                self.map
                    .ptr()
                    .add(self.geo.chunks_off + i * self.geo.chunk_stride)
            };
            if own && self.prefetchw {
                // SAFETY: `prefetchw` is a hint that never faults and reads or writes nothing
                // architecturally, and this CPU has it (checked at creation).
                // (`_mm_prefetch::<_MM_HINT_ET0>` would emit a plain read prefetch without the
                // `prfchw` target feature.)
                unsafe {
                    std::arch::asm!(
                        "prefetchw [{line}]",
                        line = in(reg) line,
                        options(nostack, preserves_flags, readonly)
                    );
                }
            } else {
                // SAFETY: a prefetch is a hint that never faults; SSE is part of the x86_64
                // baseline.
                unsafe {
                    use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
                    _mm_prefetch::<_MM_HINT_T0>(line.cast::<i8>());
                }
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = own;
    }

    /// Pin word of chunk `i < chunk_count` of this segment.
    #[inline]
    pub(crate) fn pin(&self, i: usize) -> &AtomicU64 {
        assert!(i < self.geo.chunk_count);
        // SAFETY: the pin area holds `chunk_count` 8-aligned atomic words.
        unsafe { &*self.map.ptr().add(self.geo.pins_off + i * 8).cast() }
    }
}
