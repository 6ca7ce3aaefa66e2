use shmx::ShmMessage;

#[derive(ShmMessage)]
#[repr(C)]
pub struct Boxed {
    pub value: Box<u64>,
    pub maybe: Option<Box<u64>>,
}

fn main() {}
