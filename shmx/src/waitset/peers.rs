//! The publishers of a subscriber's topic, as a waiter sees them: which joined, which left,
//! which died. Each live publisher's process is watched through a `pidfd` (readable when the
//! process exits), so a publisher killed with `SIGKILL` wakes the waiter at once; the waiter
//! then reclaims its slot (a sweep) and reports it dead.

use super::PeerEvent;
use crate::service::{incarnation_of, state_of, state_word, Service, ACTIVE, DRAINING};
use crate::sync::Ordering;
use rustix::fd::OwnedFd;
use rustix::process::{Pid, PidfdFlags};

/// One publisher slot's occupant, when last looked at.
pub(super) struct Known {
    pub slot: usize,
    pub incarnation: u64,
    pub pid: u32,
    /// Readable once the process exits (`None` if it could not be opened: the process was
    /// gone already, or pidfds are not supported; then the regular sweeps find it).
    pub pidfd: Option<OwnedFd>,
    /// `pidfd` is in the waiter's epoll set (it leaves by itself when closed).
    pub watched: bool,
    /// The process was seen to exit while its slot was still active: its slot waits for a
    /// sweep (its pidfd is closed, so that it does not wake the waiter again and again).
    pub exited: bool,
}

/// What the waiter knows of one topic's publishers.
#[derive(Default)]
pub(super) struct Peers {
    /// When the waiter last reclaimed the slots of dead processes itself (at most once a
    /// second: for publishers whose process could not be watched).
    pub last_sweep: Option<std::time::Instant>,
    /// The topic's generation when `known` was last brought up to date.
    pub generation: Option<u64>,
    pub known: Vec<Known>,
}

impl Peers {
    /// Brings `known` up to date with the topic's publisher slots, calling `event` for each
    /// change; `exited` are the slots whose process the waiter saw exit (their pidfd became
    /// readable). New publishers' pidfds are not `watched` yet.
    pub(super) fn update(
        &mut self,
        service: &Service,
        exited: &[usize],
        mut event: impl FnMut(PeerEvent),
    ) {
        for k in &mut self.known {
            if exited.contains(&k.slot) {
                k.exited = true;
                // Readable for good now: closing it takes it out of the epoll set.
                k.pidfd = None;
                k.watched = false;
            }
        }
        let due = || {
            self.last_sweep
                .is_none_or(|t| t.elapsed() >= std::time::Duration::from_secs(1))
        };
        if self.known.iter().any(|k| k.pidfd.is_none()) && due() {
            // A publisher whose process could not be watched (gone before we looked, or in
            // another pid namespace): its death shows only in a sweep.
            self.last_sweep = Some(std::time::Instant::now());
            if let Some(lock) = service.root().try_lock(service.trust()) {
                service.sweep(&lock);
            }
        } else if self.known.iter().any(|k| k.exited) {
            // A process that exited while its slot is still active died without leaving:
            // reclaim the slot now. The sweep needs the root lock; if another participant
            // holds it, that one sweeps, or the next look does (a waiter looks at least
            // every second).
            if let Some(lock) = service.root().try_lock(service.trust()) {
                service.sweep(&lock);
            }
        }
        let generation = service.generation();
        if self.generation == Some(generation) && exited.is_empty() {
            return;
        }
        let first = self.generation.is_none();
        self.generation = Some(generation);
        let mut now = Vec::new();
        for p in 0..service.layout().max_publishers {
            let slot = service.pub_slot(p);
            let word = slot.state.load(Ordering::Acquire);
            if state_of(word) == ACTIVE {
                now.push((p, incarnation_of(word), slot.pid.load(Ordering::Relaxed)));
            }
        }
        // Gone: left (its process still ran when it did) or died (its process exited first).
        let mut kept = Vec::new();
        for k in self.known.drain(..) {
            let still = now
                .iter()
                .any(|&(p, inc, _)| p == k.slot && inc == k.incarnation);
            if still {
                kept.push(k);
                continue;
            }
            let slot = service.pub_slot(k.slot);
            let word = slot.state.load(Ordering::Acquire);
            let died = if word == 0 || word == state_word(k.incarnation, DRAINING) {
                // Ours still, or free: a publisher that leaves clears its node first, a sweep
                // that reclaims a dead one does not (whether its process has exited since,
                // as it usually does right after leaving, does not matter).
                slot.node.load(Ordering::Relaxed) != 0
            } else {
                // Taken by another publisher since: by whether its process is still there.
                k.exited || !process_alive(&k)
            };
            event(if died {
                PeerEvent::PublisherDied { pid: k.pid }
            } else {
                PeerEvent::PublisherLeft { pid: k.pid }
            });
        }
        self.known = kept;
        for (p, inc, pid) in now {
            if self
                .known
                .iter()
                .any(|k| k.slot == p && k.incarnation == inc)
            {
                continue;
            }
            let pid = u32::try_from(pid).unwrap_or(0);
            let pidfd = open_pidfd(pid);
            if !first {
                event(PeerEvent::PublisherJoined { pid });
            }
            self.known.push(Known {
                slot: p,
                incarnation: inc,
                pid,
                pidfd,
                watched: false,
                exited: false,
            });
        }
    }
}

/// A descriptor that becomes readable when process `pid` exits (a number read from shared
/// memory: at worst another process of that number is watched, and the sweeps, which check
/// node locks, decide what is dead).
fn open_pidfd(pid: u32) -> Option<OwnedFd> {
    let pid = Pid::from_raw(i32::try_from(pid).ok()?)?;
    rustix::process::pidfd_open(pid, PidfdFlags::empty()).ok()
}

/// Whether the process behind `k` still runs, as far as its pidfd tells (without one: no).
fn process_alive(k: &Known) -> bool {
    let Some(fd) = &k.pidfd else { return false };
    let mut fds = [rustix::event::PollFd::new(fd, rustix::event::PollFlags::IN)];
    let zero = rustix::event::Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    matches!(rustix::event::poll(&mut fds, Some(&zero)), Ok(0))
}
