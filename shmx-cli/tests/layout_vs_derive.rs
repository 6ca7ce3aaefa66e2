//! The CLI lays out exactly what the derive does: a property test over generated message
//! types compares the layout of `shmx`'s JSON codec (`pub`, `echo`) with that of
//! `#[derive(ShmMessage)]`, which is rustc's.
//!
//! rustc's layout can only be observed by compiling, so each run generates random message
//! types as Rust source (primitives of every kind, nested arrays, nested structs,
//! `repr(C, align(N))`, `repr(transparent)` wrappers, zero-sized structs, fieldless enums of
//! every integer repr with negative and extreme discriminants, `RelSlice`s of primitives,
//! arrays, enums and over-aligned structs, `RelStr`s, relative pointers nested in structs and
//! arrays, `#[shm(name = "a::b::Name")]` names), each with a random value, and builds them
//! into one probe program (`target/layout-probe/`, its own workspace, the workspace's
//! `Cargo.lock`, built offline; dependencies are reused between runs, and two runs in one
//! workspace take turns with it). The generator places explicit `_padN: [u8; K]` fields by
//! the `repr(C)` rules, and the probe asserts at compile time that rustc agrees with the
//! generator's offsets, sizes and alignments.
//!
//! Then, for each type, against the real `shmx` binary and real processes (a fresh
//! `SHMX_ROOT` under /dev/shm):
//! 1. layout: the derive's schema text (`Schema::describe`) is the one the generator
//!    predicts, `shmx info --json` shows it with the type's size, and `shmx pub`/`echo`
//!    accept it;
//! 2. CLI encodes, derive reads: `shmx pub` publishes the value as JSON (with exactly the
//!    tail it needs), and the probe's typed `Subscriber` receives it (its validation of
//!    alignment and bounds passes) and reads the same value through the derive's readers;
//! 3. derive writes, CLI decodes: the probe writes the value through the derive's writer
//!    (relative pointers in the same order) into a `Publisher` with exactly that tail, and
//!    `shmx echo` prints the same value;
//! 4. both samples are byte for byte the same (the derive aligns its tail's absolute
//!    addresses, the CLI offsets from the sample's start, which is aligned to
//!    `Schema::sample_align`), and both lie at addresses aligned to `sample_align`.
//!
//! Values: integers at and between the ends of their range (`u128`/`i128` as decimal
//! strings, sometimes as numbers), floats of any bits (subnormals, extremes, -0.0, NaN and
//! infinities included; compared bit for bit at their own width), enums by name (sometimes by
//! number), strings with multi-byte UTF-8 and characters JSON escapes, relative slices of 0
//! to 5 elements (of zero-sized elements too, which the derive's readers show by their
//! length); padding fields are sometimes left out of what `shmx pub` is given.
//!
//! Every run prints its seed; a failure names the seed, the type's Rust source, its schema
//! and what differed. To run one seed again (the generated probe source is left in
//! `target/layout-probe/src/cases.rs`):
//!
//! ```text
//! SHMX_LAYOUT_SEED=12345 cargo test -p shmx-cli --test layout_vs_derive -- --nocapture
//! ```
//!
//! `SHMX_LAYOUT_CASES=N` changes the number of types (default 40).

mod common;

// The parts, in tests/layout_vs_derive/ (cargo makes no test targets of files in a
// subdirectory of tests/): `generate` makes the types and values, `model` holds them and
// lays the types out, `values` writes values as JSON and compares them, `source` writes the
// probe's Rust source, `probe` builds and drives the probe, `commands` runs `shmx` (and
// cargo), `checks` checks one case.
#[path = "layout_vs_derive/checks.rs"]
mod checks;
#[path = "layout_vs_derive/commands.rs"]
mod commands;
#[path = "layout_vs_derive/generate.rs"]
mod generate;
#[path = "layout_vs_derive/model.rs"]
mod model;
#[path = "layout_vs_derive/probe.rs"]
mod probe;
#[path = "layout_vs_derive/source.rs"]
mod source;
#[path = "layout_vs_derive/values.rs"]
mod values;

use checks::check_case;
use generate::Gen;
use model::Case;
use probe::{build_probe, Probe, ProbeDir};
use std::time::Instant;

/// Types generated per run, unless `SHMX_LAYOUT_CASES` says otherwise.
const DEFAULT_CASES: usize = 40;

#[test]
fn the_cli_lays_out_messages_as_the_derive_does() {
    let seed = std::env::var("SHMX_LAYOUT_SEED")
        .ok()
        .map(|s| parse_seed(&s))
        .unwrap_or_else(|| {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .expect("a clock after 1970")
                .as_nanos() as u64;
            nanos ^ (u64::from(std::process::id()) << 32)
        });
    let cases = std::env::var("SHMX_LAYOUT_CASES")
        .ok()
        .map(|s| s.parse().expect("SHMX_LAYOUT_CASES is a number"))
        .unwrap_or(DEFAULT_CASES);
    println!(
        "layout_vs_derive: seed {seed} (SHMX_LAYOUT_SEED={seed} reproduces it), {cases} types"
    );

    let mut gen = Gen::new(seed);
    let tops: Vec<Case> = (0..cases).map(|i| gen.case(i)).collect();

    // This run's until the end of the test, when the probe has exited: another run of the
    // test in this workspace waits for it.
    let probe_dir = ProbeDir::take();
    let started = Instant::now();
    let probe = build_probe(&probe_dir, seed, &gen, &tops);
    println!("layout_vs_derive: probe built in {:.1?}", started.elapsed());

    let checked = Instant::now();
    let root = common::fresh_root();
    let mut probe = Probe::start(&probe, root.path(), seed);
    let mut failures = Vec::new();
    for case in &tops {
        if let Err(e) = check_case(&gen, case, &mut probe, root.path()) {
            failures.push(format!(
                "case {} ({}): {e}\n  schema: {}\n  value: {}\n  Rust source:\n{}",
                case.index,
                gen.rust_ty(&case.ty),
                gen.text(&case.ty),
                gen.json(&case.ty, &case.value),
                indent(&gen.source_of(&case.ty), 4),
            ));
            if !probe.alive() {
                failures.push(format!(
                    "the probe died: the {} types after case {} were not checked",
                    tops.len() - case.index - 1,
                    case.index
                ));
                break;
            }
        }
    }
    probe.finish();
    println!(
        "layout_vs_derive: {} types checked in {:.1?}: {}",
        tops.len(),
        checked.elapsed(),
        gen.summary(&tops)
    );
    drop(root);
    assert!(
        failures.is_empty(),
        "seed {seed} (rerun with SHMX_LAYOUT_SEED={seed}): {} of {} types failed; the probe \
         source is target/layout-probe/src/cases.rs\n\n{}\n\nprobe stderr:\n{}",
        failures.len(),
        tops.len(),
        failures.join("\n\n"),
        probe.stderr()
    );
}

fn parse_seed(s: &str) -> u64 {
    let s = s.trim();
    match s.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => s.parse(),
    }
    .unwrap_or_else(|e| panic!("SHMX_LAYOUT_SEED={s:?} is not a number: {e}"))
}

fn indent(text: &str, by: usize) -> String {
    let pad = " ".repeat(by);
    text.lines()
        .map(|l| format!("{pad}{l}"))
        .collect::<Vec<_>>()
        .join("\n")
}
