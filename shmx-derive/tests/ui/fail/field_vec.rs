use shmx::ShmMessage;

#[derive(ShmMessage)]
#[repr(C)]
pub struct Image {
    pub width: u32,
    pub height: u32,
    pub pixels: Vec<u8>,
}

fn main() {}
