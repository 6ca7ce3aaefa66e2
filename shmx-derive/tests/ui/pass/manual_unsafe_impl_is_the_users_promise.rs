// The hidden method is not a seal: a hand-written `unsafe impl` that writes it compiles. It is
// then the writer's own unsafe promise (layout, no padding, complete validation, a truthful
// schema and fingerprint: see `ShmMessage`'s `# Safety`), which this one keeps: a `u32` in a
// `repr(transparent)` struct, every bit pattern valid, described exactly as a `u32`.
use shmx::message::{Schema, ValidationContext, ValidationError};
use shmx::ShmMessage;

#[repr(transparent)]
pub struct Handmade {
    pub x: u32,
}

// SAFETY: `Handmade` is a transparent `u32`: 4 bytes, no padding, no pointers; every bit
// pattern (so also zero) is a valid value, and its schema is `u32`'s, which describes it
// exactly.
unsafe impl ShmMessage for Handmade {
    const TYPE_NAME: &'static str = "Handmade";
    const SCHEMA: &'static Schema = u32::SCHEMA;
    const ALWAYS_VALID: bool = true;
    const ZEROABLE: bool = true;
    unsafe fn validate(_: *const Self, _: &ValidationContext) -> Result<(), ValidationError> {
        Ok(())
    }
    fn __shmx_sealed(_: shmx::__private::Sealed) {}
}

fn main() {
    assert_eq!(Handmade::FINGERPRINT, u32::FINGERPRINT);
}
