use shmx::ShmMessage;

#[derive(ShmMessage, Clone, Copy)]
#[repr(C)]
pub struct Vec3 {
    pub x: f64,
    pub y: f64,
    pub z: f64,
}

#[derive(ShmMessage, Clone, Copy)]
#[repr(C)]
pub struct Pose {
    pub seq: u64,
    pub position: Vec3,
    pub orientation: [f64; 4],
}

mod inner {
    // The derive works without any `use` of shmx items in scope.
    #[derive(shmx::ShmMessage)]
    #[repr(C)]
    pub struct Stamped {
        pub stamp: u64,
        pub pose: super::Pose,
    }
}

fn main() {
    const _: () = assert!(<Pose as ShmMessage>::ALWAYS_VALID);
    const _: () = assert!(<Pose as ShmMessage>::ZEROABLE);
    assert_eq!(Pose::SCHEMA.describe(), "Pose(64,8){seq@0:u64,position@8:Vec3(24,8){x@0:f64,y@8:f64,z@16:f64},orientation@32:[f64;4]}");
    assert_eq!(<inner::Stamped as ShmMessage>::TYPE_NAME, "Stamped");
}
