use shmx::ShmMessage;

#[derive(ShmMessage)]
#[repr(C)]
pub struct Flags {
    pub armed: bool,
    pub ready: bool,
    pub _pad: [u8; 2],
    pub count: u32,
}

fn main() {
    const _: () = assert!(!<Flags as ShmMessage>::ALWAYS_VALID);
    const _: () = assert!(<Flags as ShmMessage>::ZEROABLE);
    assert_eq!(Flags::SCHEMA.describe(), "Flags(8,4){armed@0:bool,ready@1:bool,_pad@2:[u8;2],count@4:u32}");
}
