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
    assert_eq!(Raw::SCHEMA.describe(), "Raw(4,4){type@0:u32}");
    // Alignment is part of the text: the same fields aligned otherwise print otherwise.
    assert_eq!(
        Aligned::SCHEMA.describe(),
        "Aligned(16,16){a@0:u64,b@8:Meters(8,8){value@0:f64}}"
    );
    assert_eq!(TwoAttrs::SCHEMA.describe(), "TwoAttrs(8,8){a@0:[u8;8]}");
}
