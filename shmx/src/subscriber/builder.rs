//! [`SubscriberBuilder`]: a subscriber's settings, and its creation.

use super::{SubCore, Subscriber, SubscriberBuilder};
use crate::error::Result;
use crate::message::ShmMessage;
use std::marker::PhantomData;
use std::path::PathBuf;

impl<T: ShmMessage> SubscriberBuilder<T> {
    /// Samples queued from each publisher at most (default 16, or the defaults file's;
    /// capped by the publisher's). `usize::MAX` is as deep as the topic allows (its
    /// `max_queue_depth`), so that each publisher's own depth decides.
    pub fn queue_depth(mut self, depth: usize) -> Self {
        self.config.queue_depth = depth;
        self
    }
    /// Topic limits, used if this subscriber creates the topic, and the mode and group it
    /// accepts. This replaces the whole [`TopicConfig`](crate::TopicConfig) the builder
    /// started from (the defaults file's `[topic]`); to keep the file's other values, start
    /// from [`Defaults::get`](crate::defaults::Defaults::get)`()?.topic()`.
    pub fn topic_config(mut self, topic: crate::config::TopicConfig) -> Self {
        self.config.topic = topic;
        self
    }

    /// The directory that holds the topics (default: `$SHMX_ROOT`, else the defaults file's
    /// `root`, else the private `/dev/shm/shmx-<uid>`; see
    /// [`name::root_dir`](crate::name::root_dir)).
    pub fn root(mut self, root: impl Into<PathBuf>) -> Self {
        self.root = Some(root.into());
        self
    }

    /// Copies each sample into memory private to this subscriber before validating it, and
    /// hands it out from the copy: for publishers that are not trusted.
    ///
    /// **What it guarantees.** What the subscriber reads from a sample after the take is
    /// exactly what was validated: the message and the used part of its tail (the sample's
    /// published length, read once from the chunk's header and checked against the chunk's
    /// capacity) are copied first, then checked (`bool`s, enum discriminants, relative
    /// pointers and strings), then handed out from the copy. A publisher that rewrites its
    /// chunk afterwards changes nothing the subscriber reads; relative pointers in the copy
    /// point into the copy and are re-checked against it. Without this option, samples are
    /// read in place: a publisher is trusted not to write a chunk once it is published
    /// (processes of the same user can `ptrace` each other anyway); one that does can change
    /// a value after it was validated, which for a `bool` or an enum is undefined behaviour.
    ///
    /// **What it costs.** A copy of the published length per take (for a 4 MiB frame, a 4 MiB
    /// `memcpy`), and up to `max_held` private buffers, each as large as the largest payload
    /// capacity of the topic's publishers (plus a page), allocated when first needed and kept
    /// until the subscriber is dropped. The chunk is given back to its publisher as soon as
    /// it is copied, before the sample is handed out, so a held sample holds no chunk (only
    /// its publisher's data segment stays mapped until it is dropped); it still counts
    /// against `max_held`. Subscribers without the option pay nothing for it (no branch or
    /// field on the zero-copy path is new: it tests for the option where it tested for
    /// pending history).
    ///
    /// [`drain`](Subscriber::drain) copies too, one sample at a time.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// use shmx::{Publisher, RelStr, ShmMessage, Subscriber};
    ///
    /// #[derive(ShmMessage)]
    /// #[repr(C)]
    /// struct Status {
    ///     ok: bool,
    ///     _pad: [u8; 3],
    ///     text: RelStr,
    /// }
    ///
    /// let subscriber = Subscriber::<Status>::builder("doc/status")
    ///     .root(dir.path())
    ///     .copy_on_take()
    ///     .create()?;
    /// let publisher = Publisher::<Status>::builder("doc/status")
    ///     .root(dir.path())
    ///     .max_tail_bytes(64)
    ///     .create()?;
    /// let mut sample = publisher.loan()?;
    /// let mut w = sample.writer();
    /// *w.ok = true;
    /// w.set_text("all good")?;
    /// sample.publish()?;
    ///
    /// // Validated and read in the subscriber's own copy: the publisher's chunk is back in
    /// // its pool already.
    /// let status = subscriber.take()?.expect("published above");
    /// assert!(status.ok);
    /// assert_eq!(status.text(), "all good");
    /// let pool = publisher.pool_stats();
    /// assert_eq!(pool.free, pool.total);
    /// # Ok::<(), shmx::Error>(())
    /// ```
    pub fn copy_on_take(mut self) -> Self {
        self.copy_on_take = true;
        self
    }

    /// Asks the topic's publishers to stamp every sample with the time they publish it,
    /// read by [`Sample::publish_time`](crate::Sample::publish_time) (for recorders and
    /// latency probes). A publisher stamps from its first publish after this subscriber
    /// joined, at the cost of one read of the wall clock per sample (~20 ns) while any such
    /// subscriber is connected; samples from before (history) have no publish time. Not
    /// with [`copy_on_take`](Self::copy_on_take): a private copy has no publish time.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// use shmx::{Publisher, Subscriber};
    /// use std::time::SystemTime;
    /// let subscriber = Subscriber::<u64>::builder("doc/stamped")
    ///     .root(dir.path())
    ///     .publish_times()
    ///     .create()?;
    /// let publisher = Publisher::<u64>::builder("doc/stamped").root(dir.path()).create()?;
    /// let before = SystemTime::now();
    /// publisher.send(7)?;
    /// let sample = subscriber.take()?.expect("sent above");
    /// let published = sample.publish_time().expect("asked for");
    /// assert!(published >= before && published <= SystemTime::now());
    /// # Ok::<(), shmx::Error>(())
    /// ```
    pub fn publish_times(mut self) -> Self {
        self.config.publish_times = true;
        self
    }

    /// Connects to (or creates) the topic, and picks up the history of its publishers.
    ///
    /// # Errors
    /// [`Error::Config`](crate::Error::Config) while the defaults file cannot be used; the errors of opening,
    /// checking and joining the topic.
    pub fn create(self) -> Result<Subscriber<T>> {
        crate::defaults::check()?;
        let mut core = SubCore::create::<T>(self.root.as_deref(), &self.name, self.config)?;
        if self.copy_on_take {
            core.copy_on_take();
        }
        Ok(Subscriber {
            core,
            _t: PhantomData,
        })
    }
}
