use shmx::ShmMessage;

#[derive(ShmMessage)]
#[repr(C)]
pub struct Pointing {
    pub data: *const u8,
    pub out: *mut u64,
}

fn main() {}
