//! The settings of the defaults file, by name.

/// The settings of the file, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Key {
    Root,
    Mode,
    Group,
    MaxPublishers,
    MaxSubscribers,
    MaxQueueDepth,
    MaxHeld,
    MaxHistory,
    QueueDepth,
    History,
    MaxLoans,
    Overflow,
    BlockTimeout,
    MaxTailBytes,
    PoolClasses,
    ReserveChunks,
    MaxPoolBytes,
    MaxRootBytes,
    SubscriberQueueDepth,
}

impl Key {
    pub(crate) const ALL: [Key; 19] = [
        Key::Root,
        Key::MaxRootBytes,
        Key::Mode,
        Key::Group,
        Key::MaxPublishers,
        Key::MaxSubscribers,
        Key::MaxQueueDepth,
        Key::MaxHeld,
        Key::MaxHistory,
        Key::QueueDepth,
        Key::History,
        Key::MaxLoans,
        Key::Overflow,
        Key::BlockTimeout,
        Key::MaxTailBytes,
        Key::PoolClasses,
        Key::ReserveChunks,
        Key::MaxPoolBytes,
        Key::SubscriberQueueDepth,
    ];

    /// The key with its table: `topic.mode`.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Key::Root => "root",
            Key::Mode => "topic.mode",
            Key::Group => "topic.group",
            Key::MaxPublishers => "topic.max_publishers",
            Key::MaxSubscribers => "topic.max_subscribers",
            Key::MaxQueueDepth => "topic.max_queue_depth",
            Key::MaxHeld => "topic.max_held",
            Key::MaxHistory => "topic.max_history",
            Key::QueueDepth => "publisher.queue_depth",
            Key::History => "publisher.history",
            Key::MaxLoans => "publisher.max_loans",
            Key::Overflow => "publisher.overflow",
            Key::BlockTimeout => "publisher.block_timeout",
            Key::MaxTailBytes => "publisher.max_tail_bytes",
            Key::PoolClasses => "publisher.pool_classes",
            Key::ReserveChunks => "publisher.reserve_chunks",
            Key::MaxPoolBytes => "publisher.max_pool_bytes",
            Key::MaxRootBytes => "max_root_bytes",
            Key::SubscriberQueueDepth => "subscriber.queue_depth",
        }
    }

    /// The key as its table writes it: `mode`.
    pub(crate) fn short(self) -> &'static str {
        let name = self.name();
        name.rsplit('.').next().unwrap_or(name)
    }
}
