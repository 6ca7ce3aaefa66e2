//! Readiness on a file descriptor (see `signal`): the subscriber's socket, made on first
//! use, and arming it when a take finds nothing.

use super::SubCore;
use crate::error::Result;
use crate::event::{self, ARMED};
use crate::signal::Listener;
use crate::sync::Ordering;
use rustix::fd::{AsFd, BorrowedFd};

impl SubCore {
    /// The descriptor that becomes readable when samples wait after a take found none;
    /// binds the subscriber's socket on the first call.
    pub(crate) fn ready_fd(&self) -> Result<BorrowedFd<'_>> {
        if let Some(listener) = self.listener.get() {
            return Ok(listener.as_fd());
        }
        let mode = self.service.params().mode;
        let group = self.service.trust().group().filter(|_| mode & 0o070 != 0);
        let listener = Listener::bind(self.service.dir().duplicate()?, self.inc, mode, group)?;
        let listener = self.listener.get_or_init(|| listener);
        // Armed from the start, so that a program may wait on the descriptor before its
        // first take; if samples wait already, the descriptor is made readable at once.
        if self.arm() {
            crate::signal::notify_once(self.service.dir(), self.inc);
        }
        Ok(listener.as_fd())
    }

    /// Whether a descriptor was asked for (then a take that finds nothing arms it).
    #[inline(always)]
    pub(crate) fn has_ready_fd(&self) -> bool {
        self.listener.get().is_some()
    }

    /// After a take found nothing: arms the descriptor, so that the next publish makes it
    /// readable, and consumes any wake-up that came for samples already taken, so that it is
    /// not readable with nothing to take. Returns `true` if samples may be waiting after all
    /// (a publish came while arming): the caller takes again.
    #[cold]
    pub(crate) fn arm(&self) -> bool {
        self.arm_with(true)
    }

    /// [`arm`](Self::arm); with `stale` false, a wake-up left over from an earlier arm is
    /// not looked for while the descriptor is still armed (no system call then: for a
    /// waiter that knows its descriptor was not readable).
    ///
    /// A publisher clears `ARMED` and only then sends its wake-up; meanwhile this subscriber
    /// may take the sample, find nothing more and arm again, and the wake-up arrives after
    /// that arm consumed what was there: the descriptor is readable, still armed, with
    /// nothing to take. Consuming before looking at `ARMED` clears that: if the bit is still
    /// set after the `recv`, no publisher cleared it since we set it, so whatever was
    /// consumed announced samples our last look after arming could see; and a publisher
    /// that clears it later sends after that, so its wake-up is not consumed here (had the
    /// `recv` taken a datagram sent after a clear, the load, after the `recv` and
    /// synchronised with the send through the socket's queue, would see the clear).
    #[cold]
    pub(crate) fn arm_with(&self, stale: bool) -> bool {
        let Some(listener) = self.listener.get() else {
            return false;
        };
        let sleeping = &self.service.sub_slot(self.slot).sleeping;
        if stale {
            listener.drain();
        }
        if sleeping.load(Ordering::Relaxed) & ARMED != 0 {
            // Still armed: no publisher took the arm since, so nothing was pushed that the
            // last look (after arming) did not see, and a publish now makes the descriptor
            // readable.
            return false;
        }
        // Disarmed by a publisher, who sent (or is sending) a wake-up: consume what came, so
        // that the descriptor is not readable without a sample. (One sent after this comes
        // late: the next `arm` consumes it.)
        listener.drain();
        // PROTOCOLS.md §3 with the descriptor: announce, then look once more.
        event::announce(sleeping, ARMED, self.forces_barrier);
        !self.looks_empty()
    }
}
