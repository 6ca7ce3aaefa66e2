use shmx::{Publisher, ShmMessage};

#[derive(ShmMessage, Clone, Copy)]
#[repr(C)]
struct Flag {
    on: bool,
}

fn main() {
    let publisher = Publisher::<Flag>::new("flags").unwrap();
    let _sample = publisher.loan_uninit().unwrap().assume_recycled();
}
