//! [`Server`]: takes the requests that clients send it and answers each with zero, one or a
//! stream of responses.

use super::client::Shared;
use super::{coarse_ms, request_topic, response_topic, IdMap, LAST, LOOK_MS, MARKER};
use crate::config::{Overflow, PublisherConfig, SubscriberConfig, TopicConfig};
use crate::error::{Error, Result};
use crate::message::ShmMessage;
use crate::sample::{Sample, SampleMut};
use crate::service::{Service, TypeFacts};
use crate::{Publisher, Subscriber};
use std::cell::{Cell, RefCell};
use std::marker::PhantomData;
use std::mem::ManuallyDrop;
use std::ops::{Deref, DerefMut};
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
    shared: Shared,
    config: ServerConfig,
    /// When it last looked for clients that are gone (`coarse_ms`).
    last_prune: Cell<u64>,
    /// Ends of streams not sent yet, `(client, request)`: the client's queue was full. Sent
    /// on later calls as soon as there is room (never waiting for it).
    unsent_ends: RefCell<Vec<(u64, u64)>>,
}

/// A server's connection to a client: the publisher of its response queue, and how many
/// active requests (whose response loans borrow it) use it: dropped only when none does.
struct ClientConn<Resp: ShmMessage> {
    publisher: Publisher<Resp>,
    refs: Cell<usize>,
}

#[derive(Clone, Copy)]
struct ServerConfig {
    response_depth: usize,
    response_timeout: Duration,
    max_tail_bytes: usize,
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

    /// Requests each client may have queued at this server (default 1024, the most; a
    /// client's own `max_in_flight` is what limits it in practice).
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
    /// the client to take some (default 64).
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
        let topic = super::queue_topic(self.topic, self.max_active);
        let shared = Shared::open(
            &self.name,
            self.root.clone(),
            topic,
            (TypeFacts::of::<Req>(), TypeFacts::of::<Resp>()),
        )?;
        let config = SubscriberConfig {
            topic,
            queue_depth: self.request_depth,
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
    pub fn take(&self) -> Result<Option<ActiveRequest<'_, Req, Resp>>> {
        self.prune();
        loop {
            let Some(sample) = self.requests.take()? else {
                return Ok(None);
            };
            if let Some(request) = self.accept(sample)? {
                return Ok(Some(request));
            }
        }
    }

    /// Waits for the next request.
    pub fn recv(&self) -> Result<ActiveRequest<'_, Req, Resp>> {
        loop {
            // In slices, so that the queues of clients that left go while it waits.
            if let Some(request) = self.recv_timeout(super::LOOK_EVERY)? {
                return Ok(request);
            }
        }
    }

    /// Waits up to `timeout` for the next request; `None` if none came.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<Option<ActiveRequest<'_, Req, Resp>>> {
        let deadline = Instant::now().checked_add(timeout);
        loop {
            self.prune();
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
            if let Some(request) = self.accept(sample)? {
                return Ok(Some(request));
            }
        }
    }

    /// Every [`LOOK_EVERY`](super::LOOK_EVERY): lets go of the response queues of clients
    /// that are gone (their slots swept), while no response loan is out.
    fn prune(&self) {
        self.flush_ends();
        let now = coarse_ms();
        if now.saturating_sub(self.last_prune.get()) < LOOK_MS {
            return;
        }
        self.last_prune.set(now);
        self.clients
            .borrow_mut()
            .retain(|_, c| c.refs.get() > 0 || c.publisher.subscriber_count() > 0);
    }

    /// Sends the ends of streams that found their client's queue full, where there is room
    /// now; forgets those of clients that are gone.
    fn flush_ends(&self) {
        if self.unsent_ends.borrow().is_empty() {
            return;
        }
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
    fn send_end(&self, publisher: &Publisher<Resp>, id: u64) -> bool {
        if !publisher.has_room() {
            return false;
        }
        let Ok(marker) = publisher.loan_uninit() else {
            return false;
        };
        marker.set_tag(super::response_tag(id, LAST | MARKER));
        // Room was there a moment ago and only the client takes from the queue: this does
        // not wait. An error (the client went meanwhile) ends the matter too.
        let _ = marker.publish_empty();
        true
    }

    /// A request just taken, if its client is there to answer.
    fn accept<'s>(
        &'s self,
        sample: Sample<'s, Req>,
    ) -> Result<Option<ActiveRequest<'s, Req, Resp>>> {
        self.prune();
        let Some((client, id)) = sample.tag().map(super::split_tag) else {
            return Ok(None);
        };
        match self.client(client)? {
            Some(conn) => {
                conn.refs.set(conn.refs.get() + 1);
                Ok(Some(ActiveRequest {
                    server: self,
                    sample,
                    conn,
                    client,
                    id,
                    ended: Cell::new(false),
                }))
            }
            None => Ok(None),
        }
    }

    /// The publisher of client `client`'s response queue, connected on first use; `None` if
    /// the client is gone. The reference stays while `&self` does: a connection is dropped
    /// only while no response loan is out, and callers loan from it before anything else
    /// may drop one.
    fn client(&self, client: u64) -> Result<Option<&ClientConn<Resp>>> {
        let mut clients = self.clients.borrow_mut();
        if let Some(c) = clients.get(&client) {
            // The slots as they are (no sweep per request: `prune` sweeps).
            if c.publisher.connected() > 0 {
                let c: *const ClientConn<Resp> = &**c;
                // SAFETY: boxed (stable address) and dropped only while no active request
                // refers to it; see the function's documentation.
                return Ok(Some(unsafe { &*c }));
            }
            if c.refs.get() == 0 {
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
                    refs: Cell::new(0),
                }));
                let c: *const ClientConn<Resp> = &**c;
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
        self.clients.get_mut().clear();
        // SAFETY: dropped once, here; no `ActiveRequest` outlives the server.
        unsafe { ManuallyDrop::drop(&mut self.requests) };
        self.shared.leave();
    }
}

/// A request taken by a server: it dereferences to the [`Sample`] (and so to `Req`), read
/// in place. Answer it with [`respond`](Self::respond) or
/// [`loan_response`](Self::loan_response), as often as the stream needs; the stream ends
/// with [`respond_last`](Self::respond_last), [`finish`](Self::finish), or when it is
/// dropped (which sends the client an end marker).
pub struct ActiveRequest<'s, Req: ShmMessage, Resp: ShmMessage> {
    server: &'s Server<Req, Resp>,
    sample: Sample<'s, Req>,
    /// Its client's connection (counted in `refs` while this lives).
    conn: &'s ClientConn<Resp>,
    client: u64,
    id: u64,
    ended: Cell<bool>,
}

impl<'s, Req: ShmMessage, Resp: ShmMessage> ActiveRequest<'s, Req, Resp> {
    /// The id of the client that sent it.
    pub fn client_id(&self) -> u64 {
        self.client
    }

    /// Its number among its client's requests.
    pub fn request_id(&self) -> u64 {
        self.id
    }

    /// Whether its client is still there to take responses.
    pub fn client_alive(&self) -> bool {
        self.publisher().is_ok()
    }

    fn publisher(&self) -> Result<&'s Publisher<Resp>> {
        if self.ended.get() {
            return Err(Error::InvalidConfig {
                topic: self.server.service().to_owned(),
                reason: "the response stream has ended".into(),
            });
        }
        let publisher = &self.conn.publisher;
        // The slots as they are (the server's `prune` sweeps dead ones every 50 ms).
        if publisher.connected() == 0 {
            return Err(self
                .server
                .shared
                .gone(format!("the client {:016x} is gone", self.client)));
        }
        Ok(publisher)
    }

    /// Loans a response (zeroed, so only for types whose all-zero bytes are a value), to
    /// be written in place and sent with [`ResponseMut::send`] or
    /// [`send_last`](ResponseMut::send_last).
    ///
    /// # Errors
    /// [`Error::PeerGone`] if the client is gone (the response would go nowhere), and what
    /// loaning may fail with.
    pub fn loan_response(&self) -> Result<ResponseMut<'_, 's, Req, Resp>> {
        let publisher = self.publisher()?;
        let sample = publisher.loan_with_tail(self.server.config.max_tail_bytes)?;
        Ok(ResponseMut {
            sample: ManuallyDrop::new(sample),
            request: self,
        })
    }

    /// Loans a response that keeps the bytes its chunk already holds (zeroes, or an earlier
    /// response), as [`SampleMut::assume_recycled`]: write only what changes, in place (a
    /// 4 MiB frame whose header is all that moves is not written in full). Only for types
    /// in which every bit pattern is a value (a compile error otherwise).
    ///
    /// # Errors
    /// As [`loan_response`](Self::loan_response).
    pub fn loan_response_recycled(&self) -> Result<ResponseMut<'_, 's, Req, Resp>> {
        let publisher = self.publisher()?;
        let sample = publisher.loan_uninit()?.assume_recycled();
        Ok(ResponseMut {
            sample: ManuallyDrop::new(sample),
            request: self,
        })
    }

    /// Sends `response` (written into a loaned chunk); the stream goes on.
    ///
    /// # Errors
    /// [`Error::PeerGone`] if the client is gone; [`Error::Timeout`] if its queue stayed
    /// full for the server's `response_timeout`.
    pub fn respond(&self, response: Resp) -> Result<()> {
        self.send_value(response, 0)
    }

    /// Sends `response` as the last of the stream.
    pub fn respond_last(self, response: Resp) -> Result<()> {
        self.send_value(response, LAST)
    }

    fn send_value(&self, response: Resp, flags: u64) -> Result<()> {
        self.server.flush_ends();
        let sample = self.publisher()?.loan_uninit()?.write(response);
        self.publish(sample, flags)
    }

    fn publish(&self, sample: SampleMut<'_, Resp>, flags: u64) -> Result<()> {
        sample.set_tag(super::response_tag(self.id, flags));
        if flags & LAST != 0 {
            self.ended.set(true);
        }
        sample.publish()
    }

    /// Ends the stream (the client's `recv` returns `None` after the responses sent).
    ///
    /// # Errors
    /// [`Error::PeerGone`] if the client is gone, and what publishing may fail with.
    pub fn finish(self) -> Result<()> {
        self.end()
    }

    fn end(&self) -> Result<()> {
        let publisher = self.publisher()?;
        self.ended.set(true);
        if !self.server.send_end(publisher, self.id) {
            // The client's queue is full: the end goes as soon as it has room (the server's
            // next `take`, `recv` or response), after the responses queued before it.
            self.server
                .unsent_ends
                .borrow_mut()
                .push((self.client, self.id));
        }
        Ok(())
    }
}

impl<'s, Req: ShmMessage, Resp: ShmMessage> Deref for ActiveRequest<'s, Req, Resp> {
    type Target = Sample<'s, Req>;
    fn deref(&self) -> &Self::Target {
        &self.sample
    }
}

impl<Req: ShmMessage, Resp: ShmMessage> Drop for ActiveRequest<'_, Req, Resp> {
    fn drop(&mut self) {
        if !self.ended.get() {
            // A client that is gone, or a queue that stays full: the client learns the end
            // from its own timeout then.
            let _ = self.end();
        }
        self.conn.refs.set(self.conn.refs.get() - 1);
    }
}

/// A loaned response, written in place (it dereferences to the [`SampleMut`], so
/// `writer()` and `parts()` fill relative pointers) and sent with [`send`](Self::send) or
/// [`send_last`](Self::send_last).
pub struct ResponseMut<'r, 's, Req: ShmMessage, Resp: ShmMessage> {
    sample: ManuallyDrop<SampleMut<'s, Resp>>,
    request: &'r ActiveRequest<'s, Req, Resp>,
}

impl<Req: ShmMessage, Resp: ShmMessage> ResponseMut<'_, '_, Req, Resp> {
    /// Sends the response (zero-copy); the stream goes on.
    pub fn send(self) -> Result<()> {
        self.send_with(0)
    }

    /// Sends the response as the last of the stream.
    pub fn send_last(self) -> Result<()> {
        self.send_with(LAST)
    }

    fn send_with(mut self, flags: u64) -> Result<()> {
        // SAFETY: taken once; `self` is forgotten right after, so its drop does not run.
        let sample = unsafe { ManuallyDrop::take(&mut self.sample) };
        let request = self.request;
        std::mem::forget(self);
        request.publish(sample, flags)
    }
}

impl<Req: ShmMessage, Resp: ShmMessage> ResponseMut<'_, '_, Req, Resp> {
    /// The writer of the response: see [`SampleMut::writer`].
    pub fn writer(&mut self) -> Resp::Writer<'_>
    where
        Resp: crate::rel::Writable,
    {
        self.sample.writer()
    }

    /// The message, pinned, and the free tail of its chunk: see [`SampleMut::parts`].
    pub fn parts(&mut self) -> (std::pin::Pin<&mut Resp>, crate::rel::Tail<'_>) {
        self.sample.parts()
    }

    /// Bytes the chunk's tail holds: see [`SampleMut::tail_capacity`].
    pub fn tail_capacity(&self) -> usize {
        self.sample.tail_capacity()
    }
}

// The wrapper never hands out the `SampleMut` itself (a `&mut` to it could swap the loan out
// of the wrapper, past the request that keeps its connection alive): only the message.
impl<Req: ShmMessage, Resp: ShmMessage> Deref for ResponseMut<'_, '_, Req, Resp> {
    type Target = Resp;
    fn deref(&self) -> &Resp {
        &self.sample
    }
}

impl<Req: ShmMessage, Resp: ShmMessage + Unpin> DerefMut for ResponseMut<'_, '_, Req, Resp> {
    fn deref_mut(&mut self) -> &mut Resp {
        &mut self.sample
    }
}

impl<Req: ShmMessage, Resp: ShmMessage> Drop for ResponseMut<'_, '_, Req, Resp> {
    fn drop(&mut self) {
        // SAFETY: dropped once, here (`send_with` forgets `self` after taking it).
        unsafe { ManuallyDrop::drop(&mut self.sample) };
    }
}

// SAFETY: a server is its subscriber and publishers (each `Send`), moved together; no other
// thread keeps a reference to them.
unsafe impl<Req: ShmMessage, Resp: ShmMessage> Send for Server<Req, Resp> {}
