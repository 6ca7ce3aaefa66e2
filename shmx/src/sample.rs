//! Samples: [`SampleMut`], a loaned chunk being written, and [`Sample`], a received one.

use crate::error::Result;
use crate::message::ShmMessage;
use crate::publisher::PubCore;
use crate::rel::{Tail, Writable};
use crate::subscriber::{Held, SubCore};
use std::cell::Cell;
use std::marker::PhantomData;
use std::mem::{ManuallyDrop, MaybeUninit};
use std::ops::{Deref, DerefMut};
use std::pin::Pin;

/// A chunk of shared memory loaned from a [`Publisher`](crate::Publisher): write the message
/// in place, then [`publish`](SampleMut::publish) it. Dropping it unpublished returns the
/// chunk to the pool.
///
/// It derefs mutably for plain message types. For a type holding relative pointers
/// ([`RelSlice`](crate::RelSlice), [`RelStr`](crate::RelStr)) it derefs to `&T` only, so that
/// no `mem::swap` or `mem::replace` can carry a pointer out of its chunk: write such a
/// sample through its [`writer`](Self::writer).
pub struct SampleMut<'p, T> {
    core: &'p PubCore,
    chunk: u32,
    ptr: *mut T,
    /// Bytes of the chunk's tail allocated by relative pointers.
    tail_used: Cell<usize>,
}

impl<'p, T> SampleMut<'p, T> {
    /// # Safety
    /// `chunk` must be loaned to this sample alone, and `ptr` point to its payload: aligned,
    /// `size_of::<T>()` writable bytes, holding a valid `T` unless `T` is `MaybeUninit<_>`.
    pub(crate) unsafe fn new(core: &'p PubCore, chunk: u32, ptr: *mut T) -> Self {
        SampleMut {
            core,
            chunk,
            ptr,
            tail_used: Cell::new(0),
        }
    }

    /// Address of the payload in this process.
    pub fn as_ptr(&self) -> *const T {
        self.ptr
    }
}

impl<'p, T: ShmMessage> SampleMut<'p, T> {
    /// Publishes the sample to every connected subscriber, without copying it (with the part
    /// of the tail that relative pointers used).
    #[inline(always)]
    pub fn publish(self) -> Result<()> {
        let this = ManuallyDrop::new(self);
        this.core
            .publish(this.chunk, size_of::<T>() + this.tail_used.get())
    }

    /// The message, pinned, and the free tail of its chunk: for writing relative pointers by
    /// hand (the derived [`writer`](Self::writer) does this for every field).
    pub fn parts(&mut self) -> (Pin<&mut T>, Tail<'_>) {
        let (payload, capacity) = self.core.payload(self.chunk);
        // SAFETY: the payload is this sample's exclusively loaned chunk, holding a valid `T`
        // in its first `size_of::<T>()` bytes and `capacity` bytes in all; `tail_used` counts
        // what was allocated after the message, and `&mut self` is borrowed for the tail's
        // lifetime. The pin is never moved out of: the chunk stays where it is.
        unsafe {
            let tail = Tail::new(
                payload,
                size_of::<T>(),
                capacity,
                &self.tail_used,
                self.core.service().topic(),
            );
            (Pin::new_unchecked(&mut *self.ptr), tail)
        }
    }

    /// The writer of this sample: a pinned reference to each field (plain fields deref
    /// mutably) and, for each relative pointer field `f`, `set_f(..)` and `alloc_f(n)`,
    /// which place its data in the chunk's tail. See [`rel`](crate::rel).
    pub fn writer(&mut self) -> T::Writer<'_>
    where
        T: Writable,
    {
        let (this, tail) = self.parts();
        T::writer(this, tail)
    }

    /// Bytes of the chunk's tail used so far by relative pointers.
    pub fn tail_used(&self) -> usize {
        self.tail_used.get()
    }

    /// Bytes the chunk's tail holds in all: those of its size class (for a sample of
    /// [`loan`](crate::Publisher::loan), the publisher's `max_tail_bytes`, rounded up; for
    /// one of [`loan_with_tail`](crate::Publisher::loan_with_tail), at least what it asked).
    pub fn tail_capacity(&self) -> usize {
        self.core.payload(self.chunk).1 - size_of::<T>()
    }
}

impl<'p, T> SampleMut<'p, MaybeUninit<T>> {
    /// Writes `value` into the chunk, making the sample initialised.
    pub fn write(self, value: T) -> SampleMut<'p, T> {
        // SAFETY: `ptr` points to this sample's exclusively loaned payload, aligned and large
        // enough for `T`; `MaybeUninit<T>` has `T`'s layout. Nothing is dropped.
        unsafe { self.ptr.cast::<T>().write(value) };
        // SAFETY: the value was just written in full.
        unsafe { self.assume_init() }
    }

    /// Raw pointer to the uninitialised payload, for writing it field by field.
    pub fn as_mut_ptr(&mut self) -> *mut T {
        self.ptr.cast()
    }

    /// Keeps the bytes the chunk already holds and declares the payload initialised: zeroes
    /// for a chunk never used, else an earlier sample of this publisher. Then write only what
    /// changes, in place: a 4 MiB frame buffer whose header is all that moves need not be
    /// written in full.
    ///
    /// Only for types in which every bit pattern is a valid value (a compile error
    /// otherwise). Sound because a chunk is memory mapped from a file: the kernel fills it
    /// with zeroes and it holds nothing but bytes written since, so it is never
    /// uninitialised.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// use shmx::{Publisher, Subscriber};
    /// let subscriber = Subscriber::<[u8; 4096]>::builder("doc/frame").root(dir.path()).create()?;
    /// let publisher = Publisher::<[u8; 4096]>::builder("doc/frame").root(dir.path()).create()?;
    /// let mut frame = publisher.loan_uninit()?.assume_recycled();
    /// frame[..4].copy_from_slice(b"head");
    /// frame.publish()?;
    /// assert_eq!(&subscriber.take()?.unwrap()[..4], b"head");
    /// # Ok::<(), shmx::Error>(())
    /// ```
    #[inline(always)]
    pub fn assume_recycled(self) -> SampleMut<'p, T>
    where
        T: ShmMessage,
    {
        const {
            assert!(
                T::ALWAYS_VALID,
                "assume_recycled() needs a type in which every bit pattern is valid; write the \
                 value and use assume_init()"
            )
        };
        // SAFETY: the payload is mapped file memory, so every byte holds a value (zero from
        // the kernel, or written by an earlier sample); every bit pattern is a valid `T`
        // (ALWAYS_VALID), so any such bytes are a valid `T`.
        unsafe { self.assume_init() }
    }

    /// Declares the payload initialised.
    ///
    /// # Safety
    /// Every byte of the `T` must have been written with a valid value (no padding exists in
    /// message types, so every field must be written).
    pub unsafe fn assume_init(self) -> SampleMut<'p, T> {
        let this = ManuallyDrop::new(self);
        SampleMut {
            core: this.core,
            chunk: this.chunk,
            ptr: this.ptr.cast(),
            tail_used: Cell::new(this.tail_used.get()),
        }
    }
}

impl<T> Deref for SampleMut<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: `ptr` points to this sample's exclusively loaned, aligned payload, which
        // holds a valid `T` by the constructor's contract (`MaybeUninit` is always valid).
        unsafe { &*self.ptr }
    }
}

/// Only for `Unpin` types: message types are `Unpin` unless they hold relative pointers,
/// which must not be moved out of their chunk.
impl<T: Unpin> DerefMut for SampleMut<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as for `deref`; the loan is exclusive, so no other reference exists (no
        // subscriber can see the chunk before it is published). `T: Unpin`, so moving the
        // value out through this reference invalidates no relative pointer.
        unsafe { &mut *self.ptr }
    }
}

impl<T> SampleMut<'_, T> {
    /// Publishes the sample with `tag` in its tag word (see `request`).
    #[inline(always)]
    pub(crate) fn publish_tagged(self, tag: u64) -> Result<()> {
        let this = ManuallyDrop::new(self);
        this.core
            .publish_tagged(this.chunk, size_of::<T>() + this.tail_used.get(), Some(tag))
    }

    /// Publishes the chunk with no payload at all, `tag` in its tag word: a marker that only
    /// its tag means something by (a response stream's end, see `request`), which only
    /// subscribers made to accept markers take.
    pub(crate) fn publish_empty(self, tag: u64) -> Result<()> {
        let this = ManuallyDrop::new(self);
        this.core.publish_tagged(this.chunk, 0, Some(tag))
    }
}

impl<T> Drop for SampleMut<'_, T> {
    fn drop(&mut self) {
        self.core.cancel(self.chunk);
    }
}

/// A received sample: a read-only view of the publisher's chunk, handed back when dropped.
pub struct Sample<'s, T> {
    core: &'s SubCore,
    ptr: *const T,
    held: Held,
    _t: PhantomData<&'s T>,
}

impl<'s, T> Sample<'s, T> {
    /// # Safety
    /// `ptr` must point to a valid, aligned `T` inside the chunk that `held` describes, or
    /// inside the private copy it names, which stays mapped (allocated) and unchanged until
    /// `core.release(held)`; `ptr` must be derived from the mapping's (the copy's) own
    /// pointer, so that it may read the sample's tail too.
    pub(crate) unsafe fn new(core: &'s SubCore, ptr: *const T, held: Held) -> Self {
        Sample {
            core,
            ptr,
            held,
            _t: PhantomData,
        }
    }

    /// The publisher's sequence number for this sample (1, 2, 3, … per publisher); gaps mean
    /// samples were dropped on the way.
    pub fn sequence(&self) -> u64 {
        self.held.seq
    }

    /// An identifier of the publisher that sent it: random per publisher (never 0), so
    /// unique within the topic and, as near as 64 random bits go, across the machines that
    /// bridges join; a sample a bridge brought from another machine carries the id its
    /// publisher has there (and its sequence number there).
    pub fn publisher_id(&self) -> u64 {
        self.held.origin
    }

    /// When its publisher published it (the publisher's wall clock), if this subscriber asked
    /// for publish times ([`SubscriberBuilder::publish_times`](crate::SubscriberBuilder::publish_times))
    /// and the publisher stamped it; `None` for samples published before it asked
    /// (history), for private copies, and for requests and responses. Written by the
    /// publisher: trust it as far as you trust the publisher.
    pub fn publish_time(&self) -> Option<std::time::SystemTime> {
        let ns = self.publish_time_ns()?;
        Some(std::time::UNIX_EPOCH + std::time::Duration::from_nanos(ns))
    }

    /// [`publish_time`](Self::publish_time) in nanoseconds since the Unix epoch.
    pub(crate) fn publish_time_ns(&self) -> Option<u64> {
        self.core.publish_time_of(self.tag())
    }

    /// Bytes the publisher published: the message and the part of its tail in use.
    pub fn payload_len(&self) -> usize {
        self.held.len
    }

    /// The tag word its publisher set (see `request`; untrusted).
    #[inline(always)]
    pub(crate) fn tag(&self) -> Option<u64> {
        self.core.tag_of(&self.held, self.ptr.cast())
    }

    pub(crate) fn held(&self) -> &Held {
        &self.held
    }

    /// The sample's first byte, as the raw pointer it was made from (derived from the
    /// mapping's or the private copy's own pointer): the way to the bytes after the message,
    /// which a `&T` does not cover.
    #[inline(always)]
    pub(crate) fn as_ptr(&self) -> *const T {
        self.ptr
    }

    /// What the sample holds and where its value is, to be rewritten in place when the
    /// sample moves on to the next one (see `SubCore::drain`).
    ///
    /// # Safety
    /// Whatever is written must keep the contract of [`Sample::new`]: a `ptr` to a valid
    /// `T` inside the chunk that the `Held` describes, held as that describes.
    #[inline(always)]
    pub(crate) unsafe fn parts_mut(&mut self) -> (&mut Held, &mut *const T) {
        (&mut self.held, &mut self.ptr)
    }

    /// Ends the sample without giving its chunk back: the caller takes that over.
    pub(crate) fn into_held(self) -> Held {
        ManuallyDrop::new(self).held
    }
}

impl<T> Deref for Sample<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the constructor's contract: a valid, aligned `T` that stays mapped and that
        // the publisher does not reuse while this sample holds it.
        unsafe { &*self.ptr }
    }
}

impl<T: std::fmt::Debug> std::fmt::Debug for Sample<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sample")
            .field("sequence", &self.held.seq)
            .field("value", &**self)
            .finish()
    }
}

/// A [`Sample`] taken apart into plain values, its drop not run: for handing a sample to a
/// function that is not inlined (a rare case) without the sample escaping into memory on the
/// caller's common way too. (A moved sample is passed as a pointer to the caller's own slot,
/// which then lives in memory on every way, and a later move of it, into a response, copies
/// it with loads that wait for the stores it was just written with; a copy of this is passed
/// as a temporary of the rare way alone.)
pub(crate) struct SampleParts<'s, T> {
    core: &'s SubCore,
    ptr: *const T,
    held: Held,
}

impl<T> Clone for SampleParts<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for SampleParts<'_, T> {}

impl<'s, T> Sample<'s, T> {
    /// The sample as plain values (see [`SampleParts`]); [`from_parts`](Self::from_parts) makes
    /// it a sample again.
    #[inline(always)]
    pub(crate) fn into_parts(self) -> SampleParts<'s, T> {
        let this = ManuallyDrop::new(self);
        SampleParts {
            core: this.core,
            ptr: this.ptr,
            held: this.held,
        }
    }

    /// The sample that [`into_parts`](Self::into_parts) took apart.
    ///
    /// # Safety
    /// `raw` comes from `into_parts`, and is made a sample again once at most (each sample
    /// gives its chunk back when dropped).
    #[inline(always)]
    pub(crate) unsafe fn from_parts(raw: SampleParts<'s, T>) -> Self {
        Sample {
            core: raw.core,
            ptr: raw.ptr,
            held: raw.held,
            _t: PhantomData,
        }
    }
}

impl<T> Drop for Sample<'_, T> {
    fn drop(&mut self) {
        self.core.release(&self.held);
    }
}
