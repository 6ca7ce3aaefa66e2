use shmx::ShmMessage;

#[derive(ShmMessage, Clone, Copy)]
#[repr(C)]
pub struct Point {
    pub x: f32,
    pub y: f32,
}

#[derive(ShmMessage)]
#[repr(C)]
pub struct Polygon {
    pub count: u32,
    pub _pad: [u8; 4],
    pub points: [Point; 16],
    pub flags: [[bool; 2]; 8],
}

fn main() {
    assert_eq!(core::mem::size_of::<Polygon>(), 8 + 16 * 8 + 16);
    const _: () = assert!(!<Polygon as ShmMessage>::ALWAYS_VALID);
    const _: () = assert!(<Polygon as ShmMessage>::ZEROABLE);
}
