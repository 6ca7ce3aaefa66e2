//! Configuration of topics, publishers and subscribers.

use crate::error::{Error, Result};
use std::time::Duration;

/// What a publisher does when a subscriber's queue is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Overflow {
    /// Take back the oldest undelivered sample of that subscriber and queue the new one
    /// (latest data wins; the publisher never waits).
    #[default]
    DropOldest,
    /// Wait until the subscriber makes room, up to the publisher's `block_timeout`
    /// (forever when none is set); then `Error::Timeout` (the subscribers before that one
    /// in slot order already have the sample).
    Block,
    /// Return `Error::QueueFull` and deliver the sample to nobody.
    Fail,
}

impl Overflow {
    pub(crate) fn code(self) -> u64 {
        match self {
            Overflow::DropOldest => 0,
            Overflow::Block => 1,
            Overflow::Fail => 2,
        }
    }
}

/// Topic-wide limits, fixed by whichever participant creates the topic; later participants
/// use the values stored in the topic.
///
/// [`TopicConfig::default`] gives the built-in values; builders start from the defaults
/// file's `[topic]` instead, when there is one (see [`defaults`](crate::defaults)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TopicConfig {
    /// Publishers that may be connected at once (1..=64).
    pub max_publishers: usize,
    /// Subscribers that may be connected at once (1..=64).
    pub max_subscribers: usize,
    /// Largest queue depth any connection may use (1..=65536).
    pub max_queue_depth: usize,
    /// Samples one subscriber may hold (taken and not yet dropped) at once.
    pub max_held: usize,
    /// Largest history a publisher may keep.
    pub max_history: usize,
    /// File mode of the topic's files (default `0o600`: only this user). It is also the
    /// widest mode this endpoint accepts in a topic it joins: a topic created with a wider
    /// mode is refused with [`Error::PermissionDenied`], so a participant never creates a
    /// file wider than its own configuration allows. To share a topic with a group, give it
    /// group bits (`0o660`) here in every participant.
    pub mode: u32,
    /// The group a topic is shared with, when `mode` grants the group anything: the topic's
    /// directory and files are given this group, and directories and files of this group
    /// written by other users are accepted. `None` (the default): the process's effective
    /// group. (Not stored in the topic: each participant names the group it trusts.)
    pub group: Option<u32>,
}

impl Default for TopicConfig {
    /// The built-in values (not the defaults file's): 8 publishers, 8 subscribers, queue
    /// depth 256, 8 held, history 64, mode `0o600`, no group.
    fn default() -> Self {
        TopicConfig {
            max_publishers: 8,
            max_subscribers: 8,
            max_queue_depth: 256,
            max_held: 8,
            max_history: 64,
            mode: 0o600,
            group: None,
        }
    }
}

impl TopicConfig {
    pub(crate) fn check(&self, topic: &str) -> Result<()> {
        let bad = |reason: String| {
            Err(Error::InvalidConfig {
                topic: topic.to_owned(),
                reason,
            })
        };
        if !(1..=64).contains(&self.max_publishers) {
            return bad(format!(
                "max_publishers {} is not in 1..=64",
                self.max_publishers
            ));
        }
        if !(1..=64).contains(&self.max_subscribers) {
            return bad(format!(
                "max_subscribers {} is not in 1..=64",
                self.max_subscribers
            ));
        }
        if !(1..=65536).contains(&self.max_queue_depth) {
            return bad(format!(
                "max_queue_depth {} is not in 1..=65536",
                self.max_queue_depth
            ));
        }
        if !(1..=4096).contains(&self.max_held) {
            return bad(format!("max_held {} is not in 1..=4096", self.max_held));
        }
        if self.max_history > 4096 {
            return bad(format!("max_history {} is over 4096", self.max_history));
        }
        if self.mode & !0o777 != 0 || self.mode & 0o600 != 0o600 || self.mode & 0o002 != 0 {
            return bad(format!(
                "mode {:o} must be a permission mode that lets the owner read and write and \
                 does not let others write",
                self.mode
            ));
        }
        if self.group == Some(u32::MAX) {
            return bad("group u32::MAX is not a group id".into());
        }
        Ok(())
    }
}

/// Configuration of one publisher.
///
/// [`PublisherConfig::default`] gives the built-in values; [`Publisher::builder`](crate::Publisher::builder)
/// starts from the defaults file's instead, when there is one (see
/// [`defaults`](crate::defaults)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublisherConfig {
    /// Samples queued per subscriber at most (a subscriber may ask for fewer).
    pub queue_depth: usize,
    /// Samples kept for subscribers that connect later.
    pub history: usize,
    /// Samples loaned at once at most.
    pub max_loans: usize,
    /// What to do when a subscriber's queue is full.
    pub overflow: Overflow,
    /// How long `Overflow::Block` waits; `None` waits as long as the subscriber lives.
    pub block_timeout: Option<Duration>,
    /// Topic limits, used if this publisher creates the topic.
    pub topic: TopicConfig,
    /// Bytes in each chunk after the message, for the data of relative pointers
    /// ([`RelSlice`](crate::RelSlice), [`RelStr`](crate::RelStr)); 0 for plain types.
    /// The largest size class holds this much; smaller classes hold less.
    pub max_tail_bytes: usize,
    /// The size classes of the pool's chunks (for types with a tail).
    pub pool_classes: PoolClasses,
    /// Chunks each size class starts with, and adds at least when it grows; `None`: about
    /// 1 MiB's worth, at least 2 (the whole pool at once for small messages). `Some(usize::MAX)`
    /// reserves the worst case up front, as a fixed pool.
    pub reserve_chunks: Option<usize>,
    /// Bytes of shared memory this publisher's pool may take at most (all its segment
    /// files); `None`: no budget beyond what the limits allow.
    pub max_pool_bytes: Option<u64>,
    /// Bytes of shared memory the data segments of every publisher under the root may take
    /// together, checked when this publisher reserves or grows its pool; `None`: no budget.
    pub max_root_bytes: Option<u64>,
}

/// The size classes of a publisher's chunks, for message types with a tail.
///
/// By default the payloads of the classes are powers of two from 64 bytes (or the message's
/// size) up to the message with its whole tail (`max_tail_bytes`); or the tails listed here,
/// each smaller than `max_tail_bytes`, and the whole tail. A loan takes the smallest class
/// that holds what it asks for ([`Publisher::loan_with_tail`](crate::Publisher::loan_with_tail)).
///
/// ```
/// use shmx::PoolClasses;
/// let classes = PoolClasses::list(&[64 << 10, 1 << 20]).unwrap();
/// assert_eq!(classes.tails(), Some(&[64 << 10, 1 << 20][..]));
/// assert_eq!(PoolClasses::default().tails(), None);
/// assert!(PoolClasses::list(&[1; 17]).is_none());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PoolClasses {
    tails: [usize; PoolClasses::MAX],
    /// 0: powers of two.
    len: usize,
}

impl PoolClasses {
    /// Tails a list may hold at most.
    pub const MAX: usize = 16;

    /// Powers of two (the default).
    pub const fn powers_of_two() -> PoolClasses {
        PoolClasses {
            tails: [0; PoolClasses::MAX],
            len: 0,
        }
    }

    /// The classes whose tails hold these many bytes (in any order), and the whole tail;
    /// `None` for an empty list or one of more than [`MAX`](Self::MAX).
    pub fn list(tails: &[usize]) -> Option<PoolClasses> {
        if tails.is_empty() || tails.len() > Self::MAX {
            return None;
        }
        let mut out = Self::powers_of_two();
        out.tails[..tails.len()].copy_from_slice(tails);
        out.len = tails.len();
        Some(out)
    }

    /// The listed tails, or `None` for powers of two.
    pub fn tails(&self) -> Option<&[usize]> {
        (self.len > 0).then(|| &self.tails[..self.len])
    }
}

impl Default for PublisherConfig {
    /// The built-in values (not the defaults file's): queue depth 16, no history, 4 loans,
    /// [`Overflow::DropOldest`], no block timeout, [`TopicConfig::default`], no tail, size
    /// classes in powers of two, reserves chosen by size, no budgets.
    fn default() -> Self {
        PublisherConfig {
            queue_depth: 16,
            history: 0,
            max_loans: 4,
            overflow: Overflow::DropOldest,
            block_timeout: None,
            topic: TopicConfig::default(),
            max_tail_bytes: 0,
            pool_classes: PoolClasses::powers_of_two(),
            reserve_chunks: None,
            max_pool_bytes: None,
            max_root_bytes: None,
        }
    }
}

/// Configuration of one subscriber.
///
/// [`SubscriberConfig::default`] gives the built-in values; [`Subscriber::builder`](crate::Subscriber::builder)
/// starts from the defaults file's instead, when there is one (see
/// [`defaults`](crate::defaults)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubscriberConfig {
    /// Samples queued from each publisher at most (capped by the publisher's queue depth;
    /// `usize::MAX`: as deep as the topic allows, so that each publisher's depth decides).
    pub queue_depth: usize,
    /// Topic limits, used if this subscriber creates the topic.
    pub topic: TopicConfig,
    /// Ask publishers to stamp each sample with its publish time (see
    /// [`SubscriberBuilder::publish_times`](crate::SubscriberBuilder::publish_times)),
    /// from the moment this subscriber joins.
    pub publish_times: bool,
}

impl Default for SubscriberConfig {
    /// The built-in values (not the defaults file's): queue depth 16,
    /// [`TopicConfig::default`], no publish times.
    fn default() -> Self {
        SubscriberConfig {
            queue_depth: 16,
            topic: TopicConfig::default(),
            publish_times: false,
        }
    }
}
