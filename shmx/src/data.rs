//! Data segments: one file per publisher, `<root>/<topic>/data.<incarnation>`, holding its
//! slab of fixed-size chunks.
//!
//! ```text
//! page 0         DataParams: magic, version, fingerprint, incarnation, geometry
//! pins_off       one AtomicU64 pin word per chunk (bit per subscriber slot), page-aligned;
//!                the only part subscribers map writable (PROTOCOLS.md §4)
//! chunks_off     chunk_count × chunk_stride bytes, page-aligned; each chunk is
//!                  ChunkHeader (sequence, payload length, next chunk, origin) at +0
//!                  payload at +payload_off (aligned for the message type)
//! ```
//! Only the publisher writes the header and the chunks; subscribers map them read-only, so a
//! subscriber can never corrupt a message. The free lists live in the publisher's private
//! memory (see `pool`), out of any peer's reach.

use crate::error::{Error, Result};
use crate::regions::{Chunks, Region};
use crate::segment::{self, Access, Mapping};
use crate::service::{data_file_name, Service, LAYOUT_VERSION};
use crate::sync::{AtomicU64, Ordering};

const DATA_MAGIC: u64 = u64::from_le_bytes(*b"SHMXDAT\0");
pub(crate) use crate::pins::NO_SEQUENCE;
/// [`ChunkHeader::next`] when the publisher had no free chunk to announce.
pub(crate) const NO_CHUNK: u64 = u64::MAX;
/// Largest chunk count: chunk indices travel in 24 bits of a ring entry.
pub(crate) const MAX_CHUNKS: usize = (1 << 24) - 1;

/// Header of a data segment, at offset 0.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
struct DataParams {
    magic: u64,
    version: u32,
    _reserved: u32,
    total_len: u64,
    fingerprint: u64,
    incarnation: u64,
    chunk_count: u64,
    chunk_stride: u64,
    payload_off: u64,
    payload_capacity: u64,
    pins_off: u64,
    chunks_off: u64,
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
    /// The publishing incarnation.
    pub origin: AtomicU64,
}

const HEADER: usize = core::mem::size_of::<ChunkHeader>();

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
        let page = segment::page_size();
        if chunk_count == 0 || chunk_count > MAX_CHUNKS || !align.is_power_of_two() || align > page
        {
            return None;
        }
        let payload_off = segment::round_up(HEADER, align)?;
        let chunk_stride = segment::round_up(payload_off.checked_add(size)?, align.max(64))?;
        let pins_off = page;
        let pins_len = segment::round_up(chunk_count.checked_mul(8)?, page)?;
        let chunks_off = pins_off.checked_add(pins_len)?;
        let total_len = segment::round_up(
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

impl DataSegment {
    /// Creates and links the data segment of publisher incarnation `incarnation` in
    /// `service`'s directory, with `geo`'s layout and the topic's mode and group.
    pub(crate) fn create(
        service: &Service,
        geo: Geometry,
        fingerprint: u64,
        incarnation: u64,
    ) -> Result<DataSegment> {
        let (dir, name) = (service.dir(), &data_file_name(incarnation));
        let params = DataParams {
            magic: DATA_MAGIC,
            version: LAYOUT_VERSION,
            _reserved: 0,
            total_len: geo.total_len as u64,
            fingerprint,
            incarnation,
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
                    header.origin.store(incarnation, Ordering::Relaxed);
                    header.next.store(NO_CHUNK, Ordering::Relaxed);
                }
                Ok(())
            },
        )?
        .ok_or_else(|| {
            Error::corrupt(
                dir.join(name),
                "a data segment of this incarnation exists already",
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

    /// Header of chunk `i < chunk_count` (panics otherwise: the publisher indexes only with
    /// numbers it checked against its own pool).
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

    /// First payload byte of chunk `i < chunk_count`.
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

    /// Pin word of chunk `i < chunk_count`.
    #[inline]
    pub(crate) fn pin(&self, i: usize) -> &AtomicU64 {
        assert!(i < self.geo.chunk_count);
        // SAFETY: the pin area holds `chunk_count` 8-aligned atomic words.
        unsafe { &*self.map.ptr().add(self.geo.pins_off + i * 8).cast() }
    }
}

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
    /// Header and payload of chunk `i`, or `None` if `i` is out of range (indices come from
    /// shared memory and are never trusted).
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
}

impl ChunkLoc {
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

/// A data segment as a subscriber sees it: chunks read-only, pins writable.
/// The chunk stride of publisher incarnation `incarnation`'s data segment, read from its
/// header (for the tools: what one chunk costs); `None` if it is gone, unreadable or not a
/// data segment of this layout and incarnation.
pub(crate) fn chunk_stride(service: &Service, incarnation: u64) -> Option<u64> {
    let name = data_file_name(incarnation);
    let file = service
        .dir()
        .open_file(&name, Access::ReadOnly, service.trust())
        .ok()??;
    let path = &service.dir().join(&name);
    let page = segment::page_size();
    let file_len = segment::file_len(&file, path).ok()?;
    if file_len < page as u64 {
        return None;
    }
    let head = segment::map(&file, path, 0, page, Access::ReadOnly).ok()?;
    // SAFETY: one page is mapped; `DataParams` is plain integers (all bit patterns valid)
    // and smaller than a page; a volatile read takes one snapshot, checked below.
    let p = unsafe { head.ptr().cast::<DataParams>().read_volatile() };
    let sound = p.magic == DATA_MAGIC
        && p.version == LAYOUT_VERSION
        && p.incarnation == incarnation
        && p.chunk_stride > 0
        && p.chunk_stride <= file_len;
    sound.then_some(p.chunk_stride)
}

pub(crate) struct DataView {
    /// Registered, with its chunks, for the reads of relative pointers (dropped before the
    /// mapping).
    _region: Region,
    map: Mapping,
    pins: Mapping,
    geo: Geometry,
}

impl DataView {
    /// Opens the data segment of publisher incarnation `incarnation` in `service`'s
    /// directory, checks it belongs to a publisher of the type with `fingerprint` and
    /// `size`/`align` (its chunks hold at least `size` payload bytes: more when the publisher
    /// gave them a tail), and maps it. `Ok(None)` if it is gone.
    pub(crate) fn open(
        service: &Service,
        incarnation: u64,
        fingerprint: u64,
        size: usize,
        align: usize,
    ) -> Result<Option<DataView>> {
        let name = data_file_name(incarnation);
        let Some(file) = service
            .dir()
            .open_file(&name, Access::ReadWrite, service.trust())?
        else {
            return Ok(None);
        };
        let path = &service.dir().join(&name);
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
        // and smaller than a page; a volatile read takes one snapshot, validated below.
        let p = unsafe { head.ptr().cast::<DataParams>().read_volatile() };
        drop(head);
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
        if p.fingerprint != fingerprint || p.incarnation != incarnation {
            return Err(Error::corrupt(
                path,
                "data segment belongs to another publisher or message type",
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

    /// Header of chunk `i`, or `None` if `i` is out of range (indices come from shared
    /// memory and are never trusted).
    #[inline]
    pub(crate) fn header(&self, i: usize) -> Option<&ChunkHeader> {
        if i >= self.geo.chunk_count {
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
            if let Some(pin) = self.pin(i) {
                pin.fetch_and(!bits, Ordering::Release);
            }
        }
    }

    /// Pin word of chunk `i`, or `None` if out of range.
    #[inline]
    pub(crate) fn pin(&self, i: usize) -> Option<&AtomicU64> {
        if i >= self.geo.chunk_count {
            return None;
        }
        // SAFETY: the writable pin mapping holds `chunk_count` 8-aligned atomic words.
        Some(unsafe { &*self.pins.ptr().add(i * 8).cast() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn geometry_aligns_payloads_and_pages() {
        let g = Geometry::new(10, 24, 8).unwrap();
        assert_eq!(g.payload_off, 32);
        assert_eq!(g.chunk_stride, 64);
        assert_eq!(g.chunks_off % segment::page_size(), 0);
        let g = Geometry::new(3, 1 << 20, 256).unwrap();
        assert_eq!(g.payload_off, 256);
        assert_eq!(g.chunk_stride % 256, 0);
        assert!(g.payload_capacity >= 1 << 20);
        assert!(Geometry::new(0, 8, 8).is_none());
        assert!(Geometry::new(MAX_CHUNKS + 1, 8, 8).is_none());
        assert!(Geometry::new(usize::MAX / 2, usize::MAX / 2, 8).is_none());
    }
}
