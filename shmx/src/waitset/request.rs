//! Clients and servers in a [`WaitSet`]: their queues attached like subscribers.

use super::{Attachment, WaitSet};
use crate::error::Result;
use crate::message::ShmMessage;
use crate::request::{Client, Server};

impl<'a> WaitSet<'a> {
    /// Attaches a client: an event when responses arrive for its requests. On an event, take
    /// from every [`Pending`] request until it returns `None`: a response taken while asking
    /// for another request's is kept for that one and wakes nobody again. A server that is
    /// killed makes no event: `take` looks at the server (every 50 ms at most) and returns
    /// [`Error::PeerGone`], so wait with a timeout and take from the requests that wait
    /// for long.
    ///
    /// [`Error::PeerGone`]: crate::Error::PeerGone
    ///
    /// [`Pending`]: crate::request::Pending
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// use shmx::{Client, Server, WaitSet};
    /// use std::time::Duration;
    ///
    /// let server = Server::<u32, u32>::builder("doc/ws/rr").root(dir.path()).create()?;
    /// let client = Client::<u32, u32>::builder("doc/ws/rr").root(dir.path()).create()?;
    /// let mut waitset = WaitSet::new()?;
    /// let requests = waitset.attach_server(&server)?;
    /// let responses = waitset.attach_client(&client)?;
    /// let pending = client.send(20)?;
    /// let mut answer = None;
    /// while answer.is_none() {
    ///     waitset.wait_timeout(Duration::from_secs(10), |event| {
    ///         if event.is(requests) {
    ///             while let Ok(Some(request)) = server.take() {
    ///                 let double = **request * 2;
    ///                 request.respond_last(double).unwrap();
    ///             }
    ///         } else if event.is(responses) {
    ///             if let Ok(Some(response)) = pending.take() {
    ///                 answer = Some(**response);
    ///             }
    ///         }
    ///     })?;
    /// }
    /// assert_eq!(answer, Some(40));
    /// # Ok::<(), shmx::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`attach`](Self::attach).
    pub fn attach_client<Req: ShmMessage, Resp: ShmMessage>(
        &mut self,
        client: &'a Client<Req, Resp>,
    ) -> Result<Attachment> {
        self.attach_core(client.queue())
    }

    /// Attaches a server: an event when requests arrive (and when a client comes or goes).
    /// On an event, take requests until `take` returns `None`.
    ///
    /// # Errors
    /// As [`attach`](Self::attach).
    pub fn attach_server<Req: ShmMessage, Resp: ShmMessage>(
        &mut self,
        server: &'a Server<Req, Resp>,
    ) -> Result<Attachment> {
        self.attach_core(server.queue())
    }
}
