//! Local topics out to Zenoh: a thread subscribes to the local topics that match, and puts
//! each sample that did not itself come over a bridge.

use crate::claim::{self, Claim, Direction};
use crate::wire::{self, Header, BATCH_BYTES, HEADER_LEN};
use crate::{Shared, TOPIC_SCAN_EVERY};
use shmx::inspect::RawSubscriber;
use shmx::SubscriberConfig;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use zenoh::bytes::ZBytes;
use zenoh::key_expr::KeyExpr;
use zenoh::liveliness::LivelinessToken;
use zenoh::qos::{CongestionControl, Reliability};
use zenoh::Wait;

/// A local topic being forwarded.
struct Out {
    sub: RawSubscriber,
    publisher: zenoh::pubsub::Publisher<'static>,
    fingerprint: u64,
    size: u64,
    /// The shortest time between two samples sent (a rate limit), and when the last went.
    every: Option<Duration>,
    last_sent: Option<Instant>,
    /// A liveliness token per local publisher whose samples went out (by publisher id):
    /// receiving bridges remove their relay of it when its token goes.
    tokens: HashMap<u64, LivelinessToken>,
    /// When the tokens were last checked against the topic's publishers.
    tokens_checked: Instant,
    /// This bridge is the one of its host that forwards the topic.
    _claim: Claim,
}

/// Forwards until `shared.stop` is set.
pub(crate) fn run(shared: Arc<Shared>, session: zenoh::Session) {
    let mut outs: HashMap<String, Out> = HashMap::new();
    let mut refused: HashSet<String> = HashSet::new();
    let mut waiting = claim::Waiting::default();
    let mut next_scan = Instant::now();
    // The payload being filled, kept between puts for its capacity.
    let mut payload = Vec::new();
    while !shared.stop.load(Ordering::Relaxed) {
        if Instant::now() >= next_scan {
            next_scan = Instant::now() + TOPIC_SCAN_EVERY;
            scan(&shared, &session, &mut outs, &mut refused, &mut waiting);
        }
        let mut sent = 0;
        for (topic, out) in &mut outs {
            sent += forward(&shared, &session, topic, out, &mut payload);
        }
        // Leave topics whose publishers left (it joins only topics that have one): the
        // bridge alone keeps no topic alive.
        outs.retain(|_, o| o.sub.publisher_count() > 0 || o.sub.samples_waiting());
        for (topic, out) in &mut outs {
            retire_tokens(&shared, topic, out);
        }
        if sent == 0 {
            // Woken by the first sample's descriptor. (Spinning first, 50 µs, made 8-byte
            // ping-pongs through two bridges slower on two cores: 88.9 µs against 62.1 µs
            // one-way, `cargo bench -p shmx-zenoh --bench bridge -- --rounds 5`.)
            wait_any(&outs, Duration::from_millis(20));
        }
    }
}

/// Joins the local topics that match and are not forwarded yet.
fn scan(
    shared: &Shared,
    session: &zenoh::Session,
    outs: &mut HashMap<String, Out>,
    refused: &mut HashSet<String>,
    waiting: &mut claim::Waiting,
) {
    let Ok(names) = shmx::inspect::topic_names(&shared.root) else {
        return;
    };
    for name in names {
        if outs.contains_key(&name)
            || refused.contains(&name)
            || !shared.forwards(&name)
            || !waiting.may_try(&name)
        {
            continue;
        }
        // Only a topic that has a publisher: the bridge never keeps a topic (or its type)
        // alive by itself, and leaves it when its publishers are gone.
        let published = shmx::inspect::topic(&shared.root, &name).is_ok_and(|info| {
            info.publishers
                .iter()
                .any(|p| p.alive && p.state == "active")
        });
        if !published {
            continue;
        }
        // Another bridge of this host may forward it already.
        let claim = match claim::take(&shared.root, Direction::Out, &name) {
            Ok(Some(claim)) => claim,
            Ok(None) => {
                waiting.held_elsewhere(&name);
                continue;
            }
            Err(e) => {
                shared.problem(format!("not forwarding {name}: its claim: {e}"));
                refused.insert(name);
                continue;
            }
        };
        waiting.taken(&name);
        let config = SubscriberConfig {
            queue_depth: usize::MAX,
            publish_times: true,
            ..SubscriberConfig::default()
        };
        let sub = match RawSubscriber::open(Some(&shared.root), &name, None, config) {
            Ok(sub) => sub,
            Err(shmx::Error::Io { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                continue;
            }
            Err(e) => {
                shared.problem(format!("not forwarding {name}: {e}"));
                refused.insert(name);
                continue;
            }
        };
        let key = match KeyExpr::try_from(format!("{}/{name}", shared.prefix)) {
            Ok(key) => key,
            Err(e) => {
                shared.problem(format!("not forwarding {name}: not a Zenoh key: {e}"));
                refused.insert(name);
                continue;
            }
        };
        let options = shared.options_of(&name);
        let congestion = if options.drop_when_congested {
            CongestionControl::Drop
        } else {
            CongestionControl::Block
        };
        let reliability = if options.best_effort {
            Reliability::BestEffort
        } else {
            Reliability::Reliable
        };
        let publisher = match session
            .declare_publisher(key)
            .congestion_control(congestion)
            .reliability(reliability)
            // Sent at once: the egress batches what waits itself (8-byte latency through
            // two bridges 113.6/115.1/107.0 µs express against 121.6/125.2/115.1 µs
            // batched by Zenoh, alternated runs of `--only latency`).
            .express(true)
            .wait()
        {
            Ok(p) => p,
            Err(e) => {
                shared.problem(format!("not forwarding {name}: {e}"));
                refused.insert(name);
                continue;
            }
        };
        let fingerprint = sub.fingerprint();
        shared
            .schemas
            .lock()
            .expect("schemas")
            .insert(fingerprint, sub.schema().to_owned());
        let size = sub.size() as u64;
        outs.insert(
            name,
            Out {
                sub,
                publisher,
                fingerprint,
                size,
                every: options
                    .max_rate_hz
                    .filter(|hz| *hz > 0.0)
                    .and_then(|hz| Duration::try_from_secs_f64(1.0 / hz).ok()),
                last_sent: None,
                tokens: HashMap::new(),
                tokens_checked: Instant::now(),
                _claim: claim,
            },
        );
    }
}

/// How often a topic's liveliness tokens are checked against its publishers (sooner when it
/// has fewer publishers than tokens).
const TOKENS_EVERY: Duration = Duration::from_secs(1);

/// The liveliness key of local publisher `id` of `topic`: `<prefix>-alive/<this bridge>/<id>/<topic>`.
pub(crate) fn alive_key(shared: &Shared, id: u64, topic: &str) -> String {
    format!(
        "{}/{:016x}/{id:016x}/{topic}",
        shared.alive_prefix(),
        shared.origin
    )
}

/// The parts of a liveliness key [`alive_key`] made: (bridge, publisher id, topic).
pub(crate) fn parse_alive_key<'k>(shared: &Shared, key: &'k str) -> Option<(u64, u64, &'k str)> {
    let rest = key
        .strip_prefix(shared.alive_prefix().as_str())?
        .strip_prefix('/')?;
    let mut parts = rest.splitn(3, '/');
    let origin = u64::from_str_radix(parts.next()?, 16).ok()?;
    let id = u64::from_str_radix(parts.next()?, 16).ok()?;
    Some((origin, id, parts.next()?))
}

/// Lets go of the tokens of `topic`'s publishers that are gone, once every sample they sent
/// went out (so that a receiving bridge removes its relay after the last one).
fn retire_tokens(shared: &Shared, topic: &str, out: &mut Out) {
    if out.tokens.is_empty()
        || (out.tokens.len() <= out.sub.publisher_count()
            && out.tokens_checked.elapsed() < TOKENS_EVERY)
    {
        return;
    }
    out.tokens_checked = Instant::now();
    let Ok(info) = shmx::inspect::topic(&shared.root, topic) else {
        return;
    };
    let active: HashSet<u64> = info
        .publishers
        .iter()
        .filter(|p| p.alive && p.state == "active")
        .map(|p| p.id)
        .collect();
    // Read after the publishers: a gone publisher sends nothing more, so once its samples are
    // all taken, its token may go.
    if out.sub.samples_waiting() {
        return;
    }
    out.tokens.retain(|id, _| active.contains(id));
}

/// Samples one topic sends in one pass at most (then the next topic's turn).
const PASS_SAMPLES: usize = 4096;

/// Sends what waits on `out`'s topic, the samples that wait together in payloads of up to
/// [`BATCH_BYTES`] (a larger one alone); returns the number of samples sent.
///
/// (A large sample's bytes lent to Zenoh from shared memory, uncopied, held until Zenoh let
/// go of them, deadlocked the egress: a fragmentation that Zenoh gives up on keeps the
/// message in its fragment buffer until the next one, which waited for it.)
fn forward(
    shared: &Shared,
    session: &zenoh::Session,
    topic: &str,
    out: &mut Out,
    payload: &mut Vec<u8>,
) -> usize {
    let (mut batched, mut sent) = (0, 0);
    for _ in 0..PASS_SAMPLES {
        let Ok(Some(sample)) = out.sub.take() else {
            break;
        };
        if sample.is_relayed() {
            shared.stats.not_sent_back.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        if let (Some(every), Some(last)) = (out.every, out.last_sent) {
            if last.elapsed() < every {
                shared.stats.rate_limited.fetch_add(1, Ordering::Relaxed);
                continue;
            }
        }
        if out.every.is_some() {
            out.last_sent = Some(Instant::now());
        }
        let id = sample.publisher_id();
        if let std::collections::hash_map::Entry::Vacant(entry) = out.tokens.entry(id) {
            match session
                .liveliness()
                .declare_token(alive_key(shared, id, topic))
                .wait()
            {
                Ok(token) => {
                    entry.insert(token);
                }
                Err(e) => shared.problem(format!("announcing a publisher of {topic}: {e}")),
            }
        }
        let bytes = sample.bytes();
        let header = Header {
            fingerprint: out.fingerprint,
            size: out.size,
            sequence: sample.sequence(),
            publisher_id: id,
            origin: shared.origin,
            publish_time: sample.publish_time_ns().unwrap_or(0),
            len: bytes.len() as u64,
        };
        if batched > 0 && payload.len() + HEADER_LEN + bytes.len() > BATCH_BYTES {
            sent += put(shared, topic, out, std::mem::take(payload).into(), batched);
            batched = 0;
        }
        if batched == 0 {
            payload.clear();
            payload.reserve(HEADER_LEN + bytes.len());
        }
        wire::append(payload, &header, bytes);
        batched += 1;
    }
    if batched > 0 {
        sent += put(shared, topic, out, std::mem::take(payload).into(), batched);
    }
    sent
}

/// Puts `payload` (`samples` records) on Zenoh; returns the samples sent.
fn put(shared: &Shared, topic: &str, out: &Out, payload: ZBytes, samples: usize) -> usize {
    match out.publisher.put(payload).wait() {
        Ok(()) => {
            let stats = &shared.stats;
            stats.sent.fetch_add(samples as u64, Ordering::Relaxed);
            stats.messages.fetch_add(1, Ordering::Relaxed);
            samples
        }
        Err(e) => {
            shared.problem(format!("sending samples of {topic}: {e}"));
            0
        }
    }
}

/// Sleeps until a sample waits on some topic, or `timeout`.
fn wait_any(outs: &HashMap<String, Out>, timeout: Duration) {
    use rustix::event::{PollFd, PollFlags};
    let mut fds = Vec::with_capacity(outs.len());
    for out in outs.values() {
        if let Ok(fd) = out.sub.fd() {
            fds.push(PollFd::from_borrowed_fd(fd, PollFlags::IN));
        }
    }
    let timeout = rustix::time::Timespec {
        tv_sec: 0,
        tv_nsec: i64::from(timeout.subsec_nanos()),
    };
    let _ = rustix::event::poll(&mut fds, Some(&timeout));
}
