use shmx::ShmMessage;
use std::cell::Cell;

#[derive(ShmMessage)]
#[repr(C)]
pub struct Odd {
    pub callback: fn(u32) -> u32,
    pub pair: (u32, u32),
    pub maybe: Option<u32>,
    pub counter: Cell<u32>,
    pub index: usize,
    pub buffers: [Vec<u8>; 2],
}

fn main() {}
