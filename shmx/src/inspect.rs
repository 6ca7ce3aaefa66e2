//! Looking at topics without their Rust type, and cleaning up after dead processes: what the
//! `shmx` command-line tool shows and does.
//!
//! ```
//! # let dir = tempfile::tempdir().unwrap();
//! use shmx::{inspect, Publisher};
//! let _p = Publisher::<[u32; 2]>::builder("robot/odometry").root(dir.path()).create()?;
//! let topics = inspect::topics(dir.path())?;
//! assert_eq!(topics[0].name, "robot/odometry");
//! assert_eq!(topics[0].schema, "[u32;2]");
//! assert!(topics[0].publishers[0].alive);
//! # Ok::<(), shmx::Error>(())
//! ```

pub use crate::raw::{RawLoan, RawPublisher, RawSample, RawSubscriber};
pub use crate::request::tools::{service, services, EndpointInfo, ServiceInfo};

use crate::dir::{Dir, Kind};
use crate::error::{Error, Result};
use crate::name::TopicName;
use crate::node;
use crate::root::Root;
use crate::service::{self, Service, ACTIVE, CLAIMING, DRAINING, FREE};
use crate::sync::Ordering;
use crate::trust::Trust;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// One topic, as stored in its service segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicInfo {
    /// The topic's name.
    pub name: String,
    /// Its directory.
    pub dir: PathBuf,
    /// The message type's name.
    pub type_name: String,
    /// The message type's structural fingerprint.
    pub fingerprint: u64,
    /// `size_of` the message type.
    pub type_size: u64,
    /// The message type's layout (`Schema::describe`), e.g. `Pose(16,8){seq@0:u64,x@8:f64}` (grammar:
    /// [`crate::schema_text`]).
    pub schema: String,
    /// The topic-wide limits.
    pub limits: crate::TopicConfig,
    /// Bytes of memory the topic's files hold (their allocated blocks: what `/dev/shm`
    /// counts), all publishers' data segments included.
    pub reserved_bytes: u64,
    /// Publisher slots in use.
    pub publishers: Vec<PublisherInfo>,
    /// Subscriber slots in use.
    pub subscribers: Vec<SubscriberInfo>,
}

/// One publisher slot in use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublisherInfo {
    /// Slot number.
    pub slot: usize,
    /// The id its samples carry ([`Sample::publisher_id`](crate::Sample::publisher_id)).
    pub id: u64,
    /// Process id of the owner.
    pub pid: u64,
    /// Whether the owning process is alive.
    pub alive: bool,
    /// `"active"`, `"draining"` (gone, subscribers still reading) or `"claiming"`.
    pub state: &'static str,
    /// Chunks in its pool.
    pub chunks: u64,
    /// Samples it keeps as history.
    pub history: u64,
    /// Its queue depth.
    pub queue_depth: u64,
    /// Samples it has published so far.
    pub published: u64,
    /// Chunks of its pool in use (loaned, queued, held, history) as of its last publish,
    /// less those its subscribers have returned since.
    pub chunks_in_use: u64,
    /// Bytes of one chunk of its largest size class (header, message, whole tail,
    /// alignment); 0 if its data segment could not be read.
    pub chunk_bytes: u64,
    /// Bytes of memory its data segments hold (allocated blocks of every segment file).
    pub reserved_bytes: u64,
    /// Bytes of its chunks in use (per class: chunks in use × chunk bytes).
    pub used_bytes: u64,
    /// Its pool class by class (as it last recorded them).
    pub classes: Vec<ClassInfo>,
}

/// One size class of a publisher's pool, as the tools see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassInfo {
    /// Payload bytes of a chunk (the message and the tail it holds).
    pub payload_bytes: u64,
    /// Bytes one chunk takes (with its header and alignment).
    pub chunk_bytes: u64,
    /// Chunks of the class in the pool.
    pub chunks: u64,
    /// Chunks of the class in use (as of the publisher's last collection of returns).
    pub in_use: u64,
    /// Segment files of the class.
    pub segments: u64,
    /// Bytes of memory the class's segment files hold (allocated blocks).
    pub reserved_bytes: u64,
}

/// One subscriber slot in use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriberInfo {
    /// Slot number.
    pub slot: usize,
    /// Process id of the owner.
    pub pid: u64,
    /// Whether the owning process is alive.
    pub alive: bool,
    /// `"active"` or `"claiming"`.
    pub state: &'static str,
    /// Its queue depth (per publisher).
    pub queue_depth: u64,
    /// Samples waiting in its queues, from all publishers.
    pub queued: u64,
}

fn state_name(word: u64) -> &'static str {
    match service::state_of(word) {
        ACTIVE => "active",
        DRAINING => "draining",
        CLAIMING => "claiming",
        _ => "free",
    }
}

/// Chunks that subscribers returned to publisher slot `p` and it has not taken back yet.
fn pending_returns(service: &Service, p: usize) -> u64 {
    let layout = service.layout();
    (0..layout.max_subscribers)
        .map(|s| {
            let ring = service.returns(p, s).producer();
            ring.head
                .wrapping_sub(ring.tail_cache)
                .min(layout.return_capacity as u64)
        })
        .sum()
}

/// [`describe`] for the service tools (a request or response queue).
pub(crate) fn describe_service(root: &Root, service: &Service) -> TopicInfo {
    describe(root, service)
}

fn describe(root: &Root, service: &Service) -> TopicInfo {
    let layout = *service.layout();
    let p = service.params();
    let mut publishers = Vec::new();
    for slot in 0..layout.max_publishers {
        let s = service.pub_slot(slot);
        let word = s.state.load(Ordering::Acquire);
        if word == FREE {
            continue;
        }
        let inc = service::incarnation_of(word);
        let files = crate::data::segment_files(service, inc);
        let classes: Vec<ClassInfo> = crate::data::class_records(service, inc)
            .into_iter()
            .enumerate()
            .map(|(c, [payload_bytes, chunk_bytes, chunks, in_use])| {
                let mine = files.iter().filter(|f| f.class == c);
                ClassInfo {
                    payload_bytes,
                    chunk_bytes,
                    chunks,
                    in_use: in_use.min(chunks),
                    segments: mine.clone().count() as u64,
                    reserved_bytes: mine.fold(0u64, |sum, f| sum.saturating_add(f.allocated)),
                }
            })
            .collect();
        let chunk_bytes = classes.last().map_or(0, |c| c.chunk_bytes);
        let chunks_in_use = s
            .chunks_in_use
            .load(Ordering::Relaxed)
            .saturating_sub(pending_returns(service, slot));
        publishers.push(PublisherInfo {
            slot,
            id: match s.id.load(Ordering::Relaxed) {
                0 => inc,
                id => id,
            },
            pid: s.pid.load(Ordering::Relaxed),
            alive: node::is_alive(root, s.node.load(Ordering::Relaxed)),
            state: state_name(word),
            chunks: s.chunk_count.load(Ordering::Relaxed),
            history: s.history_depth.load(Ordering::Relaxed),
            queue_depth: s.queue_depth.load(Ordering::Relaxed),
            published: s.published.load(Ordering::Relaxed),
            chunks_in_use,
            chunk_bytes,
            reserved_bytes: files
                .iter()
                .fold(0u64, |sum, f| sum.saturating_add(f.allocated)),
            used_bytes: match classes.len() {
                0 | 1 => chunks_in_use.saturating_mul(chunk_bytes),
                _ => classes.iter().fold(0u64, |sum, c| {
                    sum.saturating_add(c.in_use.saturating_mul(c.chunk_bytes))
                }),
            },
            classes,
        });
    }
    let mut subscribers = Vec::new();
    for slot in 0..layout.max_subscribers {
        let s = service.sub_slot(slot);
        let word = s.state.load(Ordering::Acquire);
        if word == FREE {
            continue;
        }
        let queued = publishers
            .iter()
            .map(|p| {
                let ring = service.delivery(p.slot, slot);
                ring.len_from(ring.producer().head)
                    .min(layout.ring_capacity as u64)
            })
            .sum();
        subscribers.push(SubscriberInfo {
            slot,
            pid: s.pid.load(Ordering::Relaxed),
            alive: node::is_alive(root, s.node.load(Ordering::Relaxed)),
            state: state_name(word),
            queue_depth: s.queue_depth.load(Ordering::Relaxed),
            queued,
        });
    }
    TopicInfo {
        name: service.topic().to_owned(),
        dir: service.dir().path().to_owned(),
        type_name: service.type_name(),
        fingerprint: p.fingerprint,
        type_size: p.type_size,
        schema: service.schema_text(),
        limits: crate::TopicConfig {
            max_publishers: layout.max_publishers,
            max_subscribers: layout.max_subscribers,
            max_queue_depth: layout.ring_capacity,
            max_held: layout.max_held,
            max_history: layout.max_history,
            mode: p.mode,
            group: None,
        },
        reserved_bytes: service
            .dir()
            .entries()
            .unwrap_or_default()
            .iter()
            .filter(|(_, kind)| *kind == Kind::File)
            .map(|(name, _)| allocated(service.dir(), name))
            .sum(),
        publishers,
        subscribers,
    }
}

/// Bytes of memory file `name` in `dir` holds (its allocated 512-byte blocks; 0 if it is
/// gone or not a regular file).
fn allocated(dir: &Dir, name: &(impl AsRef<std::ffi::OsStr> + ?Sized)) -> u64 {
    match dir.stat_at(name) {
        Ok(Some(st))
            if rustix::fs::FileType::from_raw_mode(st.st_mode)
                == rustix::fs::FileType::RegularFile =>
        {
            (st.st_blocks as u64).saturating_mul(512)
        }
        _ => 0,
    }
}

/// Every topic under `root`, by name. Directories that hold no readable service segment are
/// skipped; use [`topic`] to see why one fails.
///
/// # Errors
/// [`Error::PermissionDenied`] when the root belongs to another user, may be written by
/// others, or is a symbolic link (see the crate's trust model).
pub fn topics(root: &Path) -> Result<Vec<TopicInfo>> {
    let Some(root) = open_root(root)? else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for name in names_in(&root)? {
        if let Ok(info) = topic_in(&root, &name) {
            out.push(info);
        }
    }
    Ok(out)
}

/// The names of the topics under `root`, sorted, read from its directory alone (no topic is
/// opened: cheap enough to call often, to notice new topics). A name may belong to a topic
/// still being created, or being removed.
///
/// # Errors
/// As [`topics`].
pub fn topic_names(root: &Path) -> Result<Vec<String>> {
    match open_root(root)? {
        Some(root) => names_in(&root),
        None => Ok(Vec::new()),
    }
}

/// Makes root `root` as the first endpoint under it would (a directory of this user's, no
/// one else's), or checks the one there as endpoints do: for tools that keep files of their
/// own in a root before they open an endpoint (a bridge's claims).
///
/// ```
/// # let dir = tempfile::tempdir().unwrap();
/// let root = dir.path().join("fresh");
/// shmx::inspect::make_root(&root)?;
/// assert!(root.is_dir());
/// # Ok::<(), shmx::Error>(())
/// ```
///
/// # Errors
/// As endpoints' for their root: [`Error::PermissionDenied`](crate::Error) for a root of
/// another user or open to others, [`Error::Io`](crate::Error) when it cannot be made.
pub fn make_root(root: &Path) -> Result<()> {
    Root::open(Some(root), &Trust::of(&crate::TopicConfig::default())).map(drop)
}

/// One topic, by name.
pub fn topic(root: &Path, name: &str) -> Result<TopicInfo> {
    match open_root(root)? {
        Some(root) => topic_in(&root, name),
        None => Err(no_topic(
            root.to_owned(),
            "no such topic (the root does not exist)",
        )),
    }
}

/// The root at `root` as tools see it (see [`Trust::for_tools`]), if it exists.
fn open_root(root: &Path) -> Result<Option<Arc<Root>>> {
    Root::open_existing(root, &Trust::for_tools())
}

fn no_topic(path: PathBuf, why: &'static str) -> Error {
    Error::Io {
        path,
        source: std::io::Error::new(std::io::ErrorKind::NotFound, why),
    }
}

fn topic_in(root: &Arc<Root>, name: &str) -> Result<TopicInfo> {
    let name = TopicName::new(name)?;
    let service = Service::open_untyped(root, &name, &Trust::for_tools())?
        .ok_or_else(|| no_topic(root.path().join(name.encoded()), "no such topic"))?;
    Ok(describe(root, &service))
}

fn names_in(root: &Root) -> Result<Vec<String>> {
    let mut names: Vec<String> = root
        .dir()
        .entries()?
        .into_iter()
        .filter(|(_, kind)| *kind == Kind::Dir)
        .filter_map(|(entry, _)| {
            // Exactly the encoding of a valid topic name (not a service's queue).
            let entry = entry.to_str()?;
            let name = TopicName::decode(entry)?;
            (TopicName::new(&name).ok()?.encoded() == entry).then_some(name)
        })
        .collect();
    names.sort();
    Ok(names)
}

/// What [`clean`] removed (or, with `dry_run`, would remove).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CleanReport {
    /// Slots of dead processes taken back (or to take back).
    pub reclaimed_slots: usize,
    /// Files and directories removed (or to remove).
    pub removed: Vec<PathBuf>,
    /// Topics left alone, with the reason (a segment of another shmx version may be in use by
    /// processes of that version).
    pub kept: Vec<(PathBuf, String)>,
}

/// Takes back what dead processes left under `root`: their slots, the data segments nobody
/// reads any more, topics left with no live participant, their node files, and directories
/// that are not shmx topics at all (a name shmx never makes, no service segment, or not a
/// shmx segment). Never touches what a live process uses, nor a topic of another shmx
/// version (reported as kept). With `dry_run`, only reports what it would do: both decide
/// each directory the same way.
pub fn clean(root: &Path, dry_run: bool) -> Result<CleanReport> {
    let trust = Trust::for_tools();
    let Some(root) = Root::open_existing(root, &trust)? else {
        return Ok(CleanReport::default());
    };
    let had_lock_file = root.dir().stat_at(".lock")?.is_some();
    let lock = root.lock(&trust)?;
    let before = files_under(root.dir());
    let mut report = CleanReport::default();
    for (entry, kind) in root.dir().entries()? {
        if kind != Kind::Dir {
            continue;
        }
        let dir = root.dir().join(&entry);
        let under = || before.iter().filter(|p| p.starts_with(&dir)).cloned();
        match plan(&root, &entry, &trust) {
            Plan::Topic(service) if dry_run => {
                let info = describe(&root, &service);
                let dead = info.publishers.iter().filter(|p| !p.alive).count()
                    + info.subscribers.iter().filter(|s| !s.alive).count();
                report.reclaimed_slots += dead;
                if dead == info.publishers.len() + info.subscribers.len() {
                    report.removed.extend(under());
                }
            }
            Plan::Topic(service) => {
                report.reclaimed_slots += service.sweep(&lock);
                service.remove_if_unused(&lock);
            }
            Plan::Stray if dry_run => report.removed.extend(under()),
            Plan::Stray => root.dir().remove_tree(&entry),
            Plan::Kept(reason) => report.kept.push((dir, reason)),
        }
    }
    // Service records whose service has no queue left (its last endpoint was killed).
    for (entry, kind) in root.dir().entries()? {
        let service = entry.to_str().and_then(crate::request::tools::parse_record);
        let Some(service) = service.filter(|_| kind != Kind::Dir) else {
            continue;
        };
        let left = if dry_run {
            crate::request::any_live_part(&root, &service, &trust)
        } else {
            crate::request::parts_left(&root, &service)
        };
        if !left {
            if dry_run {
                report.removed.push(root.dir().join(&entry));
            } else {
                root.dir().remove_file(&entry);
            }
        }
    }
    // Claims of bridges (`shmx-zenoh`, a `flock` on `.bridge.*`) that no bridge holds: a
    // bridge killed with SIGKILL leaves its claim files (their protocol tolerates removal:
    // a bridge checks, once it has a lock, that the path is still the file it locked).
    for (entry, kind) in root.dir().entries()? {
        let is_claim = entry.to_str().is_some_and(|n| n.starts_with(".bridge."));
        if kind != Kind::File || !is_claim {
            continue;
        }
        let Ok(Some(file)) = root
            .dir()
            .open_file(&entry, crate::dir::Access::ReadOnly, &trust)
        else {
            continue;
        };
        if rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive).is_ok() {
            if dry_run {
                report.removed.push(root.dir().join(&entry));
            } else {
                root.dir().remove_file(&entry);
            }
        }
    }
    if dry_run {
        report.removed.extend(
            before
                .iter()
                .filter(|p| is_dead_node_file(&root, p))
                .cloned(),
        );
        report.removed.sort();
        report.removed.dedup();
        if !had_lock_file {
            root.remove_lock_if_alone(&lock); // a dry run leaves the root as it found it
        }
        return Ok(report);
    }
    node::sweep_root(&root);
    root.remove_lock_if_alone(&lock);
    let after = files_under(root.dir());
    report.removed = before.difference(&after).cloned().collect();
    Ok(report)
}

/// What [`clean`] does with one directory of the root.
enum Plan {
    /// A topic: reclaim the slots of dead processes, remove it if nobody is left.
    Topic(Box<Service>),
    /// Not a shmx topic: remove it.
    Stray,
    /// A topic this shmx cannot use (another version, another user's): keep it.
    Kept(String),
}

/// Decides what [`clean`] does with directory `entry` of `root`, with the root lock held (so
/// no topic is being created meanwhile).
fn plan(root: &Arc<Root>, entry: &std::ffi::OsStr, trust: &Trust) -> Plan {
    // A topic directory's name is exactly the encoding of a valid topic name, or of a
    // service's queue (see `request`).
    let part = entry
        .to_str()
        .and_then(crate::request::tools::parse_part)
        .map(|(_, _, _, name)| name);
    let name = part.or_else(|| {
        entry
            .to_str()
            .and_then(TopicName::decode)
            .and_then(|n| TopicName::new(&n).ok())
            .filter(|n| n.encoded() == entry)
    });
    let Some(name) = name else {
        return Plan::Stray;
    };
    match Service::open_untyped(root, &name, trust) {
        Ok(Some(service)) => Plan::Topic(Box::new(service)),
        // No service segment (a creation cut short), or not a shmx segment at all.
        Ok(None) | Err(Error::Corrupt { .. }) => Plan::Stray,
        Err(e) => Plan::Kept(e.to_string()),
    }
}

fn is_dead_node_file(root: &Root, path: &Path) -> bool {
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return false;
    };
    if name.starts_with(".node.") {
        return true;
    }
    node::id_of(name).is_some_and(|id| !node::is_alive(root, id))
}

/// Every path under `dir`, not following links (the root's lock file is not counted: it
/// stays).
fn files_under(dir: &Dir) -> BTreeSet<PathBuf> {
    let mut out = BTreeSet::new();
    collect(dir, &mut out);
    out.remove(&dir.join(".lock"));
    out
}

fn collect(dir: &Dir, out: &mut BTreeSet<PathBuf>) {
    for (name, kind) in dir.entries().unwrap_or_default() {
        if kind == Kind::Dir {
            if let Ok(Some(sub)) = dir.open_dir(&name, &Trust::for_tools()) {
                collect(&sub, out);
            }
        }
        out.insert(dir.join(&name));
    }
}
