//! [`Client`]: sends requests to the servers of a service and receives their responses.

use super::pending::{Pending, RequestMut};
use super::shared::Shared;
use super::{coarse_ms, request_topic, response_topic, server_ids, LOOK_MS};
use crate::config::{Overflow, PublisherConfig, SubscriberConfig, TopicConfig};
use crate::error::{Error, Result};
use crate::message::ShmMessage;
use crate::sample::{Sample, SampleMut};
use crate::service::{Service, TypeFacts};
use crate::{Publisher, Subscriber};
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::marker::PhantomData;
use std::mem::ManuallyDrop;
use std::path::PathBuf;
use std::ptr::NonNull;
use std::time::{Duration, Instant};

/// Sends requests of type `Req` to the servers of a service and receives their responses of
/// type `Resp` (see [the module](crate::request)).
///
/// `Send` but not `Sync`, like a [`Publisher`]: one thread uses it.
pub struct Client<Req: ShmMessage, Resp: ShmMessage> {
    // Declared first, dropped first: the samples borrow `responses`.
    /// Responses taken for another pending request than the one asking, by request number.
    pub(super) stash: RefCell<VecDeque<(u64, Sample<'static, Resp>)>>,
    pub(super) flights: RefCell<super::flights::Flights<Flight>>,
    // Before `responses`: a connection's publisher goes before the subscriber (any order
    // works; this one leaves the response queue last).
    // Boxed: `pick` hands out references that must stay put while the vector grows.
    #[allow(clippy::vec_box)]
    pub(super) servers: RefCell<Vec<Box<Conn<Req>>>>,
    /// The response queue, on the heap and held by a raw pointer (stashed samples point
    /// into it while the client moves; a `Box` field would assert unique access on each
    /// move): made by `Box::into_raw`, freed in `drop`.
    responses: NonNull<Subscriber<Resp>>,
    pub(super) shared: Shared,
    /// Request loans out: connections are never dropped while one is.
    pub(super) loans: Cell<usize>,
    /// `max_in_flight` and `max_tail_bytes`.
    limits: (usize, usize),
    pub(super) next_request: Cell<u64>,
    next_server: Cell<usize>,
    /// Why the last connection to a server could not be made (not its absence).
    last_error: RefCell<Option<Error>>,
    /// When it last looked for servers (`coarse_ms`; 0: never).
    last_look: Cell<u64>,
    /// Requests left before `pick` reads the clock again.
    picks: Cell<u32>,
    /// The coarse clock (`coarse_ms`) as this client last read it: no later than now, and
    /// recent while it is busy. A request records it as its server's last look when sent
    /// (no clock read per request); a client that sends seldom has an old one, and its
    /// requests look at their server on their first wait.
    pub(super) clock: Cell<u64>,
    _t: PhantomData<fn(Req) -> Resp>,
}

/// Requests between two reads of the clock (for a look for new servers).
const PICKS_PER_CLOCK: u32 = 7;

/// Servers a client sends to at once (its response queue's publishers).
const MAX_SERVERS: usize = 64;

/// A client's connection to one server: the publisher of its request queue.
pub(super) struct Conn<Req: ShmMessage> {
    pub(super) server: u64,
    pub(super) publisher: Publisher<Req>,
}

/// A request in flight.
pub(super) struct Flight {
    pub(super) server: u64,
    /// The stream ended (its last response or end marker was taken).
    pub(super) ended: bool,
}

/// Builds a [`Client`] with non-default settings.
#[must_use]
pub struct ClientBuilder<Req: ShmMessage, Resp: ShmMessage> {
    name: String,
    root: Option<PathBuf>,
    max_in_flight: usize,
    response_depth: usize,
    max_held: usize,
    max_tail_bytes: usize,
    topic: TopicConfig,
    _t: PhantomData<fn(Req) -> Resp>,
}

impl<Req: ShmMessage, Resp: ShmMessage> ClientBuilder<Req, Resp> {
    /// The root directory (default: see [`root_dir`](crate::name::root_dir)).
    pub fn root(mut self, root: impl Into<PathBuf>) -> Self {
        self.root = Some(root.into());
        self
    }

    /// Requests that may be in flight at once (default 16; 1..=1024): a request is in
    /// flight from `send` until its [`Pending`] is dropped. A server's `request_depth`
    /// (default 1024) caps how many of them may wait in its queue.
    pub fn max_in_flight(mut self, n: usize) -> Self {
        self.max_in_flight = n;
        self
    }

    /// Responses each server may have queued for this client before it waits for the client
    /// to take some (default 64; 1..=1024).
    pub fn response_depth(mut self, n: usize) -> Self {
        self.response_depth = n;
        self
    }

    /// Responses this client may hold at once, taken by the caller or kept for a pending
    /// request other than the one asked (default 256).
    pub fn max_held(mut self, n: usize) -> Self {
        self.max_held = n;
        self
    }

    /// Bytes a request may carry after its message, for relative pointers (default 0).
    pub fn max_tail_bytes(mut self, n: usize) -> Self {
        self.max_tail_bytes = n;
        self
    }

    /// The file mode of the service's files (default `0o600`).
    pub fn mode(mut self, mode: u32) -> Self {
        self.topic.mode = mode;
        self
    }

    /// Makes the client: its response queue, and the service record if it is the first
    /// endpoint of the service.
    ///
    /// # Errors
    /// [`Error::TypeMismatch`] if the service's request or response type differs (its
    /// `topic` says which: `"robot/params (response type)"`), [`Error::InvalidName`],
    /// [`Error::InvalidConfig`], and what making a subscriber may fail with.
    pub fn create(self) -> Result<Client<Req, Resp>> {
        let bad = |reason: String| Error::InvalidConfig {
            topic: self.name.clone(),
            reason,
        };
        if !(1..=1024).contains(&self.max_in_flight) || !(1..=1024).contains(&self.response_depth) {
            return Err(bad(
                "max_in_flight and response_depth must be in 1..=1024".into()
            ));
        }
        if self.max_held == 0 {
            return Err(bad("max_held must be at least 1".into()));
        }
        if self.max_tail_bytes > super::MAX_TAIL_BYTES {
            return Err(bad(format!(
                "max_tail_bytes {} is over {} (1 GiB)",
                self.max_tail_bytes,
                super::MAX_TAIL_BYTES
            )));
        }
        let topic = super::queue_topic(self.topic, self.max_held, self.response_depth);
        let shared = Shared::open(
            &self.name,
            self.root.clone(),
            topic,
            (TypeFacts::of::<Req>(), TypeFacts::of::<Resp>()),
        )?;
        let mut config = SubscriberConfig {
            topic,
            ..SubscriberConfig::default()
        };
        config.queue_depth = self.response_depth;
        let mut shared = shared;
        let responses = super::with_client_id(&mut shared, |shared| {
            Subscriber::create_part(
                shared.root_path.as_deref(),
                &response_topic(&shared.service, shared.id)?,
                config,
                true,
            )
        });
        let responses = match responses.and_then(|r| shared.recheck().map(|()| r)) {
            Ok(r) => r,
            Err(e) => {
                shared.leave();
                return Err(e);
            }
        };
        Ok(Client {
            stash: RefCell::new(VecDeque::new()),
            flights: RefCell::new(super::flights::Flights::with_capacity(self.max_in_flight)),
            servers: RefCell::new(Vec::new()),
            responses: NonNull::from(Box::leak(Box::new(responses))),
            shared,
            loans: Cell::new(0),
            limits: (self.max_in_flight, self.max_tail_bytes),
            next_request: Cell::new(1),
            next_server: Cell::new(0),
            last_error: RefCell::new(None),
            last_look: Cell::new(0),
            picks: Cell::new(0),
            clock: Cell::new(0),
            _t: PhantomData,
        })
    }
}

impl<Req: ShmMessage, Resp: ShmMessage> Client<Req, Resp> {
    /// A client of service `name` with the default settings.
    pub fn new(name: &str) -> Result<Client<Req, Resp>> {
        Self::builder(name).create()
    }

    /// A builder of a client of service `name`.
    pub fn builder(name: &str) -> ClientBuilder<Req, Resp> {
        ClientBuilder {
            name: name.to_owned(),
            root: None,
            max_in_flight: 16,
            response_depth: 64,
            max_held: 256,
            max_tail_bytes: 0,
            topic: crate::defaults::publisher().topic,
            _t: PhantomData,
        }
    }

    /// The service's name.
    pub fn service(&self) -> &str {
        self.shared.service.as_str()
    }

    /// This client's id (its response queue is `<service>@resp.<id in hex>`).
    pub fn id(&self) -> u64 {
        self.shared.id
    }

    /// The response queue.
    pub(super) fn responses(&self) -> &Subscriber<Resp> {
        // SAFETY: made by `Box::leak` in `create` and freed only in `drop`: valid for as
        // long as `&self`; only shared references are ever made from it.
        unsafe { self.responses.as_ref() }
    }

    /// A file descriptor that polls readable when responses arrive (see
    /// [`Subscriber::fd`](crate::Subscriber::fd)): for an event loop of one's own. After it
    /// polls readable, take from every pending request until `None`.
    pub fn fd(&self) -> Result<std::os::fd::BorrowedFd<'_>> {
        self.responses().fd()
    }

    /// The response queue's core (for the wait set).
    pub(crate) fn queue(&self) -> &crate::subscriber::SubCore {
        self.responses().core()
    }

    /// Requests in flight: sent, and their [`Pending`] not dropped yet.
    pub fn in_flight(&self) -> usize {
        self.flights.borrow().len()
    }

    /// Number of servers this client finds running (it looks for new ones now).
    pub fn server_count(&self) -> usize {
        let mut servers = self.servers.borrow_mut();
        self.look(&mut servers);
        servers
            .iter()
            .filter(|c| c.publisher.subscriber_count() > 0)
            .count()
    }

    /// Waits until at least `n` servers run; returns how many do.
    ///
    /// # Errors
    /// [`Error::Timeout`] if fewer run after `timeout`.
    pub fn wait_for_servers(&self, n: usize, timeout: Duration) -> Result<usize> {
        let deadline = Instant::now().checked_add(timeout);
        loop {
            let count = self.server_count();
            if count >= n {
                return Ok(count);
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(Error::Timeout {
                    topic: self.service().to_owned(),
                    operation: "waiting for servers",
                });
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Loans a request (zeroed, so only for types whose all-zero bytes are a value), to be
    /// written in place and sent with [`RequestMut::send`].
    ///
    /// # Errors
    /// [`Error::InFlightLimit`], [`Error::PeerGone`] if no server runs, and what loaning
    /// from a publisher may fail with.
    pub fn loan(&self) -> Result<RequestMut<'_, Req, Resp>> {
        let (conn, server) = self.pick()?;
        let sample = conn.publisher.loan_with_tail(self.limits.1)?;
        Ok(self.request_mut(sample, server))
    }

    /// Loans a request that keeps the bytes its chunk already holds, as
    /// [`SampleMut::assume_recycled`]: write only what changes, in place. Only for types in
    /// which every bit pattern is a value (a compile error otherwise).
    ///
    /// # Errors
    /// As [`loan`](Self::loan).
    pub fn loan_recycled(&self) -> Result<RequestMut<'_, Req, Resp>> {
        let (conn, server) = self.pick()?;
        let sample = conn.publisher.loan_uninit()?.assume_recycled();
        Ok(self.request_mut(sample, server))
    }

    /// Sends `request` (written into a loaned chunk) and returns its [`Pending`] response
    /// stream.
    ///
    /// # Errors
    /// As [`loan`](Self::loan), and [`Error::QueueFull`] if the server's queue of this
    /// client's requests is full (it is behind by more than `max_in_flight` requests, or
    /// by more than its own `request_depth` if that is smaller).
    #[inline(always)]
    pub fn send(&self, request: Req) -> Result<Pending<'_, Req, Resp>> {
        let (conn, server) = self.pick()?;
        let sample = conn.publisher.loan_uninit()?.write(request);
        self.publish_request(sample, server)
    }

    /// Publishes `sample` as the next request, to server `server`, and records it in flight.
    #[inline(always)]
    pub(super) fn publish_request<'c>(
        &'c self,
        sample: SampleMut<'c, Req>,
        server: u64,
    ) -> Result<Pending<'c, Req, Resp>> {
        let id = self.next_request.get();
        self.next_request.set(super::next_request(id));
        sample.publish_tagged(super::request_tag(self.shared.id, id))?;
        self.flights.borrow_mut().insert(
            id,
            Flight {
                server,
                ended: false,
            },
        );
        Ok(Pending::new(self, id))
    }

    #[inline(always)]
    pub(super) fn request_mut<'c>(
        &'c self,
        sample: SampleMut<'c, Req>,
        server: u64,
    ) -> RequestMut<'c, Req, Resp> {
        self.loans.set(self.loans.get() + 1);
        RequestMut {
            sample: ManuallyDrop::new(sample),
            client: self,
            server,
        }
    }

    /// The connection to the next live server, round robin: one of this client's, which
    /// stays while the returned reference does (no connection is dropped while a loan is
    /// out, and the caller loans from it at once).
    ///
    /// Inlined (the common case: the next server lives, no look due), so that what it
    /// returns stays in registers; the rest is [`pick_slow`](Self::pick_slow).
    #[inline(always)]
    fn pick(&self) -> Result<(&Conn<Req>, u64)> {
        // Loans out become requests in flight when sent: they count.
        if self.flights.borrow().len() + self.loans.get() < self.limits.0 && !self.stale() {
            let servers = self.servers.borrow();
            let i = self.next_server.get();
            let i = if i < servers.len() { i } else { 0 };
            if let Some(c) = servers.get(i) {
                // The slots as they are (no sweep per request: `look` sweeps).
                if c.publisher.connected() > 0 {
                    self.next_server.set(i + 1);
                    let conn: *const Conn<Req> = &**c;
                    // SAFETY: as in `pick_slow`.
                    return Ok((unsafe { &*conn }, c.server));
                }
            }
        }
        self.pick_slow()
    }

    /// [`pick`](Self::pick) past its common case: the limit of requests in flight, a look
    /// for servers that is due, a server that is gone.
    #[cold]
    #[inline(never)]
    fn pick_slow(&self) -> Result<(&Conn<Req>, u64)> {
        let limit = self.limits.0;
        if self.flights.borrow().len() + self.loans.get() >= limit {
            return Err(Error::InFlightLimit {
                service: self.service().to_owned(),
                max_in_flight: limit,
            });
        }
        let mut servers = self.servers.borrow_mut();
        if servers.is_empty() || self.picks.get() == PICKS_PER_CLOCK {
            // None known, or `stale` just read the clock: look if it is time.
            let now = coarse_ms();
            self.clock.set(now);
            let due = now.saturating_sub(self.last_look.get()) >= LOOK_MS;
            if servers.is_empty() || due {
                self.look(&mut servers);
            }
        }
        for attempt in 0..2 {
            let n = servers.len();
            let mut i = self.next_server.get();
            for _ in 0..n {
                if i >= n {
                    i = 0;
                }
                // The slots as they are (no sweep per request: `look` sweeps).
                if servers[i].publisher.connected() > 0 {
                    self.next_server.set(i + 1);
                    let conn: *const Conn<Req> = &*servers[i];
                    // SAFETY: the connection is boxed (its address stays when the vector
                    // moves) and is dropped only by `look` while no loan is out, or with
                    // the client; the reference lives no longer than `&self`, and the
                    // caller loans from it before any other call can run `look`.
                    return Ok((unsafe { &*conn }, servers[i].server));
                }
                i += 1;
            }
            if attempt == 0 {
                self.look(&mut servers);
            }
        }
        if let Some(e) = self.last_error.borrow_mut().take() {
            return Err(e);
        }
        Err(self
            .shared
            .gone("no server of the service is running".to_owned()))
    }

    /// Whether a look for new servers may be due: every [`PICKS_PER_CLOCK`]-th request,
    /// when `pick_slow` reads the clock (not on the way of the others).
    #[inline(always)]
    fn stale(&self) -> bool {
        let n = self.picks.get();
        if n > 0 {
            self.picks.set(n - 1);
            return false;
        }
        self.picks.set(PICKS_PER_CLOCK);
        true
    }

    /// Connects to the servers that appeared, and (with no loan out) lets go of those that
    /// are gone.
    #[allow(clippy::vec_box)] // see `servers`
    fn look(&self, servers: &mut Vec<Box<Conn<Req>>>) {
        let now = coarse_ms();
        self.clock.set(now);
        self.last_look.set(now.max(1));
        if self.loans.get() == 0 {
            servers.retain(|c| c.publisher.subscriber_count() > 0);
        }
        let (max_in_flight, max_tail_bytes) = self.limits;
        for server in server_ids(&self.shared.root, &self.shared.service) {
            if servers.iter().any(|c| c.server == server) {
                continue;
            }
            // The response queue takes 64 publishers: a client sends to at most 64 servers
            // at once, so that every server it asks can answer.
            if servers.len() >= MAX_SERVERS {
                break;
            }
            let Ok(name) = request_topic(&self.shared.service, server) else {
                continue;
            };
            let config = PublisherConfig {
                topic: self.shared.topic,
                queue_depth: max_in_flight,
                max_loans: max_in_flight.min(64),
                history: 0,
                overflow: Overflow::Fail,
                max_tail_bytes,
                ..PublisherConfig::default()
            };
            let publisher = Publisher::<Req>::create_part(
                self.shared.root_path.as_deref(),
                &name,
                config,
                |root, name, _config, trust, lock| {
                    Service::open_existing::<Req>(root, name, trust, lock)?
                        .ok_or_else(|| self.shared.gone("the server left".into()))
                },
            );
            // A server that left meanwhile: not a server to send to. Another error (a
            // full queue of clients, settings the queue refuses) is what `pick` reports if
            // no server can be had.
            match publisher {
                Ok(publisher) => servers.push(Box::new(Conn { server, publisher })),
                Err(Error::PeerGone { .. }) => {}
                Err(e) => *self.last_error.borrow_mut() = Some(e),
            }
        }
    }

    /// The request queues' pools, summed (for tests and tools: all free when nothing is in
    /// flight).
    pub fn pool_stats(&self) -> crate::PoolStats {
        let mut total = crate::PoolStats::default();
        for c in self.servers.borrow().iter() {
            total += c.publisher.pool_stats();
        }
        total
    }
}

impl<Req: ShmMessage, Resp: ShmMessage> Drop for Client<Req, Resp> {
    fn drop(&mut self) {
        self.stash.get_mut().clear();
        self.servers.get_mut().clear();
        // SAFETY: made by `Box::leak` in `create`, freed once, here; nothing borrows it any
        // more (the stash is empty, and no `Pending` or `Response` outlives the client).
        drop(unsafe { Box::from_raw(self.responses.as_ptr()) });
        self.shared.leave();
    }
}

// SAFETY: the stashed samples point into the client's own boxed subscriber and move with it;
// no other thread keeps a reference to either. `Publisher` and `Subscriber` are `Send`.
unsafe impl<Req: ShmMessage, Resp: ShmMessage> Send for Client<Req, Resp> {}
