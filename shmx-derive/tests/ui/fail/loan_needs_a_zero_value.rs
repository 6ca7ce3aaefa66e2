use shmx::{Publisher, ShmMessage};

#[derive(ShmMessage, Clone, Copy)]
#[repr(u8)]
enum Gear {
    First = 1,
    Second = 2,
}

fn main() {
    let publisher = Publisher::<Gear>::new("gears").unwrap();
    let _sample = publisher.loan();
}
