//! [`WaitSet`]: one thread waits on many subscribers (of any message types), silences,
//! timers and foreign file descriptors at once.
//!
//! A wait first looks at everything attached; if nothing is ready it spins on the
//! subscribers' queues for an adaptive budget, as [`Subscriber::recv`] does (dense traffic
//! sees spin latency); then it arms each subscriber's descriptor (see
//! [`Subscriber::fd`]) and sleeps in `epoll` until a publisher, a timer, a foreign descriptor
//! or the exit of a publisher's process wakes it. Once asleep it makes no system call and
//! uses no CPU.

mod event;
mod peers;
#[cfg(not(loom))]
mod request;

pub use event::{Attachment, Event, EventKind, PeerEvent};

use crate::error::{Error, Result};
use crate::message::ShmMessage;
use crate::spin::{SpinClock, Spinner};
use crate::subscriber::{SubCore, Subscriber};
use peers::Peers;
use rustix::event::epoll;
use rustix::fd::{BorrowedFd, OwnedFd};
use rustix::io::Errno;
use std::time::{Duration, Instant};

enum Source<'a> {
    Samples {
        core: &'a SubCore,
        peers: Peers,
    },
    Silence {
        core: &'a SubCore,
        after: Duration,
        last: Instant,
    },
    Interval {
        period: Duration,
        next: Instant,
    },
    Fd {
        fd: BorrowedFd<'a>,
        ready: bool,
    },
}

/// Kinds of epoll registrations, in the top byte of their data word.
const SUBSCRIBER: u64 = 1;
const FOREIGN: u64 = 2;
const PROCESS: u64 = 3;

fn token(kind: u64, slot: usize, entry: usize) -> u64 {
    kind << 56 | (slot as u64) << 32 | entry as u64
}

/// Waits on many things at once: subscribers of any message types, the silence of a
/// subscriber, intervals and foreign file descriptors.
///
/// ```
/// # let dir = tempfile::tempdir().unwrap();
/// use shmx::{Publisher, Subscriber, WaitSet};
/// use std::time::Duration;
///
/// let poses = Subscriber::<[f64; 3]>::builder("doc/ws/pose").root(dir.path()).create()?;
/// let counts = Subscriber::<u32>::builder("doc/ws/count").root(dir.path()).create()?;
/// let mut waitset = WaitSet::new()?;
/// let pose = waitset.attach(&poses)?;
/// let count = waitset.attach(&counts)?;
/// let tick = waitset.attach_interval(Duration::from_millis(20))?;
///
/// let publisher = Publisher::<u32>::builder("doc/ws/count").root(dir.path()).create()?;
/// publisher.send(7)?;
/// let mut got = None;
/// while got.is_none() {
///     waitset.wait_timeout(Duration::from_secs(10), |event| {
///         if event.is(count) {
///             while let Ok(Some(sample)) = counts.take() {
///                 got = Some(*sample);
///             }
///         } else if event.is(pose) {
///             while let Ok(Some(_)) = poses.take() {}
///         } else if event.is(tick) {
///             // 50 Hz work
///         }
///     })?;
/// }
/// assert_eq!(got, Some(7));
/// # Ok::<(), shmx::Error>(())
/// ```
///
/// Events are level-triggered: a subscriber with samples waiting is reported by every wait
/// until they are taken. A wait spins on the subscribers' queues for an adaptive budget (as
/// [`Subscriber::recv`]; not on a thread that shares its one CPU with the publisher), then
/// arms the subscribers' descriptors (see [`Subscriber::fd`]) and sleeps in `epoll`; so
/// publishers make system calls only for a wait set that sleeps, and the takes of a
/// subscriber that only wait sets watch make none. A subscriber may be attached to several
/// wait sets, but one thread waits on it at a time (subscribers are not `Sync`). The set
/// borrows what it waits on.
pub struct WaitSet<'a> {
    epoll: OwnedFd,
    entries: Vec<Option<Source<'a>>>,
    /// How a wait spins before it sleeps (adaptive, as `Subscriber::recv`; see `spin`).
    spinner: Spinner,
    /// Foreign descriptors attached (a wait polls them before it spins).
    foreign: usize,
    /// Publisher processes seen to exit: (entry, publisher slot).
    exited: Vec<(usize, usize)>,
    events: Vec<epoll::Event>,
}

impl<'a> WaitSet<'a> {
    /// An empty wait set.
    ///
    /// # Errors
    /// [`Error::Io`] if the `epoll` instance cannot be made.
    pub fn new() -> Result<WaitSet<'a>> {
        let epoll = epoll::create(epoll::CreateFlags::CLOEXEC).map_err(|e| io_error(e, "epoll"))?;
        Ok(WaitSet {
            epoll,
            entries: Vec::new(),
            spinner: Spinner::default(),
            foreign: 0,
            exited: Vec::new(),
            events: Vec::with_capacity(64),
        })
    }

    /// Attaches a subscriber: [`EventKind::Samples`] when samples wait, and
    /// [`EventKind::Peer`] when a publisher of its topic joins, leaves or dies.
    ///
    /// # Errors
    /// As [`Subscriber::fd`], or [`Error::Io`] from `epoll`.
    pub fn attach<T: ShmMessage>(&mut self, subscriber: &'a Subscriber<T>) -> Result<Attachment> {
        self.attach_core(subscriber.core())
    }

    /// [`attach`](Self::attach) of a subscriber's core (a request or response queue too).
    fn attach_core(&mut self, core: &'a SubCore) -> Result<Attachment> {
        self.watch_subscriber(core)?;
        let mut peers = Peers::default();
        // Publishers already there are the starting point, not news.
        peers.update(core.service(), &[], |_| {});
        let id = self.push(Source::Samples { core, peers });
        self.watch_processes(id.0);
        Ok(id)
    }

    /// Attaches the silence of a subscriber: [`EventKind::Silent`] once no sample waited at
    /// any wait (or arrived) for `after`, and again after each further `after` of silence.
    /// (Attach the subscriber itself too, with [`attach`](Self::attach), to hear of its
    /// samples.)
    ///
    /// # Errors
    /// As [`attach`](Self::attach).
    pub fn attach_deadline<T: ShmMessage>(
        &mut self,
        subscriber: &'a Subscriber<T>,
        after: Duration,
    ) -> Result<Attachment> {
        let core = subscriber.core();
        self.watch_subscriber(core)?;
        Ok(self.push(Source::Silence {
            core,
            after,
            last: Instant::now(),
        }))
    }

    /// Attaches an interval: [`EventKind::Tick`] every `period` from now (`period` of zero
    /// ticks at every wait).
    ///
    /// # Errors
    /// None today; the `Result` leaves room for timers that need the system.
    pub fn attach_interval(&mut self, period: Duration) -> Result<Attachment> {
        let next = Instant::now().checked_add(period);
        Ok(self.push(Source::Interval {
            period,
            next: next.unwrap_or_else(far_future),
        }))
    }

    /// Attaches a foreign descriptor (a socket, a pipe, a timerfd, …):
    /// [`EventKind::Readable`] while it is readable (level-triggered, as `epoll` sees it).
    ///
    /// # Errors
    /// [`Error::Io`] if `epoll` refuses it (a regular file, or a descriptor already in this
    /// set).
    pub fn attach_fd(&mut self, fd: BorrowedFd<'a>) -> Result<Attachment> {
        let entry = self.next_entry();
        epoll::add(
            &self.epoll,
            fd,
            epoll::EventData::new_u64(token(FOREIGN, 0, entry)),
            epoll::EventFlags::IN,
        )
        .map_err(|e| io_error(e, "epoll_ctl (a foreign descriptor)"))?;
        self.foreign += 1;
        Ok(self.push(Source::Fd { fd, ready: false }))
    }

    /// Detaches `attachment`; its events stop (an unknown or detached one is ignored). Its
    /// place, and so its [`Attachment`] value, may be given to a later attachment.
    pub fn detach(&mut self, attachment: Attachment) {
        let Some(source) = self.entries.get_mut(attachment.0).and_then(Option::take) else {
            return;
        };
        // Exits seen for its publishers are not news for whatever comes in its place.
        self.exited.retain(|&(entry, _)| entry != attachment.0);
        let core = match &source {
            Source::Samples { core, .. } | Source::Silence { core, .. } => Some(*core),
            Source::Fd { fd, .. } => {
                let _ = epoll::delete(&self.epoll, fd);
                self.foreign -= 1;
                None
            }
            Source::Interval { .. } => None,
        };
        // The subscriber's descriptor stays while another attachment uses it.
        if let Some(core) = core {
            if !self.entries.iter().flatten().any(|s| uses(s, core)) {
                if let Ok(fd) = core.ready_fd() {
                    let _ = epoll::delete(&self.epoll, fd);
                }
            }
        }
        // Dropping the source closes its publishers' pidfds, which leaves the epoll set.
    }

    /// Waits until something attached is ready and hands each [`Event`] to `f`; returns how
    /// many there were (at least one).
    ///
    /// # Errors
    /// [`Error::Io`] if `epoll` fails; errors of the subscribers' sockets.
    pub fn wait(&mut self, f: impl FnMut(Event)) -> Result<usize> {
        self.wait_until(None, f)
    }

    /// As [`wait`](Self::wait), but returns `Ok(0)` when nothing was ready within `timeout`
    /// (any `Duration`: one past the clock's range waits forever).
    ///
    /// # Errors
    /// As [`wait`](Self::wait).
    pub fn wait_timeout(&mut self, timeout: Duration, f: impl FnMut(Event)) -> Result<usize> {
        let deadline = Instant::now().checked_add(timeout);
        match deadline {
            Some(d) => self.wait_until(Some(d), f),
            None => self.wait_until(None, f),
        }
    }

    /// Where the next attachment goes: the first entry a detach freed, else a new one.
    fn next_entry(&self) -> usize {
        self.entries
            .iter()
            .position(Option::is_none)
            .unwrap_or(self.entries.len())
    }

    fn push(&mut self, source: Source<'a>) -> Attachment {
        let entry = self.next_entry();
        match self.entries.get_mut(entry) {
            Some(free) => *free = Some(source),
            None => self.entries.push(Some(source)),
        }
        Attachment(entry)
    }

    /// Puts the subscriber's descriptor in the epoll set (once, whatever attaches it).
    fn watch_subscriber(&mut self, core: &'a SubCore) -> Result<()> {
        let fd = core.ready_fd()?;
        match epoll::add(
            &self.epoll,
            fd,
            epoll::EventData::new_u64(token(SUBSCRIBER, 0, 0)),
            epoll::EventFlags::IN,
        ) {
            Ok(()) | Err(Errno::EXIST) => Ok(()),
            Err(e) => Err(io_error(e, "epoll_ctl (a subscriber)")),
        }
    }

    /// Puts the pidfds of entry `entry`'s publishers that are not watched yet in the set.
    fn watch_processes(&mut self, entry: usize) {
        let Some(Some(Source::Samples { peers, .. })) = self.entries.get_mut(entry) else {
            return;
        };
        for k in &mut peers.known {
            if let (Some(fd), false) = (&k.pidfd, k.watched) {
                k.watched = epoll::add(
                    &self.epoll,
                    fd,
                    epoll::EventData::new_u64(token(PROCESS, k.slot, entry)),
                    epoll::EventFlags::IN,
                )
                .is_ok();
            }
        }
    }

    fn wait_until(&mut self, deadline: Option<Instant>, mut f: impl FnMut(Event)) -> Result<usize> {
        // Set when the first look found nothing: when the wait began, and when spinning ends
        // (`None`: no spinning).
        let mut wait: Option<(Instant, Option<Instant>)> = None;
        // When it went to sleep (first).
        let mut slept_at: Option<Instant> = None;
        // A subscriber's descriptor was readable since the last arm: it may hold a wake-up
        // for samples taken already, which the next arm consumes (see `SubCore::arm_with`).
        let mut stale = false;
        // Set when spinning begins.
        let mut clock: Option<SpinClock> = None;
        loop {
            let (n, samples) = self.collect(&mut f);
            if n > 0 {
                if let (Some((start, _)), true) = (wait, samples) {
                    let spun = clock.as_mut().map(SpinClock::caught);
                    self.spinner.ended(start, slept_at, spun);
                }
                return Ok(n);
            }
            let now = Instant::now();
            if deadline.is_some_and(|d| now >= d) {
                return Ok(0);
            }
            let spin_until = match wait {
                Some((_, until)) => until,
                None => {
                    let subscribers = self
                        .entries
                        .iter()
                        .flatten()
                        .any(|s| matches!(s, Source::Samples { .. }));
                    let due = [deadline, self.next_due()].into_iter().flatten().min();
                    let until = if subscribers {
                        self.spinner.begin(now, due)
                    } else {
                        None
                    };
                    wait = Some((now, until));
                    if self.foreign > 0 {
                        // Foreign descriptors (and processes) that are ready now are
                        // reported before any spinning.
                        stale |= self.sleep(Some(Duration::ZERO))?;
                        continue;
                    }
                    until
                }
            };
            if let (None, Some(until)) = (slept_at, spin_until) {
                let clock = clock.get_or_insert_with(|| SpinClock::new(now));
                if self.spin_for_samples(clock, until) {
                    continue;
                }
            }
            // (Read now, after spinning and before arming: the spin policy asks how soon
            // after it stopped spinning samples came.)
            slept_at.get_or_insert_with(Instant::now);
            if self.arm(std::mem::take(&mut stale))? {
                continue;
            }
            let due = self.next_due();
            let mut until = [deadline, due].into_iter().flatten().min();
            if self.unwatched() {
                // Publishers whose process could not be watched are noticed by the sweeps of
                // a look: look at least every second.
                let second = now + Duration::from_secs(1);
                until = Some(until.map_or(second, |u| u.min(second)));
            }
            // No timeout when nothing is due: a sleep with none sets no kernel timer.
            let timeout = until.map(|u| u.saturating_duration_since(Instant::now()));
            stale |= self.sleep(timeout)?;
        }
    }

    /// Looks at every attachment; hands what is ready to `f`; returns how many events, and
    /// whether samples were among them.
    fn collect(&mut self, f: &mut impl FnMut(Event)) -> (usize, bool) {
        // The clock is read only for silences and intervals (once).
        let mut clock = None;
        let mut now = || *clock.get_or_insert_with(Instant::now);
        let mut n = 0;
        let mut samples = false;
        let mut emit = |entry: usize, kind: EventKind| {
            n += 1;
            samples |= kind == EventKind::Samples;
            f(Event {
                attachment: Attachment(entry),
                kind,
            });
        };
        // Samples waiting end every silence of their subscriber, before any event is handed
        // out: `f` takes them when it hears of the subscriber's `Samples`, which may come
        // first.
        for source in self.entries.iter_mut().flatten() {
            if let Source::Silence { core, last, .. } = source {
                if !core.nothing_waiting() {
                    *last = now();
                }
            }
        }
        let exited = std::mem::take(&mut self.exited);
        let mut rewatch = Vec::new();
        for (i, source) in self.entries.iter_mut().enumerate() {
            let Some(source) = source else { continue };
            match source {
                Source::Samples { core, peers } => {
                    let gone: Vec<usize> = exited
                        .iter()
                        .filter(|(e, _)| *e == i)
                        .map(|&(_, slot)| slot)
                        .collect();
                    let before = peers.known.len();
                    let generation = peers.generation;
                    peers.update(core.service(), &gone, |pe| emit(i, EventKind::Peer(pe)));
                    if peers.generation != generation || peers.known.len() != before {
                        rewatch.push(i);
                    }
                    if !core.nothing_waiting() {
                        emit(i, EventKind::Samples);
                    }
                }
                Source::Silence { core, after, last } => {
                    let now = now();
                    if !core.nothing_waiting() {
                        *last = now;
                    } else if now.saturating_duration_since(*last) >= *after {
                        *last = now;
                        emit(i, EventKind::Silent);
                    }
                }
                Source::Interval { period, next } => {
                    let now = now();
                    if now >= *next {
                        emit(i, EventKind::Tick);
                        *next = if period.is_zero() {
                            now
                        } else {
                            // Missed ticks make one; the phase is kept.
                            let behind = now.duration_since(*next).as_nanos() / period.as_nanos();
                            let steps = u32::try_from(behind + 1).unwrap_or(u32::MAX);
                            next.checked_add(period.saturating_mul(steps))
                                .unwrap_or_else(far_future)
                        };
                    }
                }
                Source::Fd { ready, .. } => {
                    if std::mem::take(ready) {
                        emit(i, EventKind::Readable);
                    }
                }
            }
        }
        for i in rewatch {
            self.watch_processes(i);
        }
        (n, samples)
    }

    /// Spins on the subscribers' queues until one has samples (`true`) or `until` passes
    /// (`false`).
    fn spin_for_samples(&self, clock: &mut SpinClock, until: Instant) -> bool {
        loop {
            // (A change of a topic's publishers counts as ready here; `collect` then tells.)
            let ready = self.entries.iter().flatten().any(|s| match s {
                Source::Samples { core, .. } => core.probe(),
                _ => false,
            });
            if ready {
                return true;
            }
            if clock.over(until) {
                return false;
            }
            std::hint::spin_loop();
        }
    }

    /// Arms every subscriber's descriptor, consuming left-over wake-ups if `stale` (a
    /// subscriber's descriptor was readable since the last arm); `true` if samples came
    /// meanwhile.
    fn arm(&self, stale: bool) -> Result<bool> {
        let mut ready = false;
        for source in self.entries.iter().flatten() {
            if let Source::Samples { core, .. } | Source::Silence { core, .. } = source {
                ready |= core.arm_with(stale);
            }
        }
        Ok(ready)
    }

    /// Sleeps in `epoll` for up to `timeout`; records what woke it. Returns whether a
    /// subscriber's descriptor was readable.
    fn sleep(&mut self, timeout: Option<Duration>) -> Result<bool> {
        let ts = timeout.map(|d| rustix::event::Timespec {
            tv_sec: d.as_secs().min(i64::MAX as u64) as i64,
            tv_nsec: d.subsec_nanos() as _,
        });
        self.events.clear();
        match epoll::wait(
            &self.epoll,
            rustix::buffer::spare_capacity(&mut self.events),
            ts.as_ref(),
        ) {
            Ok(_) | Err(Errno::INTR) => {}
            Err(e) => return Err(io_error(e, "epoll_wait")),
        }
        let mut subscriber = false;
        for event in &self.events {
            let data = event.data.u64();
            let entry = (data & 0xffff_ffff) as usize;
            let slot = ((data >> 32) & 0xff_ffff) as usize;
            match data >> 56 {
                FOREIGN => {
                    if let Some(Some(Source::Fd { ready, .. })) = self.entries.get_mut(entry) {
                        *ready = true;
                    }
                }
                PROCESS => self.exited.push((entry, slot)),
                // A subscriber's wake-up: its queue is looked at next (the datagram is
                // consumed when it arms again).
                _ => subscriber = true,
            }
        }
        Ok(subscriber)
    }

    /// Whether a publisher of an attached subscriber's topic is not watched through its
    /// process (see `Peers`).
    fn unwatched(&self) -> bool {
        self.entries.iter().flatten().any(|s| match s {
            Source::Samples { peers, .. } => peers.known.iter().any(|k| !k.watched),
            _ => false,
        })
    }

    /// When the next interval or silence is due.
    fn next_due(&self) -> Option<Instant> {
        self.entries
            .iter()
            .flatten()
            .filter_map(|s| match s {
                Source::Interval { next, .. } => Some(*next),
                Source::Silence { after, last, .. } => last.checked_add(*after),
                _ => None,
            })
            .min()
    }
}

/// Whether `source` waits on `core`.
fn uses(source: &Source<'_>, core: &SubCore) -> bool {
    match source {
        Source::Samples { core: c, .. } | Source::Silence { core: c, .. } => std::ptr::eq(*c, core),
        _ => false,
    }
}

fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(100 * 365 * 24 * 3600)
}

fn io_error(e: Errno, what: &str) -> Error {
    crate::dir::sys(std::path::Path::new(what), e)
}

impl std::fmt::Debug for WaitSet<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WaitSet")
            .field("attachments", &self.entries.iter().flatten().count())
            .field("spin", &self.spinner.budget())
            .finish()
    }
}
