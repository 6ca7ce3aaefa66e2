//! iceoryx2's request/response (feature `compare-iceoryx2`, id `iceoryx2-rr`): the same round
//! trip as [`super::request`], over an iceoryx2 `request_response` service of `[u8; R]`
//! requests and `[u8; N]` responses (`ipc::Service`), R = min(N, 1 KiB).
//!
//! The client in the parent loans a request with `loan_uninit()`, writes only the 8-byte
//! counter at its start, sends it and polls `receive()` on the `PendingResponse` with
//! `std::hint::spin_loop()` between polls; the server in the child polls `receive()` the same
//! way, loans the response with `loan_uninit()`, writes the counter into it, sends it and
//! drops the `ActiveRequest`, which ends the stream. Its reference is the `iceoryx2` ping-pong
//! (publish-subscribe, spinning). Nothing is dropped: no safe overflow on either queue,
//! `RetryUntilDelivered` on both ports. Files and names belong to the run as in
//! [`super::iceoryx2`] (root path the run directory, prefix and service name from its name).

use super::iceoryx2::{node, run_name, Residue};
use super::process::{ChildEnv, ChildStdio, Peer, Placement, RunDir, PEER_TIMEOUT};
use super::request::with_exchange;
use super::{mismatch, read_header, PingPong, Result, Session, STOP};
use iceoryx2::port::client::Client;
use iceoryx2::port::server::Server;
use iceoryx2::prelude::{ipc, BackpressureStrategy, Node, PortFactory as _, ServiceName};
use iceoryx2::service::port_factory::request_response::PortFactory;
use std::path::Path;
use std::time::{Duration, Instant};

/// iceoryx2 request/response (id `iceoryx2-rr`).
#[derive(Debug, Clone, Copy)]
pub struct Iceoryx2Request;

/// Requests a client may have in flight, responses a client's buffer holds (like the shmx
/// endpoints' queues of 4).
const QUEUE_DEPTH: usize = 4;
/// Requests loaned at once, responses borrowed at once.
const MAX_LOANS: usize = 2;
const SERVICE: &str = "rr";

type Factory<const R: usize, const N: usize> = PortFactory<ipc::Service, [u8; R], (), [u8; N], ()>;
type Cli<const R: usize, const N: usize> = Client<ipc::Service, [u8; R], (), [u8; N], ()>;
type Srv<const R: usize, const N: usize> = Server<ipc::Service, [u8; R], (), [u8; N], ()>;
type Pending<const R: usize, const N: usize> =
    iceoryx2::pending_response::PendingResponse<ipc::Service, [u8; R], (), [u8; N], ()>;

/// The request/response service `<run name>/rr`, opened or created.
fn service<const R: usize, const N: usize>(
    node: &Node<ipc::Service>,
    root: &Path,
) -> Result<Factory<R, N>> {
    let name: ServiceName = format!("{}/{SERVICE}", run_name(root)?)
        .as_str()
        .try_into()?;
    Ok(node
        .service_builder(&name)
        .request_response::<[u8; R], [u8; N]>()
        .max_clients(1)
        .max_servers(1)
        .max_active_requests_per_client(QUEUE_DEPTH)
        .max_response_buffer_size(QUEUE_DEPTH)
        .max_loaned_requests(MAX_LOANS)
        .max_borrowed_responses_per_pending_response(MAX_LOANS)
        .enable_safe_overflow_for_requests(false)
        .enable_safe_overflow_for_responses(false)
        .open_or_create()?)
}

/// Writes `value` into the first 8 bytes of the chunk at `ptr` (of `len` bytes).
///
/// # Safety
/// `ptr` must point to `len >= 8` writable bytes, loaned to the caller alone.
#[inline(always)]
unsafe fn write_counter(ptr: *mut u8, len: usize, value: u64) {
    debug_assert!(len >= 8);
    // SAFETY: the caller's contract: 8 writable bytes at `ptr`, nobody else's;
    // `write_unaligned` needs no alignment.
    unsafe { ptr.cast::<u64>().write_unaligned(value) };
}

/// Sends a request carrying `value` in its first 8 bytes; the rest is left as it is.
#[inline(always)]
fn ask<const R: usize, const N: usize>(client: &Cli<R, N>, value: u64) -> Result<Pending<R, N>> {
    const { assert!(R >= 8, "the request holds an 8-byte counter") };
    let mut request = client.loan_uninit()?;
    // SAFETY: the loaned chunk holds `R >= 8` writable bytes of payload, loaned to this
    // request alone.
    unsafe { write_counter(request.payload_mut().as_mut_ptr().cast(), R, value) };
    // SAFETY: every byte of the payload holds a value: the data segment is shared memory that
    // the kernel zero-filled when it was created, mapped with `mmap`, and which since holds
    // only bytes that earlier requests wrote (see `iceoryx2::publish_header`). Every bit
    // pattern is a valid `[u8; R]`.
    let request = unsafe { request.assume_init() };
    Ok(request.send()?)
}

/// Waits, spinning, for the response to `pending` and checks its counter.
#[inline(always)]
fn take_answer<const R: usize, const N: usize>(
    pending: &Pending<R, N>,
    expected: u64,
) -> Result<()> {
    let response = super::spin_wait(|| Ok(pending.receive()?))?;
    let v = read_header(response.payload());
    if v != expected {
        return Err(mismatch("iceoryx2-rr response", expected, v));
    }
    Ok(())
}

/// The parent's side. Fields drop in order: the client, the service, the node, then the
/// residue.
struct Iceoryx2RequestSession<const R: usize, const N: usize> {
    client: Cli<R, N>,
    _service: Factory<R, N>,
    _node: Node<ipc::Service>,
    peer: Option<Peer>,
    seq: u64,
    _residue: Residue,
}

impl PingPong for Iceoryx2Request {
    fn id(&self) -> &'static str {
        "iceoryx2-rr"
    }

    fn describe(&self) -> &'static str {
        "iceoryx2 request/response, both sides spinning on receive(), request and response \
         loaned uninitialised with the counter written in place"
    }

    fn request_response(&self) -> Option<&'static str> {
        Some("iceoryx2")
    }

    fn start(&self, payload: usize, run: &RunDir) -> Result<Box<dyn Session>> {
        let id = self.id();
        with_exchange!(id, payload, R, N => {
            let residue = Residue::new(run.path())?;
            let node = node(run.path())?;
            let service = service::<R, N>(&node, run.path())?;
            let client = service
                .client_builder()
                .backpressure_strategy(BackpressureStrategy::RetryUntilDelivered)
                .create()?;
            let spawned = run.spawn(id, payload, "", ChildStdio::Null)?;
            if !crate::wait_until(PEER_TIMEOUT, || {
                service.dynamic_config().number_of_servers() >= 1
            }) {
                return Err("the iceoryx2-rr server did not start".into());
            }
            let mut session = Iceoryx2RequestSession::<R, N> {
                client,
                _service: service,
                _node: node,
                peer: Some(spawned.peer),
                seq: 0,
                _residue: residue,
            };
            session.connect()?;
            Ok(Box::new(session) as Box<dyn Session>)
        })
    }

    fn child(&self, env: &ChildEnv) -> Result<()> {
        with_exchange!(self.id(), env.payload, R, N => serve::<R, N>(&env.root))
    }
}

impl<const R: usize, const N: usize> Iceoryx2RequestSession<R, N> {
    /// Sends requests until the server answers one (a request that reaches the server before
    /// it is connected to this client's response queue is not answered), within
    /// [`PEER_TIMEOUT`].
    fn connect(&mut self) -> Result<()> {
        let deadline = Instant::now() + PEER_TIMEOUT;
        while Instant::now() < deadline {
            self.seq += 1;
            let pending = ask(&self.client, self.seq)?;
            if pending.number_of_server_connections() == 0 {
                drop(pending);
                std::thread::sleep(Duration::from_millis(1));
                continue;
            }
            let wait_until = Instant::now() + Duration::from_millis(100);
            while Instant::now() < wait_until {
                if let Some(response) = pending.receive()? {
                    let v = read_header(response.payload());
                    if v != self.seq {
                        return Err(mismatch("iceoryx2-rr first response", self.seq, v));
                    }
                    return Ok(());
                }
                std::hint::spin_loop();
            }
        }
        Err("the iceoryx2-rr server answered no request".into())
    }
}

/// The server: answers every request until one says stop.
fn serve<const R: usize, const N: usize>(root: &Path) -> Result<()> {
    const { assert!(N >= 8, "the response holds an 8-byte counter") };
    let node = node(root)?;
    let service = service::<R, N>(&node, root)?;
    let server: Srv<R, N> = service
        .server_builder()
        .backpressure_strategy(BackpressureStrategy::RetryUntilDelivered)
        .max_loaned_responses_per_request(MAX_LOANS)
        .create()?;
    loop {
        let request = super::spin_wait(|| Ok(server.receive()?))?;
        let v = read_header(request.payload());
        if v == STOP {
            return Ok(());
        }
        let mut response = request.loan_uninit()?;
        // SAFETY: the loaned chunk holds `N >= 8` writable bytes of payload, loaned to this
        // response alone.
        unsafe { write_counter(response.payload_mut().as_mut_ptr().cast(), N, v) };
        // SAFETY: as for the requests (`ask`): mapped shared memory whose every byte holds
        // a value; every bit pattern is a valid `[u8; N]`.
        let response = unsafe { response.assume_init() };
        response.send()?;
        // Answer first, then hand the request back (which ends the stream).
        drop(request);
    }
}

impl<const R: usize, const N: usize> Session for Iceoryx2RequestSession<R, N> {
    fn round_trips(&mut self, n: u64, rtts: Option<&mut Vec<u64>>) -> Result<Duration> {
        let (client, seq) = (&self.client, &mut self.seq);
        super::timed_round_trips(n, rtts, || {
            *seq += 1;
            let pending = ask(client, *seq)?;
            take_answer(&pending, *seq)
        })
    }

    fn finish(mut self: Box<Self>) -> Result<Vec<Placement>> {
        let peer = self.peer.take().expect("finished once");
        peer.expect_exit();
        // Kept until the server is gone: a server skips the requests whose client stopped
        // waiting for them.
        let _stop = ask(&self.client, STOP)?;
        Ok(vec![peer.wait(PEER_TIMEOUT)?])
    }
}
