// A message type must not implement `Drop`: `Pin::set` on a pinned field of a loaned sample
// drops the old value in place, and a `Drop` impl could `mem::take` its relative pointers
// and carry them out of their chunk. The derive makes any `impl Drop` a conflict.
use shmx::{RelSlice, ShmMessage};

#[derive(ShmMessage)]
#[repr(C)]
pub struct Inner {
    pub bits: RelSlice<bool>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        let _stolen = std::mem::take(&mut self.bits);
    }
}

fn main() {}
