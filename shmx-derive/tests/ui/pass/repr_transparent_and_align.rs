use shmx::ShmMessage;

#[derive(ShmMessage)]
#[repr(transparent)]
pub struct Meters {
    pub value: f64,
}

#[derive(ShmMessage)]
#[repr(C, align(16))]
pub struct Aligned {
    pub a: u64,
    pub b: Meters,
}

#[derive(ShmMessage)]
#[repr(C)]
#[repr(align(8))]
pub struct TwoAttrs {
    pub a: [u8; 8],
}

// A raw identifier as a field name is recorded without `r#`.
#[derive(ShmMessage)]
#[repr(C)]
pub struct Raw {
    pub r#type: u32,
}

fn main() {
    assert_eq!(Meters::SCHEMA.size, 8);
    assert_eq!(Aligned::SCHEMA.align, 16);
    assert_eq!(TwoAttrs::SCHEMA.align, 8);
    assert_eq!(Raw::SCHEMA.describe(), "Raw{type@0:u32}");
}
