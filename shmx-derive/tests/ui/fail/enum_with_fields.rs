use shmx::ShmMessage;

#[derive(ShmMessage)]
#[repr(u8)]
pub enum Command {
    Stop,
    Move(f64, f64),
    Turn { angle: f32 },
}

fn main() {}
