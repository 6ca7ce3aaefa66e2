use shmx::ShmMessage;

// A gap between two fields.
#[derive(ShmMessage)]
#[repr(C)]
pub struct Gap {
    pub flag: u8,
    pub value: u32,
}

// Padding at the end, to round the size up to the alignment.
#[derive(ShmMessage)]
#[repr(C)]
pub struct Tail {
    pub value: u64,
    pub flag: u8,
}

// Both, reported separately.
#[derive(ShmMessage)]
#[repr(C)]
pub struct Both {
    pub a: u8,
    pub b: u16,
    pub c: u64,
    pub d: u16,
}

// An alignment larger than the fields need adds padding at the end.
#[derive(ShmMessage)]
#[repr(C, align(16))]
pub struct OverAligned {
    pub value: u64,
}

fn main() {}
