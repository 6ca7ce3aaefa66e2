//! The ingress thread: makes the local publishers of remote publishers (the topic's claim,
//! the type's schema asked of the sending bridge, the local topic's type checked), then
//! publishes what waited for them.

use super::{publish, Arrival, Ingress, RELAY_QUEUE_DEPTH};
use crate::claim::{self, Claim, Direction};
use crate::wire::Header;
use crate::Shared;
use shmx::inspect::RawPublisher;
use shmx::schema_text::MessageType;
use shmx::PublisherConfig;
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::Duration;
use zenoh::Wait;

/// How long a bridge waits for another's answer about a schema.
const SCHEMA_TIMEOUT: Duration = Duration::from_secs(2);

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
        let who = a.who();
        let mut ready = ingress.ready.lock().expect("ready");
        if ready.is_gone(who) {
            continue;
        }
        if ready.get(topic, who).is_none() {
            // Made without holding `ready` (asking for a schema may take a while).
            drop(ready);
            let len = a.body.len();
            let made = publisher(&shared, &session, &mut schemas, topic, &a.header, len);
            ready = ingress.ready.lock().expect("ready");
            if ready.is_gone(who) {
                continue;
            }
            match made {
                Ok(p) => ready.insert(topic, who, p),
                Err(reason) => {
                    shared.problem(format!("refusing remote topic {topic}: {reason}"));
                    refused.insert((topic.to_owned(), a.header.fingerprint));
                    continue;
                }
            }
        }
        publish(
            &shared,
            &mut ready,
            topic,
            &a.header,
            a.sample.payload(),
            a.body.clone(),
        );
        // What the callback queued meanwhile: published now if its publisher is ready (so
        // before anything the callback publishes once `ready` is let go), else later.
        while let Ok(q) = arrivals.try_recv() {
            if ready.is_gone(q.who()) {
                continue;
            }
            if ready.get(&q.topic, q.who()).is_some() {
                publish(
                    &shared,
                    &mut ready,
                    &q.topic,
                    &q.header,
                    q.sample.payload(),
                    q.body.clone(),
                );
            } else {
                later.push_back(q);
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
    // Deep queues: samples come over the network in bursts. As deep as the topic allows
    // (each subscriber's own depth then decides).
    let depth = shmx::inspect::topic(&shared.root, topic)
        .map_or(RELAY_QUEUE_DEPTH, |t| t.limits.max_queue_depth.max(1));
    let mut config = PublisherConfig {
        queue_depth: depth,
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
