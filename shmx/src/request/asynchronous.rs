//! async/await on tokio (feature `tokio`): a pending request's responses and a server's
//! requests awaited like a subscriber's samples (see `Subscriber::recv_async`), the task
//! sleeping in the runtime's reactor on the queue's descriptor.

use super::active::ActiveRequest;
use super::pending::{Pending, Response};
use super::server::Server;
use super::LOOK_EVERY;
use crate::error::Result;
use crate::message::ShmMessage;
use crate::subscriber::AsyncWait;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// Polls `take` as `Subscriber::recv_async` polls its queue (spinning a while, then
/// sleeping on `core`'s descriptor); cancel-safe as long as `take` is.
struct Take<'a, S, F: Fn() -> Result<Option<S>>> {
    core: &'a crate::subscriber::SubCore,
    take: F,
    wait: AsyncWait,
}

impl<S, F: Fn() -> Result<Option<S>> + Unpin> Future for Take<'_, S, F> {
    type Output = Result<S>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        this.core.poll_take(&this.take, &mut this.wait, cx)
    }
}

impl<'c, Req: ShmMessage, Resp: ShmMessage> Pending<'c, Req, Resp> {
    /// Waits for the next response without blocking the thread; `None` once the stream has
    /// ended. Cancel-safe (a response is taken only in the poll that returns it; one taken
    /// for another request is kept for that one). Needs a tokio runtime with I/O and time
    /// enabled (`enable_all`). The future borrows the client, which is not `Sync`: await it
    /// on the client's own task (`spawn_local`, `block_on`, or within one task's `select!`).
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// use shmx::{Client, Server};
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let server = Server::<u64, u64>::builder("doc/rr/async").root(dir.path()).create()?;
    /// let client = Client::<u64, u64>::builder("doc/rr/async").root(dir.path()).create()?;
    /// let pending = client.send(20)?;
    /// let request = server.recv_async().await?;
    /// let answer = **request + 1;
    /// request.respond_last(answer)?;
    /// let response = pending.recv_async().await?.expect("a response");
    /// assert_eq!(**response, 21);
    /// # Ok::<(), shmx::Error>(())
    /// # }).unwrap();
    /// ```
    ///
    /// Errors, when awaited: as [`recv`](Self::recv) ([`Error::PeerGone`] within about
    /// 50 ms of its server's death).
    ///
    /// [`Error::PeerGone`]: crate::Error::PeerGone
    pub async fn recv_async(&self) -> Result<Option<Response<'c, Resp>>> {
        loop {
            if self.finished_now() {
                return Ok(None);
            }
            let take = Take {
                core: self.client().queue(),
                take: || self.take_or_end(),
                wait: AsyncWait::default(),
            };
            match tokio::time::timeout(LOOK_EVERY, take).await {
                Ok(got) => return got,
                // Every 50 ms without a response: is the server still there?
                Err(_) => {
                    if let Some(got) = self.check_server()? {
                        return Ok(got);
                    }
                }
            }
        }
    }
}

impl<Req: ShmMessage, Resp: ShmMessage> Server<Req, Resp> {
    /// Waits for the next request without blocking the thread (requests of clients that
    /// are gone are skipped). Cancel-safe. Needs a tokio runtime with I/O enabled; the
    /// future borrows the server, which is not `Sync` (see [`Pending::recv_async`]).
    pub async fn recv_async(&self) -> Result<ActiveRequest<'_, Req, Resp>> {
        Take {
            core: self.queue(),
            take: || self.take(),
            wait: AsyncWait::default(),
        }
        .await
    }
}
