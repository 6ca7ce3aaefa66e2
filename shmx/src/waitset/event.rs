//! What a wait hands out: which attachment, and what happened to it.

#[cfg(doc)]
use super::WaitSet;

/// What a [`WaitSet`] attached: returned by each `attach_*`, named by each [`Event`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Attachment(pub(super) usize);

/// Something that happened to one [`Attachment`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Event {
    /// Which attachment.
    pub attachment: Attachment,
    /// What happened.
    pub kind: EventKind,
}

impl Event {
    /// Whether the event is about `attachment`.
    pub fn is(&self, attachment: Attachment) -> bool {
        self.attachment == attachment
    }
}

/// What happened to an attachment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// Samples wait in the subscriber's queues ([`WaitSet::attach`]): take them.
    Samples,
    /// The subscriber received nothing for the attached time ([`WaitSet::attach_deadline`]);
    /// reported again after each further such time of silence.
    Silent,
    /// An interval elapsed ([`WaitSet::attach_interval`]); intervals missed while the caller
    /// was busy make one tick.
    Tick,
    /// The foreign descriptor is readable ([`WaitSet::attach_fd`]).
    Readable,
    /// A publisher of the subscriber's topic joined, left or died ([`WaitSet::attach`]).
    Peer(PeerEvent),
}

/// A change among a topic's publishers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerEvent {
    /// A publisher connected (its process id).
    PublisherJoined {
        /// The publisher's process.
        pid: u32,
    },
    /// A publisher left (dropped its endpoint).
    PublisherLeft {
        /// The publisher's process.
        pid: u32,
    },
    /// A publisher's process ended without leaving (killed, or crashed); its queued samples
    /// are still delivered. (A publisher that leaves clears its slot's node first; a slot
    /// reclaimed from a dead process keeps it: that tells the two apart, unless another
    /// publisher took the slot before the waiter looked.)
    PublisherDied {
        /// The publisher's process.
        pid: u32,
    },
}
