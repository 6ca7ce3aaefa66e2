use shmx::ShmMessage;

#[derive(ShmMessage)]
#[repr(usize)]
pub enum WideMode {
    Idle,
    Running,
}

fn main() {}
