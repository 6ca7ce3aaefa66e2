//! Request/response: [`Client`]s send requests that one [`Server`] of a *service* answers
//! with zero, one or a stream of responses, all loaned, written in place and sent zero-copy
//! like samples.
//!
//! ```
//! # let dir = tempfile::tempdir().unwrap();
//! use shmx::{Client, Server, ShmMessage};
//! use std::time::Duration;
//!
//! #[derive(ShmMessage, Clone, Copy)]
//! #[repr(C)]
//! struct GetParam { id: u32 }
//! #[derive(ShmMessage, Clone, Copy)]
//! #[repr(C)]
//! struct Param { id: u32, value: f32 }
//!
//! let server = Server::<GetParam, Param>::builder("doc/params").root(dir.path()).create()?;
//! let client = Client::<GetParam, Param>::builder("doc/params").root(dir.path()).create()?;
//! let pending = client.send(GetParam { id: 7 })?;
//! let request = server.recv_timeout(Duration::from_secs(5))?.expect("a request");
//! request.respond(Param { id: request.id, value: 0.5 })?;
//! drop(request); // ends the stream
//! let response = pending.recv_timeout(Duration::from_secs(5))?.expect("a response");
//! assert_eq!((response.id, response.value), (7, 0.5));
//! assert!(pending.recv_timeout(Duration::from_secs(5))?.is_none()); // the stream ended
//! # Ok::<(), shmx::Error>(())
//! ```
//!
//! # How it is made
//! A service `robot/params` lives beside topics under the same root, as topics that no topic
//! name can collide with (`@` in a name is always encoded, these names keep it):
//! - `robot/params@service`, a file: the request and response types (see `record`);
//! - `robot/params@req.<server>`: each server's request queue, the server its only
//!   subscriber, every client a publisher;
//! - `robot/params@resp.<client>`: each client's response queue, the client its only
//!   subscriber, every server that answered it a publisher.
//!
//! A request carries its client's id and its own number in the chunk header's two tag words;
//! a response carries the request's number and whether it ends the stream. A stream that
//! ends without a last response ends with a *marker*, a chunk of no bytes.
//!
//! **Which server.** A client sends each request to the next live server in turn (round
//! robin over the servers it knows; it looks for new ones at most every 50 ms, on every
//! 8th request, and at once when it knows none or none of them lives). A request goes to one server's queue, which only that server reads:
//! it is answered once or, if that server dies first, fails with [`Error::PeerGone`]; it is
//! never lost without an error, nor answered twice.
//!
//! **Failures.** A client waiting for responses checks every 50 ms that the server it asked
//! is alive (the topic's sweep, on the server's node lock): a SIGKILLed server turns every
//! pending request to it into [`Error::PeerGone`] within about that long. A client that dies
//! lets the servers' responses to it go (the sweep reclaims what its queue held), and the
//! requests it sent are answered into nothing: a server skips those of clients it finds gone.
//! A request whose `recv_timeout` expires is cancelled, and so is one whose [`Pending`] is
//! dropped: responses that come later are dropped, never delivered to another request.
//!
//! [`Error::PeerGone`]: crate::Error::PeerGone

mod active;
#[cfg(feature = "tokio")]
mod asynchronous;
mod client;
mod flights;
mod pending;
mod raw;
mod record;
mod responses;
mod server;
mod shared;
pub(crate) mod tools;

pub use active::{ActiveRequest, ResponseMut};
pub use client::{Client, ClientBuilder};
pub use pending::{Pending, RequestMut, Response};
pub use raw::RawClient;
pub use server::{Server, ServerBuilder};

use crate::name::TopicName;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// How often a waiting client checks that the server it asked lives, and how often a client
/// looks for new servers.
const LOOK_EVERY: Duration = Duration::from_millis(50);

/// Milliseconds of a coarse monotonic clock (a few ms resolution, a few ns to read): for the
/// checks that run at most every [`LOOK_EVERY`], on paths that run per request.
fn coarse_ms() -> u64 {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        let t = rustix::time::clock_gettime(rustix::time::ClockId::MonotonicCoarse);
        (t.tv_sec as u64) * 1000 + (t.tv_nsec as u64) / 1_000_000
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
        START
            .get_or_init(std::time::Instant::now)
            .elapsed()
            .as_millis() as u64
    }
}

/// [`LOOK_EVERY`] in milliseconds.
const LOOK_MS: u64 = LOOK_EVERY.as_millis() as u64;

/// Hashes ids (request numbers and endpoint ids, already spread or sequential) with one
/// multiplication: the maps keyed by them are on the path of every request.
#[derive(Default, Clone, Copy)]
struct IdHasher(u64);

impl std::hash::Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    fn write_u64(&mut self, x: u64) {
        self.0 = x.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

/// A map keyed by ids.
type IdMap<V> = std::collections::HashMap<u64, V, std::hash::BuildHasherDefault<IdHasher>>;

/// The most tail bytes a request or response may carry.
const MAX_TAIL_BYTES: usize = 1 << 30;

/// Response tag bit: this response ends its stream.
const LAST: u64 = 1;
/// Response tag bit: an end marker, no response (its bytes, none, are never read).
const MARKER: u64 = 2;

/// A request's tag word (the chunk header's `tag`): its client's id (which names the
/// client's response queue) and its number.
fn request_tag(client: u64, request: u64) -> u64 {
    (client << 32) | (request & 0xffff_ffff)
}

/// A response's tag word: its request's number and flags ([`LAST`], [`MARKER`]).
fn response_tag(request: u64, flags: u64) -> u64 {
    (request << 32) | (flags & 0xffff_ffff)
}

/// The two halves of a tag word: `(client, request)` of a request, `(request, flags)` of a
/// response.
fn split_tag(tag: u64) -> (u64, u64) {
    (tag >> 32, tag & 0xffff_ffff)
}

/// The request number after `id` (32 bits, never 0).
fn next_request(id: u64) -> u64 {
    if id >= u64::from(u32::MAX) {
        1
    } else {
        id + 1
    }
}

/// Makes a client's response queue with `make`, under a client id of 32 bits: drawn anew
/// (a few times) while the queue of that id is another live client's.
fn with_client_id<S>(
    shared: &mut shared::Shared,
    mut make: impl FnMut(&shared::Shared) -> crate::Result<S>,
) -> crate::Result<S> {
    let mut tries = 0;
    loop {
        shared.id = new_client_id();
        match make(shared) {
            Err(crate::Error::TooManyParticipants { .. }) if tries < 4 => tries += 1,
            other => return other,
        }
    }
}

/// A new client id: 32 bits (it travels in half a tag word), never 0. Two live clients that
/// draw the same id meet in one response queue, which takes one subscriber: the second is
/// refused and draws again.
fn new_client_id() -> u64 {
    (new_id() & 0xffff_ffff).max(1)
}

/// The limits of a service's queues, on `topic`'s mode and group: one reader (the queue's
/// server or client), up to 64 writers (clients or servers), `max_held` samples held, no
/// history.
fn queue_topic(topic: crate::TopicConfig, max_held: usize, depth: usize) -> crate::TopicConfig {
    crate::TopicConfig {
        max_publishers: 64,
        max_subscribers: 1,
        // The rings as deep as the queue's one subscriber wants (a publisher that asks for
        // more is held to it), not the most any could: memory and cache lines that the
        // traffic uses.
        max_queue_depth: depth,
        max_held,
        max_history: 0,
        ..topic
    }
}

/// The name of server `id`'s request queue.
fn request_topic(service: &TopicName, id: u64) -> crate::Result<TopicName> {
    service.part(&format!("req.{id:016x}"))
}

/// The name of client `id`'s response queue.
fn response_topic(service: &TopicName, id: u64) -> crate::Result<TopicName> {
    service.part(&format!("resp.{id:016x}"))
}

/// A new endpoint id: unique among the live endpoints of this machine (the process id, the
/// time and a counter, mixed), never 0.
fn new_id() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut x = nanos ^ (u64::from(std::process::id()) << 40) ^ n.rotate_left(20);
    // splitmix64's finaliser: neighbours spread over all bits.
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^= x >> 31;
    x.max(1)
}

/// The ids of the servers of `service` whose request queues exist in `root`.
fn server_ids(root: &crate::root::Root, service: &TopicName) -> Vec<u64> {
    let prefix = format!("{}@req.", service.encoded());
    let Ok(entries) = root.dir().entries() else {
        return Vec::new();
    };
    entries
        .iter()
        .filter_map(|(name, _)| {
            let hex = name.to_str()?.strip_prefix(&prefix)?;
            (hex.len() == 16)
                .then(|| u64::from_str_radix(hex, 16).ok())
                .flatten()
        })
        .collect()
}

/// Whether any part of `service` (a request or response queue) is left in `root`.
pub(crate) fn parts_left(root: &crate::root::Root, service: &TopicName) -> bool {
    let (req, resp) = (
        format!("{}@req.", service.encoded()),
        format!("{}@resp.", service.encoded()),
    );
    root.dir().entries().map_or(true, |entries| {
        entries.iter().any(|(name, _)| {
            name.to_str()
                .is_some_and(|n| n.starts_with(&req) || n.starts_with(&resp))
        })
    })
}

/// Whether any part of `service` is still used by a live endpoint: sweeps each (dead
/// participants' slots go) and removes those nobody uses any more. Call with the root lock
/// held; a part that cannot be read counts as used.
fn sweep_parts(
    root: &std::sync::Arc<crate::root::Root>,
    service: &TopicName,
    trust: &crate::trust::Trust,
    lock: &crate::root::RootLock,
) -> bool {
    let prefix = format!("{}@", service.encoded());
    let Ok(entries) = root.dir().entries() else {
        return true;
    };
    let mut used = false;
    for (name, _) in entries {
        let Some(suffix) = name.to_str().and_then(|n| n.strip_prefix(&prefix)) else {
            continue;
        };
        if !(suffix.starts_with("req.") || suffix.starts_with("resp.")) {
            continue;
        }
        let Ok(part) = service.part(suffix) else {
            continue;
        };
        match crate::service::Service::open_untyped(root, &part, trust) {
            Ok(Some(s)) => {
                s.sweep(lock);
                if s.is_unused() {
                    s.remove_if_unused(lock);
                } else {
                    used = true;
                }
            }
            Ok(None) => {}
            Err(_) => used = true,
        }
    }
    used
}

/// Whether a live endpoint uses any part of `service` (for a dry run of `clean`, which
/// changes nothing: no sweep).
pub(crate) fn any_live_part(
    root: &std::sync::Arc<crate::root::Root>,
    service: &TopicName,
    trust: &crate::trust::Trust,
) -> bool {
    let Ok(entries) = root.dir().entries() else {
        return true;
    };
    entries.iter().any(|(entry, _)| {
        let Some((s, _, _, name)) = entry.to_str().and_then(tools::parse_part) else {
            return false;
        };
        if s != *service {
            return false;
        }
        match crate::service::Service::open_untyped(root, &name, trust) {
            Ok(Some(svc)) => {
                let info = crate::inspect::describe_service(root, &svc);
                info.publishers.iter().any(|p| p.alive) || info.subscribers.iter().any(|s| s.alive)
            }
            Ok(None) => false,
            Err(_) => true,
        }
    })
}
