//! Relative pointers: [`RelSlice`] and [`RelStr`], variable-length data that travels in the
//! same chunk as the message that points to it, and [`Tail`], the allocator that places it.
//!
//! Processes map a segment at different addresses, so shared data never holds an address. A
//! relative pointer holds the distance from its own address to its data, and a length:
//!
//! ```text
//!  chunk payload (one sample)
//!  +---------------------------------------------+--------------------------------------+
//!  | the message: size_of::<T>() bytes           | tail: max_tail_bytes                 |
//!  |  width: u32                                 |                                      |
//!  |  label:  RelStr   {offset, len} ---------------> "cam0"                              |
//!  |  pixels: RelSlice {offset, len} -----------------------> [u8; len] ...              |
//!  +---------------------------------------------+--------------------------------------+
//!  ^ payload_start                               ^ tail_start        published length ^
//! ```
//!
//! - `offset` (`u32`) counts bytes from the pointer's own address to its first element; `len`
//!   (`u32`) counts elements. An empty pointer (`len == 0`) points nowhere.
//! - The tail is allocated in order, each allocation aligned for its element type; the sample
//!   is published with the length of what was used, so a small sample costs a small copy of
//!   nothing at all and a large one no more than its bytes.
//! - A subscriber checks every relative pointer before it hands out a sample: the elements lie
//!   inside the published tail, aligned, with no arithmetic overflow, and (for `bool`s, enums
//!   and strings) hold valid values. Otherwise it reports
//!   [`Error::InvalidSample`] and moves on to the next sample.
//!
//! Safe code cannot make a relative pointer dangle: the types are neither `Copy` nor `Clone`
//! nor `Unpin`, so a sample of a type holding them derefs only to `&T` (no `mem::swap` or
//! `mem::replace` can carry them out of their chunk), and the only way to set one is through
//! its writer, which checks that the pointer lives in the sample whose tail it is given.
//!
//! ```
//! # let dir = tempfile::tempdir().unwrap();
//! use shmx::{Publisher, RelSlice, RelStr, ShmMessage, Subscriber};
//!
//! #[derive(ShmMessage)]
//! #[repr(C)]
//! struct Scan {
//!     seq: u64,
//!     frame: RelStr,
//!     ranges: RelSlice<f32>,
//! }
//!
//! let subscriber = Subscriber::<Scan>::builder("doc/scan").root(dir.path()).create()?;
//! let publisher = Publisher::<Scan>::builder("doc/scan")
//!     .root(dir.path())
//!     .max_tail_bytes(4096)
//!     .create()?;
//! let mut sample = publisher.loan()?;
//! let mut scan = sample.writer();
//! *scan.seq = 7;
//! scan.set_frame("lidar_front")?;
//! let ranges = scan.alloc_ranges(360)?; // &mut [f32] in the chunk's tail
//! ranges.fill(2.5);
//! sample.publish()?;
//!
//! let received = subscriber.take()?.unwrap();
//! assert_eq!((received.seq, received.frame()), (7, "lidar_front"));
//! assert_eq!(received.ranges().len(), 360);
//! # Ok::<(), shmx::Error>(())
//! ```

use crate::error::{Error, Result};
use crate::message::{Schema, ShmMessage, ValidationContext, ValidationError};
use core::cell::Cell;
use core::fmt;
use core::marker::{PhantomData, PhantomPinned};
use core::mem::{align_of, size_of};
use core::pin::Pin;

/// A slice of `T` stored in the tail of the chunk that holds this field: a `u32` offset from
/// the field's own address and a `u32` element count (8 bytes, aligned to 4).
///
/// Read it with [`as_slice`](Self::as_slice) (or the accessor the derive generates, named
/// after the field); write it while the sample is loaned with the generated writer
/// (`set_<field>` copies a slice in, `alloc_<field>` hands out `&mut [T]` in place).
///
/// `T` must not hold relative pointers itself (a compile error otherwise): the tail is flat.
///
/// # Invariant
/// A `RelSlice` with a non-zero length only exists inside a chunk: it was set by a writer,
/// which placed its elements in the same chunk's tail, or it was checked on receive. Values
/// made on the stack ([`new`](Self::new), `Default`) are empty, and since the type is neither
/// `Clone` nor `Unpin`, no safe code can copy or move a non-empty one out of its chunk.
#[repr(C)]
pub struct RelSlice<T> {
    offset: u32,
    len: u32,
    _t: PhantomData<T>,
    _pin: PhantomPinned,
}

/// A UTF-8 string stored in the tail of the chunk that holds this field; laid out as a
/// [`RelSlice<u8>`] (8 bytes, aligned to 4). A subscriber checks that the bytes are UTF-8.
#[repr(transparent)]
pub struct RelStr {
    bytes: RelSlice<u8>,
}

impl<T> RelSlice<T> {
    /// An empty slice (points nowhere).
    pub const fn new() -> Self {
        RelSlice {
            offset: 0,
            len: 0,
            _t: PhantomData,
            _pin: PhantomPinned,
        }
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.len as usize
    }

    /// Whether the slice is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The elements.
    ///
    /// Each call reads the offset and length once and checks that the elements lie, aligned,
    /// inside the payload of the very chunk that holds this field (a few nanoseconds): they
    /// were checked against the chunk when the sample was taken, but a hostile publisher
    /// could rewrite them since. If they do not, the slice is empty. So a rewritten pointer
    /// never leads into another chunk, another topic's segment or unmapped memory; to read
    /// exactly what was validated, even from a publisher that rewrites its chunks, subscribe
    /// with [`copy_on_take`](crate::SubscriberBuilder::copy_on_take).
    pub fn as_slice(&self) -> &[T] {
        let this = self as *const Self;
        // SAFETY: `self` is a valid reference; the two integers are read once each (volatile:
        // a peer may write them, and the values checked must be the values used).
        let (offset, len) = unsafe {
            (
                core::ptr::addr_of!((*this).offset).read_volatile(),
                core::ptr::addr_of!((*this).len).read_volatile(),
            )
        };
        if len == 0 {
            return &[];
        }
        if size_of::<T>() == 0 {
            // SAFETY: elements of a zero-sized message type occupy no memory and have exactly
            // one value (a struct or array of no bytes), so a dangling pointer, non-null and
            // aligned, is valid for any number of them.
            return unsafe {
                core::slice::from_raw_parts(
                    core::ptr::NonNull::<T>::dangling().as_ptr(),
                    len as usize,
                )
            };
        }
        let Some(bytes) = (len as usize).checked_mul(size_of::<T>()) else {
            return &[];
        };
        // Only the field's address is used to find its chunk; the pointer to the elements
        // comes from the region's own base pointer.
        let Some(data) =
            crate::regions::resolve(this as usize, offset as usize, bytes, align_of::<T>())
        else {
            return &[];
        };
        // SAFETY: `resolve` returned a pointer derived from the base pointer of the registered
        // region (a mapped data segment or a subscriber's private copy) that holds `self`, to
        // `len` elements that lie, aligned, inside the payload of the chunk that holds `self`.
        // That memory stays mapped while `&self` lives: it is the same region as `self`'s
        // (the sample that holds this field borrows the endpoint that holds the mapping or the
        // copy). By the type's invariant the elements were written as `T`s by `Tail` or
        // validated as `T`s on receive, and a published chunk is not written again (the trust
        // model of DESIGN.md, "Memory model"; a private copy is never written while held).
        unsafe { core::slice::from_raw_parts(data.cast::<T>(), len as usize) }
    }
}

impl<T: ShmMessage> RelSlice<T> {
    /// Allocates `len` elements in `tail`, points this slice at them and returns them to be
    /// filled in place. For element types in which every bit pattern is valid, the elements
    /// hold whatever the chunk held (zeroes, or an earlier sample's bytes): nothing is
    /// zeroed, so a large buffer costs nothing until written. Other element types are
    /// zeroed.
    ///
    /// The returned slice borrows this field: while it lives, the field cannot be read (the
    /// two would alias).
    ///
    /// # Errors
    /// [`Error::TailFull`] when the tail has no room, [`Error::ForeignTail`] when this slice
    /// is not part of the sample that `tail` belongs to, [`Error::InvalidConfig`] for an
    /// element type without an all-zero value (use [`copy_from`](Self::copy_from)).
    pub fn alloc<'b>(self: Pin<&'b mut Self>, tail: Tail<'_>, len: usize) -> Result<&'b mut [T]> {
        if !T::ALWAYS_VALID && !T::ZEROABLE {
            return Err(Error::InvalidConfig {
                topic: tail.topic.to_owned(),
                reason: format!(
                    "RelSlice<{}>::alloc: all-zero bytes are not a valid element; use copy_from",
                    T::TYPE_NAME
                ),
            });
        }
        let data = self.point(tail, len)?;
        if !T::ALWAYS_VALID {
            // SAFETY: `point` reserved `len` aligned elements in the tail for this call
            // alone; all-zero is a valid `T` (ZEROABLE).
            unsafe { data.write_bytes(0, len) };
        }
        // SAFETY: `point` reserved `len` aligned elements in the tail for this call alone
        // (the tail only grows), inside the sample that `tail` borrows; the slice lives no
        // longer than this field's pinned borrow, so no read through the field (the only
        // other way to these elements) overlaps it. They hold
        // valid `T`s: any bit pattern is one (ALWAYS_VALID; mapped memory is always
        // initialised), or they were just zeroed.
        Ok(unsafe { core::slice::from_raw_parts_mut(data, len) })
    }

    /// Copies `src` into `tail` and points this slice at the copy. (A bitwise copy is a
    /// faithful one: message types hold no pointers and own nothing.)
    ///
    /// # Errors
    /// As for [`alloc`](Self::alloc), but any element type can be copied.
    pub fn copy_from<'b>(
        self: Pin<&'b mut Self>,
        tail: Tail<'_>,
        src: &[T],
    ) -> Result<&'b mut [T]> {
        let data = self.point(tail, src.len())?;
        // SAFETY: `point` reserved `src.len()` aligned elements in the tail, which `src` (a
        // borrowed slice, so not a part of the loaned sample that `tail` borrows mutably)
        // cannot overlap; after the copy they hold valid `T`s (`T` holds no relative
        // pointers, asserted in its `SCHEMA`, so the copies point nowhere).
        unsafe {
            core::ptr::copy_nonoverlapping(src.as_ptr(), data, src.len());
            Ok(core::slice::from_raw_parts_mut(data, src.len()))
        }
    }

    /// Makes the slice empty (its old elements stay in the tail, unused).
    pub fn clear(self: Pin<&mut Self>) {
        // SAFETY: only plain integers are written; nothing is moved out of the pin.
        let this = unsafe { self.get_unchecked_mut() };
        this.offset = 0;
        this.len = 0;
    }

    /// Reserves `len` elements in `tail` and points this slice at them.
    fn point(self: Pin<&mut Self>, tail: Tail<'_>, len: usize) -> Result<*mut T> {
        const {
            assert!(
                !T::SCHEMA.has_relative(),
                "the elements of a RelSlice must not hold relative pointers themselves"
            )
        };
        // SAFETY: the fields are plain integers, written below; nothing is moved.
        let this = unsafe { self.get_unchecked_mut() };
        let at = this as *mut Self as usize;
        if !tail.holds_field(at, size_of::<Self>()) {
            return Err(Error::ForeignTail {
                topic: tail.topic.to_owned(),
            });
        }
        let Ok(count) = u32::try_from(len) else {
            return Err(tail.full(len.saturating_mul(size_of::<T>())));
        };
        if len == 0 {
            this.offset = 0;
            this.len = 0;
            return Ok(core::ptr::NonNull::dangling().as_ptr());
        }
        let bytes = len
            .checked_mul(size_of::<T>())
            .ok_or_else(|| tail.full(len.saturating_mul(size_of::<T>())))?;
        let data = tail.reserve(bytes, align_of::<T>())?;
        let offset = u32::try_from(data as usize - at).map_err(|_| tail.full(bytes))?;
        this.offset = offset;
        this.len = count;
        Ok(data.cast())
    }
}

impl<T> Default for RelSlice<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> core::ops::Deref for RelSlice<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        self.as_slice()
    }
}

impl<T: fmt::Debug> fmt::Debug for RelSlice<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.as_slice()).finish()
    }
}

impl<T: PartialEq> PartialEq for RelSlice<T> {
    fn eq(&self, other: &Self) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl RelStr {
    /// An empty string.
    pub const fn new() -> Self {
        RelStr {
            bytes: RelSlice::new(),
        }
    }

    /// The string.
    ///
    /// Checked on each call, as [`RelSlice::as_slice`] is, and also for UTF-8 (a string
    /// that a hostile publisher rewrote after it was taken reads as empty).
    pub fn as_str(&self) -> &str {
        core::str::from_utf8(self.bytes.as_slice()).unwrap_or("")
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Whether the string is empty.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// Copies `s` into `tail` and points this string at the copy.
    ///
    /// # Errors
    /// As for [`RelSlice::alloc`].
    pub fn set<'b>(self: Pin<&'b mut Self>, tail: Tail<'_>, s: &str) -> Result<&'b str> {
        // SAFETY: structural pin projection to the only field; nothing is moved.
        let bytes = unsafe { self.map_unchecked_mut(|this| &mut this.bytes) };
        let copy = bytes.copy_from(tail, s.as_bytes())?;
        // SAFETY: a byte-for-byte copy of a `&str` is UTF-8.
        Ok(unsafe { core::str::from_utf8_unchecked(copy) })
    }

    /// Makes the string empty.
    pub fn clear(self: Pin<&mut Self>) {
        // SAFETY: structural pin projection to the only field; nothing is moved.
        unsafe { self.map_unchecked_mut(|this| &mut this.bytes) }.clear();
    }
}

impl Default for RelStr {
    fn default() -> Self {
        Self::new()
    }
}

impl core::ops::Deref for RelStr {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl fmt::Debug for RelStr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for RelStr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.as_str(), f)
    }
}

impl PartialEq for RelStr {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl PartialEq<str> for RelStr {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

/// Checks a relative pointer to elements of `T` at `ptr` against `ctx`, and returns a pointer
/// to its first element, derived from the context's payload pointer, with the element count
/// (`None` when empty).
///
/// # Safety
/// `ptr` must point to 8 readable bytes (an offset and a length, as `u32`s), aligned to 4.
unsafe fn check_span<T>(
    ptr: *const u8,
    ctx: &ValidationContext,
) -> core::result::Result<Option<(*const T, usize)>, ValidationError> {
    // SAFETY: the caller vouches for 8 readable, 4-aligned bytes; they are read as integers,
    // for which every bit pattern is valid.
    let (offset, len) = unsafe { (ptr.cast::<u32>().read(), ptr.cast::<u32>().add(1).read()) };
    if len == 0 {
        return Ok(None);
    }
    let bytes = (len as usize)
        .checked_mul(size_of::<T>())
        .ok_or(ValidationError::BadRelative {
            offset: 0,
            problem: "length overflows the address space",
        })?;
    let start = ctx.tail_bytes(ptr as usize, offset as usize, bytes, align_of::<T>())?;
    Ok(Some((start.cast::<T>(), len as usize)))
}

// SAFETY: `RelSlice<T>` is `repr(C)`: two `u32`s and zero-sized markers, so 8 bytes aligned
// to 4 with no padding and no address (the offset is relative). All-zero is the empty slice.
// `validate` accepts only an empty slice or one whose elements lie, aligned and whole, inside
// the published tail, and validates each element when `T` needs it; `T` holds no relative
// pointers (asserted in `SCHEMA`), so the elements cannot point further.
unsafe impl<T: ShmMessage> ShmMessage for RelSlice<T> {
    const TYPE_NAME: &'static str = "RelSlice";
    const SCHEMA: &'static Schema = &{
        assert!(
            !T::SCHEMA.has_relative(),
            "the elements of a RelSlice must not hold relative pointers themselves"
        );
        Schema::rel_slice(T::SCHEMA)
    };
    const ALWAYS_VALID: bool = false;
    const ZEROABLE: bool = true;

    #[inline]
    unsafe fn validate(ptr: *const Self, ctx: &ValidationContext) -> Result<(), ValidationError> {
        // SAFETY: the caller vouches for `size_of::<Self>()` = 8 readable bytes at `ptr`,
        // aligned for `Self` (4).
        let Some((start, len)) = (unsafe { check_span::<T>(ptr.cast(), ctx) })? else {
            return Ok(());
        };
        if !T::ALWAYS_VALID {
            let rel = (start as usize).wrapping_sub(ptr as usize);
            for i in 0..len {
                // SAFETY: `check_span` proved that `len` whole elements from `start` lie in
                // the published tail, and that `start` is aligned for `T`; `start` is derived
                // from the payload pointer, so element `i < len` is too.
                let elem = unsafe { start.add(i) };
                // SAFETY: as above: an aligned element inside the payload `ctx` describes.
                unsafe { T::validate(elem, ctx) }.map_err(|e| e.at(rel + i * size_of::<T>()))?;
            }
        }
        Ok(())
    }

    fn __shmx_sealed(_: crate::__private::Sealed) {}
}

// SAFETY: `RelStr` is a transparent `RelSlice<u8>` (8 bytes, aligned to 4, no padding, no
// address; all-zero is the empty string). `validate` checks it as a `RelSlice<u8>` and then
// that the bytes are UTF-8, which `as_str` relies on.
unsafe impl ShmMessage for RelStr {
    const TYPE_NAME: &'static str = "RelStr";
    const SCHEMA: &'static Schema = &Schema::rel_str();
    const ALWAYS_VALID: bool = false;
    const ZEROABLE: bool = true;

    #[inline]
    unsafe fn validate(ptr: *const Self, ctx: &ValidationContext) -> Result<(), ValidationError> {
        // SAFETY: as for `RelSlice::validate`: 8 readable bytes aligned to 4.
        let Some((start, len)) = (unsafe { check_span::<u8>(ptr.cast(), ctx) })? else {
            return Ok(());
        };
        // SAFETY: `check_span` proved that the `len` bytes from `start` lie in the published
        // tail, which the caller vouches is readable; `start` is derived from the context's
        // payload pointer. No one writes them while the slice lives (a private copy, or a
        // chunk its publisher does not write again).
        let bytes = unsafe { core::slice::from_raw_parts(start, len) };
        match core::str::from_utf8(bytes) {
            Ok(_) => Ok(()),
            Err(_) => Err(ValidationError::InvalidUtf8 { offset: 0 }),
        }
    }

    fn __shmx_sealed(_: crate::__private::Sealed) {}
}

mod tail;
pub use tail::{pin_index, Tail, Writable};

#[cfg(test)]
mod tests;
