use shmx::ShmMessage;

#[derive(ShmMessage)]
#[repr(C)]
#[shm(name = "robot::Pose")]
pub struct PoseV2 {
    pub x: f64,
}

#[derive(ShmMessage)]
#[repr(u8)]
#[shm(name = "robot::Mode")]
pub enum ModeV2 {
    A,
}

fn main() {
    assert_eq!(PoseV2::TYPE_NAME, "robot::Pose");
    assert_eq!(PoseV2::SCHEMA.name, "robot::Pose");
    assert_eq!(ModeV2::TYPE_NAME, "robot::Mode");
}
