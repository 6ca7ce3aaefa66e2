//! [`Recorder`]: subscribes to every selected topic (joining new ones as they appear) and
//! writes their samples to an MCAP file.

use crate::error::{Error, Result};
use crate::format::{self, PUBLISHER_OP};
use crate::select::Selection;
use crate::transcode::{Encoding, TopicType, Transcode};
use crate::watch::RootWatch;
use mcap::records::MessageHeader;
use mcap::write::PrivateRecordOptions;
use shmx::inspect::{RawSample, RawSubscriber};
use shmx::SubscriberConfig;
use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

/// How often the root is scanned for new topics when no directory event says so.
const SCAN_EVERY: Duration = Duration::from_millis(200);
/// After a new directory appears, how long the root is scanned every [`BURST_EVERY`] (a
/// topic's directory exists a moment before its files can be read). A scan reads the
/// root's directory and opens only the topics not seen before.
const BURST: Duration = Duration::from_millis(500);
const BURST_EVERY: Duration = Duration::from_millis(1);
/// Samples taken from one topic before the next topic's turn.
const BATCH: usize = 256;
/// The buffer between the MCAP writer and the file.
const FILE_BUFFER: usize = 1 << 20;

/// Chunk compression.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Compression {
    /// None: the fastest to write.
    #[default]
    None,
    /// zstd (level 3, as MCAP writers use by default).
    Zstd,
    /// LZ4.
    Lz4,
}

impl Compression {
    pub(crate) fn mcap(self) -> Option<mcap::Compression> {
        match self {
            Compression::None => None,
            Compression::Zstd => Some(mcap::Compression::Zstd),
            Compression::Lz4 => Some(mcap::Compression::Lz4),
        }
    }
}

/// Sets up a [`Recorder`]: `Recorder::builder(path)...create()`.
#[must_use]
pub struct RecorderBuilder {
    output: PathBuf,
    root: Option<PathBuf>,
    topics: Vec<String>,
    compression: Compression,
    chunk_size: u64,
    flush_every: Duration,
    overwrite: bool,
    transcode: Option<Box<dyn Transcode>>,
}

impl RecorderBuilder {
    /// The shmx root [default: the library's, `SHMX_ROOT` and the defaults file included].
    pub fn root(mut self, root: impl Into<PathBuf>) -> Self {
        self.root = Some(root.into());
        self
    }

    /// The topics to record, as names and glob patterns (see [`Selection`]) [default: all].
    pub fn topics<I, S>(mut self, topics: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.topics = topics.into_iter().map(Into::into).collect();
        self
    }

    /// Chunk compression [default: none].
    pub fn compression(mut self, compression: Compression) -> Self {
        self.compression = compression;
        self
    }

    /// Bytes of messages per chunk before it is written [default: 768 KiB].
    pub fn chunk_size(mut self, bytes: u64) -> Self {
        self.chunk_size = bytes.max(1);
        self
    }

    /// The longest a sample waits in an unfinished chunk: what a killed recorder loses at
    /// most [default: 1 s].
    pub fn flush_every(mut self, every: Duration) -> Self {
        self.flush_every = every;
        self
    }

    /// Replace the file if it exists [default: an error].
    pub fn overwrite(mut self, overwrite: bool) -> Self {
        self.overwrite = overwrite;
        self
    }

    /// Writes every channel in the encoding of `transcode` instead of samples' bytes.
    pub fn transcode(mut self, transcode: Box<dyn Transcode>) -> Self {
        self.transcode = Some(transcode);
        self
    }

    /// Creates the file and the recorder; it joins topics at its first [`Recorder::poll`].
    ///
    /// # Errors
    /// [`Error::Io`] if the file exists (without [`overwrite`](Self::overwrite)) or cannot
    /// be created; [`Error::Pattern`]; `shmx::Error::Config` while the defaults file cannot
    /// be used.
    pub fn create(self) -> Result<Recorder> {
        let selection = Selection::new(&self.topics)?;
        let root = match self.root {
            Some(root) => root,
            None => shmx::defaults::Defaults::get()?.root(),
        };
        let mut open = std::fs::OpenOptions::new();
        open.write(true).read(true);
        if self.overwrite {
            open.create(true).truncate(true);
        } else {
            open.create_new(true);
        }
        let file = open
            .open(&self.output)
            .map_err(|e| Error::io(&self.output, e))?;
        let writer = mcap::WriteOptions::new()
            .profile(format::PROFILE)
            .library(concat!("shmx-record ", env!("CARGO_PKG_VERSION")))
            .compression(self.compression.mcap())
            .chunk_size(Some(self.chunk_size))
            .create(BufWriter::with_capacity(FILE_BUFFER, file))
            .map_err(|e| Error::mcap(&self.output, e))?;
        let now = Instant::now();
        Ok(Recorder {
            watch: RootWatch::new(&root),
            path: self.output,
            root,
            selection,
            writer: Some(writer),
            live: Vec::new(),
            stats: Vec::new(),
            known: BTreeMap::new(),
            next_scan: now,
            burst_until: now,
            scanned: false,
            next_lonely: now,
            flush_every: self.flush_every,
            last_flush: now,
            started: now,
            transcode: self.transcode,
            scratch: Vec::new(),
            problems: Vec::new(),
        })
    }
}

/// What was recorded of one topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicStats {
    /// The topic.
    pub topic: String,
    /// Its message type's name.
    pub type_name: String,
    /// Its message type's fingerprint (a topic made again with another type is another
    /// entry).
    pub fingerprint: u64,
    /// Samples written.
    pub messages: u64,
    /// Their bytes (as published, whatever the encoding).
    pub bytes: u64,
    /// Samples lost before the recorder took them: gaps in publishers' sequence numbers
    /// (the recorder fell behind and publishers overwrote or skipped its queue).
    pub drops: u64,
    /// Samples the [`Transcode`] could not encode (left out).
    pub unencodable: u64,
    /// Whether the recorder is subscribed now (its publishers have not all left).
    pub recording: bool,
}

/// What a recording holds at its end.
#[derive(Debug, Clone)]
pub struct Summary {
    /// The file.
    pub path: PathBuf,
    /// Every topic recorded, in the order they were joined.
    pub topics: Vec<TopicStats>,
    /// How long the recorder ran.
    pub duration: Duration,
    /// Topics that matched but could not be recorded, and why.
    pub problems: Vec<String>,
}

/// Records topics of a root to an MCAP file; see the crate's documentation.
///
/// Call [`poll`](Self::poll) in a loop: it joins topics that appeared, writes every sample
/// that waits, and sleeps until one comes (or the timeout). [`finish`](Self::finish) writes
/// the summary and index; a recorder dropped without it finishes the file too, silently.
pub struct Recorder {
    path: PathBuf,
    root: PathBuf,
    selection: Selection,
    /// `None` once finished.
    writer: Option<mcap::Writer<BufWriter<File>>>,
    live: Vec<Live>,
    stats: Vec<TopicStats>,
    known: BTreeMap<String, Known>,
    watch: RootWatch,
    next_scan: Instant,
    burst_until: Instant,
    /// The root was scanned once: topics found later appeared while recording.
    scanned: bool,
    /// When topics without publishers are next checked for other participants.
    next_lonely: Instant,
    flush_every: Duration,
    last_flush: Instant,
    started: Instant,
    transcode: Option<Box<dyn Transcode>>,
    scratch: Vec<u8>,
    problems: Vec<String>,
}

/// A topic being recorded.
struct Live {
    sub: RawSubscriber,
    track: Track,
}

/// What the recorder keeps of a topic it records.
struct Track {
    ty: TopicType,
    channel: u16,
    /// Its entry in `stats`.
    stat: usize,
    /// The last sequence number seen per publisher id.
    last_seq: HashMap<u64, u64>,
    /// The publisher of the last message written on the channel.
    last_publisher: Option<u64>,
    /// A publisher was seen: once all have left (and the queue is empty), the recorder
    /// leaves the topic, so that it does not keep the topic's files alive by itself.
    had_publisher: bool,
    /// The topic appeared while recording: a publisher's first sample with a sequence number
    /// above 1 means the ones before it were sent before the recorder joined (dropped).
    fresh: bool,
}

/// What the recorder knows of a topic name it has seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Known {
    Recording,
    /// Left after its publishers left: joined again only when a publisher is back.
    Left,
    /// Could not be recorded (see `problems`): never tried again.
    Refused,
    /// Could not be opened for a reason that may pass (out of descriptors, memory): tried
    /// again from this instant.
    Failed(Instant),
}

/// How long a topic that could not be opened waits before the next try.
const RETRY_AFTER: Duration = Duration::from_secs(1);
/// How often topics that never had a publisher are checked for other participants.
const LONELY_EVERY: Duration = Duration::from_millis(200);
/// Channels in one recording at most (MCAP numbers them with 16 bits).
const MAX_CHANNELS: usize = 60_000;

type Writer = mcap::Writer<BufWriter<File>>;

impl Recorder {
    /// A builder of a recorder writing to `output`.
    pub fn builder(output: impl Into<PathBuf>) -> RecorderBuilder {
        RecorderBuilder {
            output: output.into(),
            root: None,
            topics: Vec::new(),
            compression: Compression::None,
            chunk_size: 768 * 1024,
            flush_every: Duration::from_secs(1),
            overwrite: false,
            transcode: None,
        }
    }

    /// The file being written.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Every topic recorded so far, in the order they were joined.
    pub fn stats(&self) -> &[TopicStats] {
        &self.stats
    }

    /// Topics that matched but could not be recorded, and why.
    pub fn problems(&self) -> &[String] {
        &self.problems
    }

    /// Joins topics that appeared, writes every sample waiting, and if there was none waits
    /// up to `timeout` for one (or a new topic) and writes what came. Returns the number of
    /// samples written.
    ///
    /// # Errors
    /// Writing the file failed ([`Error::Io`], [`Error::Mcap`]); the root cannot be read
    /// (`shmx::Error::PermissionDenied` for a root that is not trusted). A topic that
    /// cannot be joined is not an error: see [`problems`](Self::problems).
    pub fn poll(&mut self, timeout: Duration) -> Result<usize> {
        let now = Instant::now();
        if self.watch.drain() {
            self.burst_until = now + BURST;
            self.next_scan = now;
        }
        if now >= self.next_scan {
            self.scan()?;
            let every = if now < self.burst_until {
                BURST_EVERY
            } else {
                SCAN_EVERY
            };
            self.next_scan = now + every;
        }
        let mut written = self.take_all()?;
        if written == 0 && !timeout.is_zero() {
            let wait = timeout.min(self.next_scan.saturating_duration_since(Instant::now()));
            self.wait(wait)?;
            written = self.take_all()?;
        }
        self.leave_deserted();
        if self.last_flush.elapsed() >= self.flush_every {
            self.last_flush = Instant::now();
            if let Some(writer) = self.writer.as_mut() {
                writer.flush().map_err(|e| Error::mcap(&self.path, e))?;
            }
        }
        Ok(written)
    }

    /// Writes what still waits, then the file's summary and index, and closes it.
    ///
    /// # Errors
    /// Writing the file failed.
    pub fn finish(mut self) -> Result<Summary> {
        self.take_all()?;
        let writer = self.writer.take().expect("a recorder is finished once");
        finish_writer(writer, &self.path)?;
        for live in &self.live {
            self.stats[live.track.stat].recording = false;
        }
        Ok(Summary {
            path: self.path.clone(),
            topics: std::mem::take(&mut self.stats),
            duration: self.started.elapsed(),
            problems: std::mem::take(&mut self.problems),
        })
    }

    /// Joins every selected topic that is new, or was left and has a live publisher again,
    /// or could not be opened a while ago; leaves topics where it is alone.
    fn scan(&mut self) -> Result<()> {
        if !self.watch.is_set() {
            self.watch = RootWatch::new(&self.root);
        }
        let first = !self.scanned;
        self.scanned = true;
        let now = Instant::now();
        for name in shmx::inspect::topic_names(&self.root)? {
            if !self.selection.matches(&name) {
                continue;
            }
            match self.known.get(&name) {
                Some(Known::Recording | Known::Refused) => continue,
                Some(Known::Failed(at)) if now < *at => continue,
                Some(Known::Left) => {
                    let Ok(info) = shmx::inspect::topic(&self.root, &name) else {
                        continue;
                    };
                    let live_publisher = info
                        .publishers
                        .iter()
                        .any(|p| p.alive && p.state == "active");
                    if !live_publisher {
                        continue;
                    }
                }
                Some(Known::Failed(_)) | None => {}
            }
            self.join(&name, !first);
        }
        if now >= self.next_lonely {
            self.next_lonely = now + LONELY_EVERY;
            self.leave_lonely();
        }
        Ok(())
    }

    /// Leaves the topics that never had a publisher and where no other subscriber is left:
    /// the recorder alone would keep their files, and their type, for as long as it runs.
    fn leave_lonely(&mut self) {
        let mut i = 0;
        while i < self.live.len() {
            let t = &self.live[i];
            let lonely = !t.track.had_publisher
                && t.sub.publisher_count() == 0
                && !t.sub.samples_waiting()
                && shmx::inspect::topic(&self.root, &t.track.ty.topic).is_ok_and(|info| {
                    info.publishers.is_empty()
                        && info
                            .subscribers
                            .iter()
                            .filter(|s| s.alive && s.state == "active")
                            .count()
                            <= 1
                });
            if lonely {
                let t = self.live.swap_remove(i).track;
                self.stats[t.stat].recording = false;
                // Forgotten: if the topic is made again, it is a new one.
                self.known.remove(&t.ty.topic);
            } else {
                i += 1;
            }
        }
    }

    /// Joins `topic`; `fresh` if it appeared while recording (then samples its publishers
    /// sent before the recorder joined count as dropped).
    fn join(&mut self, topic: &str, fresh: bool) {
        if self.stats.len() >= MAX_CHANNELS {
            self.refuse(
                topic,
                format!("a recording holds {MAX_CHANNELS} channels at most"),
            );
            return;
        }
        let config = SubscriberConfig {
            // As deep as each publisher allows: the recorder takes in bursts.
            queue_depth: usize::MAX,
            publish_times: true,
            ..SubscriberConfig::default()
        };
        let sub = match RawSubscriber::open(Some(&self.root), topic, None, config) {
            Ok(sub) => sub,
            // Gone since the scan: nothing to record.
            Err(shmx::Error::Io { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                return;
            }
            // The system's limits (descriptors, memory): may pass.
            Err(e @ shmx::Error::Io { .. }) => {
                if !matches!(self.known.get(topic), Some(Known::Failed(_))) {
                    self.problems
                        .push(format!("{topic}: {e} (trying again every second)"));
                }
                self.known.insert(
                    topic.to_owned(),
                    Known::Failed(Instant::now() + RETRY_AFTER),
                );
                return;
            }
            Err(e) => {
                self.refuse(topic, e.to_string());
                return;
            }
        };
        let ty = TopicType::of(&sub, sub.fingerprint());
        let encoding = match &mut self.transcode {
            None => Encoding {
                schema_name: ty.type_name.clone(),
                schema_encoding: format::SCHEMA_ENCODING.to_owned(),
                schema_data: ty.schema.clone().into_bytes(),
                message_encoding: format::MESSAGE_ENCODING.to_owned(),
            },
            Some(t) => match t.encoding(&ty) {
                Ok(encoding) => encoding,
                Err(reason) => {
                    self.refuse(topic, reason);
                    return;
                }
            },
        };
        let metadata = format::channel_metadata(ty.fingerprint, ty.size, &ty.schema);
        let writer = self.writer.as_mut().expect("not finished");
        let added = writer
            .add_schema(
                &encoding.schema_name,
                &encoding.schema_encoding,
                &encoding.schema_data,
            )
            .and_then(|schema| {
                writer.add_channel(schema, topic, &encoding.message_encoding, &metadata)
            });
        let channel = match added {
            Ok(channel) => channel,
            Err(e) => {
                self.refuse(topic, format!("cannot add its channel: {e}"));
                return;
            }
        };
        let stat = match self
            .stats
            .iter()
            .position(|s| s.topic == topic && s.fingerprint == ty.fingerprint)
        {
            Some(i) => i,
            None => {
                self.stats.push(TopicStats {
                    topic: topic.to_owned(),
                    type_name: ty.type_name.clone(),
                    fingerprint: ty.fingerprint,
                    messages: 0,
                    bytes: 0,
                    drops: 0,
                    unencodable: 0,
                    recording: true,
                });
                self.stats.len() - 1
            }
        };
        self.stats[stat].recording = true;
        self.known.insert(topic.to_owned(), Known::Recording);
        self.live.push(Live {
            sub,
            track: Track {
                ty,
                channel,
                stat,
                last_seq: HashMap::new(),
                last_publisher: None,
                had_publisher: false,
                fresh,
            },
        });
    }

    fn refuse(&mut self, topic: &str, reason: String) {
        self.known.insert(topic.to_owned(), Known::Refused);
        self.problems.push(format!("{topic}: {reason}"));
    }

    /// Writes every sample waiting on every topic (a batch per topic per turn).
    fn take_all(&mut self) -> Result<usize> {
        let Recorder {
            path,
            writer,
            live,
            stats,
            transcode,
            scratch,
            ..
        } = self;
        let writer = writer.as_mut().expect("not finished");
        let mut total = 0;
        loop {
            let mut round = 0;
            for Live { sub, track } in live.iter_mut() {
                for _ in 0..BATCH {
                    let Some(sample) = sub.take()? else {
                        break;
                    };
                    track.had_publisher = true;
                    let stat = &mut stats[track.stat];
                    write_sample(writer, track, stat, transcode, scratch, &sample)
                        .map_err(|e| Error::mcap(&*path, e))?;
                    round += 1;
                }
            }
            total += round;
            if round == 0 {
                return Ok(total);
            }
        }
    }

    /// Sleeps until a sample waits on some topic, a directory appears under the root, or
    /// `timeout` passes.
    fn wait(&self, timeout: Duration) -> Result<()> {
        use rustix::event::{PollFd, PollFlags};
        let mut fds = Vec::with_capacity(self.live.len() + 1);
        for t in &self.live {
            fds.push(PollFd::from_borrowed_fd(t.sub.fd()?, PollFlags::IN));
        }
        if let Some(fd) = self.watch.fd() {
            fds.push(PollFd::from_borrowed_fd(fd, PollFlags::IN));
        }
        let timeout = rustix::time::Timespec {
            tv_sec: timeout.as_secs() as i64,
            tv_nsec: i64::from(timeout.subsec_nanos()),
        };
        match rustix::event::poll(&mut fds, Some(&timeout)) {
            // Interrupted (a signal: Ctrl-C) is a wake-up like any other.
            Ok(_) | Err(rustix::io::Errno::INTR) => Ok(()),
            Err(e) => Err(Error::io(&self.root, e.into())),
        }
    }

    /// Leaves topics whose publishers have all left and whose queue is empty.
    fn leave_deserted(&mut self) {
        let mut i = 0;
        while i < self.live.len() {
            let t = &mut self.live[i];
            if t.sub.publisher_count() > 0 {
                t.track.had_publisher = true;
                i += 1;
            } else if t.track.had_publisher && !t.sub.samples_waiting() {
                let t = self.live.swap_remove(i).track;
                self.stats[t.stat].recording = false;
                self.known.insert(t.ty.topic.clone(), Known::Left);
            } else {
                i += 1;
            }
        }
    }
}

/// Writes one sample as a message of its topic's channel.
fn write_sample(
    writer: &mut Writer,
    t: &mut Track,
    stat: &mut TopicStats,
    transcode: &mut Option<Box<dyn Transcode>>,
    scratch: &mut Vec<u8>,
    sample: &RawSample<'_>,
) -> mcap::McapResult<()> {
    let log_time = now_ns();
    let publish_time = sample.publish_time_ns().unwrap_or(log_time);
    let (seq, publisher) = (sample.sequence(), sample.publisher_id());
    match t.last_seq.insert(publisher, seq) {
        Some(last) => stat.drops += seq.saturating_sub(last).saturating_sub(1),
        // A bridge's relay numbers as the remote publisher does: its first sample here need
        // not be 1.
        None if t.fresh && !sample.is_relayed() => stat.drops += seq.saturating_sub(1),
        None => {}
    }
    let bytes = sample.bytes();
    let data = match transcode {
        None => bytes,
        Some(transcode) => {
            scratch.clear();
            if transcode.message(&t.ty, bytes, scratch).is_err() {
                stat.unencodable += 1;
                return Ok(());
            }
            scratch.as_slice()
        }
    };
    if t.last_publisher != Some(publisher) {
        writer.write_private_record(
            PUBLISHER_OP,
            &format::publisher_record(t.channel, publisher),
            PrivateRecordOptions::IncludeInChunks.into(),
        )?;
        t.last_publisher = Some(publisher);
    }
    let header = MessageHeader {
        channel_id: t.channel,
        // MCAP keeps 32 bits of it.
        sequence: seq as u32,
        log_time,
        publish_time,
    };
    writer.write_to_known_channel(&header, data)?;
    stat.messages += 1;
    stat.bytes += bytes.len() as u64;
    Ok(())
}

fn finish_writer(mut writer: Writer, path: &Path) -> Result<()> {
    writer.finish().map_err(|e| Error::mcap(path, e))?;
    let file = writer.into_inner();
    file.into_inner()
        .map_err(|e| Error::io(path, e.into_error()))?;
    Ok(())
}

/// Now, in nanoseconds since the Unix epoch.
pub(crate) fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

impl Drop for Recorder {
    fn drop(&mut self) {
        if let Some(writer) = self.writer.take() {
            let _ = finish_writer(writer, &self.path);
        }
    }
}
