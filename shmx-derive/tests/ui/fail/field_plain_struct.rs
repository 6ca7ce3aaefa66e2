use shmx::ShmMessage;

#[repr(C)]
pub struct NotDerived {
    pub x: f64,
}

#[derive(ShmMessage)]
#[repr(C)]
pub struct Outer {
    pub seq: u64,
    pub inner: NotDerived,
    pub many: [NotDerived; 2],
}

fn main() {}
