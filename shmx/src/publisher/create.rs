//! Making a publisher: claiming its slot, making its pool's first segment, and letting go
//! of both when it is dropped.

use super::segments::Segments;
use super::{PubCore, PubState};
use crate::config::{PublisherConfig, TopicConfig};
use crate::error::{Error, Result};
use crate::message::ShmMessage;
use crate::name::TopicName;
use crate::pool::{classes, Pool};
use crate::root::{Root, RootLock};
use crate::service::{self, Role, Service, ACTIVE, DRAINING, FREE};
use crate::sync::Ordering;
use crate::trust::Trust;
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::path::Path;
use std::sync::Arc;

impl PubCore {
    pub(super) fn create<T: ShmMessage>(
        root: Option<&Path>,
        name: &str,
        config: PublisherConfig,
    ) -> Result<PubCore> {
        let trust = Trust::of(&config.topic);
        Self::create_with(
            root,
            &TopicName::new(name)?,
            config,
            trust,
            Service::open_or_create::<T>,
        )
    }

    /// Creates a publisher on the topic that `open` opens (or creates); its message type is
    /// the one stored in the topic. `root` is the root's path (`None`: the default root);
    /// `trust` what the endpoint accepts of the files it finds there (see
    /// [`trust`](crate::trust)).
    pub(crate) fn create_with(
        root: Option<&Path>,
        name: &TopicName,
        config: PublisherConfig,
        trust: Trust,
        open: impl FnOnce(&Arc<Root>, &TopicName, &TopicConfig, &Trust, &RootLock) -> Result<Service>,
    ) -> Result<PubCore> {
        Self::create_as(root, name, config, trust, open, None)
    }

    /// [`create_with`](Self::create_with), the publisher's samples carrying `id` as their
    /// publisher id if given (a relay of another machine's publisher), else a random one.
    pub(crate) fn create_as(
        root: Option<&Path>,
        name: &TopicName,
        config: PublisherConfig,
        trust: Trust,
        open: impl FnOnce(&Arc<Root>, &TopicName, &TopicConfig, &Trust, &RootLock) -> Result<Service>,
        id: Option<u64>,
    ) -> Result<PubCore> {
        let bad = |reason: String| Error::InvalidConfig {
            topic: name.as_str().to_owned(),
            reason,
        };
        if config.queue_depth == 0 || config.max_loans == 0 {
            return Err(bad("queue_depth and max_loans must be at least 1".into()));
        }
        let root = Root::open(root, &trust)?;
        // Declared before the lock, so dropped after it on every path: a node that goes takes
        // the root lock to remove its file.
        let node;
        let lock = root.lock(&trust)?;
        node = root.node(&trust, &lock)?;
        let service = open(&root, name, &config.topic, &trust, &lock)?;
        let layout = *service.layout();
        let mut config = config;
        if name.is_part() {
            // A queue of a request/response service is as deep as its one subscriber (the
            // server, the client) made it: each of its publishers queues at most that much.
            config.queue_depth = config.queue_depth.min(layout.ring_capacity);
        }
        let result = (|| {
            if config.queue_depth > layout.ring_capacity {
                return Err(bad(format!(
                    "queue_depth {} exceeds the topic's max_queue_depth {}",
                    config.queue_depth, layout.ring_capacity
                )));
            }
            if config.history > layout.max_history {
                return Err(bad(format!(
                    "history {} exceeds the topic's max_history {}",
                    config.history, layout.max_history
                )));
            }
            let (slot, inc) = service.claim(Role::Publisher, node.id())?;
            let made = Self::make_pool(&service, &root, &config, &trust, inc).and_then(|made| {
                made.ok_or_else(|| {
                    bad(
                        "the pool would be too large; lower queue_depth, max_subscribers or \
                     max_tail_bytes"
                            .into(),
                    )
                })
            });
            let (limits, segs) = match made {
                Ok(made) => made,
                Err(e) => {
                    service.pub_slot(slot).state.store(FREE, Ordering::Release);
                    return Err(e);
                }
            };
            let s = service.pub_slot(slot);
            s.pid
                .store(u64::from(std::process::id()), Ordering::Relaxed);
            s.chunk_count
                .store(segs.reserved_chunks(), Ordering::Relaxed);
            s.history_depth
                .store(config.history as u64, Ordering::Relaxed);
            s.queue_depth
                .store(config.queue_depth as u64, Ordering::Relaxed);
            s.overflow.store(config.overflow.code(), Ordering::Relaxed);
            s.drain_mask.store(0, Ordering::Relaxed);
            s.published.store(0, Ordering::Relaxed);
            s.hist_head.store(0, Ordering::Relaxed);
            // Random, so that ids stay apart when bridges merge the topic of several
            // machines; never 0 (which stands for "use the incarnation").
            let id = id.unwrap_or_else(|| crate::node::random_id().max(1));
            s.id.store(id, Ordering::Relaxed);
            s.state
                .store(service::state_word(inc, ACTIVE), Ordering::Release);
            service.bump_generation();
            // Waiting subscribers learn that a publisher joined.
            service.notify_subscribers();
            Ok((slot, inc, limits, segs))
        })();
        let (slot, inc, limits, segs) = match result {
            Ok(v) => v,
            Err(e) => {
                service.remove_if_unused(&lock);
                return Err(e);
            }
        };
        drop(lock);
        let mut pool = Pool::new(limits.caps.len(), config.history > 0);
        pool.add_segment(0, segs.class_of_first(), segs.reserved_chunks() as usize);
        Ok(PubCore {
            _node: node,
            last_sweep: Cell::new(None),
            state: RefCell::new(PubState {
                pool,
                segs,
                class: limits.caps.len() - 1,
                no_headroom: 0,
                since_collect: 0,
                light: false,
                stamp: false,
                loans: 0,
                history: VecDeque::with_capacity(config.history + 1),
                hist_written: 0,
                next_seq: 1,
                published: 0,
                gen: u64::MAX,
                conns: Vec::with_capacity(layout.max_subscribers),
            }),
            service,
            slot,
            inc,
            config,
            collect_every: (layout.return_capacity / 2).max(1),
            limits,
            keep_segments: Cell::new(false),
        })
    }

    /// The limits of a new publisher's pool, and its first segment (`Ok(None)` if the
    /// limits make a pool too large to lay out). Called with the root locked.
    fn make_pool(
        service: &Service,
        root: &Root,
        config: &PublisherConfig,
        trust: &Trust,
        inc: u64,
    ) -> Result<Option<(super::grow::Limits, Segments)>> {
        let (fingerprint, size, align) = service.type_facts();
        let layout = service.layout();
        let per_sub = config.queue_depth + layout.max_held + config.history;
        let worst = layout
            .max_subscribers
            .checked_mul(per_sub)
            .and_then(|n| n.checked_add(config.history + config.max_loans));
        let caps = classes::capacities(size, align, config.max_tail_bytes, &config.pool_classes);
        let Some((worst, caps)) = worst.zip(caps) else {
            return Ok(None);
        };
        let Some(top_stride) = caps.last().and_then(|&c| crate::data::stride(c, align)) else {
            return Ok(None);
        };
        let Some(mut limits) = super::grow::Limits::new(worst, caps, top_stride, config) else {
            return Ok(None);
        };
        // Segment 0 holds the smallest class; a fixed pool (the worst case up front) the
        // largest, which `loan()` takes, with every chunk the limits allow.
        let class = match config.reserve_chunks {
            Some(usize::MAX) => limits.caps.len() - 1,
            _ => 0,
        };
        let Some(first_stride) = crate::data::stride(limits.caps[class], align) else {
            return Ok(None);
        };
        let count = limits.reserve(first_stride);
        let Some(bytes) = crate::data::segment_bytes(count, limits.caps[class], align) else {
            return Ok(None);
        };
        // The first segment whole, or not at all (called with the root locked).
        if let Some(budget) = limits.pool_budget(0) {
            budget.check(service.topic(), bytes as u64)?;
        }
        if let Some(budget) = limits.root_budget(root, trust) {
            budget.check(service.topic(), bytes as u64)?;
        }
        if class != limits.caps.len() - 1 {
            // Segment 0's small chunks come on top of the worst case of the largest class,
            // so that `loan()` alone can still reach it.
            limits.worst_bytes = limits
                .worst_bytes
                .saturating_add((count * first_stride) as u64);
        }
        let first = (class, count);
        match Segments::create(service, &limits.caps, first, (fingerprint, inc, align)) {
            Some(segs) => Ok(Some((limits, segs?))),
            None => Ok(None),
        }
    }
}

impl Drop for PubCore {
    fn drop(&mut self) {
        // Bounded: a peer that holds the lock must not keep this process from leaving (what
        // is left then goes with the next participant, or `shmx clean`).
        let lock = self
            .service
            .root()
            .lock_within(self.service.trust(), crate::root::LEAVING_WAIT);
        // With the root lock held no subscriber comes or goes: after `refresh`, `conns` are
        // exactly the subscribers still connected.
        let mut st = self.state.borrow_mut();
        self.refresh(&mut st);
        let mut mask = 0u64;
        for conn in &st.conns {
            if self
                .service
                .delivery(self.slot, conn.slot)
                .len_from(conn.ring.head)
                > 0
            {
                mask |= conn.bit;
            }
        }
        drop(st);
        let slot = self.service.pub_slot(self.slot);
        // Left, not died: a slot freed (or draining) with its node still set was reclaimed
        // from a dead process by a sweep (see `waitset::peers`). Only with the lock held: a
        // sweep would take an active slot without a node for a dead one.
        if lock.is_some() {
            slot.node.store(0, Ordering::Relaxed);
        }
        if mask == 0 {
            self.service.remove_data_files(self.inc);
            slot.state.store(FREE, Ordering::Release);
        } else {
            // Subscribers in `mask` still have samples of ours queued: they drain them, and
            // the last one removes our data segment and frees the slot.
            slot.drain_mask.store(mask, Ordering::Release);
            slot.state
                .store(service::state_word(self.inc, DRAINING), Ordering::Release);
        }
        self.service.bump_generation();
        // Waiting subscribers learn that a publisher left.
        self.service.notify_subscribers();
        if let Some(lock) = &lock {
            self.service.remove_if_unused(lock);
        }
    }
}
