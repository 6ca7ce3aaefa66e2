//! Remote topics in from Zenoh: samples other bridges put are published locally, each
//! remote publisher through a local publisher of its own (a relay, under the remote
//! publisher's id), marked as relayed so that no bridge sends them out again.

mod relay;

pub(crate) use relay::run;

use crate::wire::{self, Header};
use crate::Shared;
use shmx::inspect::RawPublisher;
use std::collections::{HashMap, HashSet};
use std::ops::Range;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Queue depth of the local publishers of remote samples on a topic that does not exist yet
/// (the default topic limit); else the topic's limit.
const RELAY_QUEUE_DEPTH: usize = 256;

/// Samples waiting for their relay to be made, at most (the others are dropped, counted).
const WAITING_AT_MOST: usize = 65_536;

/// Remote publishers remembered as gone (or as alive), at most (then the memory of the gone
/// is dropped whole; more alive ones are not remembered, and their relays go after
/// [`TOKEN_GRACE`]).
const GONE_REMEMBERED: usize = 100_000;

/// How long a relay may stand without its remote publisher's liveliness token (which comes
/// on its own way, maybe after the first samples).
const TOKEN_GRACE: Duration = Duration::from_secs(5);

/// A remote publisher: (the bridge that sent its samples, its id).
type Who = (u64, u64);

/// A sample from afar whose relay is not ready: its header, topic, and where its bytes are
/// in the Zenoh sample (which may carry others too).
pub(crate) struct Arrival {
    header: Header,
    topic: String,
    body: Range<usize>,
    sample: zenoh::sample::Sample,
}

impl Arrival {
    fn who(&self) -> Who {
        (self.header.origin, self.header.publisher_id)
    }
}

/// The publishers of remote samples, shared by Zenoh's callback (which publishes a sample
/// at once when its publisher is ready: no hand-off to another thread) and the ingress
/// thread (which makes publishers: claims, schemas, types).
///
/// Order: the callback hands a sample to the thread only while holding `ready` and only
/// when its publisher has no relay; the thread, once it made a relay, inserts it and hands
/// over everything queued while holding `ready`. So every sample of a publisher that was
/// queued is published before any the callback publishes itself.
pub(crate) struct Ingress {
    shared: Arc<Shared>,
    ready: Mutex<Relays>,
    to_thread: Mutex<SyncSender<Arrival>>,
}

/// The relays of remote publishers, by topic, and the remote publishers known gone.
#[derive(Default)]
pub(crate) struct Relays {
    by_topic: HashMap<String, HashMap<Who, RawPublisher>>,
    /// Remote publishers whose liveliness token went: a late sample of theirs does not make
    /// a relay again, until the token comes back (ids are random per publisher: one comes
    /// back only when the link it went with does).
    gone: HashSet<Who>,
    /// Remote publishers whose liveliness token is there, by topic.
    alive: HashSet<(String, Who)>,
    /// When each relay was made.
    made: HashMap<(String, Who), Instant>,
}

impl Relays {
    fn get(&self, topic: &str, who: Who) -> Option<&RawPublisher> {
        self.by_topic.get(topic)?.get(&who)
    }

    fn insert(&mut self, topic: &str, who: Who, relay: RawPublisher) {
        self.made.insert((topic.to_owned(), who), Instant::now());
        self.by_topic
            .entry(topic.to_owned())
            .or_default()
            .insert(who, relay);
    }

    fn remove(&mut self, topic: &str, who: Who) -> Option<RawPublisher> {
        self.made.remove(&(topic.to_owned(), who));
        let relays = self.by_topic.get_mut(topic)?;
        let relay = relays.remove(&who);
        if relays.is_empty() {
            self.by_topic.remove(topic);
        }
        relay
    }

    fn is_gone(&self, who: Who) -> bool {
        self.gone.contains(&who)
    }

    /// Takes out the relays of remote publishers that have had no liveliness token for
    /// [`TOKEN_GRACE`] since they were made (samples under ids no bridge announces: a
    /// confused or hostile peer's), to be dropped by the caller once `ready` is let go.
    fn unannounced(&mut self) -> Vec<RawPublisher> {
        let stale: Vec<(String, Who)> = self
            .made
            .iter()
            .filter(|(key, when)| !self.alive.contains(*key) && when.elapsed() > TOKEN_GRACE)
            .map(|(key, _)| key.clone())
            .collect();
        stale
            .into_iter()
            .filter_map(|(topic, who)| self.remove(&topic, who))
            .collect()
    }

    fn has_topic(&self, topic: &str) -> bool {
        self.by_topic.contains_key(topic)
    }

    fn relays_of(&self, topic: &str) -> usize {
        self.by_topic.get(topic).map_or(0, HashMap::len)
    }
}

impl Ingress {
    pub(crate) fn new(shared: Arc<Shared>) -> (Arc<Ingress>, Receiver<Arrival>) {
        let (tx, rx) = std::sync::mpsc::sync_channel(WAITING_AT_MOST);
        let ingress = Ingress {
            shared,
            ready: Mutex::new(Relays::default()),
            to_thread: Mutex::new(tx),
        };
        (Arc::new(ingress), rx)
    }

    /// Zenoh's callback: samples of one topic another bridge put, one record each.
    pub(crate) fn on_sample(&self, sample: zenoh::sample::Sample) {
        let shared = &self.shared;
        let Some(topic) = sample
            .key_expr()
            .as_str()
            .strip_prefix(shared.prefix.as_str())
            .and_then(|t| t.strip_prefix('/'))
        else {
            return;
        };
        let mut ready = self.ready.lock().expect("ready");
        for record in wire::records(sample.payload()) {
            let Some((header, body)) = record else {
                shared.stats.malformed.fetch_add(1, Ordering::Relaxed);
                return;
            };
            if header.origin == shared.origin {
                return;
            }
            if header.len > shared.max_sample_bytes {
                shared.stats.too_large.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            let who = (header.origin, header.publisher_id);
            if ready.is_gone(who) {
                continue;
            }
            if ready.get(topic, who).is_some() {
                publish(shared, &mut ready, topic, &header, sample.payload(), body);
            } else {
                let arrival = Arrival {
                    header,
                    topic: topic.to_owned(),
                    body,
                    sample: sample.clone(),
                };
                // Samples wait for their relay in a bounded queue: past it, they are dropped
                // (and counted), not kept without bound.
                if let Err(TrySendError::Full(_)) =
                    self.to_thread.lock().expect("channel").try_send(arrival)
                {
                    shared.stats.dropped.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }

    /// Zenoh's liveliness callback: a remote publisher's token came or went. When it went,
    /// its relay goes (its samples stay readable here until taken), and samples of it that
    /// come later are dropped.
    pub(crate) fn on_liveliness(&self, sample: zenoh::sample::Sample) {
        let shared = &self.shared;
        let Some((origin, id, topic)) =
            crate::egress::parse_alive_key(shared, sample.key_expr().as_str())
        else {
            return;
        };
        if origin == shared.origin {
            return;
        }
        let mut ready = self.ready.lock().expect("ready");
        if sample.kind() == zenoh::sample::SampleKind::Put {
            // Back (its token went with a link that broke, and came back with it): its
            // samples are published again.
            ready.gone.remove(&(origin, id));
            if ready.alive.len() < GONE_REMEMBERED {
                ready.alive.insert((topic.to_owned(), (origin, id)));
            }
            return;
        }
        ready.alive.remove(&(topic.to_owned(), (origin, id)));
        if ready.gone.len() >= GONE_REMEMBERED {
            ready.gone.clear();
        }
        ready.gone.insert((origin, id));
        if let Some(relay) = ready.remove(topic, (origin, id)) {
            drop(ready);
            drop(relay);
            shared.stats.relays_removed.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Publishes the record at `body` of `payload` through its relay (which must be ready).
fn publish(
    shared: &Shared,
    ready: &mut Relays,
    topic: &str,
    header: &Header,
    payload: &zenoh::bytes::ZBytes,
    body: Range<usize>,
) {
    let who = (header.origin, header.publisher_id);
    let Some(relay) = ready.get(topic, who) else {
        return;
    };
    let len = body.len();
    if len < relay.size() || (len > relay.capacity() && relay.capacity() == relay.size()) {
        // Not a sample of this type at all: counted, the relay kept.
        shared.stats.malformed.fetch_add(1, Ordering::Relaxed);
        return;
    }
    let result = relay.loan(len).and_then(|mut loan| {
        wire::copy_range(payload, body, &mut loan)?;
        let time = (header.publish_time != 0).then_some(header.publish_time);
        loan.publish_relayed(len, header.sequence, time)
    });
    match result {
        Ok(()) => {
            shared.stats.received.fetch_add(1, Ordering::Relaxed);
        }
        Err(e) => {
            shared.problem(format!("publishing a sample of {topic} from afar: {e}"));
            // A sample longer than the room made for its tail: a new relay with more room
            // next time.
            ready.remove(topic, who);
        }
    }
}
