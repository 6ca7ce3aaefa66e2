//! A publisher's data segments: where each chunk lives, and the tables in segment 0 that
//! tell subscribers and tools which segments exist.

use crate::data::{
    segment_file_name, split, ChunkHeader, DataSegment, Geometry, SegmentId, MAX_SEGMENTS,
};
use crate::error::Result;
use crate::pool::ChunkAccess;
use crate::service::Service;
use crate::sync::{AtomicU64, Ordering};

/// One size class as the publisher keeps it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Class {
    /// Payload bytes of a chunk.
    pub capacity: usize,
    /// Bytes of a chunk in its segment.
    pub stride: usize,
}

/// The segments of one publisher, by number. Segment 0 always exists.
pub(crate) struct Segments {
    /// Segment 0, apart: most chunks of most topics are there (the hot path finds them
    /// without going through `more`).
    seg0: DataSegment,
    /// The segments the pool grew, by number (`more[0]` is always `None`).
    more: Vec<Option<DataSegment>>,
    /// The size classes, smallest first.
    pub classes: Vec<Class>,
    /// The generation the next new segment gets.
    next_generation: u64,
    /// The class of segment 0.
    first_class: usize,
    fingerprint: u64,
    incarnation: u64,
    align: usize,
}

impl Segments {
    /// Creates segment 0 with `count` chunks of class `class` of `caps` (payload capacities).
    pub(crate) fn create(
        service: &Service,
        caps: &[usize],
        (class, count): (usize, usize),
        (fingerprint, incarnation, align): (u64, u64, usize),
    ) -> Option<Result<Segments>> {
        let classes = caps
            .iter()
            .map(|&capacity| {
                let g = Geometry::new(1, capacity, align)?;
                Some(Class {
                    capacity: g.payload_capacity,
                    stride: g.chunk_stride,
                })
            })
            .collect::<Option<Vec<_>>>()?;
        let geo = Geometry::new(count, classes.get(class)?.capacity, align)?;
        let id = SegmentId {
            fingerprint,
            incarnation,
            segment: 0,
            generation: 1,
            class,
        };
        Some(DataSegment::create(service, geo, id).map(|seg0| {
            for (c, class) in classes.iter().enumerate() {
                let rec = seg0.class_record(c);
                rec.capacity.store(class.capacity as u64, Ordering::Relaxed);
                rec.stride.store(class.stride as u64, Ordering::Relaxed);
            }
            seg0.class_record(class)
                .chunks
                .store(count as u64, Ordering::Relaxed);
            seg0.segment_word(0).store(1, Ordering::Release);
            Segments {
                seg0,
                more: Vec::new(),
                classes,
                next_generation: 2,
                first_class: class,
                fingerprint,
                incarnation,
                align,
            }
        }))
    }

    /// The segment of chunk `c`, one the pool handed out (every such chunk is in a segment:
    /// the pool and the segments grow and shrink together; peers' indices never come here
    /// unchecked, see `Pool::give_back`).
    #[inline(always)]
    fn seg(&self, c: u32) -> &DataSegment {
        let k = split(c as usize).0;
        if k == 0 {
            return &self.seg0;
        }
        self.grown(k)
    }

    #[cold]
    #[inline(never)]
    fn grown(&self, k: usize) -> &DataSegment {
        match self.more.get(k) {
            Some(Some(s)) => s,
            _ => panic!("segment {k} is not one of this publisher's"),
        }
    }

    /// Segment 0 (the one with the tables).
    fn seg0(&self) -> &DataSegment {
        &self.seg0
    }

    /// Every segment.
    fn all(&self) -> impl Iterator<Item = &DataSegment> {
        std::iter::once(&self.seg0).chain(self.more.iter().flatten())
    }

    /// First payload byte of chunk `c` (one the pool handed out).
    #[inline(always)]
    pub(crate) fn payload(&self, c: u32) -> *mut u8 {
        self.seg(c).payload(split(c as usize).1)
    }

    /// Payload bytes of chunk `c`.
    #[inline(always)]
    pub(crate) fn capacity(&self, c: u32) -> usize {
        self.seg(c).geometry().payload_capacity
    }

    /// Starts loading chunk `c`'s first line (see [`DataSegment::prefetch_chunk`]); no
    /// effect for a chunk of no segment.
    #[inline(always)]
    pub(crate) fn prefetch(&self, c: u32, own: bool) {
        let (k, i) = split(c as usize);
        if k == 0 {
            self.seg0.prefetch_chunk(i, own);
        } else if let Some(Some(s)) = self.more.get(k) {
            s.prefetch_chunk(i, own);
        }
    }

    /// Adds a segment of `count` chunks of class `class` (a new file, its pages reserved:
    /// [`Error::OutOfSpace`](crate::Error::OutOfSpace) when shared memory is short), lists
    /// it in the segment table, and returns its number; `Ok(None)` when every segment number
    /// is taken.
    pub(crate) fn add(
        &mut self,
        service: &Service,
        class: usize,
        count: usize,
    ) -> Result<Option<usize>> {
        let Some(k) = (1..MAX_SEGMENTS).find(|&k| self.more.get(k).is_none_or(Option::is_none))
        else {
            return Ok(None);
        };
        let Some(geo) = Geometry::new(count, self.classes[class].capacity, self.align) else {
            return Ok(None); // more chunks than a segment holds: the caller asks for fewer
        };
        let id = SegmentId {
            fingerprint: self.fingerprint,
            incarnation: self.incarnation,
            segment: k,
            generation: self.next_generation,
            class,
        };
        // A segment number given back earlier may have left its file if the publisher could
        // not remove it then: only this publisher makes files of its incarnation.
        service
            .dir()
            .remove_file(&segment_file_name(self.incarnation, k));
        let seg = DataSegment::create(service, geo, id)?;
        self.next_generation += 1;
        if self.more.len() <= k {
            self.more.resize_with(k + 1, || None);
        }
        self.more[k] = Some(seg);
        // Listed before any ring entry names one of its chunks: a subscriber that pops such
        // an entry (Acquire, pairing with the push's Release) finds the segment listed.
        self.seg0()
            .segment_word(k)
            .store(id.generation, Ordering::Release);
        Ok(Some(k))
    }

    /// Gives segment `k > 0` back: unlists it, removes its file and unmaps it. The pool must
    /// have retired it first (none of its chunks is in use or pinned).
    pub(crate) fn remove(&mut self, service: &Service, k: usize) {
        if k == 0 {
            return;
        }
        if let Some(slot) = self.more.get_mut(k) {
            if slot.take().is_some() {
                self.seg0().segment_word(k).store(0, Ordering::Release);
                service
                    .dir()
                    .remove_file(&segment_file_name(self.incarnation, k));
            }
        }
    }

    /// Bytes of shared memory the segments take (their files' lengths).
    pub(crate) fn reserved_bytes(&self) -> u64 {
        self.all().map(|s| s.geometry().total_len as u64).sum()
    }

    /// The class of segment 0.
    pub(crate) fn class_of_first(&self) -> usize {
        self.first_class
    }

    /// Chunks in every segment.
    pub(crate) fn reserved_chunks(&self) -> u64 {
        self.all().map(|s| s.geometry().chunk_count as u64).sum()
    }

    /// Bytes of shared memory segment `k` takes (0 if there is none).
    pub(crate) fn segment_bytes(&self, k: usize) -> u64 {
        match (k, self.more.get(k)) {
            (0, _) => self.seg0.geometry().total_len as u64,
            (_, Some(Some(s))) => s.geometry().total_len as u64,
            _ => 0,
        }
    }

    /// Bytes of the chunks alone (for the worst case: what a fixed pool would take).
    pub(crate) fn chunk_bytes(&self) -> u64 {
        self.all()
            .map(|s| (s.geometry().chunk_count * s.geometry().chunk_stride) as u64)
            .sum()
    }

    /// Writes class `class`'s counts into segment 0's class table (for tools).
    pub(crate) fn record_class(&self, class: usize, chunks: usize, in_use: usize) {
        if class < self.classes.len() {
            let rec = self.seg0().class_record(class);
            rec.chunks.store(chunks as u64, Ordering::Relaxed);
            rec.in_use.store(in_use as u64, Ordering::Relaxed);
        }
    }
}

impl ChunkAccess for Segments {
    #[inline]
    fn header(&self, c: u32) -> &ChunkHeader {
        self.seg(c).header(split(c as usize).1)
    }

    #[inline]
    fn pin(&self, c: u32) -> &AtomicU64 {
        self.seg(c).pin(split(c as usize).1)
    }
}
