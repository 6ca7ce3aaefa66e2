//! async/await on tokio (feature `tokio`): the subscriber's descriptor (see
//! [`Subscriber::fd`]) registered with the runtime's reactor, so that a task waiting for
//! samples sleeps in the reactor and never blocks a runtime thread.
//!
//! Both waits take a sample only in the poll that returns it, so dropping the future (a
//! `select!` that picked another branch, a timeout) loses no sample.

use super::{SubCore, Subscriber};
use crate::error::{Error, Result};
use crate::message::ShmMessage;
use crate::sample::Sample;
use crate::spin::SpinClock;
use rustix::fd::OwnedFd;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::ptr::NonNull;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::unix::AsyncFd;

impl SubCore {
    /// The descriptor, registered with the current tokio runtime: on first use, and again
    /// when the subscriber is polled from another runtime than the one it was registered
    /// with (a registration with a runtime that went idle or shut down would never wake).
    fn with_async_fd<R>(&self, f: impl FnOnce(&AsyncFd<OwnedFd>) -> R) -> Result<R> {
        let path = || {
            let name = crate::signal::socket_name(self.inc);
            self.service.dir().join(name.as_str())
        };
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return Err(Error::io(
                path(),
                std::io::Error::other("recv_async and stream need a tokio runtime"),
                0,
            ));
        };
        let mut slot = self.async_fd.borrow_mut();
        if slot.as_ref().is_none_or(|(id, _)| *id != handle.id()) {
            // The old registration goes first (with its runtime's reactor).
            *slot = None;
            let fd = self
                .ready_fd()?
                .try_clone_to_owned()
                .map_err(|e| Error::io(path(), e, 0))?;
            // SAFETY: `fd` is an open descriptor that the `AsyncFd` owns from here on (an
            // `OwnedFd` closes it only when dropped, and always names the same descriptor), so
            // it stays open and the same for the registration's whole life.
            let fd = unsafe { AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE) }
                .map_err(|e| Error::io(path(), e.into(), 0))?;
            *slot = Some((handle.id(), fd));
        }
        let (_, fd) = slot.as_ref().expect("registered above");
        Ok(f(fd))
    }

    /// One poll of an async receive: a sample if one waits; else, while the spin budget
    /// lasts (see `spin`), a slice of spinning and `Pending` with the task woken again at
    /// once (other tasks run in between); then `Pending` with the descriptor armed and the
    /// task registered for its readiness. `take` must not arm the descriptor.
    pub(crate) fn poll_take<S>(
        &self,
        take: impl Fn() -> Result<Option<S>>,
        wait: &mut AsyncWait,
        cx: &mut Context<'_>,
    ) -> Poll<Result<S>> {
        let sample = self.poll_take_inner(take, wait, cx);
        if let Poll::Ready(result) = &sample {
            if let (Ok(_), Some((start, spin))) = (result, wait.began) {
                let spun = spin.map(|_| wait.preempted);
                self.waited(start, wait.slept_at, spun);
            }
            *wait = AsyncWait::default();
        }
        sample
    }

    fn poll_take_inner<S>(
        &self,
        take: impl Fn() -> Result<Option<S>>,
        wait: &mut AsyncWait,
        cx: &mut Context<'_>,
    ) -> Poll<Result<S>> {
        if let Some(sample) = take()? {
            return Poll::Ready(Ok(sample));
        }
        let now = Instant::now();
        let (_, spin_until) = *wait.began.get_or_insert_with(|| {
            let mut spinner = self.spinner.get();
            let until = spinner.begin(now, None);
            self.spinner.set(spinner);
            (now, until)
        });
        if let (None, Some(until)) = (wait.slept_at, spin_until) {
            if now < until {
                let slice_end = until.min(now + SPIN_SLICE);
                let mut clock = SpinClock::new(now);
                loop {
                    if let Some(sample) = take()? {
                        wait.preempted |= clock.caught();
                        return Poll::Ready(Ok(sample));
                    }
                    // The clock is read after every poll here (a take polls each publisher's
                    // queue), so that a slice ends on time.
                    if clock.over_now(slice_end) {
                        break;
                    }
                    std::hint::spin_loop();
                }
                wait.preempted |= clock.preempted;
                // The slice is over: let the runtime run its other tasks, then go on.
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
        }
        wait.slept_at.get_or_insert_with(Instant::now);
        // Two rounds at most: wake-ups that keep coming with nothing to take (a hostile
        // participant's datagrams) must not keep this poll from returning.
        for _ in 0..2 {
            // Armed just before waiting (so that publishers make no system call while this
            // task spins); a publish that came meanwhile is taken at once.
            self.with_async_fd(|_| ())?;
            if self.arm() {
                if let Some(sample) = take()? {
                    return Poll::Ready(Ok(sample));
                }
            }
            let ready = self.with_async_fd(|fd| match fd.poll_read_ready(cx) {
                Poll::Pending => Poll::Pending,
                Poll::Ready(Ok(mut guard)) => {
                    // Readiness seen: the queues are looked at next (and the wake-up
                    // consumed by the next arm if there is nothing); readiness that comes
                    // after this guard was made is kept by tokio.
                    guard.clear_ready();
                    Poll::Ready(Ok(()))
                }
                Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            })?;
            match ready {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(e)) => {
                    let name = crate::signal::socket_name(self.inc);
                    let path = self.service.dir().join(name.as_str());
                    return Poll::Ready(Err(Error::io(path, e, 0)));
                }
            }
            if let Some(sample) = take()? {
                return Poll::Ready(Ok(sample));
            }
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

/// The longest a poll spins before it yields to the runtime (its other tasks run, then the
/// spinning goes on until the budget is spent).
const SPIN_SLICE: Duration = Duration::from_micros(2);

/// Where an async wait stands between its polls.
#[derive(Default, Debug)]
pub(crate) struct AsyncWait {
    /// Set when the first poll found nothing: when the wait began, and when spinning ends
    /// (`None`: no spinning).
    began: Option<(Instant, Option<Instant>)>,
    /// When it armed the descriptor to sleep.
    slept_at: Option<Instant>,
    /// The thread lost its CPU while spinning.
    preempted: bool,
}

impl<T: ShmMessage> Subscriber<T> {
    /// Waits for the next sample without blocking the thread: the task first spins for the
    /// adaptive budget of [`recv`](Self::recv), cooperatively (each poll spins at most 2 µs,
    /// then yields to the runtime's other tasks), then sleeps in the tokio reactor until a
    /// publisher makes the subscriber's descriptor readable (see [`fd`](Self::fd)). Cancel-safe: a sample is taken only in the poll that returns it,
    /// so a dropped future (`select!`, `timeout`) loses none. The future is `Send` (it holds
    /// the subscriber exclusively), so a subscriber moved into `tokio::spawn` works; it must
    /// run inside a tokio runtime with the I/O driver enabled (`enable_io`, or `enable_all`).
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let root = dir.path().to_owned();
    /// use shmx::{Publisher, Subscriber};
    ///
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async move {
    /// let mut subscriber = Subscriber::<u64>::builder("doc/async").root(&root).create()?;
    /// let task = tokio::spawn(async move {
    ///     let sample = subscriber.recv_async().await?;
    ///     Ok::<u64, shmx::Error>(*sample)
    /// });
    /// let publisher = Publisher::<u64>::builder("doc/async").root(&root).create()?;
    /// publisher.send(42)?;
    /// assert_eq!(task.await.unwrap()?, 42);
    /// # Ok::<(), shmx::Error>(())
    /// # }).unwrap();
    /// ```
    ///
    /// Errors, when awaited: as [`take`](Self::take); [`Error::Io`] outside a tokio runtime
    /// or if the descriptor cannot be made.
    pub fn recv_async(&mut self) -> Recv<'_, T> {
        Recv {
            subscriber: NonNull::from(self),
            done: false,
            wait: AsyncWait::default(),
            _borrow: PhantomData,
        }
    }

    /// The samples of this subscriber as a [`futures_core::Stream`], each taken when the
    /// stream yields it (cancel-safe as [`recv_async`](Self::recv_async)). The stream
    /// borrows the subscriber; since subscribers are not `Sync`, neither the stream nor its
    /// samples are `Send`: poll it within one task on a `LocalSet` or a current-thread
    /// runtime, or use `recv_async` in a spawned task.
    pub fn stream(&mut self) -> SampleStream<'_, T> {
        SampleStream {
            subscriber: self,
            wait: AsyncWait::default(),
        }
    }
}

/// The future of [`Subscriber::recv_async`].
#[must_use = "futures do nothing unless awaited"]
pub struct Recv<'a, T: ShmMessage> {
    /// Made from `&'a mut Subscriber<T>`: for `'a` nothing else reaches the subscriber.
    subscriber: NonNull<Subscriber<T>>,
    /// Returned its sample: never polled again (the sample borrows the subscriber).
    done: bool,
    wait: AsyncWait,
    _borrow: PhantomData<&'a mut Subscriber<T>>,
}

// SAFETY: the future holds the only access to the subscriber for `'a` (it was made from
// `&'a mut`), and a `Subscriber<T>` may move to another thread (`Send`); while pending no
// sample of it exists. Once it returned a sample (which is not `Send`, and borrows the
// subscriber on the thread that polled), it is never polled again (`done`), so moving the
// spent future touches nothing.
unsafe impl<T: ShmMessage> Send for Recv<'_, T> {}

impl<'a, T: ShmMessage> Future for Recv<'a, T> {
    type Output = Result<Sample<'a, T>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        assert!(!self.done, "Recv polled after it returned");
        // SAFETY: the pointer was made from `&'a mut Subscriber<T>` (valid and exclusive for
        // `'a`); only shared references are made from it, and only on the thread that polls
        // (see the `Send` impl above).
        let subscriber: &'a Subscriber<T> = unsafe { self.subscriber.as_ref() };
        let poll = subscriber
            .core
            .poll_take(|| subscriber.take_quietly(), &mut self.wait, cx);
        if poll.is_ready() {
            self.done = true;
        }
        poll
    }
}

impl<T: ShmMessage> std::fmt::Debug for Recv<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recv").field("done", &self.done).finish()
    }
}

/// The samples of a subscriber as a stream: see [`Subscriber::stream`].
pub struct SampleStream<'a, T: ShmMessage> {
    subscriber: &'a Subscriber<T>,
    wait: AsyncWait,
}

impl<'a, T: ShmMessage> futures_core::Stream for SampleStream<'a, T> {
    type Item = Result<Sample<'a, T>>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let subscriber: &'a Subscriber<T> = self.subscriber;
        subscriber
            .core
            .poll_take(|| subscriber.take_quietly(), &mut self.wait, cx)
            .map(Some)
    }
}

impl<T: ShmMessage> std::fmt::Debug for SampleStream<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SampleStream")
            .field("topic", &self.subscriber.topic())
            .finish()
    }
}
