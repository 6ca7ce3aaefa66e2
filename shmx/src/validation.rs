//! What validators of received values work with: [`ValidationContext`], the chunk a value
//! lies in, and [`ValidationError`], why a value was refused. Both are re-exported from
//! [`message`](crate::message), where [`ShmMessage::validate`](crate::ShmMessage::validate)
//! uses them.

use core::fmt;

/// What a validator knows about the chunk that holds the value it checks: where the sample's
/// payload is, where its tail starts and how many bytes were published.
///
/// ```text
/// payload          payload + message_size                     payload + len
/// |  the message (size_of) |  tail: what relative pointers     |
/// |                        |  point to, allocated in order     |
/// ```
///
/// The payload is kept as a pointer, not an address: validators read the tail through
/// pointers derived from it (see [`tail_bytes`](Self::tail_bytes)), so they keep the
/// provenance of the memory the sample lies in.
#[derive(Debug, Clone, Copy)]
pub struct ValidationContext {
    payload: *const u8,
    tail_off: usize,
    len: usize,
}

impl ValidationContext {
    /// The context of a sample of `len` published bytes at `payload`, the first
    /// `message_size` of which hold the message (at most `len`: the tail starts there).
    ///
    /// Making a context is safe; [`ShmMessage::validate`](crate::ShmMessage::validate), which
    /// reads through it, asks its caller to vouch that `payload` points to `len` readable
    /// bytes.
    pub fn new(payload: *const u8, message_size: usize, len: usize) -> ValidationContext {
        ValidationContext {
            payload,
            tail_off: message_size.min(len),
            len,
        }
    }

    /// The first payload byte of the chunk.
    pub fn payload(&self) -> *const u8 {
        self.payload
    }

    /// Address of the first payload byte of the chunk.
    pub fn payload_start(&self) -> usize {
        self.payload as usize
    }

    /// Address of the first byte after the fixed-size message: relative pointers must point
    /// at or after it.
    pub fn tail_start(&self) -> usize {
        self.payload_start().wrapping_add(self.tail_off)
    }

    /// Address one past the last byte the publisher declared as payload.
    pub fn payload_end(&self) -> usize {
        self.payload_start().wrapping_add(self.len)
    }

    /// The `bytes` bytes that start `offset` bytes after `at` (an address inside the
    /// payload), if they lie inside the published tail with their first byte aligned to
    /// `align` (a power of two): a pointer derived from [`payload`](Self::payload), or why
    /// not.
    ///
    /// ```
    /// use shmx::message::ValidationContext;
    /// let chunk = [0u64; 4]; // an 8-byte message, then a 24-byte tail
    /// let p = chunk.as_ptr().cast::<u8>();
    /// let ctx = ValidationContext::new(p, 8, 32);
    /// let at = p as usize; // a relative pointer at the message's first byte
    /// assert_eq!(ctx.tail_bytes(at, 8, 16, 8), Ok(p.wrapping_add(8)));
    /// assert!(ctx.tail_bytes(at, 4, 4, 4).is_err(), "into the message");
    /// assert!(ctx.tail_bytes(at, 16, 24, 1).is_err(), "past the published end");
    /// assert!(ctx.tail_bytes(at, 9, 2, 2).is_err(), "misaligned");
    /// ```
    ///
    /// # Errors
    /// [`ValidationError::BadRelative`] (at offset 0) saying what is wrong.
    pub fn tail_bytes(
        &self,
        at: usize,
        offset: usize,
        bytes: usize,
        align: usize,
    ) -> Result<*const u8, ValidationError> {
        let bad = |problem| ValidationError::BadRelative { offset: 0, problem };
        let start = at
            .checked_sub(self.payload_start())
            .filter(|&field| field < self.len)
            .ok_or(bad("does not lie in the payload it is checked against"))?
            .checked_add(offset)
            .ok_or(bad("offset overflows the address space"))?;
        let end = start
            .checked_add(bytes)
            .ok_or(bad("length overflows the address space"))?;
        if start < self.tail_off {
            return Err(bad("points before the tail (into the message itself)"));
        }
        if end > self.len {
            return Err(bad("runs past the published end of the tail"));
        }
        if self.payload_start().wrapping_add(start) & (align.max(1) - 1) != 0 {
            return Err(bad("points to an element that is not aligned"));
        }
        // `start ≤ end ≤ len`: inside the published payload, derived from its pointer.
        Ok(self.payload.wrapping_add(start))
    }
}

/// Why a received value was rejected by validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ValidationError {
    /// A `bool` byte held something other than 0 or 1.
    InvalidBool {
        /// Byte offset of the field from the start of the message.
        offset: usize,
        /// The byte found.
        value: u8,
    },
    /// A fieldless enum held a discriminant that names no variant.
    InvalidDiscriminant {
        /// The enum's type name.
        type_name: &'static str,
        /// Byte offset of the field from the start of the message.
        offset: usize,
        /// The discriminant found.
        value: i128,
    },
    /// A relative pointer ([`RelSlice`](crate::RelSlice) or [`RelStr`](crate::RelStr)) does
    /// not point to whole, aligned elements inside the published part of the chunk's tail.
    BadRelative {
        /// Byte offset of the pointer from the start of the message.
        offset: usize,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// A [`RelStr`](crate::RelStr) points to bytes that are not UTF-8.
    InvalidUtf8 {
        /// Byte offset of the string's pointer from the start of the message.
        offset: usize,
    },
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidBool { offset, value } => {
                write!(f, "bool at byte {offset} holds {value}, not 0 or 1")
            }
            Self::InvalidDiscriminant {
                type_name,
                offset,
                value,
            } => write!(
                f,
                "enum {type_name} at byte {offset} holds discriminant {value}, which names no variant"
            ),
            Self::BadRelative { offset, problem } => {
                write!(f, "relative pointer at byte {offset}: {problem}")
            }
            Self::InvalidUtf8 { offset } => {
                write!(f, "string at byte {offset} is not valid UTF-8")
            }
        }
    }
}

impl ValidationError {
    /// The same error with its offset moved by `base` bytes, for a value nested at `base`.
    #[must_use]
    pub fn at(self, base: usize) -> Self {
        match self {
            Self::InvalidBool { offset, value } => Self::InvalidBool {
                offset: offset + base,
                value,
            },
            Self::InvalidDiscriminant {
                type_name,
                offset,
                value,
            } => Self::InvalidDiscriminant {
                type_name,
                offset: offset + base,
                value,
            },
            Self::BadRelative { offset, problem } => Self::BadRelative {
                offset: offset + base,
                problem,
            },
            Self::InvalidUtf8 { offset } => Self::InvalidUtf8 {
                offset: offset + base,
            },
        }
    }
}
