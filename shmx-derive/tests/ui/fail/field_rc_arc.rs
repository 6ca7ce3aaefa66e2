use shmx::ShmMessage;
use std::rc::Rc;
use std::sync::Arc;

#[derive(ShmMessage)]
#[repr(C)]
pub struct Shared {
    pub a: Rc<u64>,
    pub b: Arc<[u8]>,
    pub c: std::sync::Arc<u8>,
}

fn main() {}
