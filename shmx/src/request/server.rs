//! [`Server`]: takes the requests that clients send it and answers each with zero, one or a
//! stream of responses.

use super::active::ActiveRequest;
use super::shared::Shared;
use super::{coarse_ms, request_topic, response_tag, response_topic, IdMap, LAST, LOOK_MS, MARKER};
use crate::config::{Overflow, PublisherConfig, SubscriberConfig, TopicConfig};
use crate::error::{Error, Result};
use crate::message::ShmMessage;
use crate::sample::{Sample, SampleParts};
use crate::service::{Service, TypeFacts};
use crate::{Publisher, Subscriber};
use std::cell::{Cell, RefCell};
use std::marker::PhantomData;
use std::mem::ManuallyDrop;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Answers the requests of type `Req` that clients of a service send it with responses of
/// type `Resp` (see [the module](crate::request)).
///
/// `Send` but not `Sync`, like a [`Subscriber`]: one thread uses it.
pub struct Server<Req: ShmMessage, Resp: ShmMessage> {
    /// The publishers of the response queues of the clients it answered, by client id
    /// (boxed: active requests and their response loans borrow them; dropped only while no
    /// active request refers to one).
    clients: RefCell<IdMap<Box<ClientConn<Resp>>>>,
    /// The request queue.
    requests: ManuallyDrop<Subscriber<Req>>,
    pub(super) shared: Shared,
    pub(super) config: ServerConfig,
    /// When it last looked for clients that are gone (`coarse_ms`).
    last_prune: Cell<u64>,
    /// Takes until `prune` reads the clock again (not on every poll of a spinning server).
    prune_in: Cell<u32>,
    /// The connection of the client last answered, and its id (null: none): most requests
    /// come from the client of the one before, and need no map lookup then. Cleared
    /// whenever a connection is dropped.
    last_client: Cell<(u64, *const ClientConn<Resp>)>,
    /// Ends of streams not sent yet, `(client, request)`: the client's queue was full. Sent
    /// on later calls as soon as there is room (never waiting for it).
    pub(super) unsent_ends: RefCell<Vec<(u64, u64)>>,
}

/// A server's connection to a client: the publisher of its response queue, and how many
/// active requests (whose response loans borrow it) use it: dropped only when none does.
pub(super) struct ClientConn<Resp: ShmMessage> {
    pub(super) publisher: Publisher<Resp>,
    /// The client's id.
    pub(super) client: u64,
    pub(super) refs: Cell<usize>,
}

/// Calls of `take` between two looks at the clock for clients that are gone.
const PRUNE_CALLS: u32 = 32;

#[derive(Clone, Copy)]
pub(super) struct ServerConfig {
    pub(super) response_depth: usize,
    pub(super) response_timeout: Duration,
    pub(super) max_tail_bytes: usize,
}

/// Builds a [`Server`] with non-default settings.
#[must_use]
pub struct ServerBuilder<Req: ShmMessage, Resp: ShmMessage> {
    name: String,
    root: Option<PathBuf>,
    request_depth: usize,
    max_active: usize,
    config: ServerConfig,
    topic: TopicConfig,
    _t: PhantomData<fn(Req) -> Resp>,
}

impl<Req: ShmMessage, Resp: ShmMessage> ServerBuilder<Req, Resp> {
    /// The root directory (default: see [`root_dir`](crate::name::root_dir)).
    pub fn root(mut self, root: impl Into<PathBuf>) -> Self {
        self.root = Some(root.into());
        self
    }

    /// Requests each client may have queued at this server (default 1024, the most, so that
    /// a client's own `max_in_flight` is what limits it; 1..=1024). Its queue's rings are
    /// this deep: a server whose clients keep few requests in flight saves memory and cache
    /// lines with less. A client whose `max_in_flight` is larger gets [`Error::QueueFull`]
    /// from `send` when this many of its requests wait here.
    ///
    /// [`Error::QueueFull`]: crate::Error::QueueFull
    pub fn request_depth(mut self, n: usize) -> Self {
        self.request_depth = n;
        self
    }

    /// Requests this server may hold at once, taken and not yet dropped (default 64).
    pub fn max_active(mut self, n: usize) -> Self {
        self.max_active = n;
        self
    }

    /// Responses this server may have queued for one client before a response waits for
    /// the client to take some (default 64; at most the client's own `response_depth`).
    pub fn response_depth(mut self, n: usize) -> Self {
        self.config.response_depth = n;
        self
    }

    /// How long a response waits for room in a client's full queue before it fails with
    /// [`Error::Timeout`] (default 1 s).
    pub fn response_timeout(mut self, timeout: Duration) -> Self {
        self.config.response_timeout = timeout;
        self
    }

    /// Bytes a response may carry after its message, for relative pointers (default 0).
    pub fn max_tail_bytes(mut self, n: usize) -> Self {
        self.config.max_tail_bytes = n;
        self
    }

    /// The file mode of the service's files (default `0o600`).
    pub fn mode(mut self, mode: u32) -> Self {
        self.topic.mode = mode;
        self
    }

    /// Makes the server: its request queue, and the service record if it is the first
    /// endpoint of the service.
    ///
    /// # Errors
    /// [`Error::TypeMismatch`] if the service's request or response type differs (its
    /// `topic` says which: `"robot/params (request type)"`), [`Error::InvalidName`],
    /// [`Error::InvalidConfig`], and what making a subscriber may fail with.
    pub fn create(self) -> Result<Server<Req, Resp>> {
        let bad = |reason: String| Error::InvalidConfig {
            topic: self.name.clone(),
            reason,
        };
        if !(1..=1024).contains(&self.request_depth)
            || !(1..=1024).contains(&self.config.response_depth)
        {
            return Err(bad(
                "request_depth and response_depth must be in 1..=1024".into()
            ));
        }
        if self.max_active == 0 {
            return Err(bad("max_active must be at least 1".into()));
        }
        if self.config.max_tail_bytes > super::MAX_TAIL_BYTES {
            return Err(bad(format!(
                "max_tail_bytes {} is over {} (1 GiB)",
                self.config.max_tail_bytes,
                super::MAX_TAIL_BYTES
            )));
        }
        let topic = super::queue_topic(self.topic, self.max_active, self.request_depth);
        let shared = Shared::open(
            &self.name,
            self.root.clone(),
            topic,
            (TypeFacts::of::<Req>(), TypeFacts::of::<Resp>()),
        )?;
        let config = SubscriberConfig {
            topic,
            queue_depth: self.request_depth,
            publish_times: false,
        };
        let requests = Subscriber::create_part(
            shared.root_path.as_deref(),
            &request_topic(&shared.service, shared.id)?,
            config,
            false,
        );
        let requests = match requests.and_then(|r| shared.recheck().map(|()| r)) {
            Ok(r) => r,
            Err(e) => {
                shared.leave();
                return Err(e);
            }
        };
        Ok(Server {
            clients: RefCell::new(IdMap::default()),
            requests: ManuallyDrop::new(requests),
            shared,
            config: self.config,
            last_prune: Cell::new(coarse_ms()),
            prune_in: Cell::new(0),
            last_client: Cell::new((0, std::ptr::null())),
            unsent_ends: RefCell::new(Vec::new()),
        })
    }
}

impl<Req: ShmMessage, Resp: ShmMessage> Server<Req, Resp> {
    /// A server of service `name` with the default settings.
    pub fn new(name: &str) -> Result<Server<Req, Resp>> {
        Self::builder(name).create()
    }

    /// A builder of a server of service `name`.
    pub fn builder(name: &str) -> ServerBuilder<Req, Resp> {
        ServerBuilder {
            name: name.to_owned(),
            root: None,
            request_depth: 1024,
            max_active: 64,
            config: ServerConfig {
                response_depth: 64,
                response_timeout: Duration::from_secs(1),
                max_tail_bytes: 0,
            },
            topic: crate::defaults::publisher().topic,
            _t: PhantomData,
        }
    }

    /// The service's name.
    pub fn service(&self) -> &str {
        self.shared.service.as_str()
    }

    /// This server's id (its request queue is `<service>@req.<id in hex>`).
    pub fn id(&self) -> u64 {
        self.shared.id
    }

    /// A file descriptor that polls readable when requests arrive (see
    /// [`Subscriber::fd`]): for an event loop of one's own.
    pub fn fd(&self) -> Result<std::os::fd::BorrowedFd<'_>> {
        self.requests.fd()
    }

    /// The request queue's core (for the wait set).
    pub(crate) fn queue(&self) -> &crate::subscriber::SubCore {
        self.requests.core()
    }

    /// Number of clients connected to this server's request queue.
    pub fn client_count(&self) -> usize {
        self.requests.publisher_count()
    }

    /// The next request if one waits (requests of clients that are gone are skipped).
    ///
    /// # Errors
    /// What taking a sample may fail with ([`Error::HeldLimit`] past `max_active`
    /// requests held, [`Error::InvalidSample`] for a request that is not a valid `Req`).
    #[inline(always)]
    pub fn take(&self) -> Result<Option<ActiveRequest<'_, Req, Resp>>> {
        self.prune();
        let Some(sample) = self.requests.take()? else {
            return Ok(None);
        };
        // The common case inlined: a request of the client answered last, which is there.
        // Every other goes to `take_rest` as plain values, and comes back so: a sample
        // dropped here, or a request made in a call that is not inlined, would have to live
        // in memory, and be copied out of it on the common way too (loads that wait for the
        // stores it was just written with).
        let common = sample
            .tag()
            .map(super::split_tag)
            .and_then(|(client, id)| Some((self.last_connection(client)?, id)));
        let (sample, conn, id) = match common {
            Some((conn, id)) => (sample, conn, id),
            None => match self.take_rest(sample.into_parts())? {
                // SAFETY: `take_rest` took it apart and handed it here alone.
                Some((raw, conn, id)) => (unsafe { Sample::from_parts(raw) }, conn, id),
                None => return Ok(None),
            },
        };
        Ok(Some(self.activate(sample, conn, id)))
    }

    /// [`take`](Self::take) of a request of another client than the last one (or of none,
    /// or of one that is gone: then the next request): the request, its client's
    /// connection and its number.
    #[cold]
    #[inline(never)]
    #[allow(clippy::type_complexity)]
    fn take_rest<'s>(
        &'s self,
        sample: SampleParts<'s, Req>,
    ) -> Result<Option<(SampleParts<'s, Req>, &'s ClientConn<Resp>, u64)>> {
        // SAFETY: `take` took it apart just before, and gave it here alone.
        let mut sample = unsafe { Sample::from_parts(sample) };
        loop {
            if let Some(got) = self.admit(sample)? {
                return Ok(Some(got));
            }
            // No tag, or its client is gone (the request dropped): the next request.
            let Some(next) = self.requests.take()? else {
                return Ok(None);
            };
            sample = next;
        }
    }

    /// Waits for the next request.
    pub fn recv(&self) -> Result<ActiveRequest<'_, Req, Resp>> {
        loop {
            // In slices, so that the queues of clients that left go while it waits.
            if let Some((raw, conn, id)) = self.recv_raw(super::LOOK_EVERY)? {
                // SAFETY: `recv_raw` took it apart and handed it here alone.
                return Ok(self.activate(unsafe { Sample::from_parts(raw) }, conn, id));
            }
        }
    }

    /// Waits up to `timeout` for the next request; `None` if none came.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<Option<ActiveRequest<'_, Req, Resp>>> {
        let Some((raw, conn, id)) = self.recv_raw(timeout)? else {
            return Ok(None);
        };
        // SAFETY: `recv_raw` took it apart and handed it here alone.
        Ok(Some(self.activate(
            unsafe { Sample::from_parts(raw) },
            conn,
            id,
        )))
    }

    /// The wait of [`recv_timeout`](Self::recv_timeout): the request as plain values, its
    /// client's connection and its number (the caller makes the request in one place, see
    /// [`take`](Self::take)).
    #[allow(clippy::type_complexity)]
    fn recv_raw(
        &self,
        timeout: Duration,
    ) -> Result<Option<(SampleParts<'_, Req>, &ClientConn<Resp>, u64)>> {
        let deadline = Instant::now().checked_add(timeout);
        loop {
            self.prune_now();
            let left = deadline.map_or(Duration::MAX, |d| {
                d.saturating_duration_since(Instant::now())
            });
            // At most `LOOK_EVERY` at a time: the queues of clients that left go while idle.
            let Some(sample) = self.requests.recv_timeout(left.min(super::LOOK_EVERY))? else {
                if left <= super::LOOK_EVERY {
                    return Ok(None);
                }
                continue;
            };
            if let Some(got) = self.admit(sample)? {
                return Ok(Some(got));
            }
        }
    }

    /// Sends the ends of streams still waiting for room and, every [`PRUNE_CALLS`] calls
    /// (no clock read per poll), does what [`prune_now`](Self::prune_now) does.
    #[inline]
    fn prune(&self) {
        self.flush_ends();
        let n = self.prune_in.get();
        if n > 0 {
            self.prune_in.set(n - 1);
            return;
        }
        self.prune_in.set(PRUNE_CALLS);
        self.prune_now();
    }

    /// Every [`LOOK_EVERY`](super::LOOK_EVERY): lets go of the response queues of clients
    /// that are gone (their slots swept), while no response loan is out.
    fn prune_now(&self) {
        self.flush_ends();
        let now = coarse_ms();
        if now.saturating_sub(self.last_prune.get()) < LOOK_MS {
            return;
        }
        self.last_prune.set(now);
        self.last_client.set((0, std::ptr::null()));
        self.clients
            .borrow_mut()
            .retain(|_, c| c.refs.get() > 0 || c.publisher.subscriber_count() > 0);
    }

    /// Sends the ends of streams that found their client's queue full, where there is room
    /// now; forgets those of clients that are gone.
    #[inline]
    pub(super) fn flush_ends(&self) {
        if !self.unsent_ends.borrow().is_empty() {
            self.flush_ends_now();
        }
    }

    #[cold]
    fn flush_ends_now(&self) {
        let pending = std::mem::take(&mut *self.unsent_ends.borrow_mut());
        let mut left = Vec::new();
        for (client, id) in pending {
            // A client that is gone (or unreachable) waits for the end no more.
            if let Ok(Some(conn)) = self.client(client) {
                if !self.send_end(&conn.publisher, id) {
                    left.push((client, id));
                }
            }
        }
        self.unsent_ends.borrow_mut().extend(left);
    }

    /// Sends request `id`'s end marker through `publisher` if its queue has room; `false`
    /// if it has none (or no chunk is free): try again later.
    pub(super) fn send_end(&self, publisher: &Publisher<Resp>, id: u64) -> bool {
        if !publisher.has_room() {
            return false;
        }
        let Ok(marker) = publisher.loan_uninit() else {
            return false;
        };
        // Room was there a moment ago and only the client takes from the queue: this does
        // not wait. An error (the client went meanwhile) ends the matter too.
        let _ = marker.publish_empty(response_tag(id, LAST | MARKER));
        true
    }

    /// A request just taken, as plain values with its client's connection and its number,
    /// if its client is there to answer (else it is dropped).
    #[allow(clippy::type_complexity)]
    fn admit<'s>(
        &'s self,
        sample: Sample<'s, Req>,
    ) -> Result<Option<(SampleParts<'s, Req>, &'s ClientConn<Resp>, u64)>> {
        let Some((client, id)) = sample.tag().map(super::split_tag) else {
            return Ok(None);
        };
        Ok(self
            .client(client)?
            .map(|conn| (sample.into_parts(), conn, id)))
    }

    /// Request `id` of client `client`, to be answered through `conn`.
    #[inline(always)]
    fn activate<'s>(
        &'s self,
        sample: Sample<'s, Req>,
        conn: &'s ClientConn<Resp>,
        id: u64,
    ) -> ActiveRequest<'s, Req, Resp> {
        conn.refs.set(conn.refs.get() + 1);
        ActiveRequest {
            server: self,
            sample,
            conn,
            // A request number is 32 bits (`split_tag`): the bit is free.
            state: Cell::new(id & !super::active::ENDED),
        }
    }

    /// The publisher of client `client`'s response queue, connected on first use; `None` if
    /// the client is gone. The reference stays while `&self` does: a connection is dropped
    /// only while no response loan is out, and callers loan from it before anything else
    /// may drop one.
    fn client(&self, client: u64) -> Result<Option<&ClientConn<Resp>>> {
        match self.last_connection(client) {
            Some(c) => Ok(Some(c)),
            None => self.client_slow(client),
        }
    }

    /// The connection of client `client` if it is the one answered last and is there.
    #[inline(always)]
    fn last_connection(&self, client: u64) -> Option<&ClientConn<Resp>> {
        let (last, conn) = self.last_client.get();
        if last != client || conn.is_null() {
            return None;
        }
        // SAFETY: `last_client` holds a connection of `clients` (boxed: its address stays)
        // and is cleared before any connection is dropped.
        let c = unsafe { &*conn };
        // The slots as they are (no sweep per request: `prune` sweeps).
        (c.publisher.connected() > 0).then_some(c)
    }

    /// [`client`](Self::client) through the map (another client than the last one, a new
    /// one, or one that is gone).
    #[cold]
    #[inline(never)]
    fn client_slow(&self, client: u64) -> Result<Option<&ClientConn<Resp>>> {
        let mut clients = self.clients.borrow_mut();
        if let Some(c) = clients.get(&client) {
            // The slots as they are (no sweep per request: `prune` sweeps).
            if c.publisher.connected() > 0 {
                let c: *const ClientConn<Resp> = &**c;
                self.last_client.set((client, c));
                // SAFETY: boxed (stable address) and dropped only while no active request
                // refers to it; see the function's documentation.
                return Ok(Some(unsafe { &*c }));
            }
            if c.refs.get() == 0 {
                self.last_client.set((0, std::ptr::null()));
                clients.remove(&client);
            }
            return Ok(None);
        }
        let Ok(name) = response_topic(&self.shared.service, client) else {
            return Ok(None);
        };
        let config = PublisherConfig {
            topic: self.shared.topic,
            queue_depth: self.config.response_depth,
            max_loans: 64,
            history: 0,
            overflow: Overflow::Block,
            block_timeout: Some(self.config.response_timeout),
            max_tail_bytes: self.config.max_tail_bytes,
            ..PublisherConfig::default()
        };
        let publisher = Publisher::<Resp>::create_part(
            self.shared.root_path.as_deref(),
            &name,
            config,
            |root, name, _config, trust, lock| {
                Service::open_existing::<Resp>(root, name, trust, lock)?
                    .ok_or_else(|| self.shared.gone("the client left".into()))
            },
        );
        match publisher {
            Ok(publisher) => {
                let c = clients.entry(client).or_insert(Box::new(ClientConn {
                    publisher,
                    client,
                    refs: Cell::new(0),
                }));
                let c: *const ClientConn<Resp> = &**c;
                self.last_client.set((client, c));
                // SAFETY: as above.
                Ok(Some(unsafe { &*c }))
            }
            Err(Error::PeerGone { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The response queues' pools, summed (for tests and tools: all free when no response
    /// is queued or held).
    pub fn pool_stats(&self) -> crate::PoolStats {
        let mut total = crate::PoolStats::default();
        for c in self.clients.borrow().values() {
            total += c.publisher.pool_stats();
        }
        total
    }
}

impl<Req: ShmMessage, Resp: ShmMessage> Drop for Server<Req, Resp> {
    fn drop(&mut self) {
        // Ends of streams still waiting for room: a last try (a client that gets none
        // learns that the server is gone instead).
        self.flush_ends();
        self.last_client.set((0, std::ptr::null()));
        self.clients.get_mut().clear();
        // SAFETY: dropped once, here; no `ActiveRequest` outlives the server.
        unsafe { ManuallyDrop::drop(&mut self.requests) };
        self.shared.leave();
    }
}

// SAFETY: a server is its subscriber and publishers (each `Send`), moved together; no other
// thread keeps a reference to them.
unsafe impl<Req: ShmMessage, Resp: ShmMessage> Send for Server<Req, Resp> {}
