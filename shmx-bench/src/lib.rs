//! The benchmark harness of shmx: contenders, child processes, the interleaved runner and the
//! Markdown report. The criterion benchmarks (`benches/`), `examples/bench_report.rs` and the
//! `shmx-bench` command (which `shmx bench` runs) are thin layers over this crate. It is a
//! crate of its own so that the `shmx` tool builds without any of it.
//!
//! # What is measured
//!
//! - **Ping-pong** ([`PingPong`]): the parent process sends a ping of `N` bytes, a child process
//!   answers with a pong of `N` bytes; one-way latency = round trip / 2. Sockets and pipes carry
//!   the whole payload each way (`write_all` / `read_exact`: that is their real cost); shmx
//!   publishers write in place (`loan_uninit`) and touch only the first 8 bytes, a counter that
//!   the receiver checks, as a camera driver or a serializer writing straight into the chunk
//!   would. [`floor`] is the same ping-pong over two atomic counters in a shared mapping, with
//!   no library at all.
//! - **Request/response round trip** ([`request`], and `iceoryx2_request` with the
//!   `compare-iceoryx2` feature): a client in the parent sends a request of min(`N`, 1 KiB)
//!   bytes, a server in a child answers with one response of `N` bytes; the whole round trip
//!   is reported, beside the ping-pong of the same transport (two pub/sub one-way latencies).
//!   These contenders are [`PingPong`]s whose [`PingPong::request_response`] names that
//!   ping-pong, so that they run in the same rounds.
//! - **Throughput** ([`Throughput`]): one publisher process streams to 1 or 4 subscriber
//!   processes; only delivered messages count, and every subscriber's count and order are
//!   verified after each batch. [`ring_floor`] gives the two references without a library:
//!   a bare ring of 8-byte values (`ring-floor`, the floor of the ratios) and an index ring
//!   with a 64-byte chunk per message (`chunk-floor`, the ceiling of any zero-copy design).
//!
//! - **Paced one-way latency** ([`paced`]): a receiver that idles between messages sent every
//!   10 us, 100 us or 1 ms, by the way it waits: spinning, `recv()`, a `WaitSet`, `epoll` on
//!   `Subscriber::fd()`, `recv_async()` on tokio, against a Unix socket read blocking, woken
//!   by `epoll` or by tokio. The tokio contenders need the `async` feature of this package
//!   (on by default).
//!
//! Every contender that waits actively uses the same policy: poll, `std::hint::spin_loop()`
//! between polls (throughput subscribers also yield every 128 empty polls when there are more
//! processes than CPUs).
//!
//! # Processes
//!
//! The parent re-executes its own binary (`std::env::current_exe()`) for each child, with
//! [`CHILD_ENV`] naming the role as `<contender id>:<payload bytes>`. Every binary that runs
//! benchmarks calls [`run_child_if_requested`] first thing in `main`; it runs the child role and
//! exits when that variable is set. Each run gets a fresh root directory under `/dev/shm`
//! ([`process::RunDir`], also the child's `SHMX_ROOT`), removed afterwards; children die with
//! their parent (`PR_SET_PDEATHSIG`), and a child that dies early stops the whole benchmark
//! instead of leaving the parent spinning ([`process::Peer`]).
//!
//! # Adding a contender (e.g. iceoryx2)
//!
//! 1. Write `shmx-bench/src/iceoryx2.rs` with a unit struct implementing [`PingPong`] (and, for the
//!    throughput table, [`Throughput`]):
//!    - `start(payload, run)`: create this side's ports, start the peer with
//!      [`RunDir::spawn`](process::RunDir::spawn)`(self.id(), payload, ..)`, wait for it with a
//!      deadline ([`process::PEER_TIMEOUT`]) and return a [`Session`] whose
//!      [`round_trips`](Session::round_trips) is built on [`timed_round_trips`];
//!    - `child(env)`: the peer's loop, until the parent says stop;
//!    - same busy-wait policy as `shmx-spin` ([`spin_wait`]), queues sized so that nothing is
//!      dropped, and only the 8-byte header written in place ([`write_header`]);
//!    - keep every name unique to the run: a library with files of its own (iceoryx2 keeps
//!      its own under `/dev/shm` and `/tmp/iceoryx2`) should take its service names from the
//!      run directory's name (`run.path()` in the parent, [`ChildEnv::root`] in the child), so
//!      that runs never meet, and clean up after itself.
//! 2. Here: `#[cfg(feature = "compare-iceoryx2")] pub mod iceoryx2;`, and one line in
//!    [`PING_PONG`] (and [`THROUGHPUT`]): `#[cfg(feature = "compare-iceoryx2")]
//!    &iceoryx2::Iceoryx2,`.
//! 3. In `Cargo.toml`: `compare-iceoryx2 = ["dep:iceoryx2"]` and the optional dependency.
//!
//! Child dispatch, the criterion benches and `bench_report` (interleaving, tables, ratios)
//! take every contender from the registries, so nothing else changes.
#![deny(missing_docs)]

pub mod cli;
pub mod epoll;
pub mod floor;
#[cfg(feature = "compare-iceoryx2")]
pub mod iceoryx2;
#[cfg(feature = "compare-iceoryx2")]
pub mod iceoryx2_request;
pub mod interleave;
pub mod paced;
pub mod pipe;
pub mod process;
pub mod report;
pub mod request;
pub mod ring_floor;
pub mod shmx_pingpong;
pub mod socket;
pub mod throughput;

mod helpers;

pub use helpers::{monotonic_ns, percentile, wait_until};
pub use process::{run_child_if_requested, ChildEnv, Placement, RunDir, CHILD_ENV};

use std::time::{Duration, Instant};

/// Errors of the harness: I/O, shmx, or a failed check (a wrong counter, a lost message).
pub type Error = Box<dyn std::error::Error + Send + Sync>;
/// The harness's result type.
pub type Result<T> = std::result::Result<T, Error>;

/// Payload sizes of the latency benchmarks, in bytes: 8 B, 64 B, 1 KiB, 64 KiB, 1 MiB, 4 MiB.
pub const PAYLOADS: [usize; 6] = [8, 64, 1 << 10, 64 << 10, 1 << 20, 4 << 20];
/// Payload sizes of the throughput benchmarks, in bytes.
pub const THROUGHPUT_PAYLOADS: [usize; 2] = [8, 1 << 10];
/// Subscriber counts of the throughput benchmarks.
pub const THROUGHPUT_SUBSCRIBERS: [usize; 2] = [1, 4];

/// Header value that tells a ping-pong or throughput child to stop.
pub const STOP: u64 = u64::MAX;

/// A way of bouncing a message between two processes: one contender of the latency table.
pub trait PingPong: Sync {
    /// Short, stable identifier (`shmx-spin`, `uds`, …): command-line filters, [`CHILD_ENV`],
    /// criterion benchmark names.
    fn id(&self) -> &'static str;
    /// What it is, in a few words, for tables.
    fn describe(&self) -> &'static str;
    /// Whether it handles `payload` bytes (every size of [`PAYLOADS`] unless it says no).
    fn supports(&self, payload: usize) -> bool {
        PAYLOADS.contains(&payload)
    }
    /// Parent side: prepares the transport in `run`, starts the child and returns a session
    /// once the child is connected.
    fn start(&self, payload: usize, run: &RunDir) -> Result<Box<dyn Session>>;
    /// Child side: answers every ping with a pong until the parent says stop.
    fn child(&self, env: &ChildEnv) -> Result<()>;
    /// For a request/response contender ([`request`]: a request of min(payload, 1 KiB), a
    /// response of `payload` bytes), the id of the ping-pong it is compared with (the same
    /// transport and way of waiting); `None`, the default, for a ping-pong. They interleave
    /// with the ping-pongs (same registry, same rounds) and get a table of their own, of
    /// whole round trips.
    fn request_response(&self) -> Option<&'static str> {
        None
    }
}

/// A connected ping-pong between this process and a child.
pub trait Session {
    /// Runs `n` round trips and returns their total time (criterion halves it). With `rtts`,
    /// also appends each round trip's duration in nanoseconds (one clock reading per trip).
    fn round_trips(&mut self, n: u64, rtts: Option<&mut Vec<u64>>) -> Result<Duration>;
    /// Stops the child, waits for it, and says where it ran.
    fn finish(self: Box<Self>) -> Result<Vec<Placement>>;
}

/// A way of streaming messages from one publisher process to several subscriber processes:
/// one contender of the throughput table.
pub trait Throughput: Sync {
    /// Short, stable identifier (`shmx-stream`, `uds-stream`).
    fn id(&self) -> &'static str;
    /// What it is, in a few words, for tables.
    fn describe(&self) -> &'static str;
    /// Whether it handles `payload` bytes to `subscribers` subscribers.
    fn supports(&self, payload: usize, subscribers: usize) -> bool {
        THROUGHPUT_PAYLOADS.contains(&payload) && (1..=8).contains(&subscribers)
    }
    /// Parent side (the publisher): starts `subscribers` children and returns once all are
    /// connected.
    fn start(&self, payload: usize, subscribers: usize, run: &RunDir) -> Result<Box<dyn Stream>>;
    /// Child side (a subscriber): receives and checks messages until the parent says stop.
    fn child(&self, env: &ChildEnv) -> Result<()>;
}

/// A connected publisher with its subscriber processes.
pub trait Stream {
    /// Publishes `n` messages, each to every subscriber, and returns once every subscriber
    /// confirmed that it received all of them, in order (an error otherwise).
    fn send(&mut self, n: u64) -> Result<Duration>;
    /// Stops the children, waits for them, and says where they ran.
    fn finish(self: Box<Self>) -> Result<Vec<Placement>>;
}

/// Every ping-pong contender, in table order. The floor comes first, the Unix socket (the
/// second reference of the ratios) right after shmx.
pub static PING_PONG: &[&dyn PingPong] = &[
    &floor::Floor,
    &shmx_pingpong::SPIN,
    &shmx_pingpong::FIXED,
    &shmx_pingpong::GROWN,
    &shmx_pingpong::COPY,
    &shmx_pingpong::RECV,
    &shmx_pingpong::WAITSET,
    &shmx_pingpong::EPOLL,
    #[cfg(feature = "compare-iceoryx2")]
    &iceoryx2::Iceoryx2,
    &socket::UDS,
    &socket::UDS_POLL,
    &socket::UDS_EPOLL,
    &socket::TCP,
    &pipe::Pipe,
    // Request/response round trips (`request_response()` says so), in their table's order.
    &request::SPIN,
    &request::RECV,
    #[cfg(feature = "compare-iceoryx2")]
    &iceoryx2_request::Iceoryx2Request,
    &request::UDS,
];

/// Every throughput contender, in table order.
pub static THROUGHPUT: &[&dyn Throughput] = &[
    &ring_floor::RING_FLOOR,
    &ring_floor::CHUNK_FLOOR,
    &throughput::SHMX_STREAM,
    &throughput::SHMX_STREAM_FIXED,
    &throughput::SHMX_STREAM_GROWN,
    &throughput::SHMX_BATCH,
    #[cfg(feature = "compare-iceoryx2")]
    &iceoryx2::Iceoryx2,
    &throughput::UdsStream,
];

/// Id of the ping-pong contender that every ratio is relative to: the raw atomics.
pub const FLOOR_ID: &str = "floor";
/// Id of the throughput contender that throughput ratios are relative to: a bare ring.
pub const RING_FLOOR_ID: &str = "ring-floor";
/// Id of the throughput contender with a chunk per message and no library: the ceiling that
/// the throughput targets compare shmx with, round by round.
pub const CHUNK_FLOOR_ID: &str = "chunk-floor";
/// Id of the second reference of the ratios: a blocking Unix domain stream socket.
pub const UDS_ID: &str = "uds";

/// The ping-pong contender called `id`.
pub fn ping_pong(id: &str) -> Option<&'static dyn PingPong> {
    PING_PONG.iter().copied().find(|c| c.id() == id)
}

/// The throughput contender called `id`.
pub fn throughput(id: &str) -> Option<&'static dyn Throughput> {
    THROUGHPUT.iter().copied().find(|c| c.id() == id)
}

/// `8 B`, `64 B`, `1 KiB`, `64 KiB`, `1 MiB`, `4 MiB`.
///
/// ```
/// use shmx_bench::payload_label;
/// assert_eq!(payload_label(8), "8 B");
/// assert_eq!(payload_label(64 << 10), "64 KiB");
/// assert_eq!(payload_label(4 << 20), "4 MiB");
/// ```
pub fn payload_label(bytes: usize) -> String {
    match bytes {
        b if b >= 1 << 20 && b % (1 << 20) == 0 => format!("{} MiB", b >> 20),
        b if b >= 1 << 10 && b % (1 << 10) == 0 => format!("{} KiB", b >> 10),
        b => format!("{b} B"),
    }
}

/// [`payload_label`] without the space, for benchmark ids: `8B`, `1KiB`, `4MiB`.
pub fn payload_tag(bytes: usize) -> String {
    payload_label(bytes).replace(' ', "")
}

/// Parses a payload size: `8`, `8B`, `1K`, `1KiB`, `64k`, `4M`, `4MiB` (binary units).
///
/// ```
/// use shmx_bench::parse_payload;
/// assert_eq!(parse_payload("8"), Some(8));
/// assert_eq!(parse_payload("1KiB"), Some(1024));
/// assert_eq!(parse_payload("4M"), Some(4 << 20));
/// assert_eq!(parse_payload("lots"), None);
/// ```
pub fn parse_payload(text: &str) -> Option<usize> {
    let t = text.trim().to_ascii_lowercase();
    let t = t
        .strip_suffix("ib")
        .or_else(|| t.strip_suffix('b'))
        .unwrap_or(&t);
    let (digits, shift) = match t.as_bytes().last()? {
        b'k' => (&t[..t.len() - 1], 10),
        b'm' => (&t[..t.len() - 1], 20),
        _ => (t, 0),
    };
    digits.trim().parse::<usize>().ok()?.checked_mul(1 << shift)
}

/// Runs `n` round trips of `trip` and returns their total time; with `rtts`, also records
/// each trip's duration in nanoseconds (the clock is read once per trip, so a trip's figure
/// includes one clock reading, ~20 ns with a TSC clock source).
///
/// Sessions build [`Session::round_trips`] on it, so that the loop is compiled for each
/// contender's own `trip` (no dynamic call per trip).
#[inline(always)]
pub fn timed_round_trips(
    n: u64,
    rtts: Option<&mut Vec<u64>>,
    mut trip: impl FnMut() -> Result<()>,
) -> Result<Duration> {
    let start = Instant::now();
    match rtts {
        None => {
            for _ in 0..n {
                trip()?;
            }
        }
        Some(out) => {
            out.reserve(n as usize);
            let mut last = start;
            for _ in 0..n {
                trip()?;
                let now = Instant::now();
                out.push((now - last).as_nanos() as u64);
                last = now;
            }
        }
    }
    Ok(start.elapsed())
}

/// Polls `poll` until it yields something, with `std::hint::spin_loop()` between polls: the
/// busy-wait policy of every spinning contender.
#[inline(always)]
pub fn spin_wait<T>(mut poll: impl FnMut() -> Result<Option<T>>) -> Result<T> {
    loop {
        if let Some(v) = poll()? {
            return Ok(v);
        }
        std::hint::spin_loop();
    }
}

/// Writes `value` into the first 8 bytes of `payload` (native byte order).
#[inline(always)]
pub fn write_header(payload: &mut [u8], value: u64) {
    payload[..8].copy_from_slice(&value.to_ne_bytes());
}

/// Reads the first 8 bytes of `payload` (native byte order).
#[inline(always)]
pub fn read_header(payload: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&payload[..8]);
    u64::from_ne_bytes(b)
}

/// The error of a pong or an acknowledgement that does not carry the expected counter.
pub fn mismatch(what: &str, expected: u64, got: u64) -> Error {
    format!("{what}: expected counter {expected}, got {got}").into()
}

/// The error for a payload size that a contender does not handle.
pub fn unsupported(id: &str, payload: usize) -> Error {
    format!(
        "{id} does not handle {} payloads (sizes: {})",
        payload_label(payload),
        PAYLOADS.map(payload_label).join(", ")
    )
    .into()
}

/// Runs `$body` with `$n` bound, as a `const usize`, to `$payload` if it is one of
/// [`PAYLOADS`]; otherwise evaluates to `Err(unsupported($id, $payload))`. For contenders
/// whose message type is `[u8; N]`.
macro_rules! with_payload {
    ($id:expr, $payload:expr, $n:ident => $body:expr) => {
        match $payload {
            8 => {
                const $n: usize = 8;
                $body
            }
            64 => {
                const $n: usize = 64;
                $body
            }
            1024 => {
                const $n: usize = 1024;
                $body
            }
            65536 => {
                const $n: usize = 65536;
                $body
            }
            1048576 => {
                const $n: usize = 1048576;
                $body
            }
            4194304 => {
                const $n: usize = 4194304;
                $body
            }
            other => Err($crate::unsupported($id, other)),
        }
    };
}
pub(crate) use with_payload;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_labels_round_trip_through_the_parser() {
        for p in PAYLOADS {
            assert_eq!(parse_payload(&payload_label(p)), Some(p));
            assert_eq!(parse_payload(&payload_tag(p)), Some(p));
        }
    }

    #[test]
    fn contender_ids_are_unique_across_both_registries() {
        let mut ids: Vec<&str> = PING_PONG.iter().map(|c| c.id()).collect();
        ids.extend(THROUGHPUT.iter().map(|c| c.id()));
        let n = ids.len();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), n);
        assert!(ping_pong(FLOOR_ID).is_some() && ping_pong(UDS_ID).is_some());
    }

    #[test]
    fn headers_take_the_first_eight_bytes() {
        let mut buf = [0xAAu8; 16];
        write_header(&mut buf, 0x0102_0304_0506_0708);
        assert_eq!(read_header(&buf), 0x0102_0304_0506_0708);
        assert_eq!(buf[8..], [0xAA; 8]);
    }
}
