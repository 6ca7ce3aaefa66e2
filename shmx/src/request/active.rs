//! A request a server took: [`ActiveRequest`] (read in place, answered with zero, one or a
//! stream of responses) and [`ResponseMut`] (a response loaned and written in place).

use super::server::{ClientConn, Server};
use super::{response_tag, LAST};
use crate::error::{Error, Result};
use crate::message::ShmMessage;
use crate::sample::{Sample, SampleMut};
use crate::Publisher;
use std::cell::Cell;
use std::mem::ManuallyDrop;
use std::ops::{Deref, DerefMut};

/// A request taken by a server: it dereferences to the [`Sample`] (and so to `Req`), read
/// in place. Answer it with [`respond`](Self::respond) or
/// [`loan_response`](Self::loan_response), as often as the stream needs; the stream ends
/// with [`respond_last`](Self::respond_last), [`finish`](Self::finish), or when it is
/// dropped (which sends the client an end marker).
pub struct ActiveRequest<'s, Req: ShmMessage, Resp: ShmMessage> {
    pub(super) server: &'s Server<Req, Resp>,
    pub(super) sample: Sample<'s, Req>,
    /// Its client's connection (counted in `refs` while this lives).
    pub(super) conn: &'s ClientConn<Resp>,
    /// Its number, and [`ENDED`] once its stream has ended: one word (a request is moved
    /// on the way of every round trip: the fewer bytes, the shorter the copies).
    pub(super) state: Cell<u64>,
}

/// The bit of `ActiveRequest::state` that says its stream ended (request numbers are 32-bit).
pub(super) const ENDED: u64 = 1 << 63;

impl<'s, Req: ShmMessage, Resp: ShmMessage> ActiveRequest<'s, Req, Resp> {
    /// The id of the client that sent it.
    pub fn client_id(&self) -> u64 {
        self.conn.client
    }

    /// Its number among its client's requests.
    pub fn request_id(&self) -> u64 {
        self.state.get() & !ENDED
    }

    #[inline(always)]
    fn ended(&self) -> bool {
        self.state.get() & ENDED != 0
    }

    #[inline(always)]
    fn set_ended(&self) {
        self.state.set(self.state.get() | ENDED);
    }

    /// Whether its client is still there to take responses.
    pub fn client_alive(&self) -> bool {
        self.publisher().is_ok()
    }

    #[inline(always)]
    fn publisher(&self) -> Result<&'s Publisher<Resp>> {
        let publisher = &self.conn.publisher;
        // The slots as they are (the server's `prune` sweeps dead ones every 50 ms).
        if self.ended() || publisher.connected() == 0 {
            return Err(self.no_publisher());
        }
        Ok(publisher)
    }

    /// Why [`publisher`](Self::publisher) has none to give.
    #[cold]
    #[inline(never)]
    fn no_publisher(&self) -> Error {
        if self.ended() {
            return Error::InvalidConfig {
                topic: self.server.service().to_owned(),
                reason: "the response stream has ended".into(),
            };
        }
        self.server
            .shared
            .gone(format!("the client {:016x} is gone", self.conn.client))
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
    #[inline(always)]
    pub fn respond(&self, response: Resp) -> Result<()> {
        self.send_value(response, 0)
    }

    /// Sends `response` as the last of the stream.
    #[inline(always)]
    pub fn respond_last(self, response: Resp) -> Result<()> {
        self.send_value(response, LAST)
    }

    #[inline(always)]
    fn send_value(&self, response: Resp, flags: u64) -> Result<()> {
        self.server.flush_ends();
        let sample = self.publisher()?.loan_uninit()?.write(response);
        self.publish(sample, flags)
    }

    #[inline(always)]
    fn publish(&self, sample: SampleMut<'_, Resp>, flags: u64) -> Result<()> {
        if flags & LAST != 0 {
            self.set_ended();
        }
        sample.publish_tagged(response_tag(self.request_id(), flags))
    }

    /// Ends the stream (the client's `recv` returns `None` after the responses sent).
    ///
    /// # Errors
    /// [`Error::PeerGone`] if the client is gone, and what publishing may fail with.
    pub fn finish(self) -> Result<()> {
        self.end()
    }

    /// Ends the stream of a request dropped before it ended.
    #[cold]
    #[inline(never)]
    fn end_on_drop(&self) {
        // A client that is gone, or a queue that stays full: the client learns the end
        // from its own timeout then.
        let _ = self.end();
    }

    fn end(&self) -> Result<()> {
        let publisher = self.publisher()?;
        self.set_ended();
        if !self.server.send_end(publisher, self.request_id()) {
            // The client's queue is full: the end goes as soon as it has room (the server's
            // next `take`, `recv` or response), after the responses queued before it.
            self.server
                .unsent_ends
                .borrow_mut()
                .push((self.conn.client, self.request_id()));
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
    #[inline(always)]
    fn drop(&mut self) {
        if !self.ended() {
            self.end_on_drop();
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

    #[inline(always)]
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
