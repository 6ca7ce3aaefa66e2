// A loaned sample of a type holding relative pointers derefs to `&T` only (it is not `Unpin`):
// `mem::swap` of two loaned samples, which would leave each pointer aimed at the other
// chunk's tail, does not compile.
// (`mut` is kept where only a mutable deref would need it, so that the test fails for that
// reason alone.)
#![allow(unused_mut)]
use shmx::{Publisher, RelSlice, ShmMessage};

#[derive(ShmMessage)]
#[repr(C)]
pub struct Frame {
    pub seq: u32,
    pub pixels: RelSlice<u8>,
}

fn main() {
    let publisher = Publisher::<Frame>::builder("frames")
        .max_tail_bytes(64)
        .create()
        .unwrap();
    let mut a = publisher.loan().unwrap();
    let mut b = publisher.loan().unwrap();
    a.writer().set_pixels(&[1, 2, 3]).unwrap();
    std::mem::swap(&mut *a, &mut *b);
}
