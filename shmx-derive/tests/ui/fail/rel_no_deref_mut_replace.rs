// A loaned sample of a type holding relative pointers derefs to `&T` only (it is not `Unpin`):
// `mem::replace`, which would move the message (and its pointer) out of the chunk, does not
// compile.
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
    let mut sample = publisher.loan().unwrap();
    sample.writer().set_pixels(&[1, 2, 3]).unwrap();
    let moved_out = std::mem::replace(
        &mut *sample,
        Frame {
            seq: 0,
            pixels: RelSlice::new(),
        },
    );
    let _ = moved_out.pixels();
}
