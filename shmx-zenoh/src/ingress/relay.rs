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
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};
use zenoh::Wait;

/// How long a bridge waits for another's answer about a schema.
const SCHEMA_TIMEOUT: Duration = Duration::from_secs(2);

/// How often relays, claims and refusals are looked over.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

/// Types whose schemas are asked for at once, at most (samples of more are dropped, counted).
const ASKING_AT_MOST: usize = 256;

/// How long a refusal (of a remote topic's type, of a schema no bridge answered for, of a
/// claim that could not be taken) stands before the next sample makes the bridge try again.
const REFUSAL_STANDS: Duration = Duration::from_secs(10);

/// Makes the publishers of the samples `arrivals` brings (publishing those samples) until
/// `shared.stop` is set.
pub(crate) fn run(ingress: Arc<Ingress>, session: zenoh::Session, arrivals: Receiver<Arrival>) {
    let shared = ingress.shared.clone();
    // Refusals by (topic, fingerprint), with when.
    let mut refused: HashMap<(String, u64), Instant> = HashMap::new();
    let mut schemas: HashMap<u64, String> = HashMap::new();
    // Schemas asked for (answers come on `answers`), and the samples that wait for them.
    let (answer, answers) = std::sync::mpsc::channel::<(u64, String)>();
    let mut asking: HashMap<u64, (Instant, Vec<Arrival>)> = HashMap::new();
    // The topics this bridge is the one of its host to publish, and those it waits for.
    let mut claims: HashMap<String, Claim> = HashMap::new();
    let mut waiting = claim::Waiting::default();
    let mut later: VecDeque<Arrival> = VecDeque::new();
    let mut last_sweep = Instant::now();
    while !shared.stop.load(Ordering::Relaxed) {
        // Answers first: what waited for them goes before everything else.
        while let Ok((fingerprint, text)) = answers.try_recv() {
            if let Some((_, waited)) = asking.remove(&fingerprint) {
                schemas.insert(fingerprint, text);
                for a in waited.into_iter().rev() {
                    later.push_front(a);
                }
            }
        }
        asking.retain(|fingerprint, (since, waited)| {
            if since.elapsed() < SCHEMA_TIMEOUT {
                return true;
            }
            if let Some(a) = waited.first() {
                shared.problem(format!(
                    "refusing remote topic {}: no bridge answered for the schema of \
                     {fingerprint:#018x} with one that fits it",
                    a.topic
                ));
            }
            false
        });
        if last_sweep.elapsed() >= SWEEP_EVERY {
            last_sweep = Instant::now();
            // Let go of the relays of remote publishers no bridge announces, of the claims
            // of topics left without relays (their remote publishers went), and of refusals
            // that no longer stand.
            // (The relays go before the claims: a claim covers its topic until they did.)
            let unannounced = ingress.ready.lock().expect("ready").unannounced();
            shared
                .stats
                .relays_removed
                .fetch_add(unannounced.len() as u64, Ordering::Relaxed);
            drop(unannounced);
            let ready = ingress.ready.lock().expect("ready");
            claims.retain(|topic, _| ready.has_topic(topic));
            drop(ready);
            refused.retain(|_, when| when.elapsed() < REFUSAL_STANDS);
        }
        let idle = if asking.is_empty() {
            Duration::from_millis(50)
        } else {
            Duration::from_millis(2)
        };
        let a = match later.pop_front() {
            Some(a) => a,
            None => match arrivals.recv_timeout(idle) {
                Ok(a) => a,
                Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => return,
            },
        };
        let topic = a.topic.as_str();
        let refusal = (topic.to_owned(), a.header.fingerprint);
        if refused
            .get(&refusal)
            .is_some_and(|when| when.elapsed() < REFUSAL_STANDS)
        {
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
                    refused.insert(refusal, Instant::now());
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
            // A slot of the topic stays free for a publisher of this host.
            let relays = ready.relays_of(topic);
            drop(ready);
            let max = shmx::inspect::topic(&shared.root, topic)
                .map_or(shmx::TopicConfig::default().max_publishers, |t| {
                    t.limits.max_publishers
                });
            if relays + 1 >= max {
                shared.stats.relays_refused.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            // The type's schema: known, or asked for (without waiting: the sample waits
            // for the answer, as do the others of its type meanwhile).
            let fingerprint = a.header.fingerprint;
            let Some(schema) = schemas.get(&fingerprint) else {
                if let Some((_, waited)) = asking.get_mut(&fingerprint) {
                    waited.push(a);
                } else if asking.len() >= ASKING_AT_MOST {
                    shared.stats.dropped.fetch_add(1, Ordering::Relaxed);
                } else {
                    match ask_schema(&shared, &session, &a.header, answer.clone()) {
                        Ok(()) => {
                            asking.insert(fingerprint, (Instant::now(), vec![a]));
                        }
                        Err(reason) => {
                            shared.problem(format!("refusing remote topic {topic}: {reason}"))
                        }
                    }
                }
                continue;
            };
            // Made without holding `ready`.
            let made = publisher(&shared, schema, topic, &a.header, a.body.len());
            ready = ingress.ready.lock().expect("ready");
            if ready.is_gone(who) {
                continue;
            }
            match made {
                Ok(p) => ready.insert(topic, who, p),
                Err(reason) => {
                    shared.problem(format!("refusing remote topic {topic}: {reason}"));
                    refused.insert(refusal, Instant::now());
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
        // Before anything the callback publishes once `ready` is let go: what waited here,
        // in order (older than what the channel holds), then what the callback queued
        // meanwhile, each published now if its publisher is ready, else kept for later.
        let waited = std::mem::take(&mut later);
        for q in waited
            .into_iter()
            .chain(std::iter::from_fn(|| arrivals.try_recv().ok()))
        {
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

/// A local publisher for a remote publisher's samples on `topic`, of type `schema`.
fn publisher(
    shared: &Shared,
    schema: &str,
    topic: &str,
    header: &Header,
    len: usize,
) -> Result<RawPublisher, String> {
    // Deep queues: samples come over the network in bursts. As deep as the topic allows
    // (each subscriber's own depth then decides).
    let depth = shmx::inspect::topic(&shared.root, topic)
        .map_or(RELAY_QUEUE_DEPTH, |t| t.limits.max_queue_depth.max(1));
    let mut config = PublisherConfig {
        queue_depth: depth,
        ..PublisherConfig::default()
    };
    let root = Some(shared.root.as_path());
    let open = if shmx::schema_text::is_archived(schema) {
        // The whole sample is the archive: room for twice the first one (within the
        // bound on remote samples).
        config.max_tail_bytes = tail_room(shared, len);
        match header.publisher_id {
            0 => RawPublisher::open(root, topic, None, config),
            id => RawPublisher::open_archived_relay(
                root,
                topic,
                schema,
                header.fingerprint,
                config,
                id,
            ),
        }
        .map_err(|e| e.to_string())?
    } else {
        let ty = MessageType::parse(schema).map_err(|e| format!("its schema: {e}"))?;
        if ty.fingerprint() != header.fingerprint || ty.size() as u64 != header.size {
            return Err(format!(
                "its schema ({:#018x}) does not match the fingerprint it came with ({:#018x})",
                ty.fingerprint(),
                header.fingerprint
            ));
        }
        if ty.has_tail() {
            config.max_tail_bytes = tail_room(shared, len.saturating_sub(ty.size()));
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

/// Tail bytes a relay makes room for, its first sample's tail being `first`: twice that, at
/// least 64 KiB, and no more than remote samples may be long.
fn tail_room(shared: &Shared, first: usize) -> usize {
    let most = usize::try_from(shared.max_sample_bytes).unwrap_or(usize::MAX);
    first.saturating_mul(2).max(64 * 1024).min(most.max(first))
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

/// Asks the bridges for the schema text of `header`'s type, without waiting: the first
/// answer that lays out a type of that fingerprint and size (or names an archived one,
/// checked against the local topic later) comes on `answer`. Answers that do not fit are
/// passed over: a peer cannot make a type refused by answering first.
fn ask_schema(
    shared: &Shared,
    session: &zenoh::Session,
    header: &Header,
    answer: std::sync::mpsc::Sender<(u64, String)>,
) -> Result<(), String> {
    let (fingerprint, size) = (header.fingerprint, header.size);
    let key = format!("{}/{fingerprint:016x}", shared.schema_prefix());
    let answer = std::sync::Mutex::new(Some(answer));
    session
        .get(&key)
        .timeout(SCHEMA_TIMEOUT)
        .callback(move |reply| {
            let Ok(sample) = reply.result() else {
                return;
            };
            let Ok(text) = sample.payload().try_to_string() else {
                return;
            };
            let fits = shmx::schema_text::is_archived(&text)
                || MessageType::parse(&text)
                    .is_ok_and(|ty| ty.fingerprint() == fingerprint && ty.size() as u64 == size);
            if fits {
                if let Some(answer) = answer.lock().expect("answer").take() {
                    let _ = answer.send((fingerprint, text.into_owned()));
                }
            }
        })
        .wait()
        .map_err(|e| format!("asking for its schema: {e}"))
}
