//! Request/response round trips: a client in the parent process sends a request, a server in
//! a child process answers it with one response that ends the stream, and the client checks
//! it. One request and one response per round trip, one request in flight.
//!
//! The payload size of a batch is the response's size; the request carries
//! [`request_bytes`]`(payload)` = min(payload, 1 KiB): `8 B → 8 B` (a small call) and
//! `1 KiB → 4 MiB` (a call that gets a large result), and the sizes between. The first 8 bytes
//! of each are a counter: the server answers with the request's counter, the client checks it.
//!
//! - `shmx-rr-spin`: [`shmx::Client`] and [`shmx::Server`], both sides polling (`take()` on
//!   the `Pending` request and on the server) with `std::hint::spin_loop()` between polls; its
//!   reference is `shmx-spin` (two topics used by hand: the ping-pong round trip, two pub/sub
//!   one-way latencies);
//! - `shmx-rr-recv`: the same, both sides blocking (`Pending::recv()`, `Server::recv()`);
//!   its reference is `shmx-recv`;
//! - `uds-rr`: a blocking Unix domain stream socket that carries the request and the whole
//!   response (`write_all` / `read_exact`); its reference is `uds`.
//!
//! How the shmx messages are written: those of up to [`SEND_WHOLE_MAX`] bytes are sent whole
//! (`Client::send(value)`, `ActiveRequest::respond_last(value)`: one publish per answer);
//! larger ones are loaned with the chunk's bytes as they are (`Client::loan_recycled()`,
//! `ActiveRequest::loan_response_recycled()`, as the pub/sub contenders'
//! `loan_uninit().assume_recycled()`), get the counter written in place and are sent
//! (`send()`, `send_last()`).
//!
//! The endpoints are sized like the ping-pong's topics: queues of 4, 2 messages held.
//! The parent stops the server with a request whose counter is [`STOP`] (shmx), or by
//! shutting the socket down.

use super::process::{ChildEnv, ChildStdio, Peer, Placement, RunDir, PEER_TIMEOUT};
use super::socket::{accept_unix, read_msg, write_msg, CloseWrite};
use super::{mismatch, read_header, write_header, PingPong, Result, Session, STOP};
use shmx::request::{ActiveRequest, Pending};
use shmx::{Client, Server};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::time::Duration;

/// The largest request: a request carries min(payload, 1 KiB).
pub const MAX_REQUEST: usize = 1 << 10;
/// shmx requests and responses of up to this many bytes are sent whole (`send(value)`,
/// `respond_last(value)`); larger ones are loaned and written in place.
pub const SEND_WHOLE_MAX: usize = 64;

/// Bytes of the request that asks for a response of `payload` bytes: min(payload, 1 KiB).
///
/// ```
/// use shmx_bench::request::request_bytes;
/// assert_eq!(request_bytes(8), 8);
/// assert_eq!(request_bytes(4 << 20), 1024);
/// ```
pub const fn request_bytes(payload: usize) -> usize {
    if payload < MAX_REQUEST {
        payload
    } else {
        MAX_REQUEST
    }
}

/// `8 B → 8 B`, `1 KiB → 4 MiB`: the request's and the response's size.
pub fn exchange_label(payload: usize) -> String {
    format!(
        "{} → {}",
        super::payload_label(request_bytes(payload)),
        super::payload_label(payload)
    )
}

/// Runs `$body` with `$n` bound to `$payload` (the response's size, one of
/// [`PAYLOADS`](super::PAYLOADS)) and `$r` to [`request_bytes`] of it, both as `const usize`.
macro_rules! with_exchange {
    ($id:expr, $payload:expr, $r:ident, $n:ident => $body:expr) => {
        $crate::with_payload!($id, $payload, $n => {
            const $r: usize = $crate::request::request_bytes($n);
            $body
        })
    };
}
#[cfg(feature = "compare-iceoryx2")]
pub(crate) use with_exchange;

/// How both sides of the shmx request/response wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// Poll `take()`, with `std::hint::spin_loop()` between polls.
    Spin,
    /// Block in `recv()`.
    Recv,
}

/// shmx request/response with one waiting policy.
#[derive(Debug, Clone, Copy)]
pub struct ShmxRequest {
    wait: Wait,
}

/// shmx request/response, both sides spinning on `take()` (id `shmx-rr-spin`).
pub static SPIN: ShmxRequest = ShmxRequest { wait: Wait::Spin };
/// shmx request/response, both sides blocking in `recv()` (id `shmx-rr-recv`).
pub static RECV: ShmxRequest = ShmxRequest { wait: Wait::Recv };

/// Id of [`SPIN`], the reference of the request/response ratios.
pub const SPIN_ID: &str = "shmx-rr-spin";

const SERVICE: &str = "bench/rr";
const QUEUE_DEPTH: usize = 4;
const MAX_HELD: usize = 2;

type Req<const R: usize> = [u8; R];
type Resp<const N: usize> = [u8; N];

fn client<const R: usize, const N: usize>(root: &Path) -> Result<Client<Req<R>, Resp<N>>> {
    Ok(Client::builder(SERVICE)
        .root(root)
        .max_in_flight(QUEUE_DEPTH)
        .response_depth(QUEUE_DEPTH)
        .max_held(MAX_HELD)
        .create()?)
}

fn server<const R: usize, const N: usize>(root: &Path) -> Result<Server<Req<R>, Resp<N>>> {
    Ok(Server::builder(SERVICE)
        .root(root)
        .request_depth(QUEUE_DEPTH)
        .max_active(MAX_HELD)
        .response_depth(QUEUE_DEPTH)
        .create()?)
}

/// Sends a request carrying `value` in its first 8 bytes.
#[inline(always)]
fn ask<const R: usize, const N: usize>(
    client: &Client<Req<R>, Resp<N>>,
    value: u64,
) -> Result<Pending<'_, Req<R>, Resp<N>>> {
    if R <= SEND_WHOLE_MAX {
        ask_whole(client, value)
    } else {
        // In place, the rest of the chunk as it is (as the pub/sub contenders write).
        let mut request = client.loan_recycled()?;
        write_header(&mut request[..], value);
        Ok(request.send()?)
    }
}

/// [`ask`] for small requests, written whole on the stack (a function of its own, so that
/// the stack array exists only where it is small).
#[inline(always)]
fn ask_whole<const R: usize, const N: usize>(
    client: &Client<Req<R>, Resp<N>>,
    value: u64,
) -> Result<Pending<'_, Req<R>, Resp<N>>> {
    let mut request = [0u8; R];
    write_header(&mut request, value);
    Ok(client.send(request)?)
}

/// Answers `request` with one response, the last of its stream, carrying `value`.
#[inline(always)]
fn answer<const R: usize, const N: usize>(
    request: ActiveRequest<'_, Req<R>, Resp<N>>,
    value: u64,
) -> Result<()> {
    if N <= SEND_WHOLE_MAX {
        answer_whole(request, value)
    } else {
        // In place, the rest of the chunk as it is (as the pub/sub contenders write).
        let mut response = request.loan_response_recycled()?;
        write_header(&mut response[..], value);
        response.send_last()?;
        // Answer first, then hand the request's chunk back.
        drop(request);
        Ok(())
    }
}

/// [`answer`] for small responses, written whole on the stack.
#[inline(always)]
fn answer_whole<const R: usize, const N: usize>(
    request: ActiveRequest<'_, Req<R>, Resp<N>>,
    value: u64,
) -> Result<()> {
    let mut response = [0u8; N];
    write_header(&mut response, value);
    // Publishes the response, then drops the request.
    request.respond_last(response)?;
    Ok(())
}

struct ShmxRequestSession<const R: usize, const N: usize> {
    wait: Wait,
    client: Client<Req<R>, Resp<N>>,
    peer: Option<Peer>,
    seq: u64,
}

impl PingPong for ShmxRequest {
    fn id(&self) -> &'static str {
        match self.wait {
            Wait::Spin => SPIN_ID,
            Wait::Recv => "shmx-rr-recv",
        }
    }

    fn describe(&self) -> &'static str {
        match self.wait {
            Wait::Spin => {
                "shmx Client/Server request/response, both sides spinning on take() (request \
                 of min(payload, 1 KiB), one response that ends the stream)"
            }
            Wait::Recv => {
                "shmx Client/Server request/response, both sides blocking in recv() (request \
                 of min(payload, 1 KiB), one response that ends the stream)"
            }
        }
    }

    fn request_response(&self) -> Option<&'static str> {
        Some(match self.wait {
            Wait::Spin => super::shmx_pingpong::SPIN_ID,
            Wait::Recv => "shmx-recv",
        })
    }

    fn start(&self, payload: usize, run: &RunDir) -> Result<Box<dyn Session>> {
        let id = self.id();
        with_exchange!(id, payload, R, N => {
            let client = client::<R, N>(run.path())?;
            let spawned = run.spawn(id, payload, "", ChildStdio::Null)?;
            client
                .wait_for_servers(1, PEER_TIMEOUT)
                .map_err(|e| format!("the {id} server did not start: {e}"))?;
            Ok(Box::new(ShmxRequestSession::<R, N> {
                wait: self.wait,
                client,
                peer: Some(spawned.peer),
                seq: 0,
            }) as Box<dyn Session>)
        })
    }

    fn child(&self, env: &ChildEnv) -> Result<()> {
        let wait = self.wait;
        with_exchange!(self.id(), env.payload, R, N => serve::<R, N>(wait, &env.root))
    }
}

/// The server: answers every request until one says stop.
fn serve<const R: usize, const N: usize>(wait: Wait, root: &Path) -> Result<()> {
    let server = server::<R, N>(root)?;
    loop {
        let request = match wait {
            Wait::Spin => super::spin_wait(|| Ok(server.take()?))?,
            Wait::Recv => server.recv()?,
        };
        let v = read_header(&request[..]);
        if v == STOP {
            // Dropping the request ends its stream.
            return Ok(());
        }
        answer(request, v)?;
    }
}

impl<const R: usize, const N: usize> Session for ShmxRequestSession<R, N> {
    fn round_trips(&mut self, n: u64, rtts: Option<&mut Vec<u64>>) -> Result<Duration> {
        let (client, seq) = (&self.client, &mut self.seq);
        match self.wait {
            Wait::Spin => super::timed_round_trips(n, rtts, || {
                *seq += 1;
                let pending = ask(client, *seq)?;
                let response = super::spin_wait(|| Ok(pending.take()?))?;
                check(&response[..], response.is_last(), *seq, SPIN_ID)
            }),
            Wait::Recv => super::timed_round_trips(n, rtts, || {
                *seq += 1;
                let pending = ask(client, *seq)?;
                let response = pending
                    .recv()?
                    .ok_or("shmx-rr-recv: the stream ended without a response")?;
                check(&response[..], response.is_last(), *seq, "shmx-rr-recv")
            }),
        }
    }

    fn finish(mut self: Box<Self>) -> Result<Vec<Placement>> {
        let peer = self.peer.take().expect("finished once");
        peer.expect_exit();
        // Kept until the server is gone, which ends its stream without an answer.
        let _stop = ask(&self.client, STOP)?;
        Ok(vec![peer.wait(PEER_TIMEOUT)?])
    }
}

/// Checks a response: the request's counter, and the end of the stream.
#[inline(always)]
fn check(payload: &[u8], last: bool, expected: u64, id: &str) -> Result<()> {
    let v = read_header(payload);
    if v != expected {
        return Err(mismatch(id, expected, v));
    }
    if !last {
        return Err(format!("{id}: the response does not end its stream").into());
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Unix domain stream socket
// ---------------------------------------------------------------------------------------

/// Request/response over a blocking Unix domain stream socket (id `uds-rr`): the request's
/// and the response's bytes all go through the socket.
#[derive(Debug, Clone, Copy)]
pub struct UdsRequest;

/// The Unix socket request/response (id `uds-rr`).
pub static UDS: UdsRequest = UdsRequest;

/// The parent of `uds-rr`: writes a request, reads the response, checks the counter.
struct UdsRequestSession {
    r: UnixStream,
    w: Option<UnixStream>,
    request: Vec<u8>,
    response: Vec<u8>,
    peer: Option<Peer>,
    seq: u64,
}

impl PingPong for UdsRequest {
    fn id(&self) -> &'static str {
        "uds-rr"
    }

    fn describe(&self) -> &'static str {
        "Unix domain stream socket, blocking: a request of min(payload, 1 KiB), a response of \
         the payload, both carried whole"
    }

    fn request_response(&self) -> Option<&'static str> {
        Some(super::UDS_ID)
    }

    fn start(&self, payload: usize, run: &RunDir) -> Result<Box<dyn Session>> {
        if payload < 8 {
            return Err(super::unsupported(self.id(), payload));
        }
        let path = run.path().join("rr.sock");
        let listener = UnixListener::bind(&path)?;
        let spawned = run.spawn(
            self.id(),
            payload,
            &path.to_string_lossy(),
            ChildStdio::Null,
        )?;
        let stream = accept_unix(&listener, self.id(), 1)?.remove(0);
        Ok(Box::new(UdsRequestSession {
            r: stream.try_clone()?,
            w: Some(stream),
            request: vec![0u8; request_bytes(payload)],
            response: vec![0u8; payload],
            peer: Some(spawned.peer),
            seq: 0,
        }))
    }

    fn child(&self, env: &ChildEnv) -> Result<()> {
        let mut stream = UnixStream::connect(&env.arg)?;
        let mut request = vec![0u8; request_bytes(env.payload)];
        let mut response = vec![0u8; env.payload];
        while read_msg(&mut stream, &mut request)? {
            write_header(&mut response, read_header(&request));
            write_msg(&mut stream, &response)?;
        }
        Ok(())
    }
}

impl Session for UdsRequestSession {
    fn round_trips(&mut self, n: u64, rtts: Option<&mut Vec<u64>>) -> Result<Duration> {
        let (r, request, response, seq) = (
            &mut self.r,
            &mut self.request,
            &mut self.response,
            &mut self.seq,
        );
        let w = self.w.as_mut().ok_or("the session is finished")?;
        super::timed_round_trips(n, rtts, || {
            *seq += 1;
            write_header(request, *seq);
            write_msg(w, request)?;
            if !read_msg(r, response)? {
                return Err("the uds-rr server closed the stream".into());
            }
            let v = read_header(response);
            if v != *seq {
                return Err(mismatch("uds-rr", *seq, v));
            }
            Ok(())
        })
    }

    fn finish(mut self: Box<Self>) -> Result<Vec<Placement>> {
        let peer = self.peer.take().expect("finished once");
        let w = self.w.take();
        Ok(vec![peer.stop(move || {
            if let Some(mut w) = w {
                // The server reads end-of-file at a message boundary.
                let _ = w.close_write();
            }
            Ok(())
        })?])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_at_most_one_kib() {
        assert_eq!(request_bytes(64), 64);
        assert_eq!(request_bytes(1 << 10), 1 << 10);
        assert_eq!(request_bytes(64 << 10), 1 << 10);
        assert_eq!(exchange_label(8), "8 B → 8 B");
        assert_eq!(exchange_label(4 << 20), "1 KiB → 4 MiB");
    }

    #[test]
    fn every_request_response_contender_names_a_ping_pong() {
        let mut n = 0;
        for c in super::super::PING_PONG {
            if let Some(twin) = c.request_response() {
                n += 1;
                let twin = super::super::ping_pong(twin);
                assert!(
                    twin.is_some_and(|t| t.request_response().is_none()),
                    "{}",
                    c.id()
                );
            }
        }
        assert!(n >= 3);
    }
}
