//! Remote topics in from Zenoh: samples other bridges put are published locally, each
//! remote publisher through a local publisher of its own, marked as relayed so that no
//! bridge sends them out again.

use crate::claim::{self, Claim, Direction};
use crate::wire::Header;
use crate::Shared;
use shmx::inspect::RawPublisher;
use shmx::schema_text::MessageType;
use shmx::PublisherConfig;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::Duration;
use zenoh::Wait;

/// Queue depth of the local publishers of remote samples (the default topic limit).
const RELAY_QUEUE_DEPTH: usize = 256;

/// How long a bridge waits for another's answer about a schema.
const SCHEMA_TIMEOUT: Duration = Duration::from_secs(2);

/// A local publisher per remote publisher: (topic, origin bridge, publisher id).
type Key = (String, u64, u64);

/// Publishes what `samples` brings until `shared.stop` is set.
pub(crate) fn run(
    shared: Arc<Shared>,
    session: zenoh::Session,
    samples: Receiver<zenoh::sample::Sample>,
) {
    let mut pubs: HashMap<Key, RawPublisher> = HashMap::new();
    let mut refused: HashSet<(String, u64)> = HashSet::new();
    let mut schemas: HashMap<u64, String> = HashMap::new();
    // The topics this bridge is the one of its host to publish, and those it waits for.
    let mut claims: HashMap<String, Claim> = HashMap::new();
    let mut waiting = claim::Waiting::default();
    while !shared.stop.load(Ordering::Relaxed) {
        let sample = match samples.recv_timeout(Duration::from_millis(50)) {
            Ok(sample) => sample,
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => return,
        };
        let Some(header) = sample
            .attachment()
            .and_then(|a| Header::decode(&a.to_bytes()))
        else {
            shared.stats.malformed.fetch_add(1, Ordering::Relaxed);
            continue;
        };
        if header.origin == shared.origin {
            continue;
        }
        let key_expr = sample.key_expr().as_str();
        let Some(topic) = key_expr
            .strip_prefix(shared.prefix.as_str())
            .and_then(|t| t.strip_prefix('/'))
        else {
            continue;
        };
        if refused.contains(&(topic.to_owned(), header.fingerprint)) {
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
                    refused.insert((topic.to_owned(), header.fingerprint));
                    continue;
                }
            }
        }
        let bytes = sample.payload().to_bytes();
        let key = (topic.to_owned(), header.origin, header.publisher_id);
        if !pubs.contains_key(&key) {
            match publisher(&shared, &session, &mut schemas, topic, &header, bytes.len()) {
                Ok(p) => {
                    pubs.insert(key.clone(), p);
                }
                Err(reason) => {
                    shared.problem(format!("refusing remote topic {topic}: {reason}"));
                    refused.insert((topic.to_owned(), header.fingerprint));
                    continue;
                }
            }
        }
        let publisher = &pubs[&key];
        let time = (header.publish_time != 0).then_some(header.publish_time);
        match publisher.send_relayed(&bytes, time) {
            Ok(()) => {
                shared.stats.received.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                shared.problem(format!("publishing a sample of {topic} from afar: {e}"));
                // A sample longer than the room made for its tail: a new publisher with
                // more room next time.
                pubs.remove(&key);
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
        RawPublisher::open(root, topic, None, config).map_err(|e| match e {
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
        RawPublisher::open(root, topic, Some(&ty), config).map_err(|e| e.to_string())?
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
