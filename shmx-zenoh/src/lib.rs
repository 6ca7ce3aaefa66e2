//! A bridge that carries shmx topics between machines over [Zenoh](https://zenoh.io).
//!
//! A [`Bridge`] forwards the local topics that match its `forward` patterns to Zenoh, as key
//! `<prefix>/<topic>` (default prefix `shmx`), and publishes locally what other bridges put
//! under its `receive` patterns: each remote topic is created here with the remote type,
//! whose schema text a bridge asks the sending one for (a queryable at
//! `<prefix>-schema/<fingerprint>`), and checked against the fingerprint that comes with
//! every sample. Topic patterns are Zenoh key expressions over topic names: `*` one level of
//! `/`, `**` any.
//!
//! What goes on the wire is a record per sample: a fixed header ([`wire::Header`]:
//! fingerprint, size, the publisher's sequence number and id, the sending bridge, the publish
//! time, the length) and the sample's bytes (the message and the used part of its tail);
//! samples that wait together go in one Zenoh message. The receiving bridge publishes each
//! remote publisher's samples through a local relay under that publisher's id and sequence
//! numbers, made only for publishers a forwarding bridge announces (a Zenoh liveliness token
//! per publisher, `<prefix>-alive/...`) and removed when the announcement goes.
//!
//! **Loops.** Samples a bridge publishes locally are marked as relayed
//! (`RawPublisher::send_relayed`); no bridge forwards a relayed sample, and a bridge ignores
//! what it sent itself.
//!
//! **Remote types.** A remote topic whose type differs from the local topic of that name is
//! refused, with a problem naming both fingerprints ([`Bridge::problems`], and a line on
//! stderr from the `shmx-zenoh` command); its samples are not delivered.

mod claim;
mod egress;
mod ingress;
pub mod wire;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;
use zenoh::key_expr::KeyExpr;
use zenoh::Wait;

/// Problems kept for [`Bridge::problems`] (the newest).
const PROBLEMS_KEPT: usize = 100;

/// How often local topics are looked for.
pub(crate) const TOPIC_SCAN_EVERY: Duration = Duration::from_millis(100);

/// An error of setting up a bridge.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// shmx refused (the defaults file, the root).
    #[error(transparent)]
    Shmx(#[from] shmx::Error),
    /// Zenoh refused (the configuration, a key expression).
    #[error("zenoh: {0}")]
    Zenoh(String),
    /// The system refused a thread the bridge needs.
    #[error("starting the bridge's {0} thread: {1}")]
    Thread(&'static str, #[source] std::io::Error),
}

impl Error {
    fn zenoh(e: impl std::fmt::Display) -> Error {
        Error::Zenoh(e.to_string())
    }
}

/// How a bridge sends the local topics that match a pattern ([`BridgeBuilder::options`]).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct TopicOptions {
    /// When the network cannot take more: `true` drops the sample (frames that are stale a
    /// moment later), `false` makes the bridge wait (every sample counts) [default: wait].
    pub drop_when_congested: bool,
    /// Send at most this many samples a second (the others are skipped, counted in
    /// [`Stats::rate_limited`]): large frames over a thin link [default: no limit].
    pub max_rate_hz: Option<f64>,
    /// Send best-effort: Zenoh may pick a link that loses samples (UDP, where configured)
    /// rather than retransmit them [default: reliable].
    pub best_effort: bool,
}

/// Counters of a running bridge.
#[derive(Debug, Default)]
pub struct Stats {
    /// Local samples put on Zenoh.
    pub sent: AtomicU64,
    /// Zenoh messages those samples went in (samples that wait together share one).
    pub messages: AtomicU64,
    /// Remote samples published locally.
    pub received: AtomicU64,
    /// Local samples not sent because they came over a bridge.
    pub not_sent_back: AtomicU64,
    /// Zenoh samples without a valid header.
    pub malformed: AtomicU64,
    /// Local samples not sent because of a topic's rate limit.
    pub rate_limited: AtomicU64,
    /// Local publishers of remote ones removed because the remote one went (or was never
    /// announced by its bridge).
    pub relays_removed: AtomicU64,
    /// Remote publishers not given a local one: the topic's publisher slots were all taken
    /// but one (kept for a publisher of this host). Their samples are not delivered.
    pub relays_refused: AtomicU64,
    /// Remote samples longer than [`BridgeBuilder::max_sample_bytes`], not published.
    pub too_large: AtomicU64,
    /// Remote samples dropped because too many waited for their local publisher to be made.
    pub dropped: AtomicU64,
}

/// What the bridge's threads share.
pub(crate) struct Shared {
    root: PathBuf,
    prefix: String,
    forward: Vec<KeyExpr<'static>>,
    /// Options by pattern; the first that matches a topic applies.
    options: Vec<(KeyExpr<'static>, TopicOptions)>,
    /// A random id of this bridge's run, sent with every sample.
    origin: u64,
    /// The schema text of every type forwarded, by fingerprint.
    schemas: Mutex<std::collections::HashMap<u64, String>>,
    stop: AtomicBool,
    stats: Stats,
    problems: Mutex<Vec<String>>,
    /// Print problems to stderr as they happen.
    log: bool,
    /// Remote samples longer are not published (see [`BridgeBuilder::max_sample_bytes`]).
    max_sample_bytes: u64,
}

impl Shared {
    fn forwards(&self, topic: &str) -> bool {
        let Ok(key) = KeyExpr::try_from(topic) else {
            return false;
        };
        self.forward.iter().any(|f| f.intersects(&key))
    }

    /// The options of local topic `topic`.
    fn options_of(&self, topic: &str) -> TopicOptions {
        let Ok(key) = KeyExpr::try_from(topic) else {
            return TopicOptions::default();
        };
        self.options
            .iter()
            .find(|(p, _)| p.intersects(&key))
            .map_or_else(TopicOptions::default, |(_, o)| *o)
    }

    fn schema_prefix(&self) -> String {
        format!("{}-schema", self.prefix)
    }

    /// Where bridges announce the publishers they forward (liveliness tokens).
    fn alive_prefix(&self) -> String {
        format!("{}-alive", self.prefix)
    }

    fn problem(&self, text: String) {
        if self.log {
            eprintln!("shmx-zenoh: {text}");
        }
        let mut problems = self.problems.lock().expect("problems");
        if problems.len() >= PROBLEMS_KEPT {
            problems.remove(0);
        }
        problems.push(text);
    }
}

/// [`BridgeBuilder::max_sample_bytes`]'s default.
pub const DEFAULT_MAX_SAMPLE_BYTES: u64 = 64 << 20;

/// Sets up a [`Bridge`].
#[must_use]
pub struct BridgeBuilder {
    root: Option<PathBuf>,
    config: zenoh::Config,
    prefix: String,
    forward: Vec<String>,
    receive: Vec<String>,
    options: Vec<(String, TopicOptions)>,
    log: bool,
    max_sample_bytes: u64,
}

impl BridgeBuilder {
    /// How the local topics that match `pattern` are sent (the first pattern given that
    /// matches a topic applies).
    pub fn options(mut self, pattern: impl Into<String>, options: TopicOptions) -> Self {
        self.options.push((pattern.into(), options));
        self
    }

    /// The shmx root [default: the library's].
    pub fn root(mut self, root: impl Into<PathBuf>) -> Self {
        self.root = Some(root.into());
        self
    }

    /// Zenoh's configuration (mode, endpoints, TLS, access control) [default: Zenoh's].
    pub fn zenoh_config(mut self, config: zenoh::Config) -> Self {
        self.config = config;
        self
    }

    /// The first chunk of every key [default: `shmx`].
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Local topics to send (key-expression patterns over topic names).
    pub fn forward<I, S>(mut self, patterns: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.forward = patterns.into_iter().map(Into::into).collect();
        self
    }

    /// Remote topics to publish here (key-expression patterns over topic names).
    pub fn receive<I, S>(mut self, patterns: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.receive = patterns.into_iter().map(Into::into).collect();
        self
    }

    /// Remote samples longer than this are not published here (they are counted in
    /// [`Stats::too_large`]): a bound on the shared memory each sample of a peer's can take,
    /// since each remote publisher's local one makes room for samples as long as its
    /// longest. (A relay holds up to its topic's queue depth of them; the number of relays
    /// a topic has is bounded by its publisher slots.) [default: 64 MiB]
    pub fn max_sample_bytes(mut self, bytes: u64) -> Self {
        self.max_sample_bytes = bytes;
        self
    }

    /// Print each problem to stderr as it happens [default: no].
    pub fn log(mut self, log: bool) -> Self {
        self.log = log;
        self
    }

    /// Opens the Zenoh session and starts the bridge's threads.
    ///
    /// # Errors
    /// [`Error::Zenoh`] for a configuration Zenoh refuses or a pattern that is not a key
    /// expression; [`Error::Shmx`] while the defaults file cannot be used.
    pub fn start(self) -> Result<Bridge, Error> {
        let root = match self.root {
            Some(root) => root,
            None => shmx::defaults::Defaults::get()?.root(),
        };
        let forward = self
            .forward
            .iter()
            .map(|p| KeyExpr::try_from(p.clone()).map_err(Error::zenoh))
            .collect::<Result<Vec<_>, _>>()?;
        let options = self
            .options
            .iter()
            .map(|(p, o)| Ok((KeyExpr::try_from(p.clone()).map_err(Error::zenoh)?, *o)))
            .collect::<Result<Vec<_>, Error>>()?;
        let receive = self
            .receive
            .iter()
            .map(|p| KeyExpr::try_from(format!("{}/{p}", self.prefix)).map_err(Error::zenoh))
            .collect::<Result<Vec<_>, _>>()?;
        let session = zenoh::open(self.config).wait().map_err(Error::zenoh)?;
        let shared = Arc::new(Shared {
            root,
            prefix: self.prefix,
            forward,
            options,
            origin: random_id(),
            schemas: Mutex::new(Default::default()),
            stop: AtomicBool::new(false),
            stats: Stats::default(),
            problems: Mutex::new(Vec::new()),
            log: self.log,
            max_sample_bytes: self.max_sample_bytes,
        });
        // Other bridges ask this one for the schemas of the types it forwards.
        let answering = shared.clone();
        let queryable = session
            .declare_queryable(format!("{}/*", shared.schema_prefix()))
            .callback(move |query| {
                let Some(hex) = query.key_expr().as_str().rsplit('/').next() else {
                    return;
                };
                let Ok(fingerprint) = u64::from_str_radix(hex, 16) else {
                    return;
                };
                let schema = answering
                    .schemas
                    .lock()
                    .expect("schemas")
                    .get(&fingerprint)
                    .cloned();
                if let Some(schema) = schema {
                    let _ = query.reply(query.key_expr().clone(), schema).wait();
                }
            })
            .wait()
            .map_err(Error::zenoh)?;
        let (ingress, arrivals) = ingress::Ingress::new(shared.clone());
        let mut subscribers = Vec::new();
        for key in receive {
            let ingress = ingress.clone();
            let sub = session
                .declare_subscriber(key)
                .callback(move |sample| ingress.on_sample(sample))
                .wait()
                .map_err(Error::zenoh)?;
            subscribers.push(sub);
        }
        // Relays go with the remote publishers they stand for.
        let watching = ingress.clone();
        let liveliness = session
            .liveliness()
            .declare_subscriber(format!("{}/**", shared.alive_prefix()))
            .history(true)
            .callback(move |sample| watching.on_liveliness(sample))
            .wait()
            .map_err(Error::zenoh)?;
        subscribers.push(liveliness);
        // Named, for `top -H` and profilers.
        let spawn = |name: &'static str, run: Box<dyn FnOnce() + Send>| {
            std::thread::Builder::new()
                .name(format!("shmx-{name}"))
                .spawn(run)
                .map_err(|e| Error::Thread(name, e))
        };
        let egress = {
            let (shared, session) = (shared.clone(), session.clone());
            spawn("egress", Box::new(move || egress::run(shared, session)))?
        };
        let ingress = {
            let session = session.clone();
            spawn(
                "ingress",
                Box::new(move || ingress::run(ingress, session, arrivals)),
            )
        };
        let ingress = match ingress {
            Ok(thread) => thread,
            Err(e) => {
                shared.stop.store(true, Ordering::Relaxed);
                let _ = egress.join();
                return Err(e);
            }
        };
        let threads = vec![egress, ingress];
        Ok(Bridge {
            shared,
            session,
            threads,
            queryable: Some(queryable),
            subscribers,
        })
    }
}

/// A running bridge; [`stop`](Self::stop) (or drop) ends it.
pub struct Bridge {
    shared: Arc<Shared>,
    session: zenoh::Session,
    threads: Vec<JoinHandle<()>>,
    queryable: Option<zenoh::query::Queryable<()>>,
    subscribers: Vec<zenoh::pubsub::Subscriber<()>>,
}

impl Bridge {
    /// A builder: no topics until [`forward`](BridgeBuilder::forward) or
    /// [`receive`](BridgeBuilder::receive) name some.
    pub fn builder() -> BridgeBuilder {
        BridgeBuilder {
            root: None,
            config: zenoh::Config::default(),
            prefix: "shmx".to_owned(),
            forward: Vec::new(),
            receive: Vec::new(),
            options: Vec::new(),
            log: false,
            max_sample_bytes: DEFAULT_MAX_SAMPLE_BYTES,
        }
    }

    /// The bridge's counters.
    pub fn stats(&self) -> &Stats {
        &self.shared.stats
    }

    /// What went wrong lately (topics refused, samples not delivered), oldest first: the
    /// last 100.
    pub fn problems(&self) -> Vec<String> {
        self.shared.problems.lock().expect("problems").clone()
    }

    /// Stops the threads, leaves every topic and closes the session.
    pub fn stop(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        for s in self.subscribers.drain(..) {
            let _ = s.undeclare().wait();
        }
        if let Some(q) = self.queryable.take() {
            let _ = q.undeclare().wait();
        }
        let _ = self.session.close().wait();
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        self.halt();
    }
}

/// A random 64-bit id (from the kernel's generator, through the std hasher's keys).
fn random_id() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.write_u32(std::process::id());
    h.finish()
}
