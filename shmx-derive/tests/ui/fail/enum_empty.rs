use shmx::ShmMessage;

#[derive(ShmMessage)]
#[repr(u8)]
pub enum Never {}

fn main() {}
