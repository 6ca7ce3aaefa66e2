// The hidden method keeps accidental impls out (it is not a seal): one without it is refused.
use shmx::message::{Schema, ValidationContext, ValidationError};
use shmx::ShmMessage;

#[repr(C)]
pub struct Handmade {
    pub x: u32,
}

unsafe impl ShmMessage for Handmade {
    const TYPE_NAME: &'static str = "Handmade";
    const SCHEMA: &'static Schema = u32::SCHEMA;
    const ALWAYS_VALID: bool = true;
    const ZEROABLE: bool = true;
    unsafe fn validate(_: *const Self, _: &ValidationContext) -> Result<(), ValidationError> {
        Ok(())
    }
}

fn main() {}
