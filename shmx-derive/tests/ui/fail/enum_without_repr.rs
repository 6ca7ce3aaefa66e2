use shmx::ShmMessage;

#[derive(ShmMessage)]
pub enum Mode {
    Idle,
    Running,
}

// `repr(C)` alone leaves the size of the discriminant to the platform's C compiler.
#[derive(ShmMessage)]
#[repr(C)]
pub enum CMode {
    Idle,
    Running,
}

fn main() {}
