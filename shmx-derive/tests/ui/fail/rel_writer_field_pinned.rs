// The writer holds each relative pointer as a `Pin<&mut _>`, which does not deref mutably:
// neither `mem::swap` of two writers' pointers nor `mem::take` of one (each would carry a
// pointer out of the place it is relative to) compiles.
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
    let mut w1 = a.writer();
    let mut w2 = b.writer();
    w1.set_pixels(&[1, 2, 3]).unwrap();
    std::mem::swap(&mut *w1.pixels, &mut *w2.pixels);
    let taken: RelSlice<u8> = std::mem::take(&mut *w1.pixels);
    drop(taken);
}
