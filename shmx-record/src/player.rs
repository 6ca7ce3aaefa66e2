//! [`Player`]: publishes a recording's samples again, with their recorded timing.

use crate::error::{Error, Result};
use crate::reader::{ChannelInfo, Entry, Recording};
use crate::select::Selection;
use shmx::inspect::RawPublisher;
use shmx::schema_text::MessageType;
use shmx::PublisherConfig;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Plays a recording back: recreates each recorded topic with its recorded message type
/// and publishes each sample's recorded bytes at its recorded publish time (its log time if
/// it has none), scaled by the rate; `start` and `end` select by log time.
///
/// A topic that exists with another type is [`shmx::Error::TypeMismatch`], which names
/// both fingerprints. Topics of archived rkyv values are not created (their schema names a
/// type, it does not describe it): they are played if the topic exists with the recorded
/// fingerprint. One publisher per topic sends what every recorded publisher sent, in file
/// order.
#[must_use]
pub struct Player {
    path: PathBuf,
    root: Option<PathBuf>,
    rate: f64,
    repeat: bool,
    start: Option<Duration>,
    end: Option<Duration>,
    topics: Vec<String>,
    config: PublisherConfig,
    wait_for_subscribers: Option<Duration>,
    stop: Option<Arc<AtomicBool>>,
}

/// What a [`Player`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Played {
    /// Messages published.
    pub messages: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Times through the recording (more than one with [`Player::repeat`]).
    pub passes: u64,
    /// Messages of channels that were left out (not selected).
    pub skipped: u64,
}

/// A played topic.
struct Out {
    publisher: RawPublisher,
}

impl Player {
    /// A player of the recording at `path`: at the recorded speed, every topic, once.
    pub fn new(path: impl Into<PathBuf>) -> Player {
        Player {
            path: path.into(),
            root: None,
            rate: 1.0,
            repeat: false,
            start: None,
            end: None,
            topics: Vec::new(),
            config: PublisherConfig::default(),
            wait_for_subscribers: None,
            stop: None,
        }
    }

    /// The shmx root [default: the library's].
    pub fn root(mut self, root: impl Into<PathBuf>) -> Self {
        self.root = Some(root.into());
        self
    }

    /// Speed: 2.0 plays twice as fast; `f64::INFINITY` as fast as it can [default: 1.0].
    /// Not a positive number: 1.0.
    pub fn rate(mut self, rate: f64) -> Self {
        self.rate = if rate > 0.0 { rate } else { 1.0 };
        self
    }

    /// Plays the recording again and again, until [`stop_flag`](Self::stop_flag) is set.
    pub fn repeat(mut self, repeat: bool) -> Self {
        self.repeat = repeat;
        self
    }

    /// Plays only messages recorded at least `offset` after the recording's first.
    pub fn start(mut self, offset: Duration) -> Self {
        self.start = Some(offset);
        self
    }

    /// Plays only messages recorded at most `offset` after the recording's first.
    pub fn end(mut self, offset: Duration) -> Self {
        self.end = Some(offset);
        self
    }

    /// Plays only these topics (names and glob patterns, see
    /// [`Selection`](crate::Selection)) [default: all].
    pub fn topics<I, S>(mut self, topics: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.topics = topics.into_iter().map(Into::into).collect();
        self
    }

    /// How each topic's publisher is set up (queue depth, overflow policy, ...); the room
    /// for tails is set from the recording [default: `PublisherConfig::default()`].
    pub fn publisher_config(mut self, config: PublisherConfig) -> Self {
        self.config = config;
        self
    }

    /// Before the first message, waits up to `timeout` until every played topic has a
    /// subscriber [default: does not wait].
    pub fn wait_for_subscribers(mut self, timeout: Duration) -> Self {
        self.wait_for_subscribers = Some(timeout);
        self
    }

    /// Stops (between two messages) once `flag` is set: Ctrl-C, or another thread.
    pub fn stop_flag(mut self, flag: Arc<AtomicBool>) -> Self {
        self.stop = Some(flag);
        self
    }

    fn stopped(&self) -> bool {
        self.stop
            .as_ref()
            .is_some_and(|f| f.load(Ordering::Relaxed))
    }

    /// Plays the recording.
    ///
    /// # Errors
    /// The recording's errors ([`Error::NotMcap`], [`Error::Mcap`]); [`Error::Unplayable`]
    /// for a selected channel that shmx cannot publish (not samples' bytes: another schema
    /// encoding; metadata that does not agree with its schema; another byte order); the errors of creating a publisher
    /// ([`shmx::Error::TypeMismatch`] when a topic exists with another type) or of
    /// publishing.
    pub fn play(self) -> Result<Played> {
        let recording = Recording::open(&self.path)?;
        let selection = Selection::new(&self.topics)?;
        let outs = self.publishers(&recording, &selection)?;
        if let Some(timeout) = self.wait_for_subscribers {
            let deadline = Instant::now() + timeout;
            while outs.values().any(|o| o.publisher.subscriber_count() == 0)
                && Instant::now() < deadline
                && !self.stopped()
            {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        let mut played = Played::default();
        loop {
            played.passes += 1;
            self.pass(&recording, &outs, &mut played)?;
            if !self.repeat || self.stopped() {
                return Ok(played);
            }
        }
    }

    /// A publisher for every selected channel, made before the first message is sent (so
    /// that making one does not delay the others' messages).
    fn publishers(
        &self,
        recording: &Recording,
        selection: &Selection,
    ) -> Result<HashMap<u16, Out>> {
        // The shortest and longest sample of each channel: checked against its type before
        // anything is played; the longest sets the room for its tail.
        let mut lengths: HashMap<u16, (Arc<ChannelInfo>, usize, usize)> = HashMap::new();
        let mut reader = recording.reader()?;
        for entry in &mut reader {
            match entry? {
                Entry::Channel(c) if selection.matches(&c.topic) => {
                    if !c.is_raw() {
                        return Err(self.unplayable(
                            &c,
                            format!(
                                "its messages are {:?} (schema encoding {:?}), not the bytes \
                                 of shmx samples: play the recording it was made from, or \
                                 leave it out (topics)",
                                c.message_encoding, c.schema_encoding
                            ),
                        ));
                    }
                    lengths.insert(c.id, (c, usize::MAX, 0));
                }
                Entry::Message(m) => {
                    if let Some((_, short, long)) = lengths.get_mut(&m.channel.id) {
                        *short = (*short).min(m.data.len());
                        *long = (*long).max(m.data.len());
                    }
                }
                Entry::Channel(_) => {}
            }
        }
        // A topic made again with another type while it was recorded has a channel per
        // type; one publisher cannot replay both.
        let mut by_topic: HashMap<&str, &ChannelInfo> = HashMap::new();
        for (c, _, _) in lengths.values() {
            if let Some(other) = by_topic.insert(&c.topic, c) {
                if other.fingerprint() != c.fingerprint() {
                    return Err(self.unplayable(
                        c,
                        format!(
                            "it was recorded with two types, {} ({}) and {} ({}): play one \
                             recording per type",
                            other.schema_name,
                            hex(other.fingerprint()),
                            c.schema_name,
                            hex(c.fingerprint())
                        ),
                    ));
                }
            }
        }
        let mut outs = HashMap::new();
        for (id, (channel, short, long)) in &lengths {
            let publisher = self.publisher(channel, *short, *long)?;
            outs.insert(*id, Out { publisher });
        }
        Ok(outs)
    }

    fn unplayable(&self, channel: &ChannelInfo, reason: String) -> Error {
        Error::Unplayable {
            path: self.path.clone(),
            topic: channel.topic.clone(),
            reason,
        }
    }

    /// The publisher of `channel`, whose messages are `shortest` to `longest` bytes long
    /// (`usize::MAX` and 0 if it has none).
    fn publisher(
        &self,
        channel: &ChannelInfo,
        shortest: usize,
        longest: usize,
    ) -> Result<RawPublisher> {
        let unplayable = |reason: String| self.unplayable(channel, reason);
        let schema = std::str::from_utf8(&channel.schema_data)
            .map_err(|_| unplayable("its schema is not UTF-8 text".to_owned()))?;
        let fingerprint = channel
            .fingerprint()
            .ok_or_else(|| unplayable("its metadata has no valid shmx.fingerprint".to_owned()))?;
        let endian = channel.metadata.get(crate::format::META_ENDIAN);
        if endian.map(String::as_str) != Some(crate::format::native_endian()) {
            return Err(unplayable(format!(
                "it was recorded on a machine of another byte order ({endian:?})"
            )));
        }
        let mut config = self.config;
        let root = self.root.as_deref();
        if shmx::schema_text::is_archived(schema) {
            config.max_tail_bytes = longest;
            let publisher =
                RawPublisher::open(root, &channel.topic, None, config).map_err(|e| match e {
                    shmx::Error::Io { source, .. }
                        if source.kind() == std::io::ErrorKind::NotFound =>
                    {
                        unplayable(
                            "topics of archived rkyv values are not created from a recording: \
                             start a subscriber of it first"
                                .to_owned(),
                        )
                    }
                    e => Error::Shmx(e),
                })?;
            if publisher.fingerprint() != fingerprint {
                return Err(unplayable(format!(
                    "the topic carries fingerprint {:#018x}, the recording {fingerprint:#018x}",
                    publisher.fingerprint()
                )));
            }
            return Ok(publisher);
        }
        let ty = MessageType::parse(schema)
            .map_err(|e| unplayable(format!("its schema is not a message type: {e}")))?;
        if ty.fingerprint() != fingerprint || Some(ty.size()) != channel.type_size() {
            return Err(unplayable(format!(
                "its schema ({:#018x}, {} bytes) does not agree with its metadata \
                 ({fingerprint:#018x}, {:?} bytes)",
                ty.fingerprint(),
                ty.size(),
                channel.type_size()
            )));
        }
        let fits = if ty.has_tail() {
            shortest >= ty.size()
        } else {
            longest <= ty.size() && (shortest == ty.size() || shortest == usize::MAX)
        };
        if !fits && longest > 0 {
            return Err(unplayable(format!(
                "its messages have {shortest} to {longest} bytes, its type {} ({} bytes{})",
                ty.schema(),
                ty.size(),
                if ty.has_tail() { " and a tail" } else { "" }
            )));
        }
        if ty.has_tail() {
            config.max_tail_bytes = longest.saturating_sub(ty.size());
        }
        Ok(RawPublisher::open(root, &channel.topic, Some(&ty), config)?)
    }

    /// One pass through the recording.
    fn pass(
        &self,
        recording: &Recording,
        outs: &HashMap<u16, Out>,
        played: &mut Played,
    ) -> Result<()> {
        let mut first_log: Option<u64> = None;
        // The wall-clock instant and log time of the first message played in this pass.
        let mut origin: Option<(Instant, u64)> = None;
        for entry in recording.reader()? {
            let Entry::Message(m) = entry? else {
                continue;
            };
            if self.stopped() {
                return Ok(());
            }
            let first = *first_log.get_or_insert(m.log_time);
            let offset = Duration::from_nanos(m.log_time.saturating_sub(first));
            if self.start.is_some_and(|s| offset < s) {
                continue;
            }
            if self.end.is_some_and(|e| offset > e) {
                break;
            }
            let Some(out) = outs.get(&m.channel.id) else {
                played.skipped += 1;
                continue;
            };
            // Timed by when each sample was published (by when it was recorded if it has no
            // publish time): the recorder takes samples in batches.
            let time = if m.publish_time != 0 {
                m.publish_time
            } else {
                m.log_time
            };
            let (start, time0) = *origin.get_or_insert((Instant::now(), time));
            if self.rate.is_finite() {
                let after = time.saturating_sub(time0) as f64 / self.rate;
                let due = start + Duration::from_nanos(after as u64);
                sleep_until(due, self.stop.as_deref());
            }
            out.publisher.send(&m.data)?;
            played.messages += 1;
            played.bytes += m.data.len() as u64;
        }
        Ok(())
    }
}

/// A fingerprint as `0x` and 16 hex digits, or `?`.
fn hex(fingerprint: Option<u64>) -> String {
    fingerprint.map_or_else(|| "?".to_owned(), |f| format!("{f:#018x}"))
}

/// Sleeps until `due` (in slices, so that a stop flag is seen within 50 ms).
fn sleep_until(due: Instant, stop: Option<&AtomicBool>) {
    loop {
        let now = Instant::now();
        if now >= due || stop.is_some_and(|f| f.load(Ordering::Relaxed)) {
            return;
        }
        std::thread::sleep((due - now).min(Duration::from_millis(50)));
    }
}
