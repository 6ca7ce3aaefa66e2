use shmx::ShmMessage;

#[derive(ShmMessage)]
#[repr(C)]
#[shm(rename = "Other")]
pub struct UnknownOption {
    pub x: u32,
}

#[derive(ShmMessage)]
#[repr(C)]
#[shm(name = "")]
pub struct EmptyName {
    pub x: u32,
}

#[derive(ShmMessage)]
#[repr(C)]
pub struct OnField {
    #[shm(name = "y")]
    pub x: u32,
}

fn main() {}
