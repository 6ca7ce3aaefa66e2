// The slice that `alloc_<field>` hands out borrows the writer: while it lives, the field
// cannot be read through the writer (`&w.pixels` derefs to the very same elements, and a
// `&[T]` next to a `&mut [T]` of the same memory is undefined behaviour).
use shmx::{Publisher, RelSlice, ShmMessage};

#[derive(ShmMessage)]
#[repr(C)]
pub struct Frame {
    pub seq: u32,
    pub pixels: RelSlice<u32>,
}

fn main() {
    let publisher = Publisher::<Frame>::builder("frames")
        .max_tail_bytes(64)
        .create()
        .unwrap();
    let mut sample = publisher.loan().unwrap();
    let mut w = sample.writer();
    let px: &mut [u32] = w.alloc_pixels(4).unwrap();
    let view: &[u32] = &w.pixels;
    px[0] = 2;
    assert_eq!(view[0], 2);
}
