use shmx::ShmMessage;

#[derive(ShmMessage)]
#[repr(C)]
pub struct Borrowing {
    pub len: u64,
    pub data: &'static [u8; 16],
    pub name: &'static str,
}

fn main() {}
