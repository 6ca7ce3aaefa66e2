//! [`PublisherBuilder`]: a publisher's settings, and its creation.

use super::{PubCore, Publisher, PublisherBuilder};
use crate::config::Overflow;
use crate::error::Result;
use crate::message::ShmMessage;
use std::marker::PhantomData;
use std::path::PathBuf;
use std::time::Duration;

impl<T: ShmMessage> PublisherBuilder<T> {
    /// Samples queued per subscriber at most (default 16, or the defaults file's).
    pub fn queue_depth(mut self, depth: usize) -> Self {
        self.config.queue_depth = depth;
        self
    }
    /// Samples kept for late subscribers (default 0, or the defaults file's).
    pub fn history(mut self, history: usize) -> Self {
        self.config.history = history;
        self
    }
    /// Samples loaned at once at most (default 4, or the defaults file's).
    pub fn max_loans(mut self, max_loans: usize) -> Self {
        self.config.max_loans = max_loans;
        self
    }
    /// What to do when a subscriber's queue is full (default [`Overflow::DropOldest`], or
    /// the defaults file's).
    pub fn overflow(mut self, overflow: Overflow) -> Self {
        self.config.overflow = overflow;
        self
    }
    /// How long [`Overflow::Block`] waits before `Error::Timeout` (default: forever, or the
    /// defaults file's; a timeout that ends past the clock's range, such as `Duration::MAX`,
    /// waits forever too).
    pub fn block_timeout(mut self, timeout: Duration) -> Self {
        self.config.block_timeout = Some(timeout);
        self
    }
    /// Topic limits, used if this publisher creates the topic, and the mode and group it
    /// accepts. This replaces the whole [`TopicConfig`](crate::TopicConfig) the builder started from (the
    /// defaults file's `[topic]`); to keep the file's other values, start from
    /// [`Defaults::get`](crate::defaults::Defaults::get)`()?.topic()`.
    pub fn topic_config(mut self, topic: crate::config::TopicConfig) -> Self {
        self.config.topic = topic;
        self
    }
    /// Bytes after the message, at most, for the data of its relative pointers
    /// ([`RelSlice`](crate::RelSlice), [`RelStr`](crate::RelStr)); default 0, or the defaults
    /// file's. The chunks of the largest size class have this room (those of
    /// [`loan`](Publisher::loan)); smaller classes hold less (see
    /// [`loan_with_tail`](Publisher::loan_with_tail)). A sample is published with the part it
    /// used.
    pub fn max_tail_bytes(mut self, bytes: usize) -> Self {
        self.config.max_tail_bytes = bytes;
        self
    }
    /// The size classes of the pool's chunks, as the tails they hold (each under
    /// `max_tail_bytes`; the whole tail is always a class): `None`, the default, gives powers
    /// of two. See [`PoolClasses`](crate::PoolClasses).
    ///
    /// # Panics
    /// If the list is empty or longer than [`PoolClasses::MAX`](crate::PoolClasses::MAX).
    pub fn pool_classes(mut self, tails: &[usize]) -> Self {
        self.config.pool_classes = crate::PoolClasses::list(tails)
            .expect("pool_classes takes 1 to PoolClasses::MAX tails");
        self
    }
    /// Chunks each size class starts with and adds at least when it grows (default: about
    /// 1 MiB's worth, at least 2; or the defaults file's). `usize::MAX` reserves the worst
    /// case that the limits allow up front, as a fixed pool.
    pub fn reserve_chunks(mut self, chunks: usize) -> Self {
        self.config.reserve_chunks = Some(chunks);
        self
    }
    /// Bytes of shared memory the pool may take at most (default: no budget, or the
    /// defaults file's); a loan that would need more is [`Error::BudgetExceeded`](crate::Error::BudgetExceeded).
    pub fn max_pool_bytes(mut self, bytes: u64) -> Self {
        self.config.max_pool_bytes = Some(bytes);
        self
    }
    /// Bytes of shared memory the data segments of every publisher under the root may take
    /// together, checked when this publisher reserves or grows its pool (default: no
    /// budget, or the defaults file's).
    pub fn max_root_bytes(mut self, bytes: u64) -> Self {
        self.config.max_root_bytes = Some(bytes);
        self
    }
    /// Shorthand to set `topic_config().max_subscribers`.
    pub fn max_subscribers(mut self, n: usize) -> Self {
        self.config.topic.max_subscribers = n;
        self
    }

    /// The directory that holds the topics (default: `$SHMX_ROOT`, else the defaults file's
    /// `root`, else the private `/dev/shm/shmx-<uid>`; see
    /// [`name::root_dir`](crate::name::root_dir)).
    pub fn root(mut self, root: impl Into<PathBuf>) -> Self {
        self.root = Some(root.into());
        self
    }

    /// Connects to (or creates) the topic and reserves this publisher's pool of chunks.
    ///
    /// # Errors
    /// [`Error::Config`](crate::Error::Config) while the defaults file cannot be used; the errors of opening,
    /// checking and joining the topic.
    pub fn create(self) -> Result<Publisher<T>> {
        crate::defaults::check()?;
        let core = PubCore::create::<T>(self.root.as_deref(), &self.name, self.config)?;
        Ok(Publisher {
            core,
            _t: PhantomData,
        })
    }
}
