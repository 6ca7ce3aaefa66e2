use shmx::ShmMessage;

#[derive(ShmMessage)]
#[repr(C)]
pub struct Meters(pub f64);

#[derive(ShmMessage)]
#[repr(C)]
pub struct Pair(pub u32, pub [u8; 4]);

fn main() {}
