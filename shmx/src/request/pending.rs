//! A request on its way: [`RequestMut`] (loaned, written in place), [`Pending`] (sent; its
//! responses received in order until the stream ends) and [`Response`].

use super::client::Client;
use super::coarse_ms;
use super::LOOK_MS;
use crate::error::{Error, Result};
use crate::message::ShmMessage;
use crate::sample::{Sample, SampleMut, SampleParts};
use std::cell::Cell;
use std::mem::ManuallyDrop;
use std::ops::{Deref, DerefMut};
use std::time::{Duration, Instant};

/// A loaned request, written in place (it dereferences to the [`SampleMut`], so
/// `writer()` and `parts()` fill relative pointers) and sent with [`send`](Self::send).
pub struct RequestMut<'c, Req: ShmMessage, Resp: ShmMessage> {
    pub(super) sample: ManuallyDrop<SampleMut<'c, Req>>,
    pub(super) client: &'c Client<Req, Resp>,
    pub(super) server: u64,
}

impl<'c, Req: ShmMessage, Resp: ShmMessage> RequestMut<'c, Req, Resp> {
    /// Sends the request (zero-copy) and returns its pending response stream.
    ///
    /// # Errors
    /// [`Error::QueueFull`] if the server's queue of this client's requests is full.
    #[inline(always)]
    pub fn send(mut self) -> Result<Pending<'c, Req, Resp>> {
        let client = self.client;
        // SAFETY: taken once; `self` is forgotten below, so its drop does not touch it.
        let sample = unsafe { ManuallyDrop::take(&mut self.sample) };
        let server = self.server;
        std::mem::forget(self);
        client.loans.set(client.loans.get() - 1);
        client.publish_request(sample, server)
    }
}

impl<'c, Req: ShmMessage, Resp: ShmMessage> Pending<'c, Req, Resp> {
    /// Request `id` of `client`, just sent.
    #[inline(always)]
    pub(super) fn new(client: &'c Client<Req, Resp>, id: u64) -> Self {
        Pending {
            client,
            id,
            done: Cell::new(0),
            checked: Cell::new(client.clock.get()),
        }
    }
}

impl<Req: ShmMessage, Resp: ShmMessage> RequestMut<'_, Req, Resp> {
    /// The writer of the request: see [`SampleMut::writer`].
    pub fn writer(&mut self) -> Req::Writer<'_>
    where
        Req: crate::rel::Writable,
    {
        self.sample.writer()
    }

    /// The message, pinned, and the free tail of its chunk: see [`SampleMut::parts`].
    pub fn parts(&mut self) -> (std::pin::Pin<&mut Req>, crate::rel::Tail<'_>) {
        self.sample.parts()
    }

    /// Bytes of the chunk's tail in use / in all: see [`SampleMut::tail_capacity`].
    pub fn tail_capacity(&self) -> usize {
        self.sample.tail_capacity()
    }
}

// The wrapper never hands out the `SampleMut` itself (a `&mut` to it could swap the loan out
// of the wrapper, which counts the loans that keep connections alive): only the message.
impl<Req: ShmMessage, Resp: ShmMessage> Deref for RequestMut<'_, Req, Resp> {
    type Target = Req;
    fn deref(&self) -> &Req {
        &self.sample
    }
}

impl<Req: ShmMessage + Unpin, Resp: ShmMessage> DerefMut for RequestMut<'_, Req, Resp> {
    fn deref_mut(&mut self) -> &mut Req {
        &mut self.sample
    }
}

impl<Req: ShmMessage, Resp: ShmMessage> Drop for RequestMut<'_, Req, Resp> {
    fn drop(&mut self) {
        // SAFETY: dropped once, here (`send` forgets `self` after taking it).
        unsafe { ManuallyDrop::drop(&mut self.sample) };
        self.client.loans.set(self.client.loans.get() - 1);
    }
}

/// A request sent and the responses it gets: [`take`](Self::take), [`recv`](Self::recv) or
/// [`recv_timeout`](Self::recv_timeout) them in order until they return `None`, the end of
/// the stream. Dropping it cancels the request (later responses are dropped).
pub struct Pending<'c, Req: ShmMessage, Resp: ShmMessage> {
    client: &'c Client<Req, Resp>,
    id: u64,
    /// 1 once its last response was taken, or it was cancelled (timed out, or its server
    /// gone): every later call returns `None`. (Whole words: a byte stored and then copied
    /// with the rest in wider loads stalls the copy.)
    done: Cell<u64>,
    /// When its server was last looked at (`coarse_ms`): when sent, the client's last
    /// reading of the clock (see `Client::clock`), then `take`'s looks.
    checked: Cell<u64>,
}

impl<'c, Req: ShmMessage, Resp: ShmMessage> Pending<'c, Req, Resp> {
    /// The request's number (1, 2, 3, … per client).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Whether the stream has ended: its last response was taken (or it was cancelled).
    pub fn is_finished(&self) -> bool {
        self.done.get() != 0 || self.client.ended(self.id) && !self.stashed()
    }

    fn stashed(&self) -> bool {
        self.client
            .stash
            .borrow()
            .iter()
            .any(|(r, _)| *r == self.id)
    }

    /// The next response if one waits; `None` if none does (see [`is_finished`](Self::is_finished)).
    ///
    /// # Errors
    /// [`Error::PeerGone`] if the server that has the request is gone (looked at at most
    /// every 50 ms, when no response waits), as for [`recv`](Self::recv).
    #[inline(always)]
    pub fn take(&self) -> Result<Option<Response<'c, Resp>>> {
        if self.done.get() != 0 {
            return Ok(None);
        }
        let response = match self.client.take_for(self.id)? {
            Some(r) => r,
            None => {
                // Handed back as plain values, the response made here in one place (see
                // `Client::take_for`).
                match self.take_none()? {
                    // SAFETY: `take_none` took it apart and handed it here alone.
                    Some(raw) => Response::new(unsafe { Sample::from_parts(raw) }),
                    None => return Ok(None),
                }
            }
        };
        Ok(Some(self.seen(response)))
    }

    /// [`take`](Self::take) when no response waited: the end of the stream, or (every
    /// 50 ms) a look at the server, which may hand back what a server that died sent.
    #[inline(never)]
    fn take_none(&self) -> Result<Option<SampleParts<'c, Resp>>> {
        if self.client.ended(self.id) {
            return Ok(None);
        }
        let now = coarse_ms();
        self.client.clock.set(now);
        if now.saturating_sub(self.checked.get()) >= LOOK_MS {
            self.checked.set(now);
            match self.client.check_server(self.id) {
                Ok(Some(got)) => return Ok(got.map(Response::into_parts)),
                Ok(None) => {}
                Err(e) => {
                    self.done.set(1);
                    return Err(e);
                }
            }
        }
        Ok(None)
    }

    /// Waits for the next response; `None` once the stream has ended.
    ///
    /// # Errors
    /// [`Error::PeerGone`] if the server that has the request dies before it ends the stream
    /// (noticed within about 50 ms).
    #[inline(always)]
    pub fn recv(&self) -> Result<Option<Response<'c, Resp>>> {
        self.recv_until(None)
    }

    /// Waits up to `timeout` for the next response; `None` once the stream has ended.
    ///
    /// # Errors
    /// [`Error::Timeout`] if none came in time: the request is cancelled then (its later
    /// responses are dropped, and every later call returns `None`). [`Error::PeerGone`] as
    /// for [`recv`](Self::recv).
    #[inline(always)]
    pub fn recv_timeout(&self, timeout: Duration) -> Result<Option<Response<'c, Resp>>> {
        self.recv_until(Instant::now().checked_add(timeout))
    }

    /// Whether no response can come any more (cancelled, or ended with none kept).
    #[cfg(feature = "tokio")]
    pub(super) fn finished_now(&self) -> bool {
        self.is_finished()
    }

    #[cfg(feature = "tokio")]
    pub(super) fn client(&self) -> &'c Client<Req, Resp> {
        self.client
    }

    /// The next response (`Some(Some(..))`), the end of the stream (`Some(None)`), or
    /// nothing yet (`None`).
    #[cfg(feature = "tokio")]
    #[allow(clippy::type_complexity)]
    pub(super) fn take_or_end(&self) -> Result<Option<Option<Response<'c, Resp>>>> {
        if self.done.get() != 0 {
            return Ok(Some(None));
        }
        match self.client.take_for(self.id) {
            Ok(Some(r)) => Ok(Some(Some(self.seen(r)))),
            Ok(None) if self.client.ended(self.id) => Ok(Some(None)),
            Ok(None) => Ok(None),
            Err(e) => {
                if matches!(e, Error::PeerGone { .. }) {
                    self.done.set(1);
                }
                Err(e)
            }
        }
    }

    /// [`Client::check_server`] for this request (marking it done on an error).
    #[cfg(feature = "tokio")]
    #[allow(clippy::type_complexity)]
    pub(super) fn check_server(&self) -> Result<Option<Option<Response<'c, Resp>>>> {
        match self.client.check_server(self.id) {
            Ok(got) => Ok(got.map(|r| r.map(|r| self.seen(r)))),
            Err(e) => {
                self.done.set(1);
                Err(e)
            }
        }
    }

    /// A response of this request, taken: the last one ends the stream here (the client's
    /// table of requests is not told: nothing else asks it about this one).
    #[inline(always)]
    fn seen(&self, r: Response<'c, Resp>) -> Response<'c, Resp> {
        if r.is_last() {
            self.done.set(1);
        }
        r
    }

    #[inline(always)]
    fn recv_until(&self, deadline: Option<Instant>) -> Result<Option<Response<'c, Resp>>> {
        if self.done.get() != 0 {
            return Ok(None);
        }
        match self.client.recv_for(self.id, deadline) {
            // The response made here, in one place (see `Client::take_for`).
            // SAFETY: `recv_for` took it apart and handed it here alone.
            Ok(Some(raw)) => Ok(Some(
                self.seen(Response::new(unsafe { Sample::from_parts(raw) })),
            )),
            Ok(None) => Ok(None),
            Err(e) => {
                if matches!(e, Error::Timeout { .. } | Error::PeerGone { .. }) {
                    self.done.set(1);
                }
                Err(e)
            }
        }
    }
}

impl<Req: ShmMessage, Resp: ShmMessage> Drop for Pending<'_, Req, Resp> {
    fn drop(&mut self) {
        self.client.cancel(self.id);
    }
}

/// A response: it dereferences to the [`Sample`] (and so to `Resp`), read in place.
pub struct Response<'c, Resp> {
    pub(super) sample: Sample<'c, Resp>,
    /// The flags of its tag as it was taken (a whole word, not a `bool`: a byte stored and
    /// then copied with the response in wider loads stalls the copy).
    flags: u64,
}

impl<'c, Resp> Response<'c, Resp> {
    /// A response of `sample`, its flags read from its chunk's header now, once.
    #[inline(always)]
    pub(super) fn new(sample: Sample<'c, Resp>) -> Self {
        let flags = sample.tag().map_or(0, |t| super::split_tag(t).1);
        Response { sample, flags }
    }

    /// The sample, as plain values (see `Sample::into_parts`).
    #[inline(always)]
    pub(super) fn into_parts(self) -> crate::sample::SampleParts<'c, Resp> {
        self.sample.into_parts()
    }
}

impl<Resp> Response<'_, Resp> {
    /// Whether the server marked it the last of its stream (as its header said when it was
    /// taken).
    #[inline(always)]
    pub fn is_last(&self) -> bool {
        self.flags & super::LAST != 0
    }
}

impl<'c, Resp> Deref for Response<'c, Resp> {
    type Target = Sample<'c, Resp>;
    fn deref(&self) -> &Self::Target {
        &self.sample
    }
}
