//! Items used by code that `#[derive(ShmMessage)]` generates. Not public API.

/// The seal: only code that names this type can implement `ShmMessage`.
pub struct Sealed(());

pub use core;
