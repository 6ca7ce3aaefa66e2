use super::*;

/// A fake chunk: `[RelSlice<u16>][tail]`, 8-aligned.
#[repr(C, align(8))]
struct Chunk([u8; 64]);

fn ctx(chunk: &Chunk, len: usize) -> ValidationContext {
    ValidationContext::new(chunk.0.as_ptr(), 8, len)
}

fn put(chunk: &mut Chunk, offset: u32, len: u32) {
    chunk.0[..4].copy_from_slice(&offset.to_ne_bytes());
    chunk.0[4..8].copy_from_slice(&len.to_ne_bytes());
}

fn check<T: ShmMessage>(chunk: &Chunk, len: usize) -> Result<(), ValidationError> {
    // SAFETY: the chunk is 64 readable bytes, 8-aligned; validate reads integers.
    unsafe { T::validate(chunk.0.as_ptr().cast(), &ctx(chunk, len)) }
}

#[test]
fn validation_accepts_exactly_the_slices_inside_the_tail() {
    let mut c = Chunk([0; 64]);
    put(&mut c, 0, 0);
    assert!(check::<RelSlice<u16>>(&c, 8).is_ok(), "empty");
    put(&mut c, 1234, 0);
    assert!(check::<RelSlice<u16>>(&c, 8).is_ok(), "empty, any offset");
    put(&mut c, 8, 4);
    assert!(check::<RelSlice<u16>>(&c, 16).is_ok());
    assert!(
        check::<RelSlice<u16>>(&c, 15).is_err(),
        "past the published end"
    );
    put(&mut c, 4, 4);
    assert!(check::<RelSlice<u16>>(&c, 64).is_err(), "into the message");
    put(&mut c, 9, 1);
    assert!(check::<RelSlice<u16>>(&c, 64).is_err(), "misaligned");
    put(&mut c, u32::MAX, 1);
    assert!(check::<RelSlice<u16>>(&c, 64).is_err(), "far out");
    put(&mut c, 8, u32::MAX);
    assert!(check::<RelSlice<u16>>(&c, 64).is_err(), "too long");
    put(&mut c, 8, 3);
    c.0[8..11].copy_from_slice(&[1, 0, 2]);
    assert_eq!(
        check::<RelSlice<bool>>(&c, 11),
        Err(ValidationError::InvalidBool {
            offset: 10,
            value: 2
        })
    );
    put(&mut c, 8, 3);
    c.0[8..11].copy_from_slice(b"ab\xff");
    assert_eq!(
        check::<RelStr>(&c, 11),
        Err(ValidationError::InvalidUtf8 { offset: 0 })
    );
    c.0[10] = b'c';
    assert!(check::<RelStr>(&c, 11).is_ok());
}

#[test]
fn tail_allocates_aligned_disjoint_ranges_and_refuses_strangers() {
    let mut c = Chunk([0; 64]);
    let used = Cell::new(0);
    let base = c.0.as_mut_ptr();
    // SAFETY: `c` is 64 writable bytes borrowed for the test; the first 8 are the message.
    let tail = unsafe { Tail::new(base, 8, 64, &used, "t") };
    // SAFETY: the slice lives at the start of `c`, which it does not outlive.
    let mut field = unsafe { Pin::new_unchecked(&mut *base.cast::<RelSlice<u32>>()) };
    let a = field.as_mut().copy_from(tail, &[1, 2, 3]).unwrap();
    assert_eq!(a, &[1, 2, 3]);
    assert_eq!(tail.used(), 12);
    let mut s = RelSlice::<u32>::new();
    // SAFETY: `s` lives on the stack for the rest of the test.
    let stranger = unsafe { Pin::new_unchecked(&mut s) };
    assert!(matches!(
        stranger.copy_from(tail, &[1]),
        Err(Error::ForeignTail { .. })
    ));
    let b = field.as_mut().alloc(tail, 10).unwrap();
    assert_eq!(b.len(), 10);
    assert_eq!(tail.used(), 52);
    assert!(matches!(
        field.as_mut().alloc(tail, 2),
        Err(Error::TailFull {
            requested: 8,
            available: 4,
            ..
        })
    ));
    let ctx = ctx(&c, 8 + tail.used());
    // SAFETY: as in `check`.
    unsafe { RelSlice::<u32>::validate(c.0.as_ptr().cast(), &ctx) }.unwrap();
}

#[test]
fn readers_recheck_every_time_and_read_a_rewritten_pointer_as_empty() {
    // Two chunks of 32 payload bytes; a `RelSlice<u16>` at the start of the first.
    let mut c = Chunk([0; 64]);
    let base = c.0.as_mut_ptr();
    let chunks = crate::regions::Chunks {
        first: 0,
        stride: 32,
        payload_off: 0,
        capacity: 32,
        count: 2,
    };
    let _region = crate::regions::Region::register(base, 64, chunks);
    // All writes and reads go through `base`, as a publisher's and a subscriber's would.
    let put = |offset: u32, len: u32, tail: &[u8]| {
        let mut head = [0u8; 8];
        head[..4].copy_from_slice(&offset.to_ne_bytes());
        head[4..].copy_from_slice(&len.to_ne_bytes());
        // SAFETY: `base` points to the 64 bytes of `c`, written only through it while
        // no reference into them is live; 8 + `tail.len()` ≤ 64 here.
        unsafe {
            core::ptr::copy_nonoverlapping(head.as_ptr(), base, 8);
            core::ptr::copy_nonoverlapping(tail.as_ptr(), base.add(8), tail.len());
        }
    };
    let read = || -> Vec<u16> {
        // SAFETY: the chunk starts with an 8-byte, 8-aligned RelSlice<u16>; the reference
        // ends with this call.
        let slice = unsafe { &*base.cast::<RelSlice<u16>>() };
        slice.as_slice().to_vec()
    };
    put(8, 2, &[1, 0, 2, 0]);
    assert_eq!(read(), [1, 2]);
    put(30, 2, &[]); // runs past the first chunk's payload
    assert!(read().is_empty());
    put(32, 2, &[]); // wholly in the second chunk: not this sample's
    assert!(read().is_empty());
    put(9, 1, &[]); // misaligned
    assert!(read().is_empty());
    put(u32::MAX, u32::MAX, &[]); // overflows
    assert!(read().is_empty());
    put(8, 3, b"a\xffb");
    // SAFETY: as above; RelStr has the layout of RelSlice<u8>.
    let s = unsafe { &*base.cast::<RelStr>() };
    assert_eq!(s.as_str(), "", "not UTF-8 any more");
    put(8, 3, b"abc");
    // SAFETY: as above.
    let s = unsafe { &*base.cast::<RelStr>() };
    assert_eq!(s.as_str(), "abc");
    // The slice handed out lies where the field says, in `c`.
    // SAFETY: as above.
    let s = unsafe { &*base.cast::<RelStr>() };
    assert_eq!(s.as_str().as_ptr(), base.wrapping_add(8).cast_const());
}
