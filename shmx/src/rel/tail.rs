//! [`Tail`], the allocator of a loaned sample's tail, and the writers' helpers.

use super::*;

/// The free part of a loaned sample's chunk, after the message: relative pointers place their
/// elements here. `Copy`, so that a writer and the writers of nested structs can share it;
/// every allocation is a fresh, disjoint range.
#[derive(Clone, Copy)]
pub struct Tail<'a> {
    /// First payload byte of the chunk.
    base: *mut u8,
    /// `size_of` the message: the tail starts here.
    fixed: usize,
    /// Payload bytes in the chunk.
    capacity: usize,
    /// Bytes of the tail used so far (counted from `fixed`), shared with the sample.
    used: &'a Cell<usize>,
    pub(super) topic: &'a str,
    _sample: PhantomData<&'a mut [u8]>,
}

impl<'a> Tail<'a> {
    /// # Safety
    /// `base` must point to `capacity` writable bytes of a chunk loaned exclusively to the
    /// sample that is borrowed mutably for `'a`, of which the first `fixed` hold the message
    /// and the `used` bytes after them are allocated already.
    pub(crate) unsafe fn new(
        base: *mut u8,
        fixed: usize,
        capacity: usize,
        used: &'a Cell<usize>,
        topic: &'a str,
    ) -> Self {
        Tail {
            base,
            fixed,
            capacity,
            used,
            topic,
            _sample: PhantomData,
        }
    }

    /// Bytes the tail holds in all.
    pub fn capacity(&self) -> usize {
        self.capacity - self.fixed
    }

    /// Bytes allocated so far (with alignment gaps); the sample is published with them.
    pub fn used(&self) -> usize {
        self.used.get()
    }

    /// Bytes still free (before any alignment an allocation needs).
    pub fn remaining(&self) -> usize {
        self.capacity() - self.used()
    }

    /// Whether `len` bytes at address `at` lie inside this sample's message.
    pub(super) fn holds_field(&self, at: usize, len: usize) -> bool {
        let base = self.base as usize;
        at >= base
            && at
                .checked_add(len)
                .is_some_and(|end| end <= base + self.fixed)
    }

    pub(super) fn full(&self, requested: usize) -> Error {
        Error::TailFull {
            topic: self.topic.to_owned(),
            requested,
            available: self.remaining(),
        }
    }

    /// Reserves `bytes` bytes aligned to `align` (a power of two) and returns their address.
    pub(super) fn reserve(&self, bytes: usize, align: usize) -> Result<*mut u8> {
        let base = self.base as usize;
        let from = base + self.fixed + self.used.get();
        let start = from
            .checked_next_multiple_of(align)
            .ok_or_else(|| self.full(bytes))?;
        let end = start.checked_add(bytes).ok_or_else(|| self.full(bytes))?;
        if end > base + self.capacity {
            return Err(self.full(end - from));
        }
        self.used.set(end - base - self.fixed);
        // The address lies inside the chunk (checked above), so it is derived from `base`
        // to keep its provenance.
        Ok(self.base.wrapping_add(start - base))
    }
}

impl fmt::Debug for Tail<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tail")
            .field("capacity", &self.capacity())
            .field("used", &self.used())
            .finish()
    }
}

/// Element `i` of a pinned array, pinned: for writing an array of relative pointers (a
/// field such as `names: [RelStr; 4]`), which the writer holds as `Pin<&mut [RelStr; 4]>`.
/// `None` when `i` is out of range.
///
/// ```
/// # let dir = tempfile::tempdir().unwrap();
/// use shmx::{rel, Publisher, RelStr, ShmMessage, Subscriber};
///
/// #[derive(ShmMessage)]
/// #[repr(C)]
/// struct Names {
///     names: [RelStr; 2],
/// }
///
/// let subscriber = Subscriber::<Names>::builder("doc/names").root(dir.path()).create()?;
/// let publisher = Publisher::<Names>::builder("doc/names")
///     .root(dir.path())
///     .max_tail_bytes(64)
///     .create()?;
/// let mut sample = publisher.loan()?;
/// let mut w = sample.writer();
/// let tail = w.tail();
/// for (i, name) in ["left", "right"].into_iter().enumerate() {
///     let slot = rel::pin_index(w.names.as_mut(), i).expect("in range");
///     RelStr::set(slot, tail, name)?;
/// }
/// sample.publish()?;
/// let got = subscriber.take()?.unwrap();
/// assert_eq!((got.names[0].as_str(), got.names[1].as_str()), ("left", "right"));
/// # Ok::<(), shmx::Error>(())
/// ```
pub fn pin_index<T, const N: usize>(array: Pin<&mut [T; N]>, i: usize) -> Option<Pin<&mut T>> {
    // SAFETY: structural pinning: an array never moves its elements apart from itself, so an
    // element of a pinned array stays where it is for as long as the array does; nothing is
    // moved out here.
    unsafe {
        array
            .get_unchecked_mut()
            .get_mut(i)
            .map(|e| Pin::new_unchecked(e))
    }
}

/// A message type whose loaned samples are written through a writer: the derive implements
/// it for every struct, with a writer `<Name>Writer<'a>` that holds a pinned reference to
/// each field (plain fields deref mutably, relative pointers do not) and, for each
/// [`RelSlice`] or [`RelStr`] field `f`, methods `set_f` (copy in) and, for slices,
/// `alloc_f` (fill in place).
pub trait Writable: ShmMessage {
    /// The writer type.
    type Writer<'a>;
    /// The writer of the message at `this`, whose relative pointers allocate from `tail`.
    fn writer<'a>(this: Pin<&'a mut Self>, tail: Tail<'a>) -> Self::Writer<'a>;
}
