//! Readiness on a file descriptor (see `signal`): the subscriber's socket, made on first
//! use, and arming it when a take finds nothing.

use super::{SubCore, Subscriber};
use crate::error::Result;
use crate::event::{self, ARMED};
use crate::message::ShmMessage;
use crate::signal::Listener;
use crate::spin::SpinClock;
use crate::sync::Ordering;
use rustix::fd::{AsFd, BorrowedFd};
use std::time::Instant;

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

    /// [`ready_fd`](Self::ready_fd) for the program itself (`Subscriber::fd`): from then
    /// on, every take that finds nothing arms the descriptor, since the program may wait on
    /// it next. (The waits of this crate arm it themselves, just before they sleep, so that
    /// their takes, and the publishers, make no system call while they spin.)
    pub(crate) fn program_fd(&self) -> Result<BorrowedFd<'_>> {
        let fd = self.ready_fd()?;
        self.arm_on_take.set(true);
        Ok(fd)
    }

    /// Whether a take that finds nothing arms the descriptor (see
    /// [`program_fd`](Self::program_fd)).
    #[inline(always)]
    pub(crate) fn arms_on_take(&self) -> bool {
        self.arm_on_take.get()
    }

    /// See [`Subscriber::samples_waiting`].
    pub(crate) fn samples_waiting(&self) -> bool {
        if !self.nothing_waiting() {
            return true;
        }
        // Nothing waits: consume what made the descriptor readable, and arm it; a publish
        // that came meanwhile is a sample after all.
        self.listener.get().is_some() && self.arm() && !self.nothing_waiting()
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
    ///
    /// After [`spin`](Self::spin) took the arm back itself, no publisher sent anything for
    /// it: nothing is consumed then (a wake-up left from before is consumed by a later arm).
    #[cold]
    pub(crate) fn arm_with(&self, stale: bool) -> bool {
        let Some(listener) = self.listener.get() else {
            return false;
        };
        let sleeping = &self.service.sub_slot(self.slot).sleeping;
        let ours = self.disarmed_by_spin.replace(false);
        if stale && !ours {
            listener.drain();
        }
        // (After `spin` took the arm back, a set bit is not ours: a publisher whose wake-up
        // failed may have put back an arm it took before, with no look of ours after it.)
        if !ours && sleeping.load(Ordering::Relaxed) & ARMED != 0 {
            // Still armed: no publisher took the arm since, so nothing was pushed that the
            // last look (after arming) did not see, and a publish now makes the descriptor
            // readable.
            return false;
        }
        if !ours {
            // Disarmed by a publisher, who sent (or is sending) a wake-up: consume what
            // came, so that the descriptor is not readable without a sample. (One sent after
            // this comes late: the next `arm` consumes it.)
            listener.drain();
        }
        // PROTOCOLS.md §3 with the descriptor: announce, then look once more.
        if !event::announce(sleeping, ARMED, self.forces_barrier) {
            // The promised membarrier failed: a publisher may miss the arm. Make the
            // descriptor readable ourselves, so that the waiter comes back and arms again
            // (a busy wait while the kernel refuses, never a lost wake-up).
            crate::signal::notify_once(self.service.dir(), self.inc);
        }
        !self.looks_empty()
    }

    /// `Subscriber::spin`: before a program sleeps on its descriptor, spins for the adaptive
    /// budget until samples wait (`true`); else arms the descriptor again and returns
    /// `false` (`true` if samples came while arming).
    ///
    /// While it spins the descriptor is disarmed (the arm is taken back with the same atomic
    /// operation a publisher uses, so exactly one of them owns it), so that publishers make
    /// no system call for a subscriber that is awake. If a publisher took the arm first, its
    /// wake-up is on its way: samples wait.
    pub(crate) fn spin(&self) -> bool {
        let now = Instant::now();
        let mut spinner = self.spinner.get();
        // The last spin found nothing and the program slept: the samples taken since came
        // after that sleep (a little earlier than now).
        if let Some((start, slept_at)) = self.fd_slept.take() {
            spinner.woke(now - start, now - slept_at);
        }
        if self.arms_on_take() {
            let sleeping = &self.service.sub_slot(self.slot).sleeping;
            if !event::disarm(sleeping) {
                // Taken by a publisher (or never armed: then nothing is lost by looking).
                self.spinner.set(spinner);
                return true;
            }
            self.disarmed_by_spin.set(true);
        }
        let mut found = false;
        let mut clock = SpinClock::new(now);
        if let Some(until) = spinner.begin(now, None) {
            loop {
                if self.probe() {
                    found = true;
                    break;
                }
                if clock.over(until) {
                    break;
                }
                std::hint::spin_loop();
            }
        }
        if found {
            spinner.caught_spinning(clock.caught());
            self.spinner.set(spinner);
            return true;
        }
        self.spinner.set(spinner);
        if !self.arms_on_take() {
            return false;
        }
        let slept_at = Instant::now();
        self.fd_slept.set(Some((now, slept_at)));
        self.arm()
    }
}

impl<T: ShmMessage> Subscriber<T> {
    /// A file descriptor that is readable while samples wait: for `epoll`, `poll`, `mio`,
    /// `calloop` or tokio's `AsyncFd`. The first call binds a socket in the topic's directory
    /// (`wake.<n>`, removed with the subscriber); subscribers that never ask pay nothing.
    ///
    /// The contract is level-triggered: the descriptor is armed when it is made (readable at
    /// once if samples wait) and, from this call on, by every [`take`](Self::take) (or
    /// [`drain`](Self::drain)) that finds nothing; from then on, it becomes readable when a sample arrives. So a loop takes until `take` returns `Ok(None)`, then
    /// waits for the descriptor. It may be readable with nothing to take (a sample taken
    /// meanwhile); `take` then returns `Ok(None)` and clears it. Publishers make a system call
    /// only for the first sample after such a `take`, and never block on the descriptor; once
    /// the descriptor exists, a `take` that finds nothing makes one or more (it consumes the
    /// wake-ups that came, and arms). For the latency of a spinning receive under dense
    /// traffic, a loop calls [`spin`](Self::spin) before it sleeps.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// use rustix::event::{poll, PollFd, PollFlags};
    /// use shmx::{Publisher, Subscriber};
    ///
    /// let subscriber = Subscriber::<u64>::builder("doc/fd").root(dir.path()).create()?;
    /// let publisher = Publisher::<u64>::builder("doc/fd").root(dir.path()).create()?;
    /// let fd = subscriber.fd()?;
    /// assert!(subscriber.take()?.is_none()); // nothing yet: armed
    /// publisher.send(5)?;
    /// let mut fds = [PollFd::new(&fd, PollFlags::IN)];
    /// assert_eq!(poll(&mut fds, None).unwrap(), 1);
    /// assert_eq!(*subscriber.take()?.unwrap(), 5);
    /// # Ok::<(), shmx::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Io`](crate::Error::Io) if the socket cannot be made (or `PermissionDenied`, in a directory that
    /// this process may not write).
    pub fn fd(&self) -> Result<BorrowedFd<'_>> {
        self.core.program_fd()
    }

    /// Spins until samples wait (`true`) or the adaptive budget that [`recv`](Self::recv)
    /// uses passes (`false`): for a loop on [`fd`](Self::fd) that wants the latency of a
    /// spinning receive when samples come often, called when a take found nothing, before
    /// the loop sleeps. While it spins the descriptor is disarmed, so that publishers make no
    /// system call for it; when it returns `false` the descriptor is armed again, and the
    /// loop may sleep. It makes no system call while it spins; the budget adapts to the
    /// traffic (down to [`MIN_SPIN`](crate::MIN_SPIN) for sparse traffic), and it does not
    /// spin on a thread pinned to the one CPU its publisher runs on.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// use rustix::event::{poll, PollFd, PollFlags};
    /// use shmx::{Publisher, Subscriber};
    ///
    /// let subscriber = Subscriber::<u64>::builder("doc/spin").root(dir.path()).create()?;
    /// let publisher = Publisher::<u64>::builder("doc/spin").root(dir.path()).create()?;
    /// let fd = subscriber.fd()?;
    /// publisher.send(1)?;
    /// let mut got = 0;
    /// loop {
    ///     while let Some(sample) = subscriber.take()? {
    ///         got += *sample;
    ///     }
    ///     if got == 1 {
    ///         break;
    ///     }
    ///     if subscriber.spin() {
    ///         continue; // samples came while spinning
    ///     }
    ///     poll(&mut [PollFd::new(&fd, PollFlags::IN)], None).unwrap();
    /// }
    /// # Ok::<(), shmx::Error>(())
    /// ```
    pub fn spin(&self) -> bool {
        self.core.spin()
    }

    /// Whether samples wait now, without taking any: for a loop that polls
    /// [`fd`](Self::fd) and only looks at the subscribers with samples. When none waits, it
    /// also clears a readiness that does not mean samples (a wake-up for samples already
    /// taken, or a publisher that joined or left) and arms the descriptor again, so that
    /// the loop does not wake for it again; it then costs a system call or two.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// use shmx::{Publisher, Subscriber};
    /// let subscriber = Subscriber::<u64>::builder("doc/waiting").root(dir.path()).create()?;
    /// let _fd = subscriber.fd()?;
    /// let publisher = Publisher::<u64>::builder("doc/waiting").root(dir.path()).create()?;
    /// assert!(!subscriber.samples_waiting()); // the publisher joined: no sample yet
    /// publisher.send(1)?;
    /// assert!(subscriber.samples_waiting());
    /// assert_eq!(*subscriber.take()?.unwrap(), 1);
    /// # Ok::<(), shmx::Error>(())
    /// ```
    pub fn samples_waiting(&self) -> bool {
        self.core.samples_waiting()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use crate::event::{self, ARMED};
    use crate::signal::Sent;
    use crate::sync::Ordering;
    use crate::{Publisher, Subscriber};
    use rustix::event::{poll, PollFd, PollFlags, Timespec};

    /// After `spin` took the arm back, a publisher whose wake-up for an earlier arm failed
    /// puts the bit back (`rearm_if_failed`) while another publisher pushes unseen: the arm
    /// that follows must still announce and look, and report the sample.
    #[test]
    fn an_arm_put_back_after_spin_took_it_is_not_taken_for_ours() {
        let dir = tempfile::tempdir().unwrap();
        let sub = Subscriber::<u64>::builder("t/rearm")
            .root(dir.path())
            .create()
            .unwrap();
        let publisher = Publisher::<u64>::builder("t/rearm")
            .root(dir.path())
            .create()
            .unwrap();
        let fd = sub.fd().unwrap();
        assert!(sub.take().unwrap().is_none(), "nothing yet: armed");
        let core = sub.core();
        let sleeping = &core.service.sub_slot(core.slot).sleeping;
        assert_ne!(sleeping.load(Ordering::Relaxed) & ARMED, 0);
        // What `spin` does: take the arm back ...
        assert!(event::disarm(sleeping));
        core.disarmed_by_spin.set(true);
        // ... and, after its last look, a publish that sees no arm (no wake-up) ...
        publisher.send(7).unwrap();
        // ... then an arm put back by a publisher whose earlier wake-up failed.
        event::rearm_if_failed(sleeping, Sent::Failed);
        // Arming again must see the sample (or leave the descriptor readable).
        let told = core.arm();
        let mut fds = [PollFd::new(&fd, PollFlags::IN)];
        let zero = Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        let readable = poll(&mut fds, Some(&zero)).unwrap() == 1;
        assert!(
            told || readable,
            "the subscriber would sleep with a sample waiting"
        );
        assert_eq!(sub.take().unwrap().map(|s| *s), Some(7));
    }
}
