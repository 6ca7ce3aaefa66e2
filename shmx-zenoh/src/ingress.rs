//! Remote topics in from Zenoh: samples other bridges put are published locally, each
//! remote publisher through a local publisher of its own, marked as relayed so that no
//! bridge sends them out again.

use crate::claim::{self, Claim, Direction};
use crate::wire::Header;
use crate::Shared;
use shmx::inspect::RawPublisher;
use shmx::schema_text::MessageType;
use shmx::PublisherConfig;
use std::collections::VecDeque;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use zenoh::Wait;

/// Queue depth of the local publishers of remote samples (the default topic limit).
const RELAY_QUEUE_DEPTH: usize = 256;

/// How long a bridge waits for another's answer about a schema.
const SCHEMA_TIMEOUT: Duration = Duration::from_secs(2);

/// A local publisher per remote publisher: (topic, origin bridge, publisher id).
type Key = (String, u64, u64);

/// A sample from afar, read: its header, topic and key.
pub(crate) struct Arrival {
    header: Header,
    topic: String,
    key: Key,
    sample: zenoh::sample::Sample,
}

/// The publishers of remote samples, shared by Zenoh's callback (which publishes a sample
/// at once when its publisher is ready: no hand-off to another thread) and the ingress
/// thread (which makes publishers: claims, schemas, types).
///
/// Order: the callback hands a sample to the thread only while holding `ready` and only
/// when its key has no publisher; the thread, once it made a key's publisher, inserts it
/// and hands over everything queued while holding `ready`. So every sample of a key that
/// was queued is published before any the callback publishes itself.
pub(crate) struct Ingress {
    shared: Arc<Shared>,
    ready: Mutex<Relays>,
    to_thread: Mutex<Sender<Arrival>>,
}

/// The local publishers of remote ones, and the remote ones known gone.
#[derive(Default)]
pub(crate) struct Relays {
    publishers: HashMap<Key, RawPublisher>,
    /// Remote publishers whose liveliness token went: a late sample of theirs does not make
    /// a relay again. (Ids are random per publisher: none comes back.)
    gone: HashSet<Key>,
}

/// Remote publishers remembered as gone, at most (then the oldest memory is dropped whole).
const GONE_REMEMBERED: usize = 100_000;

impl Ingress {
    pub(crate) fn new(shared: Arc<Shared>) -> (Arc<Ingress>, Receiver<Arrival>) {
        let (tx, rx) = std::sync::mpsc::channel();
        let ingress = Ingress {
            shared,
            ready: Mutex::new(Relays::default()),
            to_thread: Mutex::new(tx),
        };
        (Arc::new(ingress), rx)
    }

    /// Zenoh's callback: a sample another bridge put.
    pub(crate) fn on_sample(&self, sample: zenoh::sample::Sample) {
        let shared = &self.shared;
        let Some(header) = sample
            .attachment()
            .and_then(|a| Header::decode(&a.to_bytes()))
        else {
            shared.stats.malformed.fetch_add(1, Ordering::Relaxed);
            return;
        };
        if header.origin == shared.origin {
            return;
        }
        let Some(topic) = sample
            .key_expr()
            .as_str()
            .strip_prefix(shared.prefix.as_str())
            .and_then(|t| t.strip_prefix('/'))
            .map(str::to_owned)
        else {
            return;
        };
        let key = (topic.clone(), header.origin, header.publisher_id);
        let mut ready = self.ready.lock().expect("ready");
        if ready.gone.contains(&key) {
            return;
        }
        if ready.publishers.contains_key(&key) {
            publish(shared, &mut ready.publishers, &key, &header, &sample);
        } else {
            let arrival = Arrival {
                header,
                topic,
                key,
                sample,
            };
            let _ = self.to_thread.lock().expect("channel").send(arrival);
        }
    }
}

impl Ingress {
    /// Zenoh's liveliness callback: a remote publisher's token came or went. When it went,
    /// its relay goes (its samples stay readable here until taken), and samples of it that
    /// come later are dropped.
    pub(crate) fn on_liveliness(&self, sample: zenoh::sample::Sample) {
        if sample.kind() != zenoh::sample::SampleKind::Delete {
            return;
        }
        let shared = &self.shared;
        let Some(rest) = sample
            .key_expr()
            .as_str()
            .strip_prefix(shared.alive_prefix().as_str())
            .and_then(|r| r.strip_prefix('/'))
        else {
            return;
        };
        let mut parts = rest.splitn(3, '/');
        let (Some(origin), Some(id), Some(topic)) = (parts.next(), parts.next(), parts.next())
        else {
            return;
        };
        let (Ok(origin), Ok(id)) = (u64::from_str_radix(origin, 16), u64::from_str_radix(id, 16))
        else {
            return;
        };
        if origin == shared.origin {
            return;
        }
        let key = (topic.to_owned(), origin, id);
        let mut ready = self.ready.lock().expect("ready");
        if ready.gone.len() >= GONE_REMEMBERED {
            ready.gone.clear();
        }
        ready.gone.insert(key.clone());
        if let Some(relay) = ready.publishers.remove(&key) {
            drop(ready);
            drop(relay);
            shared.stats.relays_removed.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Publishes `sample` through `key`'s publisher (which must be in `ready`).
fn publish(
    shared: &Shared,
    ready: &mut HashMap<Key, RawPublisher>,
    key: &Key,
    header: &Header,
    sample: &zenoh::sample::Sample,
) {
    let bytes = sample.payload().to_bytes();
    let time = (header.publish_time != 0).then_some(header.publish_time);
    match ready[key].send_relayed(&bytes, header.sequence, time) {
        Ok(()) => {
            shared.stats.received.fetch_add(1, Ordering::Relaxed);
        }
        Err(e) => {
            shared.problem(format!("publishing a sample of {} from afar: {e}", key.0));
            // A sample longer than the room made for its tail: a new publisher with more
            // room next time.
            ready.remove(key);
        }
    }
}

/// Makes the publishers of the samples `arrivals` brings (publishing those samples) until
/// `shared.stop` is set.
pub(crate) fn run(ingress: Arc<Ingress>, session: zenoh::Session, arrivals: Receiver<Arrival>) {
    let shared = ingress.shared.clone();
    let mut refused: HashSet<(String, u64)> = HashSet::new();
    let mut schemas: HashMap<u64, String> = HashMap::new();
    // The topics this bridge is the one of its host to publish, and those it waits for.
    let mut claims: HashMap<String, Claim> = HashMap::new();
    let mut waiting = claim::Waiting::default();
    let mut later: VecDeque<Arrival> = VecDeque::new();
    while !shared.stop.load(Ordering::Relaxed) {
        let a = match later.pop_front() {
            Some(a) => a,
            None => match arrivals.recv_timeout(Duration::from_millis(50)) {
                Ok(a) => a,
                Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => return,
            },
        };
        let topic = a.topic.as_str();
        if refused.contains(&(topic.to_owned(), a.header.fingerprint)) {
            continue;
        }
        if !claims.contains_key(topic) {
            if !waiting.may_try(topic) {
                continue;
            }
            match claim::take(&shared.root, Direction::In, topic) {
                Ok(Some(c)) => {
                    waiting.taken(topic);
                    claims.insert(topic.to_owned(), c);
                }
                // Another bridge of this host publishes it.
                Ok(None) => {
                    waiting.held_elsewhere(topic);
                    continue;
                }
                Err(e) => {
                    shared.problem(format!("refusing remote topic {topic}: its claim: {e}"));
                    refused.insert((topic.to_owned(), a.header.fingerprint));
                    continue;
                }
            }
        }
        let mut ready = ingress.ready.lock().expect("ready");
        if ready.gone.contains(&a.key) {
            continue;
        }
        if !ready.publishers.contains_key(&a.key) {
            // Made without holding `ready` (asking for a schema may take a while).
            drop(ready);
            let len = a.sample.payload().len();
            let made = publisher(&shared, &session, &mut schemas, topic, &a.header, len);
            ready = ingress.ready.lock().expect("ready");
            if ready.gone.contains(&a.key) {
                continue;
            }
            match made {
                Ok(p) => {
                    ready.publishers.insert(a.key.clone(), p);
                }
                Err(reason) => {
                    shared.problem(format!("refusing remote topic {topic}: {reason}"));
                    refused.insert((topic.to_owned(), a.header.fingerprint));
                    continue;
                }
            }
        }
        publish(&shared, &mut ready.publishers, &a.key, &a.header, &a.sample);
        // What the callback queued meanwhile: published now if its publisher is ready (so
        // before anything the callback publishes once `ready` is let go), else later.
        while let Ok(queued) = arrivals.try_recv() {
            if ready.gone.contains(&queued.key) {
                continue;
            }
            if ready.publishers.contains_key(&queued.key) {
                publish(
                    &shared,
                    &mut ready.publishers,
                    &queued.key,
                    &queued.header,
                    &queued.sample,
                );
            } else {
                later.push_back(queued);
            }
        }
    }
}

/// A local publisher for a remote publisher's samples on `topic`.
fn publisher(
    shared: &Shared,
    session: &zenoh::Session,
    schemas: &mut HashMap<u64, String>,
    topic: &str,
    header: &Header,
    len: usize,
) -> Result<RawPublisher, String> {
    let schema = match schemas.get(&header.fingerprint) {
        Some(s) => s.clone(),
        None => {
            let s = ask_schema(shared, session, header.fingerprint)?;
            schemas.insert(header.fingerprint, s.clone());
            s
        }
    };
    // Deep queues: samples come over the network in bursts.
    let mut config = PublisherConfig {
        queue_depth: RELAY_QUEUE_DEPTH,
        ..PublisherConfig::default()
    };
    let root = Some(shared.root.as_path());
    let open = if shmx::schema_text::is_archived(&schema) {
        config.max_tail_bytes = (len * 2).max(64 * 1024);
        relay(root, topic, None, config, header).map_err(|e| match e {
            shmx::Error::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
                "topics of archived rkyv values are not created from afar: start a subscriber \
                 of it here first"
                    .to_owned()
            }
            e => e.to_string(),
        })?
    } else {
        let ty = MessageType::parse(&schema).map_err(|e| format!("its schema: {e}"))?;
        if ty.fingerprint() != header.fingerprint || ty.size() as u64 != header.size {
            return Err(format!(
                "its schema ({:#018x}) does not match the fingerprint it came with ({:#018x})",
                ty.fingerprint(),
                header.fingerprint
            ));
        }
        if ty.has_tail() {
            config.max_tail_bytes = (len.saturating_sub(ty.size()) * 2).max(64 * 1024);
        }
        // A local topic of another type: shmx's TypeMismatch names both fingerprints.
        relay(root, topic, Some(&ty), config, header).map_err(|e| e.to_string())?
    };
    if open.fingerprint() != header.fingerprint {
        return Err(format!(
            "the local topic carries {:#018x}, the remote one {:#018x}",
            open.fingerprint(),
            header.fingerprint
        ));
    }
    Ok(open)
}

/// A local publisher whose samples carry the remote publisher's id (if it sent one).
fn relay(
    root: Option<&std::path::Path>,
    topic: &str,
    ty: Option<&MessageType>,
    config: PublisherConfig,
    header: &Header,
) -> shmx::Result<RawPublisher> {
    match header.publisher_id {
        0 => RawPublisher::open(root, topic, ty, config),
        id => RawPublisher::open_relay(root, topic, ty, config, id),
    }
}

/// The schema text of `fingerprint`, from whichever bridge forwards a topic of it.
fn ask_schema(
    shared: &Shared,
    session: &zenoh::Session,
    fingerprint: u64,
) -> Result<String, String> {
    let key = format!("{}/{fingerprint:016x}", shared.schema_prefix());
    let replies = session
        .get(&key)
        .timeout(SCHEMA_TIMEOUT)
        .wait()
        .map_err(|e| format!("asking for its schema: {e}"))?;
    while let Ok(reply) = replies.recv() {
        if let Ok(sample) = reply.result() {
            if let Ok(text) = sample.payload().try_to_string() {
                return Ok(text.into_owned());
            }
        }
    }
    Err(format!(
        "no bridge answered for the schema of {fingerprint:#018x}"
    ))
}
