//! Compile-time behaviour of `#[derive(ShmMessage)]`: what it accepts (`ui/pass`) and what it
//! refuses, with which message (`ui/fail/*.rs` and their `.stderr` snapshots).
//!
//! Regenerate the snapshots with `TRYBUILD=overwrite cargo test -p shmx-derive --test ui`, then
//! read every changed `.stderr`.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.pass("tests/ui/pass/*.rs");
    t.compile_fail("tests/ui/fail/*.rs");
}
