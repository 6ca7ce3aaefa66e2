//! The generated code compiles warning-free under strict lints and does not depend on what
//! the user's module calls `core`, `Result`, `Ok`, `Schema` or `Field`, nor on field names.
#![deny(
    warnings,
    missing_docs,
    unsafe_op_in_unsafe_fn,
    unused_qualifications,
    rust_2018_idioms,
    trivial_casts,
    trivial_numeric_casts
)]
#![allow(dead_code, non_camel_case_types)]

mod core {}
type Result = ();
struct Ok;
struct Err;
struct Schema;
struct Field;
struct Sealed;

/// Fields with the names the generated `validate` uses for its own variables.
#[derive(shmx::ShmMessage)]
#[repr(C)]
pub struct Names {
    /// A field called `ptr`.
    pub ptr: u64,
    /// A field called `ctx`.
    pub ctx: bool,
    /// A field called `offset`.
    pub offset: bool,
    /// A field called `e`.
    pub e: [u8; 6],
}

/// Variants with names of locals.
#[derive(shmx::ShmMessage)]
#[repr(u16)]
pub enum Locals {
    /// `value`
    value = 3,
    /// `known`
    known,
}

/// An empty struct is a (zero-sized) message.
#[derive(shmx::ShmMessage)]
#[repr(C)]
pub struct Empty {}

fn main() {
    assert_eq!(<Names as shmx::ShmMessage>::SCHEMA.describe(), "Names(16,8){ptr@0:u64,ctx@8:bool,offset@9:bool,e@10:[u8;6]}");
    assert_eq!(<Empty as shmx::ShmMessage>::SCHEMA.size, 0);
}
