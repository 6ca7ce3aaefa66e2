// `loan_uninit()` for a type holding relative pointers gives a sample that derefs to
// `&MaybeUninit<T>` only (`MaybeUninit<T>` is `Unpin` exactly when `T` is): neither an
// assignment through it nor `mem::swap` of two such samples compiles.
// (`mut` is kept where only a mutable deref would need it, so that the test fails for that
// reason alone.)
#![allow(unused_mut)]
use shmx::{Publisher, RelSlice, ShmMessage};
use std::mem::MaybeUninit;

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
    let mut s = publisher.loan_uninit().unwrap();
    let mut t = publisher.loan_uninit().unwrap();
    *s = MaybeUninit::uninit();
    std::mem::swap(&mut *s, &mut *t);
}
