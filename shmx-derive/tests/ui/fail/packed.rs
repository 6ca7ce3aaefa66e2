use shmx::ShmMessage;

#[derive(ShmMessage)]
#[repr(C, packed)]
pub struct Packed {
    pub a: u8,
    pub b: u32,
}

#[derive(ShmMessage)]
#[repr(C, packed(2))]
pub struct PackedTwo {
    pub a: u16,
    pub b: u32,
}

fn main() {}
