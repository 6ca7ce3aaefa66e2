// The derive implements `Unpin` for a message exactly when all its fields are `Unpin`; a
// hand-written `impl Unpin`, which would give a type holding relative pointers a mutable
// deref (and so `mem::swap`) again, conflicts with it.
use shmx::{RelSlice, ShmMessage};

#[derive(ShmMessage)]
#[repr(C)]
pub struct Frame {
    pub seq: u32,
    pub pixels: RelSlice<u8>,
}

impl Unpin for Frame {}

fn main() {}
