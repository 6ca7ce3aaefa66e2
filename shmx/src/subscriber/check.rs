//! Checking a taken chunk before it is handed out: its declared length against the type and
//! the chunk's capacity, and the value's validity (read from shared memory: never trusted).

use super::SubCore;
use crate::data::{ChunkHeader, ChunkLoc};
use crate::error::Error;
use crate::message::{ShmMessage, ValidationContext};
use crate::sync::Ordering;

/// Why a chunk was refused (made into a message only on the error path).
#[derive(Debug)]
pub(super) enum Rejected {
    OutOfRange,
    Length { len: u64, min: usize, max: usize },
    Invalid(crate::message::ValidationError),
    NoCopy { bytes: usize },
}

impl std::fmt::Display for Rejected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Rejected::OutOfRange => f.write_str("chunk index out of range"),
            Rejected::Length { len, min, max } if min == max => {
                write!(f, "payload length {len}, expected {min}")
            }
            Rejected::Length { len, min, max } => {
                write!(f, "payload length {len}, expected {min} to {max}")
            }
            Rejected::Invalid(e) => e.fmt(f),
            Rejected::NoCopy { bytes } => {
                write!(
                    f,
                    "no memory for a private copy of {bytes} bytes (copy_on_take)"
                )
            }
        }
    }
}

impl SubCore {
    /// Checks a chunk's declared length and, for types that need it, the value's validity;
    /// returns the length.
    #[inline(always)]
    pub(super) fn check<T: ShmMessage>(
        &self,
        chunks: ChunkLoc,
        chunk: usize,
    ) -> std::result::Result<usize, Rejected> {
        // SAFETY: `chunks` belongs to a view mapped while the caller's connection lives.
        let (header, ptr) = unsafe { chunks.chunk(chunk) }.ok_or(Rejected::OutOfRange)?;
        self.check_at::<T>(header, ptr, chunks.capacity)
    }

    /// [`check`](Self::check) of a chunk already looked up: its header, its payload at `ptr`
    /// and the payload capacity of its segment.
    #[inline(always)]
    pub(super) fn check_at<T: ShmMessage>(
        &self,
        header: &ChunkHeader,
        ptr: *const u8,
        capacity: usize,
    ) -> std::result::Result<usize, Rejected> {
        // One load: the length checked is the length used.
        let len = header.len.load(Ordering::Relaxed);
        let max = if self.tails { capacity } else { self.size };
        if len < self.size as u64 || len > max as u64 {
            if len == 0 && self.markers {
                // A marker (see `request`): no value, never read as one.
                return Ok(0);
            }
            return Err(Rejected::Length {
                len,
                min: self.size,
                max,
            });
        }
        let len = len as usize;
        if !T::ALWAYS_VALID {
            let ctx = ValidationContext::new(ptr, self.size, len);
            // SAFETY: `ptr` is the payload of an in-range chunk, derived from the mapping's
            // pointer: aligned for `T` (the data segment's geometry was checked against `T`'s
            // alignment) with `len ≤ capacity` mapped bytes, the first `size_of::<T>()` of
            // which hold the value; `validate` only reads them as integers, and reads the tail
            // only within `ctx`, through pointers derived from `ptr`.
            unsafe { T::validate(ptr.cast::<T>(), &ctx) }.map_err(Rejected::Invalid)?;
        }
        Ok(len)
    }

    #[cold]
    pub(super) fn invalid(&self, sequence: u64, reason: Rejected) -> Error {
        Error::InvalidSample {
            topic: self.service.topic().to_owned(),
            sequence,
            reason: reason.to_string(),
        }
    }
}
