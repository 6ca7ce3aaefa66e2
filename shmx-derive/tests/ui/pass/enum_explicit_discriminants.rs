use shmx::ShmMessage;

#[derive(ShmMessage, Clone, Copy, Debug, PartialEq)]
#[repr(u8)]
pub enum Mode {
    Idle = 1,
    Running = 5,
    Fault = 0xff,
}

#[derive(ShmMessage, Clone, Copy)]
#[repr(i16)]
pub enum Offset {
    Back = -1,
    Here,
    Forward = 7,
}

#[derive(ShmMessage, Clone, Copy)]
#[repr(u32)]
pub enum Implicit {
    Zero,
    One,
    Two,
}

#[derive(ShmMessage)]
#[repr(C)]
pub struct Status {
    pub mode: Mode,
    pub _pad: u8,
    pub offset: Offset,
    pub implicit: Implicit,
}

fn main() {
    const _: () = assert!(!<Mode as ShmMessage>::ZEROABLE);
    const _: () = assert!(<Offset as ShmMessage>::ZEROABLE); // Here = 0
    assert_eq!(Mode::SCHEMA.describe(), "Mode:u8{Idle=1,Running=5,Fault=255}");
    assert_eq!(Offset::SCHEMA.describe(), "Offset:i16{Back=-1,Here=0,Forward=7}");
    assert_eq!(Implicit::SCHEMA.describe(), "Implicit:u32{Zero=0,One=1,Two=2}");
    assert_eq!(core::mem::size_of::<Status>(), 8);
}
