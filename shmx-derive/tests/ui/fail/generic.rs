use shmx::ShmMessage;

#[derive(ShmMessage)]
#[repr(C)]
pub struct Wrapper<T> {
    pub value: T,
}

#[derive(ShmMessage)]
#[repr(C)]
pub struct Buffer<const N: usize> {
    pub bytes: [u8; N],
}

#[derive(ShmMessage)]
#[repr(C)]
pub struct Borrowed<'a> {
    pub bytes: &'a [u8; 4],
}

fn main() {}
