//! Fuzzing of the receive-side validator (`ShmMessage::validate`) with arbitrary bytes: it
//! never reads outside the chunk, and it accepts exactly the valid samples.
//!
//! - Every sample is copied into a "guarded chunk": the bytes end exactly where a `PROT_NONE`
//!   page begins, so a validator that reads past the end of the chunk kills this test with
//!   SIGSEGV instead of reading a neighbour's memory. (The published length may stop up to 7
//!   bytes short of the chunk's end, as a sample may in a real chunk; reading those bytes is
//!   not a fault but is caught by the model below, which the validator must agree with.)
//! - Each result is compared with a reference model written here, independently of shmx: it
//!   decodes every offset and length with `u32::from_ne_bytes`, checks bounds, alignment,
//!   `bool`s, enum discriminants and UTF-8 (with a UTF-8 decoder of its own), and predicts the
//!   first error, with its offset and value.
//! - When the validator accepts, the generated readers (`msg.field()`) are checked. Readers
//!   re-check each pointer against the data segments shmx has mapped, so in the guarded chunk
//!   (an anonymous mapping shmx does not know) they must all read as empty. The same bytes are
//!   then copied into a real loaned chunk (a `Publisher<[u8; 8192]>`'s, at an address with the
//!   same remainder modulo 8), validated there again, and there the readers must return
//!   exactly the elements the model found, inside `[tail_start, payload_end)`.
//! - Two kinds of input for each message type: arbitrary bytes (optionally with small random
//!   offsets and lengths, so that they land near the tail), and "almost valid" samples, laid
//!   out the way a writer does and then mutated in up to two places (a byte, a bit, an offset
//!   or a length set to an edge value, the published length), so that both the accept and the
//!   reject paths are exercised heavily; an unmutated sample must be accepted.
//!
//! Each property runs 2000 cases (a few seconds in debug). For a longer run:
//!
//! ```text
//! PROPTEST_CASES=100000 cargo test -p shmx --release --test validate_fuzz
//! ```
//!
//! A SIGSEGV means the validator read outside the chunk; to see the input that did it, run
//! with `VALIDATE_FUZZ_TRACE=1 ... -- --nocapture --test-threads=1` (each input is printed
//! before it is validated). Failures found by proptest are shrunk and printed, not saved.
#![cfg(unix)]

use core::mem::{align_of, offset_of, size_of};
use memmap2::MmapMut;
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use shmx::message::{ValidationContext, ValidationError};
use shmx::{Publisher, RelSlice, RelStr, ShmMessage};
use std::cell::Cell;
use std::fmt;

// ---------------------------------------------------------------------------------------------
// Message types

#[derive(ShmMessage, Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Mode {
    Idle = 0,
    Run = 1,
    Fault = 7,
    Max = 200,
}

/// No variant is 0, and negative discriminants.
#[derive(ShmMessage, Clone, Copy, Debug, PartialEq, Eq)]
#[repr(i16)]
pub enum Level {
    Low = -3,
    High = 900,
}

const MODES: [u8; 4] = [
    Mode::Idle as u8,
    Mode::Run as u8,
    Mode::Fault as u8,
    Mode::Max as u8,
];
const LEVELS: [i16; 2] = [Level::Low as i16, Level::High as i16];

/// Aligned to 8; relative pointers to `u16`s, UTF-8 and `bool`s between plain fields.
#[derive(ShmMessage)]
#[repr(C)]
pub struct Record {
    pub seq: u64,
    pub flag: bool,
    pub mode: Mode,
    pub _pad: [u8; 2],
    pub samples: RelSlice<u16>,
    pub name: RelStr,
    pub bits: RelSlice<bool>,
    pub flags: [bool; 3],
    pub _pad2: [u8; 1],
}

#[derive(ShmMessage)]
#[repr(C)]
pub struct Tag {
    pub level: Level,
    pub ok: bool,
    pub _pad: [u8; 1],
    pub label: RelStr,
}

/// Aligned to 4 only (so its chunk may start at an address that is not 8-aligned) but with
/// 8-aligned `u64` elements; relative pointers inside nested structs and arrays, and to enums
/// and to arrays.
#[derive(ShmMessage)]
#[repr(C)]
pub struct Nested {
    pub tags: [Tag; 2],
    pub words: [RelStr; 2],
    pub modes: RelSlice<Mode>,
    pub triples: RelSlice<[u16; 3]>,
    pub wide: RelSlice<u64>,
}

// ---------------------------------------------------------------------------------------------
// The reference model's description of the types (flattened, in declaration order)

/// An element type of a relative slice.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Elem {
    U16,
    U64,
    Triple,
    Bool,
    Mode,
}

impl Elem {
    const fn size(self) -> usize {
        match self {
            Elem::U16 => size_of::<u16>(),
            Elem::U64 => size_of::<u64>(),
            Elem::Triple => size_of::<[u16; 3]>(),
            Elem::Bool => 1,
            Elem::Mode => 1,
        }
    }

    const fn align(self) -> usize {
        match self {
            Elem::U16 => align_of::<u16>(),
            Elem::U64 => align_of::<u64>(),
            Elem::Triple => align_of::<[u16; 3]>(),
            Elem::Bool => 1,
            Elem::Mode => 1,
        }
    }
}

/// A leaf field of a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// Bytes of which every value is valid.
    Opaque(usize),
    Bool,
    Mode,
    Level,
    Slice(Elem),
    Str,
}

impl Kind {
    const fn size(self) -> usize {
        match self {
            Kind::Opaque(n) => n,
            Kind::Bool | Kind::Mode => 1,
            Kind::Level => 2,
            Kind::Slice(_) | Kind::Str => 8,
        }
    }

    /// Element size and alignment of a relative pointer.
    fn rel(self) -> Option<(usize, usize)> {
        match self {
            Kind::Slice(e) => Some((e.size(), e.align())),
            Kind::Str => Some((1, 1)),
            _ => None,
        }
    }
}

struct Layout {
    size: usize,
    /// `(offset in the message, kind)`, in declaration order.
    fields: &'static [(usize, Kind)],
}

impl Layout {
    /// The relative pointers: `(offset, element size, element alignment)`.
    fn rels(&self) -> Vec<(usize, usize, usize)> {
        self.fields
            .iter()
            .filter_map(|&(at, kind)| kind.rel().map(|(size, align)| (at, size, align)))
            .collect()
    }
}

/// What a generated reader returned.
#[derive(Debug)]
struct View {
    addr: usize,
    len: usize,
    bytes: Vec<u8>,
}

impl View {
    fn of<E>(s: &[E], bytes: impl FnMut(&E) -> Vec<u8>) -> View {
        View {
            addr: s.as_ptr() as usize,
            len: s.len(),
            bytes: s.iter().flat_map(bytes).collect(),
        }
    }

    fn of_str(s: &str) -> View {
        View::of(s.as_bytes(), |b| vec![*b])
    }
}

/// A message type under test: its layout for the model, and its readers.
trait Fuzzed: ShmMessage {
    const LAYOUT: Layout;
    /// The readers of every relative pointer, in the order of `LAYOUT.fields`.
    fn views(&self) -> Vec<View>;
}

impl Fuzzed for Record {
    const LAYOUT: Layout = Layout {
        size: size_of::<Record>(),
        fields: &[
            (offset_of!(Record, seq), Kind::Opaque(8)),
            (offset_of!(Record, flag), Kind::Bool),
            (offset_of!(Record, mode), Kind::Mode),
            (offset_of!(Record, _pad), Kind::Opaque(2)),
            (offset_of!(Record, samples), Kind::Slice(Elem::U16)),
            (offset_of!(Record, name), Kind::Str),
            (offset_of!(Record, bits), Kind::Slice(Elem::Bool)),
            (offset_of!(Record, flags), Kind::Bool),
            (offset_of!(Record, flags) + 1, Kind::Bool),
            (offset_of!(Record, flags) + 2, Kind::Bool),
            (offset_of!(Record, _pad2), Kind::Opaque(1)),
        ],
    };

    fn views(&self) -> Vec<View> {
        vec![
            View::of(self.samples(), |v| v.to_ne_bytes().to_vec()),
            View::of_str(self.name()),
            View::of(self.bits(), |b| vec![u8::from(*b)]),
        ]
    }
}

const TAG0: usize = offset_of!(Nested, tags);
const TAG1: usize = offset_of!(Nested, tags) + size_of::<Tag>();
const WORDS: usize = offset_of!(Nested, words);

impl Fuzzed for Nested {
    const LAYOUT: Layout = Layout {
        size: size_of::<Nested>(),
        fields: &[
            (TAG0 + offset_of!(Tag, level), Kind::Level),
            (TAG0 + offset_of!(Tag, ok), Kind::Bool),
            (TAG0 + offset_of!(Tag, _pad), Kind::Opaque(1)),
            (TAG0 + offset_of!(Tag, label), Kind::Str),
            (TAG1 + offset_of!(Tag, level), Kind::Level),
            (TAG1 + offset_of!(Tag, ok), Kind::Bool),
            (TAG1 + offset_of!(Tag, _pad), Kind::Opaque(1)),
            (TAG1 + offset_of!(Tag, label), Kind::Str),
            (WORDS, Kind::Str),
            (WORDS + size_of::<RelStr>(), Kind::Str),
            (offset_of!(Nested, modes), Kind::Slice(Elem::Mode)),
            (offset_of!(Nested, triples), Kind::Slice(Elem::Triple)),
            (offset_of!(Nested, wide), Kind::Slice(Elem::U64)),
        ],
    };

    fn views(&self) -> Vec<View> {
        vec![
            View::of_str(self.tags[0].label()),
            View::of_str(self.tags[1].label()),
            View::of_str(self.words[0].as_str()),
            View::of_str(self.words[1].as_str()),
            View::of(self.modes(), |m| vec![*m as u8]),
            View::of(self.triples(), |t| {
                t.iter().flat_map(|v| v.to_ne_bytes()).collect()
            }),
            View::of(self.wide(), |v| v.to_ne_bytes().to_vec()),
        ]
    }
}

/// A relative pointer on its own is a message too.
impl Fuzzed for RelStr {
    const LAYOUT: Layout = Layout {
        size: size_of::<RelStr>(),
        fields: &[(0, Kind::Str)],
    };

    fn views(&self) -> Vec<View> {
        vec![View::of_str(self.as_str())]
    }
}

impl Fuzzed for RelSlice<bool> {
    const LAYOUT: Layout = Layout {
        size: size_of::<RelSlice<bool>>(),
        fields: &[(0, Kind::Slice(Elem::Bool))],
    };

    fn views(&self) -> Vec<View> {
        vec![View::of(self.as_slice(), |b| vec![u8::from(*b)])]
    }
}

// ---------------------------------------------------------------------------------------------
// The reference model

/// The first error the model predicts (for `BadRelative`, not which of its problems).
#[derive(Debug, PartialEq, Eq)]
enum Expect {
    Bool {
        offset: usize,
        value: u8,
    },
    Discriminant {
        name: &'static str,
        offset: usize,
        value: i128,
    },
    Relative {
        offset: usize,
    },
    Utf8 {
        offset: usize,
    },
}

impl From<ValidationError> for Expect {
    fn from(e: ValidationError) -> Expect {
        match e {
            ValidationError::InvalidBool { offset, value } => Expect::Bool { offset, value },
            ValidationError::InvalidDiscriminant {
                type_name,
                offset,
                value,
            } => Expect::Discriminant {
                name: type_name,
                offset,
                value,
            },
            ValidationError::BadRelative { offset, .. } => Expect::Relative { offset },
            ValidationError::InvalidUtf8 { offset } => Expect::Utf8 { offset },
        }
    }
}

/// A relative pointer the model accepted: its elements are `bytes[start..start + len * size]`.
#[derive(Debug)]
struct Span {
    start: usize,
    len: usize,
    size: usize,
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes(bytes[at..at + 4].try_into().unwrap())
}

/// Whether `s` is well-formed UTF-8 (The Unicode Standard, table 3-7): no overlong forms, no
/// surrogates, nothing above U+10FFFF, no truncated sequence.
fn utf8_ok(s: &[u8]) -> bool {
    let mut i = 0;
    while i < s.len() {
        let (more, second) = match s[i] {
            0x00..=0x7F => (0, 0x80..=0xBF),
            0xC2..=0xDF => (1, 0x80..=0xBF),
            0xE0 => (2, 0xA0..=0xBF),
            0xE1..=0xEC | 0xEE..=0xEF => (2, 0x80..=0xBF),
            0xED => (2, 0x80..=0x9F),
            0xF0 => (3, 0x90..=0xBF),
            0xF1..=0xF3 => (3, 0x80..=0xBF),
            0xF4 => (3, 0x80..=0x8F),
            _ => return false,
        };
        if more > 0 {
            let Some(rest) = s.get(i + 1..=i + more) else {
                return false;
            };
            if !second.contains(&rest[0]) || !rest[1..].iter().all(|b| (0x80..=0xBF).contains(b)) {
                return false;
            }
        }
        i += 1 + more;
    }
    true
}

/// Checks one scalar at `bytes[at]`, reporting its offset as `at` (message and tail alike are
/// indexed from the start of the chunk, which is the start of the message).
fn scalar_ok(kind: Kind, bytes: &[u8], at: usize) -> Result<(), Expect> {
    match kind {
        Kind::Bool if bytes[at] > 1 => Err(Expect::Bool {
            offset: at,
            value: bytes[at],
        }),
        Kind::Mode if !MODES.contains(&bytes[at]) => Err(Expect::Discriminant {
            name: "Mode",
            offset: at,
            value: i128::from(bytes[at]),
        }),
        Kind::Level => {
            let value = i16::from_ne_bytes([bytes[at], bytes[at + 1]]);
            if LEVELS.contains(&value) {
                Ok(())
            } else {
                Err(Expect::Discriminant {
                    name: "Level",
                    offset: at,
                    value: i128::from(value),
                })
            }
        }
        _ => Ok(()),
    }
}

/// The model: whether `chunk`, placed at address `base`, holds a valid message, and if so the
/// elements of each relative pointer (in `layout` order).
fn model(layout: &Layout, chunk: &Chunk, base: usize) -> Result<Vec<Span>, Expect> {
    let bytes = &chunk.bytes;
    let tail_start = layout.size as u64;
    let published = chunk.published as u64;
    let mut spans = Vec::new();
    for &(at, kind) in layout.fields {
        let Some((size, align)) = kind.rel() else {
            scalar_ok(kind, bytes, at)?;
            continue;
        };
        let offset = u64::from(u32_at(bytes, at));
        let len = u64::from(u32_at(bytes, at + 4));
        if len == 0 {
            spans.push(Span {
                start: 0,
                len: 0,
                size,
            });
            continue;
        }
        // No overflow in u64: at < 2^12, offset < 2^32, len * size < 2^35.
        let start = at as u64 + offset;
        let end = start + len * size as u64;
        let aligned = (base as u64 + start) % align as u64 == 0;
        if start < tail_start || end > published || !aligned {
            return Err(Expect::Relative { offset: at });
        }
        let (start, len) = (start as usize, len as usize);
        match kind {
            Kind::Str if !utf8_ok(&bytes[start..start + len]) => {
                return Err(Expect::Utf8 { offset: at });
            }
            Kind::Slice(Elem::Bool) => {
                for i in 0..len {
                    scalar_ok(Kind::Bool, bytes, start + i)?;
                }
            }
            Kind::Slice(Elem::Mode) => {
                for i in 0..len {
                    scalar_ok(Kind::Mode, bytes, start + i)?;
                }
            }
            _ => {}
        }
        spans.push(Span { start, len, size });
    }
    Ok(spans)
}

// ---------------------------------------------------------------------------------------------
// The guarded chunk

/// Two anonymous pages, the second `PROT_NONE`: bytes placed at the end of the first page are
/// followed by memory that faults when read.
struct Guarded {
    _map: MmapMut,
    base: *mut u8,
    page: usize,
}

impl Guarded {
    fn new() -> Guarded {
        // SAFETY: `sysconf` has no preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        let page = usize::try_from(page).expect("the page size");
        let mut map = MmapMut::map_anon(2 * page).expect("two anonymous pages");
        let base = map.as_mut_ptr();
        // SAFETY: `base + page` is the page-aligned start of the second of the two pages that
        // `map` owns; no reference points into it, and `map` unmaps both pages when dropped
        // whatever their protection.
        let rc = unsafe { libc::mprotect(base.add(page).cast(), page, libc::PROT_NONE) };
        assert_eq!(rc, 0, "mprotect: {}", std::io::Error::last_os_error());
        Guarded {
            _map: map,
            base,
            page,
        }
    }

    /// Address of the first byte of the guard page.
    fn guard(&self) -> usize {
        self.base as usize + self.page
    }

    /// Copies `bytes` so that they end where the guard page begins; returns their address.
    fn place(&self, bytes: &[u8]) -> usize {
        assert!(bytes.len() <= self.page);
        // SAFETY: the destination is the last `bytes.len()` bytes of the first page, readable
        // and writable, owned by `self._map` and written only through `base`; no reference
        // into the mapping outlives the test case that made it, so none is live here.
        unsafe {
            let dst = self.base.add(self.page - bytes.len());
            core::ptr::copy_nonoverlapping(bytes.as_ptr(), dst, bytes.len());
            dst as usize
        }
    }
}

/// The bytes of a chunk (message, then tail), and the length its publisher declared.
#[derive(Clone)]
struct Chunk {
    bytes: Vec<u8>,
    published: usize,
}

impl fmt::Debug for Chunk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Chunk {{ published: {}, capacity: {}, bytes: [",
            self.published,
            self.bytes.len()
        )?;
        for (i, b) in self.bytes.iter().enumerate() {
            let sep = if i == 0 { "" } else { " " };
            write!(f, "{sep}{b:02x}")?;
        }
        write!(f, "] }}")
    }
}

/// Bytes of the arena: a loaned chunk of a real data segment, into which accepted samples are
/// copied to check what the readers return.
const ARENA: usize = 8192;

/// Where samples are placed: the guarded chunk, for the validator, and the arena.
struct Places {
    guarded: Guarded,
    /// `ARENA` writable bytes of a chunk loaned for the whole run.
    arena: *mut u8,
}

/// Validates `chunk` as a `T` in the guarded chunk and compares the result with the model;
/// returns whether it was accepted. An accepted sample is also checked through its readers.
fn check<T: Fuzzed>(places: &Places, chunk: &Chunk) -> Result<bool, TestCaseError> {
    let size = size_of::<T>();
    prop_assert_eq!(T::LAYOUT.size, size);
    prop_assert!(size <= chunk.published && chunk.published <= chunk.bytes.len());
    let base = places.guarded.place(&chunk.bytes);
    prop_assert_eq!(
        base % align_of::<T>(),
        0,
        "the harness misaligned the message"
    );
    prop_assert_eq!(base + chunk.bytes.len(), places.guarded.guard());
    if std::env::var_os("VALIDATE_FUZZ_TRACE").is_some() {
        eprintln!("{} at {base:#x}: {chunk:?}", core::any::type_name::<T>());
    }
    let ctx = ValidationContext::new(base as *const u8, size, chunk.published);
    // SAFETY: `base` is aligned for `T` (asserted above) and is followed by the chunk's
    // `bytes.len() >= size_of::<T>()` mapped, readable bytes, which `ctx` describes; `validate`
    // reads them as integers only. Any read past them hits the guard page and faults, which is
    // what this test looks for.
    let real = unsafe { T::validate(base as *const T, &ctx) };
    let expected = model(&T::LAYOUT, chunk, base);
    let spans = match (real, expected) {
        (Ok(()), Ok(spans)) => spans,
        (Err(e), Err(x)) => {
            prop_assert_eq!(Expect::from(e), x);
            return Ok(false);
        }
        (real, expected) => {
            return Err(TestCaseError::fail(format!(
                "the validator says {real:?}, the model says {:?}",
                expected.map(|_| ())
            )))
        }
    };

    // The guarded chunk is not a data segment that shmx mapped: every reader reads as empty
    // there (they re-check each pointer against the mapped segments), and so never reaches
    // the guard page either.
    // SAFETY: `validate` accepted the bytes at `base` as a valid `T`, and the model agreed;
    // they stay mapped and unchanged while `msg` lives (this thread alone writes the mapping,
    // in `place`, which is not called again before `msg` is gone).
    let msg = unsafe { &*(base as *const T) };
    for view in msg.views() {
        prop_assert_eq!(view.len, 0, "a reader outside any data segment: {:?}", view);
    }

    // The same bytes in a real chunk, at an address with the same remainder modulo 8 (so the
    // same alignment for every type here): the readers return exactly what the model found.
    let arena = places.arena as usize;
    let skew = (base % 8 + 8 - arena % 8) % 8;
    prop_assert!(skew + chunk.bytes.len() <= ARENA);
    // SAFETY: the destination lies in the arena (asserted just above), which this thread
    // alone uses, and no reference into it is live.
    let at = unsafe {
        let at = places.arena.add(skew);
        core::ptr::copy_nonoverlapping(chunk.bytes.as_ptr(), at, chunk.bytes.len());
        at as usize
    };
    prop_assert_eq!(at % 8, base % 8);
    let ctx = ValidationContext::new(at as *const u8, size, chunk.published);
    // SAFETY: as above: aligned, with `bytes.len()` readable bytes of the arena at `at`.
    let again = unsafe { T::validate(at as *const T, &ctx) };
    prop_assert_eq!(again, Ok(()), "accepted in one place, not in the other");
    // SAFETY: just validated; the arena is not written again while `msg` lives.
    let msg = unsafe { &*(at as *const T) };
    let views = msg.views();
    prop_assert_eq!(views.len(), spans.len());
    for (view, span) in views.iter().zip(&spans) {
        prop_assert_eq!(view.len, span.len, "reader length: {:?}", view);
        if span.len == 0 {
            continue;
        }
        let end = view.addr + span.len * span.size;
        prop_assert!(
            ctx.tail_start() <= view.addr && end <= ctx.payload_end(),
            "reader returned {:#x}..{:#x}, outside the tail {:#x}..{:#x}",
            view.addr,
            end,
            ctx.tail_start(),
            ctx.payload_end()
        );
        prop_assert_eq!(view.addr, at + span.start);
        prop_assert_eq!(
            &view.bytes[..],
            &chunk.bytes[span.start..span.start + span.len * span.size]
        );
    }
    Ok(true)
}

fn config() -> Config {
    // `Config::default()` reads PROPTEST_CASES (and the other PROPTEST_* variables).
    let mut config = Config::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = 2000;
    }
    // Shrunk failures are printed; nothing is written next to this file.
    config.failure_persistence = None;
    config
}

/// Runs `strategy`, building each case's chunk with `build` (which also says whether the
/// chunk must be accepted); returns how many cases were accepted and rejected.
fn fuzz<T: Fuzzed, S: Strategy>(
    strategy: S,
    build: impl Fn(&S::Value) -> (Chunk, bool),
) -> (u32, u32) {
    let dir = tempfile::tempdir().expect("a root directory");
    let publisher = Publisher::<[u8; ARENA]>::builder("fuzz/arena")
        .root(dir.path())
        .create()
        .expect("the arena's publisher");
    let mut loaned = publisher.loan_uninit().expect("the arena's chunk");
    let places = Places {
        guarded: Guarded::new(),
        arena: loaned.as_mut_ptr().cast::<u8>(),
    };
    let (accepted, rejected) = (Cell::new(0), Cell::new(0));
    let mut runner = TestRunner::new(config());
    let result = runner.run(&strategy, |input| {
        let (chunk, must_accept) = build(&input);
        let ok = check::<T>(&places, &chunk).map_err(|e| match e {
            TestCaseError::Fail(why) => TestCaseError::fail(format!("{why}\n{chunk:?}")),
            other => other,
        })?;
        prop_assert!(
            ok || !must_accept,
            "a valid sample was rejected\n{:?}",
            chunk
        );
        let counter = if ok { &accepted } else { &rejected };
        counter.set(counter.get() + 1);
        Ok(())
    });
    drop(loaned);
    if let Err(e) = result {
        panic!("{}: {e}", core::any::type_name::<T>());
    }
    eprintln!(
        "{}: {} accepted, {} rejected",
        core::any::type_name::<T>(),
        accepted.get(),
        rejected.get()
    );
    (accepted.get(), rejected.get())
}

/// Whether the chunk of a `T` starts 4 bytes past an 8-aligned address (when `T` allows it):
/// `base = guard - capacity`, and the guard page is 8-aligned.
fn phase<T>(odd: bool) -> usize {
    if odd && align_of::<T>() < 8 {
        4
    } else {
        0
    }
}

// ---------------------------------------------------------------------------------------------
// Arbitrary bytes

#[derive(Debug, Clone)]
struct Arbitrary {
    bytes: Vec<u8>,
    odd: bool,
    slack: usize,
    /// Valid plain fields, and small offsets and lengths for the relative pointers, so that
    /// they land near the tail.
    tame: Option<Vec<u32>>,
}

fn arbitrary() -> impl Strategy<Value = Arbitrary> {
    (
        vec(any::<u8>(), 0..=320),
        any::<bool>(),
        prop_oneof![Just(0usize), 0..8usize],
        proptest::option::of(vec(any::<u32>(), 16)),
    )
        .prop_map(|(bytes, odd, slack, tame)| Arbitrary {
            bytes,
            odd,
            slack,
            tame,
        })
}

fn arbitrary_chunk<T: Fuzzed>(a: &Arbitrary) -> (Chunk, bool) {
    let size = size_of::<T>();
    let phase = phase::<T>(a.odd);
    let mut bytes = a.bytes.clone();
    if bytes.len() < size {
        bytes.resize(size, 0xA5);
    }
    while (bytes.len() + phase) % 8 != 0 {
        bytes.push(0xA5);
    }
    let capacity = bytes.len();
    if let Some(tame) = &a.tame {
        // Valid plain fields, and offsets and lengths that mostly stay near the tail: the
        // elements (random bytes) then decide.
        for &(at, kind) in T::LAYOUT.fields {
            match kind {
                Kind::Bool => bytes[at] &= 1,
                Kind::Mode => bytes[at] = MODES[usize::from(bytes[at]) % MODES.len()],
                Kind::Level => {
                    let level = LEVELS[usize::from(bytes[at]) % LEVELS.len()];
                    bytes[at..at + 2].copy_from_slice(&level.to_ne_bytes());
                }
                _ => {}
            }
        }
        for (i, (at, elem, _)) in T::LAYOUT.rels().into_iter().enumerate() {
            let offset = tame[2 * i] % (capacity as u32 + 16);
            let len = match tame[2 * i + 1] {
                l if l % 4 == 0 => 0,
                l if l % 4 == 1 => (l / 4) % 9,
                l => (l / 4) % (capacity / elem + 3) as u32,
            };
            bytes[at..at + 4].copy_from_slice(&offset.to_ne_bytes());
            bytes[at + 4..at + 8].copy_from_slice(&len.to_ne_bytes());
        }
    }
    let published = capacity - a.slack.min(capacity - size);
    (Chunk { bytes, published }, false)
}

// ---------------------------------------------------------------------------------------------
// Almost valid samples

#[derive(Debug, Clone)]
struct RelPlan {
    len: usize,
    /// Extra gap before the elements, in units of their alignment.
    gap: usize,
    raw: Vec<u8>,
    text: String,
    /// The offset of an empty pointer (any value is fine).
    empty_offset: u32,
}

#[derive(Debug, Clone)]
struct ValidPlan {
    odd: bool,
    /// Values of the plain fields and of alignment gaps.
    fill: Vec<u8>,
    rels: Vec<RelPlan>,
    /// Unused bytes published after the last element.
    extra: usize,
    /// Publish up to the end of the chunk (so that it ends at the guard page).
    publish_all: bool,
}

fn rel_plan() -> impl Strategy<Value = RelPlan> {
    (
        prop_oneof![1 => Just(0usize), 3 => 1..=12usize],
        0..=2usize,
        vec(any::<u8>(), 12 * 8),
        prop_oneof![
            1 => Just(String::new()),
            3 => vec(any::<char>(), 1..=8).prop_map(String::from_iter),
        ],
        prop_oneof![Just(0u32), any::<u32>()],
    )
        .prop_map(|(len, gap, raw, text, empty_offset)| RelPlan {
            len,
            gap,
            raw,
            text,
            empty_offset,
        })
}

fn valid_plan() -> impl Strategy<Value = ValidPlan> {
    (
        any::<bool>(),
        vec(any::<u8>(), 64),
        vec(rel_plan(), 8),
        0..=3usize,
        any::<bool>(),
    )
        .prop_map(|(odd, fill, rels, extra, publish_all)| ValidPlan {
            odd,
            fill,
            rels,
            extra,
            publish_all,
        })
}

/// Lays out a valid `T` as a writer would: the message, then each relative pointer's
/// elements in the tail, aligned (at the address the chunk will have), with optional gaps.
fn valid_chunk<T: Fuzzed>(plan: &ValidPlan) -> Chunk {
    let layout = T::LAYOUT;
    let phase = phase::<T>(plan.odd);
    let fill = |i: usize| plan.fill[i % plan.fill.len()];
    let mut b: Vec<u8> = (0..layout.size).map(fill).collect();
    let mut rels = plan.rels.iter();
    for &(at, kind) in layout.fields {
        match kind {
            Kind::Opaque(_) => {}
            Kind::Bool => b[at] = fill(at) & 1,
            Kind::Mode => b[at] = MODES[usize::from(fill(at)) % MODES.len()],
            Kind::Level => {
                let level = LEVELS[usize::from(fill(at)) % LEVELS.len()];
                b[at..at + 2].copy_from_slice(&level.to_ne_bytes());
            }
            Kind::Slice(_) | Kind::Str => {
                let rel = rels.next().expect("enough relative pointer plans");
                let (elements, len, align) = match kind {
                    Kind::Str => (rel.text.as_bytes().to_vec(), rel.text.len(), 1),
                    Kind::Slice(elem) => {
                        let raw = &rel.raw[..rel.len * elem.size()];
                        let elements = match elem {
                            Elem::Bool => raw.iter().map(|r| r & 1).collect(),
                            Elem::Mode => raw
                                .iter()
                                .map(|&r| MODES[usize::from(r) % MODES.len()])
                                .collect(),
                            _ => raw.to_vec(),
                        };
                        (elements, rel.len, elem.align())
                    }
                    _ => unreachable!(),
                };
                let (offset, len) = if len == 0 {
                    (rel.empty_offset, 0)
                } else {
                    let mut gap = rel.gap * align;
                    while (phase + b.len()) % align != 0 || gap > 0 {
                        if (phase + b.len()) % align == 0 {
                            gap -= align;
                        }
                        b.push(fill(b.len()));
                    }
                    let start = b.len();
                    b.extend_from_slice(&elements);
                    ((start - at) as u32, len as u32)
                };
                b[at..at + 4].copy_from_slice(&offset.to_ne_bytes());
                b[at + 4..at + 8].copy_from_slice(&len.to_ne_bytes());
            }
        }
    }
    for _ in 0..plan.extra {
        b.push(fill(b.len()));
    }
    let mut published = b.len();
    while (b.len() + phase) % 8 != 0 {
        b.push(fill(b.len()));
    }
    if plan.publish_all {
        published = b.len();
    }
    Chunk {
        bytes: b,
        published,
    }
}

#[derive(Debug, Clone)]
enum WordOp {
    Add(i8),
    Set(u32),
    /// Set the word so that the elements end `k` bytes after the published end (if possible).
    Edge(i8),
}

#[derive(Debug, Clone)]
enum Mutation {
    Byte { at: usize, value: u8 },
    MessageByte { at: usize, value: u8 },
    Bit { at: usize, bit: u8 },
    Word { rel: usize, len: bool, op: WordOp },
    Published(i8),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let word = prop_oneof![
        (-9i8..=9).prop_map(WordOp::Add),
        prop_oneof![
            Just(0u32),
            Just(1),
            Just(2),
            Just(4),
            Just(7),
            Just(8),
            Just(0x7fff_ffff),
            Just(0x8000_0000),
            Just(u32::MAX - 1),
            Just(u32::MAX),
            any::<u32>(),
        ]
        .prop_map(WordOp::Set),
        (-9i8..=9).prop_map(WordOp::Edge),
    ];
    prop_oneof![
        2 => (any::<usize>(), any::<u8>()).prop_map(|(at, value)| Mutation::Byte { at, value }),
        1 => (any::<usize>(), any::<u8>())
            .prop_map(|(at, value)| Mutation::MessageByte { at, value }),
        2 => (any::<usize>(), 0..8u8).prop_map(|(at, bit)| Mutation::Bit { at, bit }),
        4 => (any::<usize>(), any::<bool>(), word)
            .prop_map(|(rel, len, op)| Mutation::Word { rel, len, op }),
        1 => (-9i8..=9).prop_map(Mutation::Published),
    ]
}

fn mutate<T: Fuzzed>(chunk: &mut Chunk, m: &Mutation) {
    let size = size_of::<T>();
    let capacity = chunk.bytes.len();
    let b = &mut chunk.bytes;
    match *m {
        Mutation::Byte { at, value } => b[at % capacity] = value,
        Mutation::MessageByte { at, value } => b[at % size] = value,
        Mutation::Bit { at, bit } => b[at % capacity] ^= 1 << bit,
        Mutation::Word { rel, len, ref op } => {
            let rels = T::LAYOUT.rels();
            let (at, elem, _) = rels[rel % rels.len()];
            let pos = if len { at + 4 } else { at };
            let old = u32_at(b, pos);
            let new = match *op {
                WordOp::Add(d) => Some(old.wrapping_add_signed(i32::from(d))),
                WordOp::Set(v) => Some(v),
                WordOp::Edge(k) => {
                    let end = chunk.published as i64 + i64::from(k);
                    let elem = elem as i64;
                    if len {
                        let start = (at as i64) + i64::from(u32_at(b, at));
                        let n = (end - start + elem - 1).div_euclid(elem);
                        u32::try_from(n).ok()
                    } else {
                        let start = end - i64::from(u32_at(b, at + 4)) * elem;
                        u32::try_from(start - at as i64).ok()
                    }
                }
            };
            if let Some(new) = new {
                b[pos..pos + 4].copy_from_slice(&new.to_ne_bytes());
            }
        }
        Mutation::Published(d) => {
            let p = chunk.published as i64 + i64::from(d);
            chunk.published = p.clamp(size as i64, capacity as i64) as usize;
        }
    }
}

fn almost_valid() -> impl Strategy<Value = (ValidPlan, Vec<Mutation>)> {
    (valid_plan(), vec(mutation(), 0..=2))
}

fn almost_valid_chunk<T: Fuzzed>((plan, mutations): &(ValidPlan, Vec<Mutation>)) -> (Chunk, bool) {
    let mut chunk = valid_chunk::<T>(plan);
    for m in mutations {
        mutate::<T>(&mut chunk, m);
    }
    (chunk, mutations.is_empty())
}

// ---------------------------------------------------------------------------------------------
// The properties

macro_rules! fuzz_type {
    ($arbitrary:ident, $almost_valid:ident, $t:ty) => {
        #[test]
        fn $arbitrary() {
            let (_, rejected) = fuzz::<$t, _>(arbitrary(), arbitrary_chunk::<$t>);
            assert!(rejected > 0);
        }

        #[test]
        fn $almost_valid() {
            let (accepted, rejected) = fuzz::<$t, _>(almost_valid(), almost_valid_chunk::<$t>);
            let cases = accepted + rejected;
            // Both paths must be exercised heavily, or the generators have rotted.
            assert!(
                accepted * 10 >= cases && rejected * 10 >= cases,
                "{accepted} accepted, {rejected} rejected"
            );
        }
    };
}

fuzz_type!(record_arbitrary_bytes, record_almost_valid, Record);
fuzz_type!(nested_arbitrary_bytes, nested_almost_valid, Nested);
fuzz_type!(rel_str_arbitrary_bytes, rel_str_almost_valid, RelStr);
fuzz_type!(
    rel_slice_bool_arbitrary_bytes,
    rel_slice_bool_almost_valid,
    RelSlice<bool>
);

// ---------------------------------------------------------------------------------------------
// Checks of the harness itself

/// The model's layouts cover every byte of each type exactly once, in order.
#[test]
fn layouts_cover_every_byte() {
    fn covers<T: Fuzzed>() {
        let mut next = 0;
        for &(at, kind) in T::LAYOUT.fields {
            assert_eq!(at, next, "{}: gap or overlap", core::any::type_name::<T>());
            next = at + kind.size();
        }
        assert_eq!(next, size_of::<T>(), "{}", core::any::type_name::<T>());
    }
    covers::<Record>();
    covers::<Nested>();
    covers::<RelStr>();
    covers::<RelSlice<bool>>();
    assert_eq!(align_of::<Record>(), 8);
    assert_eq!(
        align_of::<Nested>(),
        4,
        "so that its chunk may start at 4 mod 8"
    );
}

/// The model's UTF-8 decoder agrees with the standard library's, on every sequence of up to 4
/// bytes whose first two bytes are any bytes (table 3-7 varies the range of the second byte)
/// and whose later bytes are at the boundaries of the continuation range 80..=BF.
#[test]
fn utf8_model_agrees_with_std() {
    const LATER: [u8; 5] = [0x00, 0x7F, 0x80, 0xBF, 0xC0];
    for a in 0..=255u8 {
        for b in 0..=255u8 {
            for c in LATER {
                for d in LATER {
                    let s = [a, b, c, d];
                    for n in 1..=4 {
                        let s = &s[..n];
                        assert_eq!(utf8_ok(s), std::str::from_utf8(s).is_ok(), "{s:02x?}");
                    }
                }
            }
        }
    }
}

/// The guard page is really inaccessible, and the chunk's last byte is not: the kernel reports
/// EFAULT when asked to copy from the guard page into a pipe (no fault in this process).
#[test]
fn the_guard_page_is_unreadable() {
    use std::os::fd::AsRawFd;
    let guarded = Guarded::new();
    let end = guarded.place(&[0x5A]) + 1;
    assert_eq!(end, guarded.guard());
    let (_reader, writer) = std::io::pipe().unwrap();
    let copy = |addr: usize| {
        // SAFETY: `write` only reads `addr` from the kernel side, which reports an unmapped or
        // inaccessible buffer as EFAULT instead of faulting.
        let n = unsafe { libc::write(writer.as_raw_fd(), addr as *const libc::c_void, 1) };
        (n, std::io::Error::last_os_error().raw_os_error())
    };
    assert_eq!(copy(end - 1).0, 1, "the last byte of the chunk is readable");
    assert_eq!(copy(end), (-1, Some(libc::EFAULT)), "the guard page is not");
}
