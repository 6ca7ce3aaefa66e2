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
//! `Cargo.lock`, built offline; dependencies are reused between runs). The generator places
//! explicit `_padN: [u8; K]` fields by the `repr(C)` rules, and the probe asserts at compile
//! time that rustc agrees with the generator's offsets, sizes and alignments.
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
//! to 5 elements; padding fields are sometimes left out of what `shmx pub` is given.
//! (Relative slices of zero-sized elements are read by their `len()`: the derive's reader,
//! `RelSlice::as_slice`, shows them empty whatever their length.)
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

use serde_json::{json, Value};
use std::collections::{BTreeSet, HashSet};
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The probe's fixed part (its `main.rs`).
const PROBE_MAIN: &str = include_str!("layout_vs_derive/probe_support.rs");

/// How long building the probe may take (its first build compiles shmx and syn).
const BUILD_DEADLINE: Duration = Duration::from_secs(600);

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

    let started = Instant::now();
    let probe = build_probe(seed, &gen, &tops);
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

// ---------------------------------------------------------------------------------------
// The model: message types, their layout by the repr(C) rules, and values.
// ---------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Prim {
    U8,
    U16,
    U32,
    U64,
    U128,
    I8,
    I16,
    I32,
    I64,
    I128,
    F32,
    F64,
    Bool,
}

const PRIMS: [Prim; 13] = [
    Prim::U8,
    Prim::U16,
    Prim::U32,
    Prim::U64,
    Prim::U128,
    Prim::I8,
    Prim::I16,
    Prim::I32,
    Prim::I64,
    Prim::I128,
    Prim::F32,
    Prim::F64,
    Prim::Bool,
];

/// The integer reprs a message enum may have.
const ENUM_REPRS: [Prim; 8] = [
    Prim::U8,
    Prim::U16,
    Prim::U32,
    Prim::U64,
    Prim::I8,
    Prim::I16,
    Prim::I32,
    Prim::I64,
];

impl Prim {
    fn name(self) -> &'static str {
        match self {
            Prim::U8 => "u8",
            Prim::U16 => "u16",
            Prim::U32 => "u32",
            Prim::U64 => "u64",
            Prim::U128 => "u128",
            Prim::I8 => "i8",
            Prim::I16 => "i16",
            Prim::I32 => "i32",
            Prim::I64 => "i64",
            Prim::I128 => "i128",
            Prim::F32 => "f32",
            Prim::F64 => "f64",
            Prim::Bool => "bool",
        }
    }

    fn size(self) -> usize {
        use std::mem::size_of;
        match self {
            Prim::U8 | Prim::I8 | Prim::Bool => 1,
            Prim::U16 | Prim::I16 => size_of::<u16>(),
            Prim::U32 | Prim::I32 | Prim::F32 => size_of::<u32>(),
            Prim::U64 | Prim::I64 | Prim::F64 => size_of::<u64>(),
            Prim::U128 | Prim::I128 => size_of::<u128>(),
        }
    }

    /// This machine's alignment, which the probe (built for it) has too.
    fn align(self) -> usize {
        use std::mem::align_of;
        match self {
            Prim::U8 | Prim::I8 | Prim::Bool => 1,
            Prim::U16 | Prim::I16 => align_of::<u16>(),
            Prim::U32 | Prim::I32 => align_of::<u32>(),
            Prim::F32 => align_of::<f32>(),
            Prim::U64 | Prim::I64 => align_of::<u64>(),
            Prim::F64 => align_of::<f64>(),
            Prim::U128 | Prim::I128 => align_of::<u128>(),
        }
    }

    /// The range of an integer primitive.
    fn range(self) -> (i128, u128) {
        match self {
            Prim::U8 => (0, u8::MAX.into()),
            Prim::U16 => (0, u16::MAX.into()),
            Prim::U32 => (0, u32::MAX.into()),
            Prim::U64 => (0, u64::MAX.into()),
            Prim::U128 => (0, u128::MAX),
            Prim::I8 => (i8::MIN.into(), i8::MAX as u128),
            Prim::I16 => (i16::MIN.into(), i16::MAX as u128),
            Prim::I32 => (i32::MIN.into(), i32::MAX as u128),
            Prim::I64 => (i64::MIN.into(), i64::MAX as u128),
            Prim::I128 => (i128::MIN, i128::MAX as u128),
            Prim::F32 | Prim::F64 | Prim::Bool => (0, 1),
        }
    }

    fn signed(self) -> bool {
        matches!(
            self,
            Prim::I8 | Prim::I16 | Prim::I32 | Prim::I64 | Prim::I128
        )
    }
}

/// A message type.
#[derive(Clone, Debug, PartialEq)]
enum Ty {
    Prim(Prim),
    Array(Box<Ty>, usize),
    /// A struct: an index into [`Gen::structs`].
    Struct(usize),
    /// A fieldless enum: an index into [`Gen::enums`].
    Enum(usize),
    RelSlice(Box<Ty>),
    RelStr,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Repr {
    C,
    /// `repr(C, align(N))`; `split` writes it as two attributes.
    Align {
        n: usize,
        split: bool,
    },
    Transparent,
}

#[derive(Debug)]
struct Field {
    /// The identifier as written in Rust (`r#type` for a keyword).
    rust: String,
    /// The name in the schema (and in JSON).
    name: String,
    ty: Ty,
    offset: usize,
    padding: bool,
}

#[derive(Debug)]
struct StructDef {
    rust: String,
    /// The schema's name: `#[shm(name = ...)]` when it differs from `rust`.
    name: String,
    repr: Repr,
    fields: Vec<Field>,
    size: usize,
    align: usize,
}

#[derive(Debug)]
struct EnumDef {
    rust: String,
    name: String,
    repr: Prim,
    /// (Rust identifier, schema name, discriminant).
    variants: Vec<(String, String, i128)>,
}

/// A value of a [`Ty`].
#[derive(Clone, Debug)]
enum Val {
    U(u128),
    I(i128),
    /// A float, kept as an `f64` (an `f32`'s value is exact in it).
    F(f64),
    Bool(bool),
    /// A variant, by index.
    Enum(usize),
    /// An array's elements, a relative slice's elements, a struct's fields.
    List(Vec<Val>),
    Str(String),
}

/// One top-level message type and the value the test sends of it.
struct Case {
    index: usize,
    ty: Ty,
    value: Val,
}

/// A small, seeded generator (splitmix64): the same seed makes the same types and values.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n > 0`).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// True with probability `percent`/100.
    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    fn wide(&mut self) -> u128 {
        (u128::from(self.next()) << 64) | u128::from(self.next())
    }
}

fn align_up(n: usize, align: usize) -> usize {
    n.next_multiple_of(align)
}

/// Names for fields: ordinary ones, the grammar's words, and keywords (raw identifiers).
const FIELD_NAMES: [&str; 20] = [
    "a", "b", "x", "y", "seq", "heading", "mode", "flags", "data", "id", "rel", "relstr", "u8",
    "value", "inner", "items", "label", "tail", "r#type", "r#match",
];

/// Schema names for `#[shm(name = ...)]` (one of over 200 bytes, stored whole).
const TYPE_NAMES: [&str; 11] = [
    "a_rather_long_module_name::another_rather_long_module_name::yet_another_module::\
     and_one_more_module_for_good_measure::still_more_modules_here::the_last_module_of_them::\
     AVeryLongTypeNameIndeed",
    "geo::Pose",
    "a::b::Name",
    "robot::arm::Joint",
    "rel::Thing",
    "u8::P",
    "rkyv::Mode",
    "Frame",
    "_Hidden",
    "x9::y_8::Z7",
    "a::relstr",
];

/// The types of one run.
struct Gen {
    seed: u64,
    rng: Rng,
    structs: Vec<StructDef>,
    enums: Vec<EnumDef>,
}

impl Gen {
    fn new(seed: u64) -> Gen {
        Gen {
            seed,
            rng: Rng(seed),
            structs: Vec::new(),
            enums: Vec::new(),
        }
    }

    // --- layout ---------------------------------------------------------------------

    fn size(&self, ty: &Ty) -> usize {
        match ty {
            Ty::Prim(p) => p.size(),
            Ty::Array(elem, len) => self.size(elem) * len,
            Ty::Struct(i) => self.structs[*i].size,
            Ty::Enum(i) => self.enums[*i].repr.size(),
            Ty::RelSlice(_) | Ty::RelStr => 8,
        }
    }

    fn align(&self, ty: &Ty) -> usize {
        match ty {
            Ty::Prim(p) => p.align(),
            Ty::Array(elem, _) => self.align(elem),
            Ty::Struct(i) => self.structs[*i].align,
            Ty::Enum(i) => self.enums[*i].repr.align(),
            Ty::RelSlice(_) | Ty::RelStr => 4,
        }
    }

    fn has_rel(&self, ty: &Ty) -> bool {
        match ty {
            Ty::Prim(_) | Ty::Enum(_) => false,
            Ty::Array(elem, _) => self.has_rel(elem),
            Ty::Struct(i) => self.structs[*i].fields.iter().any(|f| self.has_rel(&f.ty)),
            Ty::RelSlice(_) | Ty::RelStr => true,
        }
    }

    /// `Schema::sample_align`: the type's alignment, or its relative slices' elements'.
    fn sample_align(&self, ty: &Ty) -> usize {
        let inner = match ty {
            Ty::Prim(_) | Ty::Enum(_) | Ty::RelStr => 1,
            Ty::Array(elem, _) | Ty::RelSlice(elem) => self.sample_align(elem),
            Ty::Struct(i) => self.structs[*i]
                .fields
                .iter()
                .map(|f| self.sample_align(&f.ty))
                .max()
                .unwrap_or(1),
        };
        inner.max(self.align(ty))
    }

    /// The schema text `Schema::describe` writes for `ty`.
    fn text(&self, ty: &Ty) -> String {
        match ty {
            Ty::Prim(p) => prim_text(*p),
            Ty::Array(elem, len) => format!("[{};{len}]", self.text(elem)),
            Ty::Struct(i) => {
                let s = &self.structs[*i];
                let fields: Vec<String> = s
                    .fields
                    .iter()
                    .map(|f| format!("{}@{}:{}", f.name, f.offset, self.text(&f.ty)))
                    .collect();
                format!("{}({},{}){{{}}}", s.name, s.size, s.align, fields.join(","))
            }
            Ty::Enum(i) => {
                let e = &self.enums[*i];
                let variants: Vec<String> = e
                    .variants
                    .iter()
                    .map(|(_, name, value)| format!("{name}={value}"))
                    .collect();
                format!("{}:{}{{{}}}", e.name, prim_text(e.repr), variants.join(","))
            }
            Ty::RelSlice(elem) => format!("rel[{}]", self.text(elem)),
            Ty::RelStr => "relstr".to_owned(),
        }
    }

    /// The Rust type.
    fn rust_ty(&self, ty: &Ty) -> String {
        match ty {
            Ty::Prim(p) => p.name().to_owned(),
            Ty::Array(elem, len) => format!("[{}; {len}]", self.rust_ty(elem)),
            Ty::Struct(i) => self.structs[*i].rust.clone(),
            Ty::Enum(i) => self.enums[*i].rust.clone(),
            Ty::RelSlice(elem) => format!("RelSlice<{}>", self.rust_ty(elem)),
            Ty::RelStr => "RelStr".to_owned(),
        }
    }

    /// What the cases cover, for the log.
    fn summary(&self, cases: &[Case]) -> String {
        let with_tail = cases
            .iter()
            .filter(|c| self.tail_need(&c.ty, &c.value) > 0)
            .count();
        let over = cases
            .iter()
            .filter(|c| self.sample_align(&c.ty) > self.align(&c.ty))
            .count();
        let nested = cases
            .iter()
            .filter(|c| match &c.ty {
                Ty::Struct(i) => self.structs[*i]
                    .fields
                    .iter()
                    .any(|f| !matches!(f.ty, Ty::RelSlice(_) | Ty::RelStr) && self.has_rel(&f.ty)),
                _ => false,
            })
            .count();
        let transparent = self
            .structs
            .iter()
            .filter(|s| s.repr == Repr::Transparent)
            .count();
        let aligned = self
            .structs
            .iter()
            .filter(|s| matches!(s.repr, Repr::Align { .. }))
            .count();
        format!(
            "{with_tail} with data in the tail, {over} with tail elements aligned more than the \
             message, {nested} with relative pointers nested in structs or arrays; {} structs \
             ({aligned} repr(C, align), {transparent} transparent), {} enums",
            self.structs.len(),
            self.enums.len()
        )
    }

    // --- types ----------------------------------------------------------------------

    /// Top-level case `index`: a struct, sometimes one made to hold a relative slice of
    /// elements aligned more strictly than itself, after a string that leaves the tail
    /// unaligned.
    fn case(&mut self, index: usize) -> Case {
        let ty = if self.rng.chance(25) {
            self.over_aligned_elements()
        } else if self.rng.chance(4) {
            // A message of no bytes (but perhaps aligned).
            let fields = (0..self.rng.below(3)).map(|_| self.zero_sized()).collect();
            let repr = if self.rng.chance(50) {
                Repr::C
            } else {
                Repr::Align {
                    n: *self.rng.pick(&[2, 8, 64]),
                    split: false,
                }
            };
            Ty::Struct(self.lay_out(repr, fields))
        } else {
            let n = 1 + self.rng.below(6);
            Ty::Struct(self.structure(0, true, n))
        };
        let value = self.value(&ty);
        Case { index, ty, value }
    }

    /// `{ small fields, [a string,] rel[elements aligned to 8, 16, 32 or 64] }`.
    fn over_aligned_elements(&mut self) -> Ty {
        let n = *self.rng.pick(&[8, 16, 32, 64]);
        // Sometimes none: zero-sized elements, which take no bytes but alignment.
        let inner_fields = self.rng.below(4);
        let elem = self.struct_with(Repr::Align { n, split: false }, 3, false, inner_fields);
        let mut fields = Vec::new();
        fields.push(Ty::Prim(*self.rng.pick(&[Prim::U8, Prim::U16, Prim::U32])));
        if self.rng.chance(70) {
            fields.push(Ty::RelStr);
        }
        fields.push(Ty::RelSlice(Box::new(Ty::Struct(elem))));
        if self.rng.chance(50) {
            fields.push(Ty::Prim(Prim::U8));
        }
        Ty::Struct(self.lay_out(Repr::C, fields))
    }

    /// A new struct at nesting `depth`, with relative pointers allowed or not, of about
    /// `n` fields.
    fn structure(&mut self, depth: usize, rel: bool, n: usize) -> usize {
        let repr = match self.rng.below(100) {
            0..=59 => Repr::C,
            60..=84 => Repr::Align {
                n: *self.rng.pick(&[2, 4, 8, 16, 32, 64]),
                split: self.rng.chance(30),
            },
            _ => Repr::Transparent,
        };
        self.struct_with(repr, depth, rel, n)
    }

    fn struct_with(&mut self, repr: Repr, depth: usize, rel: bool, n: usize) -> usize {
        if repr == Repr::Transparent {
            // One field that is not zero-sized (rustc refuses `repr(C)` types among the
            // zero-sized fields of a transparent struct), and zero-sized arrays aligned to 1
            // around it.
            let main = loop {
                let ty = self.field_ty(depth + 1, rel);
                if self.size(&ty) > 0 {
                    break ty;
                }
            };
            // Where rustc puts them is not specified: it sorts fields by alignment, largest
            // first, so today they follow the main field, wherever they are declared, if it is
            // aligned to more than 1 byte (and follow it in declaration order otherwise; how
            // rustc orders fields of equal alignment has changed, so those stay after it).
            let before = self.align(&main) > 1;
            let mut fields = vec![main];
            for _ in 0..self.rng.below(3) {
                let elem = *self.rng.pick(&[Prim::U8, Prim::I8, Prim::Bool]);
                let at = if before {
                    self.rng.below(fields.len() + 1)
                } else {
                    fields.len()
                };
                fields.insert(at, Ty::Array(Box::new(Ty::Prim(elem)), 0));
            }
            return self.lay_out(Repr::Transparent, fields);
        }
        let fields = (0..n).map(|_| self.field_ty(depth + 1, rel)).collect();
        self.lay_out(repr, fields)
    }

    /// Lays out a struct of fields of `tys` by the rules of `repr`, with explicit padding
    /// wherever `repr(C)` leaves a gap, and registers it.
    fn lay_out(&mut self, repr: Repr, tys: Vec<Ty>) -> usize {
        let mut names = HashSet::new();
        let mut fields = Vec::new();
        let (mut end, mut align, mut pads) = (0usize, 1usize, 0usize);
        let transparent_end = tys.iter().map(|ty| self.size(ty)).sum::<usize>();
        for ty in tys {
            let (rust, name) = self.field_name(&mut names);
            let (a, size) = (self.align(&ty), self.size(&ty));
            let offset = match repr {
                // rustc places the one field that has bytes at 0 and the zero-sized ones after
                // it (see `struct_with`; the compile-time checks say so if that changes).
                Repr::Transparent if size > 0 => 0,
                Repr::Transparent => transparent_end,
                _ => align_up(end, a),
            };
            if offset > end && repr != Repr::Transparent {
                fields.push(padding(&mut pads, end, offset - end));
            }
            align = align.max(a);
            end = end.max(offset + size);
            fields.push(Field {
                rust,
                name,
                ty,
                offset,
                padding: false,
            });
        }
        if let Repr::Align { n, .. } = repr {
            align = align.max(n);
        }
        let size = align_up(end, align);
        if size > end {
            fields.push(padding(&mut pads, end, size - end));
        }
        let id = self.structs.len();
        let rust = format!("S{id}");
        let name = if self.rng.chance(20) {
            self.rng.pick(&TYPE_NAMES).to_string()
        } else {
            rust.clone()
        };
        self.structs.push(StructDef {
            rust,
            name,
            repr,
            fields,
            size,
            align,
        });
        id
    }

    /// A fresh field name (Rust identifier, schema name) among `taken`.
    fn field_name(&mut self, taken: &mut HashSet<String>) -> (String, String) {
        loop {
            let base = *self.rng.pick(&FIELD_NAMES);
            let rust = if taken.contains(base) || self.rng.chance(30) {
                // Raw identifiers stay as they are; others get a number.
                if base.starts_with("r#") {
                    continue;
                }
                format!("{base}{}", self.rng.below(100))
            } else {
                base.to_owned()
            };
            let name = rust.trim_start_matches("r#").to_owned();
            if taken.insert(name.clone()) {
                return (rust, name);
            }
        }
    }

    /// The type of a field at nesting `depth`.
    fn field_ty(&mut self, depth: usize, rel: bool) -> Ty {
        let deep = depth >= 4;
        loop {
            return match self.rng.below(100) {
                0..=34 => Ty::Prim(*self.rng.pick(&PRIMS)),
                35..=49 if !deep => {
                    let len = self.rng.below(5);
                    Ty::Array(Box::new(self.field_ty(depth + 1, rel)), len)
                }
                50..=61 if !deep => {
                    let n = self.rng.below(5);
                    Ty::Struct(self.structure(depth, rel, n))
                }
                62..=73 => Ty::Enum(self.enumeration()),
                74..=77 => self.zero_sized(),
                78..=89 if rel => Ty::RelSlice(Box::new(self.element_ty(depth))),
                90..=99 if rel => Ty::RelStr,
                _ => continue,
            };
        }
    }

    /// A type of no bytes: an empty struct, sometimes aligned, or an empty array.
    fn zero_sized(&mut self) -> Ty {
        if self.rng.chance(25) {
            let elem = *self.rng.pick(&PRIMS);
            return Ty::Array(Box::new(Ty::Prim(elem)), 0);
        }
        let repr = if self.rng.chance(50) {
            Repr::C
        } else {
            Repr::Align {
                n: *self.rng.pick(&[2, 8, 16, 64]),
                split: false,
            }
        };
        Ty::Struct(self.lay_out(repr, Vec::new()))
    }

    /// The element type of a relative slice: no relative pointers; often a struct aligned
    /// more strictly than its fields.
    fn element_ty(&mut self, depth: usize) -> Ty {
        match self.rng.below(100) {
            0..=29 => Ty::Prim(*self.rng.pick(&PRIMS)),
            30..=39 => Ty::Enum(self.enumeration()),
            40..=54 => {
                let len = 1 + self.rng.below(4);
                Ty::Array(Box::new(self.field_ty(depth + 2, false)), len)
            }
            55..=74 => {
                let n = *self.rng.pick(&[8, 16, 64]);
                let fields = self.rng.below(4);
                Ty::Struct(self.struct_with(
                    Repr::Align { n, split: false },
                    depth + 1,
                    false,
                    fields,
                ))
            }
            _ => {
                let n = 1 + self.rng.below(4);
                Ty::Struct(self.structure(depth + 1, false, n))
            }
        }
    }

    /// A new fieldless enum: any integer repr, distinct discriminants, some negative or at
    /// the ends of the range.
    fn enumeration(&mut self) -> usize {
        let repr = *self.rng.pick(&ENUM_REPRS);
        let (min, max) = repr.range();
        let count = 1 + self.rng.below(5);
        let mut values = BTreeSet::new();
        let mut order = Vec::new();
        while order.len() < count {
            let v: i128 = match self.rng.below(8) {
                0 => 0,
                1 => 1,
                2 => min,
                3 => max as i128,
                4 if repr.signed() => -1,
                5 => self.rng.below(10) as i128,
                _ => {
                    let span = max as i128 - min + 1;
                    min + (self.rng.wide() % span as u128) as i128
                }
            };
            if values.insert(v) {
                order.push(v);
            }
        }
        let mut names = HashSet::new();
        let variants = order
            .into_iter()
            .enumerate()
            .map(|(i, v)| {
                let rust = match self.rng.below(10) {
                    0 if names.insert("type") => "r#type".to_owned(),
                    1 if names.insert("Self_") => "Self_".to_owned(),
                    _ => format!("V{i}"),
                };
                let name = rust.trim_start_matches("r#").to_owned();
                (rust, name, v)
            })
            .collect();
        let id = self.enums.len();
        let rust = format!("E{id}");
        let name = if self.rng.chance(25) {
            self.rng.pick(&TYPE_NAMES).to_string()
        } else {
            rust.clone()
        };
        self.enums.push(EnumDef {
            rust,
            name,
            repr,
            variants,
        });
        id
    }

    // --- values ---------------------------------------------------------------------

    fn value(&mut self, ty: &Ty) -> Val {
        match ty {
            Ty::Prim(p) => self.prim_value(*p),
            Ty::Array(elem, len) => Val::List((0..*len).map(|_| self.value(elem)).collect()),
            Ty::Struct(i) => {
                let tys: Vec<(Ty, bool)> = self.structs[*i]
                    .fields
                    .iter()
                    .map(|f| (f.ty.clone(), f.padding))
                    .collect();
                Val::List(
                    tys.iter()
                        .map(|(ty, padding)| {
                            if *padding {
                                Val::List(vec![Val::U(0); self.size(ty)])
                            } else {
                                self.value(ty)
                            }
                        })
                        .collect(),
                )
            }
            Ty::Enum(i) => Val::Enum(self.rng.below(self.enums[*i].variants.len())),
            Ty::RelSlice(elem) => {
                let n = self.rng.below(6);
                Val::List((0..n).map(|_| self.value(elem)).collect())
            }
            Ty::RelStr => Val::Str(self.string()),
        }
    }

    fn prim_value(&mut self, p: Prim) -> Val {
        match p {
            Prim::Bool => Val::Bool(self.rng.chance(50)),
            Prim::F32 | Prim::F64 => Val::F(self.float(p)),
            _ => {
                let (min, max) = p.range();
                let pick = self.rng.below(6);
                if p.signed() {
                    let v = match pick {
                        0 => min,
                        1 => max as i128,
                        2 => -1,
                        3 => 0,
                        _ => {
                            let bits = p.size() * 8;
                            let raw = self.rng.wide() as i128;
                            // Sign-extend the low `bits` bits.
                            (raw << (128 - bits)) >> (128 - bits)
                        }
                    };
                    Val::I(v)
                } else {
                    let v = match pick {
                        0 => 0,
                        1 => max,
                        2 => 1,
                        _ => self.rng.wide() & max,
                    };
                    Val::U(v)
                }
            }
        }
    }

    /// A float: quarters mostly (short and exact in decimal), sometimes any finite value
    /// (random bits, subnormals included: texts of up to 17 digits), the extremes of the
    /// type, -0.0, infinities or NaN.
    fn float(&mut self, p: Prim) -> f64 {
        let single = p == Prim::F32;
        match self.rng.below(40) {
            0 => -0.0,
            1 => f64::INFINITY,
            2 => f64::NEG_INFINITY,
            3 => f64::NAN,
            4 if single => f64::from(f32::MAX),
            4 => f64::MAX,
            5 if single => f64::from(f32::MIN_POSITIVE),
            5 => f64::MIN_POSITIVE,
            6..=11 => loop {
                let x = if single {
                    f64::from(f32::from_bits(self.rng.next() as u32))
                } else {
                    f64::from_bits(self.rng.next())
                };
                if x.is_finite() {
                    break x;
                }
            },
            _ => (self.rng.below(40_001) as f64 - 20_000.0) / 4.0,
        }
    }

    fn string(&mut self) -> String {
        const PIECES: [&str; 16] = [
            "a", "Z", "0", " ", "-", "_", "é", "ü", "ß", "日本", "🚀", "\"", "\\", "/", "x", "Ω",
        ];
        let n = self.rng.below(10);
        (0..n).map(|_| *self.rng.pick(&PIECES)).collect()
    }

    // --- JSON -----------------------------------------------------------------------

    /// The value as `shmx echo` prints it (padding included, as arrays of zeros).
    fn json(&self, ty: &Ty, val: &Val) -> Value {
        match (ty, val) {
            (Ty::Prim(p), v) => prim_json(*p, v),
            (Ty::Array(elem, _), Val::List(items)) | (Ty::RelSlice(elem), Val::List(items)) => {
                Value::Array(items.iter().map(|v| self.json(elem, v)).collect())
            }
            (Ty::Struct(i), Val::List(items)) => Value::Object(
                self.structs[*i]
                    .fields
                    .iter()
                    .zip(items)
                    .map(|(f, v)| (f.name.clone(), self.json(&f.ty, v)))
                    .collect(),
            ),
            (Ty::Enum(i), Val::Enum(v)) => Value::String(self.enums[*i].variants[*v].1.clone()),
            (Ty::RelStr, Val::Str(s)) => Value::String(s.clone()),
            _ => unreachable!("a value of another type: {ty:?} {val:?}"),
        }
    }

    /// Checks `got` (printed by `shmx echo` or the probe) against `want`, a value of `ty`:
    /// floats compare as values of their own width (an `f32` shows as its shortest text,
    /// which is not always the `f64` of the same value), bit for bit (so -0.0 is not 0.0).
    fn compare(&self, ty: &Ty, want: &Val, got: &Value, path: &str) -> Result<(), String> {
        let fail = |what: String| Err(format!("at {path:?}: {what}"));
        match (ty, want) {
            (Ty::Prim(p @ (Prim::F32 | Prim::F64)), Val::F(x)) => {
                let read = match got {
                    Value::Number(n) => n.as_f64(),
                    Value::String(s) => match s.as_str() {
                        "NaN" => Some(f64::NAN),
                        "inf" => Some(f64::INFINITY),
                        "-inf" => Some(f64::NEG_INFINITY),
                        _ => None,
                    },
                    _ => None,
                };
                let Some(y) = read else {
                    return fail(format!("expected the number {x:?}, got {got}"));
                };
                let same = if *p == Prim::F32 {
                    (*x as f32).to_bits() == (y as f32).to_bits() || (x.is_nan() && y.is_nan())
                } else {
                    x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan())
                };
                // NaN must be shown as "NaN", infinities as strings.
                let form_ok = x.is_finite() == got.is_number();
                if same && form_ok {
                    Ok(())
                } else {
                    fail(format!("expected {x:?} ({}), got {got}", p.name()))
                }
            }
            (Ty::Prim(p), v) => {
                let want = prim_json(*p, v);
                if &want == got {
                    Ok(())
                } else {
                    fail(format!("expected {want}, got {got}"))
                }
            }
            (Ty::Array(elem, _), Val::List(items)) | (Ty::RelSlice(elem), Val::List(items)) => {
                let Value::Array(got) = got else {
                    return fail(format!("expected an array, got {got}"));
                };
                if got.len() != items.len() {
                    return fail(format!(
                        "expected {} elements, got {}: {}",
                        items.len(),
                        got.len(),
                        Value::Array(got.clone())
                    ));
                }
                for (i, (w, g)) in items.iter().zip(got).enumerate() {
                    self.compare(elem, w, g, &format!("{path}[{i}]"))?;
                }
                Ok(())
            }
            (Ty::Struct(i), Val::List(items)) => {
                let Value::Object(map) = got else {
                    return fail(format!("expected an object, got {got}"));
                };
                let fields = &self.structs[*i].fields;
                let want_keys: Vec<&str> = fields.iter().map(|f| f.name.as_str()).collect();
                let got_keys: Vec<&str> = map.keys().map(String::as_str).collect();
                if want_keys != got_keys {
                    return fail(format!(
                        "expected the fields {want_keys:?} in this order, got {got_keys:?}"
                    ));
                }
                for (f, w) in fields.iter().zip(items) {
                    let sub = if path.is_empty() {
                        f.name.clone()
                    } else {
                        format!("{path}.{}", f.name)
                    };
                    self.compare(&f.ty, w, &map[&f.name], &sub)?;
                }
                Ok(())
            }
            (Ty::Enum(_), _) | (Ty::RelStr, _) => {
                let want = self.json(ty, want);
                if &want == got {
                    Ok(())
                } else {
                    fail(format!("expected {want}, got {got}"))
                }
            }
            _ => unreachable!("a value of another type: {ty:?} {want:?}"),
        }
    }

    /// The bytes of tail the value needs, laid out in order, each allocation aligned for its
    /// elements (as both the derive's writer and `shmx pub` do).
    fn tail_need(&self, ty: &Ty, val: &Val) -> usize {
        let fixed = self.size(ty);
        let mut used = fixed;
        self.tail_walk(ty, val, &mut used);
        used - fixed
    }

    fn tail_walk(&self, ty: &Ty, val: &Val, used: &mut usize) {
        match (ty, val) {
            (Ty::Array(elem, _), Val::List(items)) => {
                for v in items {
                    self.tail_walk(elem, v, used);
                }
            }
            (Ty::Struct(i), Val::List(items)) => {
                for (f, v) in self.structs[*i].fields.iter().zip(items) {
                    self.tail_walk(&f.ty, v, used);
                }
            }
            (Ty::RelSlice(elem), Val::List(items)) if !items.is_empty() => {
                *used = align_up(*used, self.align(elem)) + items.len() * self.size(elem);
            }
            (Ty::RelStr, Val::Str(s)) if !s.is_empty() => *used += s.len(),
            _ => {}
        }
    }

    // --- Rust source ----------------------------------------------------------------

    /// A Rust expression of the value, with every relative pointer empty.
    fn rust_value(&self, ty: &Ty, val: &Val) -> String {
        match (ty, val) {
            (Ty::Prim(p), v) => prim_rust(*p, v),
            (Ty::Array(elem, _), Val::List(items)) => {
                let items: Vec<String> = items.iter().map(|v| self.rust_value(elem, v)).collect();
                format!("[{}]", items.join(", "))
            }
            (Ty::Struct(i), Val::List(items)) => {
                let s = &self.structs[*i];
                let fields: Vec<String> = s
                    .fields
                    .iter()
                    .zip(items)
                    .map(|(f, v)| format!("{}: {}", f.rust, self.rust_value(&f.ty, v)))
                    .collect();
                format!("{} {{ {} }}", s.rust, fields.join(", "))
            }
            (Ty::Enum(i), Val::Enum(v)) => {
                let e = &self.enums[*i];
                format!("{}::{}", e.rust, e.variants[*v].0)
            }
            (Ty::RelSlice(_), _) => "RelSlice::new()".to_owned(),
            (Ty::RelStr, _) => "RelStr::new()".to_owned(),
            _ => unreachable!("a value of another type: {ty:?} {val:?}"),
        }
    }

    /// Statements that point the relative pointers in `place` (an expression of a
    /// `Pin<&mut ty>`, evaluated once per use) at `val`'s data, in declaration order, depth
    /// first: the order in which `shmx pub` lays the tail out.
    fn fill(&self, ty: &Ty, val: &Val, place: &str, out: &mut String, depth: usize) {
        if !self.has_rel(ty) {
            return;
        }
        match (ty, val) {
            (Ty::Array(elem, _), Val::List(items)) => {
                for (i, v) in items.iter().enumerate() {
                    let at = format!("shmx::rel::pin_index({place}, {i}).expect(\"in range\")");
                    self.fill(elem, v, &at, out, depth);
                }
            }
            (Ty::Struct(i), Val::List(items)) => {
                let s = &self.structs[*i];
                let w = format!("w{depth}");
                let _ = writeln!(
                    out,
                    "{{ let mut {w} = <{} as Writable>::writer({place}, tail);",
                    s.rust
                );
                for (f, v) in s.fields.iter().zip(items) {
                    let at = format!("{w}.{}.as_mut()", f.rust);
                    self.fill(&f.ty, v, &at, out, depth + 1);
                }
                out.push_str("}\n");
            }
            (Ty::RelSlice(elem), Val::List(items)) => {
                let items: Vec<String> = items.iter().map(|v| self.rust_value(elem, v)).collect();
                let _ = writeln!(
                    out,
                    "RelSlice::<{}>::copy_from({place}, tail, &[{}])?;",
                    self.rust_ty(elem),
                    items.join(", ")
                );
            }
            (Ty::RelStr, Val::Str(s)) => {
                let _ = writeln!(out, "RelStr::set({place}, tail, {s:?})?;");
            }
            _ => unreachable!("a value of another type: {ty:?} {val:?}"),
        }
    }

    /// The definition of struct `i`: the type, its `Dump`, and compile-time checks that
    /// rustc lays it out as the generator did.
    fn struct_source(&self, i: usize) -> String {
        let s = &self.structs[i];
        let mut out = String::from("#[derive(ShmMessage)]\n");
        match s.repr {
            Repr::C => out.push_str("#[repr(C)]\n"),
            Repr::Align { n, split: false } => {
                let _ = writeln!(out, "#[repr(C, align({n}))]");
            }
            Repr::Align { n, split: true } => {
                let _ = writeln!(out, "#[repr(C)]\n#[repr(align({n}))]");
            }
            Repr::Transparent => out.push_str("#[repr(transparent)]\n"),
        }
        if s.name != s.rust {
            let _ = writeln!(out, "#[shm(name = {:?})]", s.name);
        }
        let _ = writeln!(out, "pub struct {} {{", s.rust);
        for f in &s.fields {
            let _ = writeln!(out, "    pub {}: {},", f.rust, self.rust_ty(&f.ty));
        }
        out.push_str("}\n");
        out
    }

    fn struct_checks(&self, i: usize) -> String {
        let s = &self.structs[i];
        let mut out = String::from("const _: () = {\n");
        let _ = writeln!(
            out,
            "    assert!(std::mem::size_of::<{0}>() == {1}, \"rustc's size of {0} is not the generator's {1}\");",
            s.rust, s.size
        );
        let _ = writeln!(
            out,
            "    assert!(std::mem::align_of::<{0}>() == {1}, \"rustc's alignment of {0} is not the generator's {1}\");",
            s.rust, s.align
        );
        for f in &s.fields {
            let _ = writeln!(
                out,
                "    assert!(std::mem::offset_of!({0}, {1}) == {2}, \"rustc's offset of {0}.{1} is not the generator's {2}\");",
                s.rust, f.rust, f.offset
            );
        }
        out.push_str("};\n");
        let _ = writeln!(out, "impl Dump for {} {{", s.rust);
        out.push_str("    fn dump(&self, out: &mut String) {\n        out.push('{');\n");
        for (k, f) in s.fields.iter().enumerate() {
            let mut key = String::new();
            if k > 0 {
                key.push(',');
            }
            key.push_str(&serde_json::to_string(&f.name).expect("a name"));
            key.push(':');
            let _ = writeln!(out, "        out.push_str({key:?});");
            // Relative pointers are read through the derive's readers (but for zero-sized
            // elements, which the readers never show: see `zero_sized` in the probe).
            let read = match &f.ty {
                Ty::RelSlice(elem) if self.size(elem) == 0 => format!("&self.{}", f.rust),
                Ty::RelSlice(_) | Ty::RelStr => format!("self.{}()", f.rust),
                _ => format!("&self.{}", f.rust),
            };
            let _ = writeln!(out, "        Dump::dump({read}, out);");
        }
        out.push_str("        out.push('}');\n    }\n}\n");
        out
    }

    fn enum_source(&self, i: usize) -> String {
        let e = &self.enums[i];
        let mut out = format!(
            "#[derive(ShmMessage, Clone, Copy)]\n#[repr({})]\n",
            e.repr.name()
        );
        if e.name != e.rust {
            let _ = writeln!(out, "#[shm(name = {:?})]", e.name);
        }
        let _ = writeln!(out, "pub enum {} {{", e.rust);
        for (rust, _, v) in &e.variants {
            let _ = writeln!(out, "    {rust} = {},", int_literal(e.repr, *v));
        }
        out.push_str("}\n");
        out
    }

    fn enum_checks(&self, i: usize) -> String {
        let e = &self.enums[i];
        let mut out = format!(
            "const _: () = assert!(std::mem::size_of::<{0}>() == {1} && std::mem::align_of::<{0}>() == {2});\n",
            e.rust,
            e.repr.size(),
            e.repr.align()
        );
        let _ = writeln!(out, "impl Dump for {} {{", e.rust);
        out.push_str("    fn dump(&self, out: &mut String) {\n        out.push_str(match self {\n");
        for (rust, name, _) in &e.variants {
            let _ = writeln!(
                out,
                "            {}::{rust} => {:?},",
                e.rust,
                serde_json::to_string(name).expect("a name")
            );
        }
        out.push_str("        });\n    }\n}\n");
        out
    }

    /// The Rust source of `ty` and of every type it uses, for failure messages.
    fn source_of(&self, ty: &Ty) -> String {
        let (mut structs, mut enums) = (BTreeSet::new(), BTreeSet::new());
        self.uses(ty, &mut structs, &mut enums);
        let mut out = String::new();
        for i in enums {
            out.push_str(&self.enum_source(i));
        }
        for i in structs {
            out.push_str(&self.struct_source(i));
        }
        out
    }

    fn uses(&self, ty: &Ty, structs: &mut BTreeSet<usize>, enums: &mut BTreeSet<usize>) {
        match ty {
            Ty::Prim(_) | Ty::RelStr => {}
            Ty::Array(elem, _) | Ty::RelSlice(elem) => self.uses(elem, structs, enums),
            Ty::Struct(i) => {
                if structs.insert(*i) {
                    for f in &self.structs[*i].fields {
                        self.uses(&f.ty, structs, enums);
                    }
                }
            }
            Ty::Enum(i) => {
                enums.insert(*i);
            }
        }
    }

    /// The probe's `cases.rs`: every type, and a `Case` impl and session for each case.
    fn cases_source(&self, seed: u64, cases: &[Case]) -> String {
        let mut out = format!(
            "// Generated by shmx-cli/tests/layout_vs_derive.rs, seed {seed}.\n\
             #![allow(unused_mut, unused_variables, unused_imports, unused_braces)]\n\
             use super::{{session, Case, Dump}};\n\
             use shmx::{{RelSlice, RelStr, ShmMessage, Tail, Writable}};\n\
             use std::pin::Pin;\n\n"
        );
        for i in 0..self.enums.len() {
            out.push_str(&self.enum_source(i));
            out.push_str(&self.enum_checks(i));
            out.push('\n');
        }
        for i in 0..self.structs.len() {
            out.push_str(&self.struct_source(i));
            out.push_str(&self.struct_checks(i));
            out.push('\n');
        }
        for case in cases {
            let name = self.rust_ty(&case.ty);
            let mut fill = String::new();
            self.fill(&case.ty, &case.value, "this", &mut fill, 0);
            let _ = write!(
                out,
                "impl Case for {name} {{\n\
                 fn value() -> Self {{ {} }}\n\
                 fn fill(this: Pin<&mut Self>, tail: Tail<'_>) -> shmx::Result<()> {{\n\
                 {fill}Ok(())\n}}\n}}\n\n",
                self.rust_value(&case.ty, &case.value)
            );
        }
        out.push_str(
            "pub fn run(i: usize, topic: &str, lines: &mut dyn Iterator<Item = String>) {\n    match i {\n",
        );
        for case in cases {
            let _ = writeln!(
                out,
                "        {} => session::<{}>(topic, lines),",
                case.index,
                self.rust_ty(&case.ty)
            );
        }
        out.push_str("        _ => panic!(\"no case {i}\"),\n    }\n}\n");
        out
    }
}

fn padding(pads: &mut usize, offset: usize, len: usize) -> Field {
    let name = format!("_pad{pads}");
    *pads += 1;
    Field {
        rust: name.clone(),
        name,
        ty: Ty::Array(Box::new(Ty::Prim(Prim::U8)), len),
        offset,
        padding: true,
    }
}

fn prim_text(p: Prim) -> String {
    if p.size() == p.align() {
        p.name().to_owned()
    } else {
        format!("{}({},{})", p.name(), p.size(), p.align())
    }
}

fn prim_json(p: Prim, v: &Val) -> Value {
    match (p, v) {
        (Prim::U128, Val::U(v)) => Value::String(v.to_string()),
        (Prim::I128, Val::I(v)) => Value::String(v.to_string()),
        (_, Val::U(v)) => json!(*v as u64),
        (_, Val::I(v)) => json!(*v as i64),
        (_, Val::Bool(b)) => json!(*b),
        (_, Val::F(x)) if x.is_nan() => json!("NaN"),
        (_, Val::F(x)) if x.is_infinite() => json!(if *x > 0.0 { "inf" } else { "-inf" }),
        (_, Val::F(x)) => json!(*x),
        _ => unreachable!("a value of another type: {p:?} {v:?}"),
    }
}

/// A Rust expression of an integer of type `p` (the type's `MIN` for its smallest value,
/// which has no literal).
fn int_literal(p: Prim, v: i128) -> String {
    if v == p.range().0 && v != 0 {
        format!("{}::MIN", p.name())
    } else {
        v.to_string()
    }
}

fn prim_rust(p: Prim, v: &Val) -> String {
    match (p, v) {
        (_, Val::U(v)) => format!("{v}{}", p.name()),
        (_, Val::I(v)) if *v == p.range().0 => format!("{}::MIN", p.name()),
        (_, Val::I(v)) => format!("({v}{})", p.name()),
        (_, Val::Bool(b)) => b.to_string(),
        (_, Val::F(x)) if x.is_nan() => format!("{}::NAN", p.name()),
        (_, Val::F(x)) if x.is_infinite() => {
            format!("{}{}::INFINITY", if *x < 0.0 { "-" } else { "" }, p.name())
        }
        (Prim::F32, Val::F(x)) => format!("{:?}f32", *x as f32),
        (_, Val::F(x)) => format!("{x:?}f64"),
        _ => unreachable!("a value of another type: {p:?} {v:?}"),
    }
}

// ---------------------------------------------------------------------------------------
// The probe: build it, run it, talk to it.
// ---------------------------------------------------------------------------------------

/// Writes the probe crate under `target/layout-probe/` and builds it; returns its binary.
fn build_probe(seed: u64, gen: &Gen, cases: &[Case]) -> PathBuf {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace holds shmx-cli")
        .to_owned();
    let dir = workspace.join("target").join("layout-probe");
    std::fs::create_dir_all(dir.join("src")).expect("create target/layout-probe/src");
    let manifest = format!(
        "# Generated by shmx-cli/tests/layout_vs_derive.rs: not a member of the workspace.\n\
         [package]\nname = \"shmx-layout-probe\"\nversion = \"0.0.0\"\nedition = \"2021\"\n\
         publish = false\n\n[dependencies]\nshmx = {{ path = {:?}, default-features = false }}\n\n\
         [workspace]\n",
        workspace.join("shmx").display().to_string()
    );
    write_if_changed(&dir.join("Cargo.toml"), &manifest);
    let lock = std::fs::read_to_string(workspace.join("Cargo.lock")).expect("read Cargo.lock");
    write_if_changed(&dir.join("Cargo.lock"), &lock);
    write_if_changed(&dir.join("src/main.rs"), PROBE_MAIN);
    write_if_changed(&dir.join("src/cases.rs"), &gen.cases_source(seed, cases));

    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| env!("CARGO").into());
    let build = Background::spawn(
        Command::new(cargo)
            .args(["build", "--quiet", "--offline", "--manifest-path"])
            .arg(dir.join("Cargo.toml"))
            .env("CARGO_TARGET_DIR", dir.join("target")),
    );
    let (status, _, stderr) = build
        .finish_within(BUILD_DEADLINE)
        .unwrap_or_else(|e| panic!("seed {seed}: building the probe: {e}"));
    if !status.success() {
        let shown: String = stderr.chars().take(30_000).collect();
        panic!(
            "seed {seed} (rerun with SHMX_LAYOUT_SEED={seed}): the probe does not build ({}); \
             the generator made a type that rustc or the derive refuses, or laid one out \
             differently (see the source in {}):\n{shown}",
            status,
            dir.join("src/cases.rs").display()
        );
    }
    dir.join("target/debug/shmx-layout-probe")
}

fn write_if_changed(path: &Path, text: &str) {
    if std::fs::read_to_string(path).ok().as_deref() != Some(text) {
        std::fs::write(path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    }
}

/// The running probe; killed when dropped.
struct Probe {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    stderr: Arc<Mutex<String>>,
    seed: u64,
}

impl Probe {
    fn start(binary: &Path, root: &Path, seed: u64) -> Probe {
        let mut child = Command::new(binary)
            .env("SHMX_ROOT", root)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("start the probe {}: {e}", binary.display()));
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = tx.send(line);
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut pipe = child.stderr.take().expect("piped stderr");
        let sink = Arc::clone(&stderr);
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                sink.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push_str(&text);
            }
        });
        Probe {
            child,
            stdin,
            lines,
            stderr,
            seed,
        }
    }

    fn stderr(&self) -> String {
        self.stderr
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    fn send(&mut self, command: &str) -> Result<(), String> {
        let stdin = self.stdin.as_mut().expect("the probe's stdin is open");
        writeln!(stdin, "{command}")
            .and_then(|()| stdin.flush())
            .map_err(|e| format!("the probe is gone ({e}); its stderr:\n{}", self.stderr()))
    }

    /// The probe's answer `word PAYLOAD` (within the deadline), as its payload.
    fn answer(&mut self, word: &str) -> Result<String, String> {
        match self.lines.recv_timeout(common::DEADLINE) {
            Ok(line) => match line.strip_prefix(word) {
                Some(rest) => Ok(rest.trim_start().to_owned()),
                None => Err(format!("the probe answered {line:?}, not {word:?}")),
            },
            Err(e) => {
                let _ = self.child.kill();
                Err(format!(
                    "no {word:?} from the probe ({e}, seed {}); its stderr:\n{}",
                    self.seed,
                    self.stderr()
                ))
            }
        }
    }

    /// The answer `word {json}`, parsed; an answer `{"error": ...}` is an error.
    fn answer_json(&mut self, word: &str) -> Result<Value, String> {
        let payload = self.answer(word)?;
        let value: Value = serde_json::from_str(&payload)
            .map_err(|e| format!("the probe's {word} answer is not JSON ({e}): {payload}"))?;
        match value.get("error") {
            Some(e) => Err(format!("the probe: {}", e.as_str().unwrap_or_default())),
            None => Ok(value),
        }
    }

    /// Closes the probe's stdin and waits for it to exit.
    fn finish(&mut self) {
        drop(self.stdin.take());
        let start = Instant::now();
        loop {
            match self.child.try_wait() {
                Ok(Some(_)) => return,
                Ok(None) if start.elapsed() < common::DEADLINE => {
                    std::thread::sleep(Duration::from_millis(5))
                }
                _ => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    return;
                }
            }
        }
    }
}

impl Drop for Probe {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A `shmx` command running in the background; killed when dropped.
struct Background {
    child: Child,
    stdout: Option<std::thread::JoinHandle<String>>,
    stderr: Option<std::thread::JoinHandle<String>>,
}

impl Background {
    /// Starts `shmx args` under `root`.
    fn start(root: &Path, args: &[&str]) -> Background {
        Background::spawn(
            Command::new(env!("CARGO_BIN_EXE_shmx"))
                .args(args)
                .arg("--root")
                .arg(root)
                .env("SHMX_ROOT", root),
        )
    }

    /// Starts `command`, its stdout and stderr read by threads.
    fn spawn(command: &mut Command) -> Background {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("run {command:?}: {e}"));
        let read = |mut pipe: Box<dyn Read + Send>| {
            std::thread::spawn(move || {
                let mut s = String::new();
                let _ = pipe.read_to_string(&mut s);
                s
            })
        };
        let stdout = Some(read(Box::new(child.stdout.take().expect("piped"))));
        let stderr = Some(read(Box::new(child.stderr.take().expect("piped"))));
        Background {
            child,
            stdout,
            stderr,
        }
    }

    /// Waits (up to the deadline) until `topic` has `count` subscribers, as `shmx info`
    /// shows them; an error if this command exits first.
    fn wait_for_subscribers(
        &mut self,
        root: &Path,
        topic: &str,
        count: usize,
    ) -> Result<(), String> {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for shmx") {
                let stderr = self.stderr.take().expect("once").join().expect("stderr");
                return Err(format!(
                    "shmx exited ({status}) before it subscribed: {stderr}"
                ));
            }
            let info: Value = shmx(root, &["info", topic, "--json"]).and_then(|out| {
                serde_json::from_str(&out).map_err(|e| format!("shmx info: not JSON ({e}): {out}"))
            })?;
            if info["subscribers"].as_array().map(Vec::len) == Some(count) {
                return Ok(());
            }
            if start.elapsed() > common::DEADLINE {
                return Err(format!("shmx never subscribed to {topic}: {info:#}"));
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Waits (up to the deadline) for the command to exit; its stdout if it succeeded.
    fn finish(self) -> Result<String, String> {
        let (status, stdout, stderr) = self.finish_within(common::DEADLINE)?;
        if status.success() {
            Ok(stdout)
        } else {
            Err(format!("shmx failed ({status}): {stderr}"))
        }
    }

    /// Waits up to `deadline` for the command to exit (killing it after that): its exit
    /// status, stdout and stderr.
    fn finish_within(mut self, deadline: Duration) -> Result<(ExitStatus, String, String), String> {
        let start = Instant::now();
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("wait for a child") {
                break status;
            }
            if start.elapsed() > deadline {
                return Err(format!("{:?} did not exit within {deadline:?}", self.child));
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        let stdout = self.stdout.take().expect("once").join().expect("stdout");
        let stderr = self.stderr.take().expect("once").join().expect("stderr");
        Ok((status, stdout, stderr))
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `shmx` to the end: its stdout, or what went wrong.
fn shmx(root: &Path, args: &[&str]) -> Result<String, String> {
    let run = common::shmx(root, args);
    if run.status.success() {
        Ok(run.stdout)
    } else {
        Err(format!(
            "`shmx {}` failed ({}): {}",
            args.iter()
                .map(|a| if a.len() > 200 { "<json>" } else { a })
                .collect::<Vec<_>>()
                .join(" "),
            run.status,
            run.stderr
        ))
    }
}

// ---------------------------------------------------------------------------------------
// The checks.
// ---------------------------------------------------------------------------------------

/// Checks one case; the probe's session for it is closed whatever happens (if the probe
/// still answers).
fn check_case(gen: &Gen, case: &Case, probe: &mut Probe, root: &Path) -> Result<(), String> {
    let topic = format!("layout/t{}", case.index);
    probe.send(&format!("case {} {topic}", case.index))?;
    let layout = probe.answer_json("ready")?;
    let result = check_open_case(gen, case, probe, root, &topic, &layout);
    let closed = probe
        .send("done")
        .and_then(|()| probe.answer("closed").map(drop));
    match (result, closed) {
        (Err(e), Err(c)) => Err(format!("{e}\n  (and closing the case failed: {c})")),
        (Err(e), Ok(())) | (Ok(()), Err(e)) => Err(e),
        (Ok(()), Ok(())) => Ok(()),
    }
}

fn check_open_case(
    gen: &Gen,
    case: &Case,
    probe: &mut Probe,
    root: &Path,
    topic: &str,
    layout: &Value,
) -> Result<(), String> {
    let ty = &case.ty;
    // 1. Layout: the derive's schema text is the generator's, with rustc's size and
    // alignment (the probe asserted the generator's offsets at compile time), and the topic
    // shows it.
    let text = gen.text(ty);
    let expected_layout = json!({
        "describe": text,
        "size": gen.size(ty),
        "align": gen.align(ty),
        "sample_align": gen.sample_align(ty),
    });
    if *layout != expected_layout {
        return Err(format!(
            "the derive's layout is not the generator's:\n  derive:    {layout}\n  generator: {expected_layout}"
        ));
    }
    let info: Value = shmx(root, &["info", topic, "--json"]).and_then(|out| {
        serde_json::from_str(&out).map_err(|e| format!("shmx info: not JSON ({e}): {out}"))
    })?;
    if info["schema"] != text || info["type_size"] != gen.size(ty) {
        return Err(format!(
            "shmx info shows schema {} of {} bytes, not the derive's {text} of {}",
            info["schema"],
            info["type_size"],
            gen.size(ty)
        ));
    }

    // 2. CLI encodes, derive reads, with exactly the tail the value needs.
    let mut rng_gen = GenJson::new(gen, case.index as u64);
    let message = rng_gen.pub_json(ty, &case.value).to_string();
    let tail = gen.tail_need(ty, &case.value).to_string();
    shmx(root, &["pub", topic, &message, "--max-tail-bytes", &tail])
        .map_err(|e| format!("{e}\n  message: {message}"))?;
    probe.send("recv")?;
    let received = probe.answer_json("received").map_err(|e| {
        format!("the typed subscriber refused what `shmx pub` sent: {e}\n  message: {message}")
    })?;
    gen.compare(ty, &case.value, &received["value"], "")
        .map_err(|e| format!("the typed subscriber read what `shmx pub` sent differently, {e}\n  message: {message}\n  read: {}", received["value"]))?;
    if received["aligned"] != true {
        return Err("the sample `shmx pub` sent is not aligned to sample_align".to_owned());
    }

    // 3. Derive writes, CLI decodes. `echo` subscribes first (the topic then has three
    // subscribers: the probe's typed and raw ones, and echo's); the probe publishes once its
    // publisher sees all three.
    let mut echo = Background::start(root, &["echo", topic, "-n", "1", "--timeout", "30"]);
    echo.wait_for_subscribers(root, topic, 3)?;
    probe.send(&format!("publish {tail} 3"))?;
    let published = probe
        .answer_json("published")
        .map_err(|e| format!("the derive's publisher failed: {e}"))?;
    let echoed = echo.finish().map_err(|e| format!("shmx echo: {e}"))?;
    let line: Value = serde_json::from_str(echoed.trim())
        .map_err(|e| format!("shmx echo printed no JSON line ({e}): {echoed}"))?;
    let Some(value) = line.get("value") else {
        return Err(format!(
            "shmx echo could not decode the derive's sample: {line}"
        ));
    };
    gen.compare(ty, &case.value, value, "").map_err(|e| {
        format!("shmx echo decoded the derive's sample differently, {e}\n  echo: {line}")
    })?;
    gen.compare(ty, &case.value, &published["value"], "")
        .map_err(|e| {
            format!("the typed subscriber read the derive's own sample differently, {e}")
        })?;
    if published["aligned"] != true {
        return Err("the derive's sample is not aligned to sample_align".to_owned());
    }

    // 4. The same bytes, message and tail.
    if received["hex"] != published["hex"] {
        return Err(format!(
            "the samples differ:\n  shmx pub: {}\n  derive:   {}",
            received["hex"], published["hex"]
        ));
    }
    Ok(())
}

/// The value as the test gives it to `shmx pub`: as [`Gen::json`], but padding fields
/// sometimes left out, enums sometimes by number, 128-bit integers sometimes as numbers (all
/// of which `pub` accepts); the choices are seeded by the run's seed and the case.
struct GenJson<'a> {
    gen: &'a Gen,
    rng: Rng,
}

impl<'a> GenJson<'a> {
    fn new(gen: &'a Gen, salt: u64) -> GenJson<'a> {
        GenJson {
            gen,
            rng: Rng(gen.seed ^ salt.wrapping_mul(0x2545_f491_4f6c_dd1d)),
        }
    }

    fn pub_json(&mut self, ty: &Ty, val: &Val) -> Value {
        let gen = self.gen;
        match (ty, val) {
            (Ty::Prim(Prim::U128), Val::U(v))
                if *v <= u128::from(u64::MAX) && self.rng.chance(30) =>
            {
                json!(*v as u64)
            }
            (Ty::Prim(Prim::I128), Val::I(v))
                if i64::try_from(*v).is_ok() && self.rng.chance(30) =>
            {
                json!(*v as i64)
            }
            (Ty::Array(elem, _), Val::List(items)) | (Ty::RelSlice(elem), Val::List(items)) => {
                Value::Array(items.iter().map(|v| self.pub_json(elem, v)).collect())
            }
            (Ty::Struct(i), Val::List(items)) => {
                let mut map = serde_json::Map::new();
                for (f, v) in gen.structs[*i].fields.iter().zip(items) {
                    if f.padding && self.rng.chance(50) {
                        continue;
                    }
                    map.insert(f.name.clone(), self.pub_json(&f.ty, v));
                }
                Value::Object(map)
            }
            (Ty::Enum(i), Val::Enum(v)) if self.rng.chance(30) => {
                let d = gen.enums[*i].variants[*v].2;
                match i64::try_from(d) {
                    Ok(d) => json!(d),
                    Err(_) => json!(d as u64),
                }
            }
            _ => gen.json(ty, val),
        }
    }
}
