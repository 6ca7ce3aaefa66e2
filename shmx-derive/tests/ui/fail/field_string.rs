use shmx::ShmMessage;

#[derive(ShmMessage)]
#[repr(C)]
pub struct Named {
    pub id: u64,
    pub name: String,
}

fn main() {}
