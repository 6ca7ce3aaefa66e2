//! The fixed part of the layout probe of `tests/layout_vs_derive.rs`: the test writes this
//! file as `src/main.rs` of a crate of its own, next to `src/cases.rs`, which it generates (the
//! message types, their values and an impl of [`Case`] for each), and builds it.
//!
//! The probe speaks a line protocol on stdin/stdout, one message type at a time:
//!
//! - `case I TOPIC`: makes a typed `Subscriber` and a `RawSubscriber` of case `I` on `TOPIC`
//!   (under `$SHMX_ROOT`) and answers `ready {"describe":..,"size":..,"align":..,
//!   "sample_align":..}`;
//! - `recv`: receives one sample with both subscribers (the test published it with `shmx
//!   pub`) and answers `received {"value":..,"hex":..,"aligned":..}` (the value read by the
//!   typed subscriber through the derive's readers, the bytes the raw one got), or
//!   `received {"error":..}`;
//! - `publish TAIL SUBSCRIBERS`: makes a typed `Publisher` with `TAIL` bytes of tail, waits
//!   until `SUBSCRIBERS` subscribers are connected, writes the case's value through the
//!   derive's writer, publishes it, receives it with both subscribers and answers
//!   `published {"value":..,"hex":..,"aligned":..}`, or `published {"error":..}`;
//! - `done`: drops the endpoints and answers `closed`.
//!
//! Every wait has a deadline; an error is an answer, never a hang.

#![allow(dead_code, non_camel_case_types, non_snake_case)]

mod cases;

use shmx::inspect::RawSubscriber;
use shmx::{Publisher, RelSlice, RelStr, ShmMessage, Subscriber, Tail, Writable};
use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::pin::Pin;
use std::time::{Duration, Instant};

/// How long any wait may take.
const DEADLINE: Duration = Duration::from_secs(30);

/// A value as the JSON that `shmx echo` prints for it.
pub trait Dump {
    fn dump(&self, out: &mut String);
}

macro_rules! dump_int {
    ($($t:ty),*) => {$(
        impl Dump for $t {
            fn dump(&self, out: &mut String) {
                out.push_str(&self.to_string());
            }
        }
    )*};
}
dump_int!(u8, u16, u32, u64, i8, i16, i32, i64);

macro_rules! dump_wide {
    ($($t:ty),*) => {$(
        impl Dump for $t {
            fn dump(&self, out: &mut String) {
                out.push('"');
                out.push_str(&self.to_string());
                out.push('"');
            }
        }
    )*};
}
dump_wide!(u128, i128);

macro_rules! dump_float {
    ($($t:ty),*) => {$(
        impl Dump for $t {
            fn dump(&self, out: &mut String) {
                if self.is_nan() {
                    out.push_str("\"NaN\"");
                } else if self.is_infinite() {
                    out.push_str(if *self > 0.0 { "\"inf\"" } else { "\"-inf\"" });
                } else {
                    // `{:?}` is the shortest text that reads back as the same value, with a
                    // `.0` or an exponent, so JSON reads it as a float.
                    out.push_str(&format!("{:?}", self));
                }
            }
        }
    )*};
}
dump_float!(f32, f64);

impl Dump for bool {
    fn dump(&self, out: &mut String) {
        out.push_str(if *self { "true" } else { "false" });
    }
}

impl<T: Dump> Dump for [T] {
    fn dump(&self, out: &mut String) {
        out.push('[');
        for (i, x) in self.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            x.dump(out);
        }
        out.push(']');
    }
}

impl<T: Dump, const N: usize> Dump for [T; N] {
    fn dump(&self, out: &mut String) {
        self[..].dump(out)
    }
}

impl Dump for str {
    fn dump(&self, out: &mut String) {
        string(out, self);
    }
}

/// A relative slice's elements, as the derive's reader shows them (it calls `as_slice`): for the
/// relative slices in arrays, which have no reader of their own.
impl<T: Dump> Dump for RelSlice<T> {
    fn dump(&self, out: &mut String) {
        self.as_slice().dump(out)
    }
}

impl Dump for RelStr {
    fn dump(&self, out: &mut String) {
        string(out, self.as_str());
    }
}

/// `s` as a JSON string.
pub fn string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// What the generated code provides for each message type.
pub trait Case: ShmMessage + Writable + Dump {
    /// The case's value, with every relative pointer empty.
    fn value() -> Self;
    /// Points the relative pointers of the loaned sample `this` at the case's data, in the
    /// order `shmx pub` lays them out (declaration order, depth first).
    fn fill(this: Pin<&mut Self>, tail: Tail<'_>) -> shmx::Result<()>;
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn error(what: &str, e: impl std::fmt::Display) -> String {
    let mut out = String::from("{\"error\":");
    string(&mut out, &format!("{what}: {e}"));
    out.push('}');
    out
}

/// One type's session: the endpoints, then the commands until `done`.
pub fn session<T: Case>(topic: &str, lines: &mut dyn Iterator<Item = String>) {
    let root = PathBuf::from(std::env::var_os("SHMX_ROOT").expect("SHMX_ROOT is set"));
    let subscriber = Subscriber::<T>::builder(topic)
        .root(&root)
        .create()
        .expect("create the typed subscriber");
    let raw = RawSubscriber::new(&root, topic).expect("create the raw subscriber");
    let schema = T::SCHEMA;
    let mut layout = String::from("{\"describe\":");
    string(&mut layout, &schema.describe());
    layout.push_str(&format!(
        ",\"size\":{},\"align\":{},\"sample_align\":{}}}",
        std::mem::size_of::<T>(),
        std::mem::align_of::<T>(),
        schema.sample_align()
    ));
    answer("ready", &layout);
    let sample_align = schema.sample_align();
    let mut publisher: Option<Publisher<T>> = None;
    for line in lines {
        let mut words = line.split_whitespace();
        match words.next() {
            Some("recv") => {
                let typed = receive(&subscriber, sample_align);
                answer("received", &with_raw(typed, &raw));
            }
            Some("publish") => {
                let tail: usize = words.next().and_then(|w| w.parse().ok()).expect("TAIL");
                let want: usize = words.next().and_then(|w| w.parse().ok()).expect("COUNT");
                let result = Publisher::<T>::builder(topic)
                    .root(&root)
                    .max_tail_bytes(tail)
                    .create()
                    .map_err(|e| error("create the typed publisher", e))
                    .and_then(|p| {
                        let sent = send(&p, want, sample_align);
                        publisher = Some(p);
                        sent
                    });
                let typed = match result {
                    Ok(aligned) => receive(&subscriber, sample_align).map(|(value, got)| {
                        // Both must hold: the loaned sample and the received one aligned.
                        (value, aligned && got)
                    }),
                    Err(e) => Err(e),
                };
                answer("published", &with_raw(typed, &raw));
            }
            Some("done") => {
                drop(publisher.take());
                answer("closed", "");
                return;
            }
            _ => panic!("unknown command {line:?}"),
        }
    }
}

/// Waits for `want` subscribers, then writes the case's value into a loaned sample through
/// the derive's writer and publishes it; returns whether the sample was aligned for
/// `sample_align`.
fn send<T: Case>(
    publisher: &Publisher<T>,
    want: usize,
    sample_align: usize,
) -> Result<bool, String> {
    let start = Instant::now();
    while publisher.subscriber_count() < want {
        if start.elapsed() > DEADLINE {
            return Err(error(
                "waiting for subscribers",
                format!(
                    "{} of {want} after {DEADLINE:?}",
                    publisher.subscriber_count()
                ),
            ));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let sample = publisher.loan_uninit().map_err(|e| error("loan", e))?;
    let mut sample = sample.write(T::value());
    let aligned = sample.as_ptr() as usize % sample_align == 0;
    let (this, tail) = sample.parts();
    T::fill(this, tail).map_err(|e| error("write the relative pointers", e))?;
    sample.publish().map_err(|e| error("publish", e))?;
    Ok(aligned)
}

/// The next sample of the typed subscriber, dumped, and whether it was aligned.
fn receive<T: Case>(
    subscriber: &Subscriber<T>,
    sample_align: usize,
) -> Result<(String, bool), String> {
    match subscriber.recv_timeout(DEADLINE) {
        Ok(Some(sample)) => {
            let mut value = String::new();
            sample.dump(&mut value);
            let aligned = &*sample as *const T as usize % sample_align == 0;
            Ok((value, aligned))
        }
        Ok(None) => Err(error(
            "typed receive",
            format!("nothing within {DEADLINE:?}"),
        )),
        Err(e) => Err(error("typed receive", e)),
    }
}

/// The typed result, with the bytes the raw subscriber received of the same sample.
fn with_raw(typed: Result<(String, bool), String>, raw: &RawSubscriber) -> String {
    let (value, aligned) = match typed {
        Ok(v) => v,
        Err(e) => {
            // Take the raw copy anyway, so that the next command starts afresh.
            let _ = raw.recv_timeout(Duration::from_millis(100));
            return e;
        }
    };
    match raw.recv_timeout(DEADLINE) {
        Ok(Some(sample)) => format!(
            "{{\"value\":{value},\"hex\":\"{}\",\"aligned\":{aligned}}}",
            hex(sample.bytes())
        ),
        Ok(None) => error("raw receive", format!("nothing within {DEADLINE:?}")),
        Err(e) => error("raw receive", e),
    }
}

fn answer(what: &str, payload: &str) {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{what} {payload}").expect("write to the test");
    out.flush().expect("flush to the test");
}

fn main() {
    let stdin = std::io::stdin();
    let mut lines = stdin.lock().lines().map(|l| l.expect("read from the test"));
    while let Some(line) = lines.next() {
        let mut words = line.split_whitespace();
        match (words.next(), words.next(), words.next()) {
            (Some("case"), Some(i), Some(topic)) => {
                let i: usize = i.parse().expect("a case number");
                cases::run(i, topic, &mut lines);
            }
            _ => panic!("unknown command {line:?}"),
        }
    }
}
