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
        Ok(self.listener.get_or_init(|| listener).as_fd())
    }

    /// Whether a descriptor was asked for (then a take that finds nothing arms it).
    #[inline(always)]
    pub(crate) fn has_ready_fd(&self) -> bool {
        self.listener.get().is_some()
    }

    /// After a take found nothing: arms the descriptor, so that the next publish makes it
    /// readable. Returns `true` if samples may be waiting after all (a publish came while
    /// arming): the caller takes again.
    #[cold]
    pub(crate) fn arm(&self) -> bool {
        let Some(listener) = self.listener.get() else {
            return false;
        };
        // Consume the wake-ups that came (one per arm a publisher took, and any that a
        // publisher sends late), so that the descriptor is not left readable with nothing
        // to take: a level-triggered loop would spin on it.
        listener.drain();
        let sleeping = &self.service.sub_slot(self.slot).sleeping;
        if sleeping.load(Ordering::Relaxed) & ARMED != 0 {
            // Still armed: no publisher took the arm since, so nothing was pushed that the
            // last look (before arming) did not see, and a publish now makes the descriptor
            // readable.
            return false;
        }
        // PROTOCOLS.md §3 with the descriptor: announce, then look once more.
        event::announce(sleeping, ARMED, self.forces_barrier);
        !self.looks_empty()
    }
}
