//! The receiving side of a [`Client`]: a pending request's responses taken from the client's
//! one queue, routed by their tags (those of other requests kept in the stash, ends of
//! streams recorded), its server looked at while it waits, and the blocking wait.

use super::client::Client;
use super::pending::Response;
use super::{split_tag, LOOK_EVERY, MARKER};
use crate::error::{Error, Result};
use crate::message::ShmMessage;
use crate::sample::{Sample, SampleParts};
use std::time::Instant;

impl<Req: ShmMessage, Resp: ShmMessage> Client<Req, Resp> {
    /// Takes the next response to request `id`, routing those of other requests to the
    /// stash; `Ok(None)` if none waits.
    ///
    /// The response is made in one place, from a sample of the common case (the next one
    /// in the queue is `id`'s) or one that the rare cases hand back as plain values: a value
    /// that came back from a call that is not inlined would otherwise merge with the common
    /// one in memory, and be copied out of it with loads that wait for the stores it was
    /// just written with.
    #[inline(always)]
    pub(super) fn take_for(&self, id: u64) -> Result<Option<Response<'_, Resp>>> {
        let sample = if self.stash.borrow().is_empty() {
            let Some(sample) = self.responses().take()? else {
                return Ok(None);
            };
            if self.is_response_of(id, &sample) {
                sample
            } else {
                self.route_rest(id, sample.into_parts());
                match self.take_more(id)? {
                    // SAFETY: `take_more` took it apart and handed it here alone.
                    Some(raw) => unsafe { Sample::from_parts(raw) },
                    None => return Ok(None),
                }
            }
        } else {
            match self.take_for_stashed(id)? {
                // SAFETY: as above.
                Some(raw) => unsafe { Sample::from_parts(raw) },
                None => return Ok(None),
            }
        };
        Ok(Some(Response::new(sample)))
    }

    /// [`take_for`](Self::take_for) with responses in the stash: those of `id` first.
    #[cold]
    #[inline(never)]
    fn take_for_stashed(&self, id: u64) -> Result<Option<SampleParts<'_, Resp>>> {
        let mut stash = self.stash.borrow_mut();
        if let Some(i) = stash.iter().position(|(r, _)| *r == id) {
            let (_, sample) = stash.remove(i).expect("found");
            drop(stash);
            let flags = sample.tag().map_or(0, |t| split_tag(t).1);
            if let Some(r) = self.deliver(id, self.shorten(sample), flags) {
                return Ok(Some(r.into_parts()));
            }
            return Ok(self.take_for(id)?.map(Response::into_parts));
        }
        drop(stash);
        self.take_more(id)
    }

    /// Takes responses from the queue until one of `id`'s (stashing or dropping others).
    #[cold]
    #[inline(never)]
    fn take_more(&self, id: u64) -> Result<Option<SampleParts<'_, Resp>>> {
        loop {
            let Some(sample) = self.responses().take()? else {
                return Ok(None);
            };
            if self.is_response_of(id, &sample) {
                return Ok(Some(sample.into_parts()));
            }
            self.route_rest(id, sample.into_parts());
        }
    }

    /// Whether `sample` is a response of request `id` to hand out (not its end marker, and
    /// with the bytes of a `Resp`).
    #[inline(always)]
    fn is_response_of(&self, id: u64, sample: &Sample<'_, Resp>) -> bool {
        sample.tag().is_some_and(|tag| {
            let (request, flags) = split_tag(tag);
            request == id && flags & MARKER == 0 && sample.payload_len() >= size_of::<Resp>()
        })
    }

    /// A sample just taken that is no response of `id`: the end marker of
    /// `id`'s stream (recorded), a sample of another request (stashed, or its end recorded),
    /// or one of no use (dropped).
    #[cold]
    #[inline(never)]
    fn route_rest<'c>(&'c self, id: u64, sample: SampleParts<'c, Resp>) {
        // SAFETY: the caller took it apart just before, and gave it here alone.
        let sample = unsafe { Sample::from_parts(sample) };
        let Some((request, flags)) = sample.tag().map(split_tag) else {
            return;
        };
        if request == id {
            // Its end marker, or bytes of no value (only a marker may have none; this queue
            // takes samples of no bytes for them): a peer's lie, dropped.
            if flags & MARKER != 0 {
                self.mark_ended(id);
            }
            return;
        }
        self.route_other(request, flags, sample);
    }

    /// [`route_rest`](Self::route_rest) of a sample of another request than the one asked
    /// for.
    #[cold]
    #[inline(never)]
    fn route_other<'c>(&'c self, request: u64, flags: u64, sample: Sample<'c, Resp>) {
        let mut flights = self.flights.borrow_mut();
        let Some(flight) = flights.get_mut(&request) else {
            return;
        };
        if flags & MARKER != 0 {
            // The end of another request's stream: nothing to keep but that it ended. (Its
            // earlier responses are in the stash, which its takes look at first.)
            flight.ended = true;
            return;
        }
        // SAFETY: see `shorten`: the sample borrows the boxed subscriber, which outlives
        // the stash (declared before it, and dropped by hand after it).
        let sample: Sample<'static, Resp> = unsafe { std::mem::transmute(sample) };
        self.stash.borrow_mut().push_back((request, sample));
    }

    /// A sample of request `id`: its response, or `None` for the marker that ended the
    /// stream (then recorded).
    fn deliver<'c>(
        &'c self,
        id: u64,
        sample: Sample<'c, Resp>,
        flags: u64,
    ) -> Option<Response<'c, Resp>> {
        let marker = flags & MARKER != 0;
        if !marker && sample.payload_len() < size_of::<Resp>() {
            // Bytes of no value (only a marker may have none; this queue takes samples of no
            // bytes for them): a peer's lie, dropped.
            return None;
        }
        // The `Pending` that takes a last response learns the end from it; a marker
        // (no response to show) is recorded here.
        if marker {
            self.mark_ended(id);
            return None;
        }
        Some(Response::new(sample))
    }

    #[cold]
    fn mark_ended(&self, id: u64) {
        if let Some(f) = self.flights.borrow_mut().get_mut(&id) {
            f.ended = true;
        }
    }

    /// A stashed sample, given back the lifetime of the client that stashed it.
    fn shorten<'c>(&'c self, sample: Sample<'static, Resp>) -> Sample<'c, Resp> {
        // SAFETY: stashed samples borrow `self.responses` (boxed, never moved out, dropped
        // after the stash): `'c`, a borrow of `self`, is within its life.
        unsafe { std::mem::transmute(sample) }
    }

    pub(super) fn ended(&self, id: u64) -> bool {
        self.flights.borrow().get(&id).is_none_or(|f| f.ended)
    }

    /// Ends request `id`: drops what is stashed for it; its later responses are dropped.
    #[inline]
    pub(super) fn cancel(&self, id: u64) {
        self.flights.borrow_mut().remove(&id);
        let mut stash = self.stash.borrow_mut();
        if !stash.is_empty() {
            stash.retain(|(r, _)| *r != id);
        }
    }

    /// Whether server `server` lives (as far as its request queue tells).
    fn server_alive(&self, server: u64) -> bool {
        self.servers
            .borrow()
            .iter()
            .find(|c| c.server == server)
            .is_some_and(|c| c.publisher.subscriber_count() > 0)
    }

    /// What becomes of request `id` if its server is gone: what the server published before
    /// it died (`Some(Some(response))`, or `Some(None)` for the end of the stream), else
    /// [`Error::PeerGone`] (the request is cancelled); `None` while the server lives.
    #[allow(clippy::type_complexity)]
    pub(super) fn check_server(&self, id: u64) -> Result<Option<Option<Response<'_, Resp>>>> {
        let server = self.flights.borrow().get(&id).map(|f| f.server);
        let Some(server) = server else {
            return Ok(None);
        };
        if self.server_alive(server) {
            return Ok(None);
        }
        // What it published before it died is in the queue: that first.
        if let Some(r) = self.take_for(id)? {
            return Ok(Some(Some(r)));
        }
        if self.ended(id) {
            return Ok(Some(None));
        }
        self.cancel(id);
        Err(self.shared.gone(format!(
            "the server {server:016x} is gone with request {id} in flight"
        )))
    }

    /// Waits until `deadline` (`None`: forever) for the next response to request `id`,
    /// handed back as plain values (the caller makes the response, see
    /// [`take_for`](Self::take_for)).
    pub(super) fn recv_for(
        &self,
        id: u64,
        deadline: Option<Instant>,
    ) -> Result<Option<SampleParts<'_, Resp>>> {
        let mut next_check = Instant::now() + LOOK_EVERY;
        loop {
            if let Some(r) = self.take_for(id)? {
                return Ok(Some(r.into_parts()));
            }
            if self.ended(id) {
                return Ok(None);
            }
            let now = Instant::now();
            if now >= next_check {
                next_check = now + LOOK_EVERY;
                if let Some(got) = self.check_server(id)? {
                    return Ok(got.map(Response::into_parts));
                }
            }
            let mut slice = next_check.saturating_duration_since(now);
            if let Some(d) = deadline {
                let left = d.saturating_duration_since(now);
                if left.is_zero() {
                    self.cancel(id);
                    return Err(Error::Timeout {
                        topic: self.service().to_owned(),
                        operation: "waiting for a response (the request is cancelled)",
                    });
                }
                slice = slice.min(left);
            }
            if let Some(sample) = self.responses().recv_timeout(slice)? {
                if self.is_response_of(id, &sample) {
                    return Ok(Some(sample.into_parts()));
                }
                self.route_rest(id, sample.into_parts());
            }
        }
    }
}
