use shmx::ShmMessage;

#[derive(ShmMessage)]
#[repr(C)]
pub struct Unit;

fn main() {}
