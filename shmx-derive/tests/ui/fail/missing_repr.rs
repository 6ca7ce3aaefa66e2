use shmx::ShmMessage;

#[derive(ShmMessage)]
pub struct Pose {
    pub x: f64,
    pub y: f64,
}

fn main() {}
