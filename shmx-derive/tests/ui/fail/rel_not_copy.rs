// Relative pointers are neither `Copy` nor `Clone`: a message that holds one cannot derive
// either, so safe code cannot duplicate a non-empty pointer and carry the copy out of its chunk.
use shmx::{RelSlice, RelStr, ShmMessage};

#[derive(ShmMessage, Clone, Copy)]
#[repr(C)]
pub struct Frame {
    pub seq: u32,
    pub pixels: RelSlice<u8>,
}

#[derive(ShmMessage, Clone)]
#[repr(C)]
pub struct Label {
    pub name: RelStr,
}

fn main() {}
