//! The defaults file `shmx.toml`: the root, the topics' mode and group, and the default
//! limits of topics, publishers and subscribers of every program on the machine (or of one
//! user, or one directory), without changing their code.
//!
//! # Where it is
//!
//! The first of these that exists is used, and only that one:
//!
//! 1. `$SHMX_CONFIG`, when set: the file it names (relative to the current directory). A
//!    file it names that does not exist or cannot be read is an error, never a fall back to
//!    the others. Set to the empty string, no defaults file is read at all.
//! 2. `./shmx.toml`, in the current directory, if that directory belongs to the effective
//!    uid or root and no group or other user may write it (not in `/tmp`: anyone could plant
//!    a file there).
//! 3. The user's: `$XDG_CONFIG_HOME/shmx/shmx.toml`, or, when `XDG_CONFIG_HOME` is not set
//!    (or not absolute), `$HOME/.config/shmx/shmx.toml`.
//! 4. The system's: `/etc/shmx/shmx.toml`.
//!
//! A directory on the way that the process may not search (the `HOME` of another user after
//! `su`, say) hides what is in it: the search goes on. None found: the built-in defaults.
//! The file is looked for and read once per process, when the first endpoint is built (or
//! [`Defaults::get`] is called), and kept.
//!
//! # What it says
//!
//! ```toml
//! root = "/dev/shm/shmx-robot"     # where topics live (an absolute path)
//! max_root_bytes = "1GiB"          # budget of every publisher's pool under the root
//!
//! [topic]                          # TopicConfig: used by whoever creates a topic
//! mode = "0660"                    # octal string, or a TOML integer (0o660)
//! group = 1001                     # a gid, or a name from /etc/group ("robot")
//! max_publishers = 8
//! max_subscribers = 16
//! max_queue_depth = 256
//! max_held = 8
//! max_history = 64
//!
//! [publisher]                      # PublisherConfig
//! queue_depth = 64
//! history = 1
//! max_loans = 4
//! overflow = "block"               # "drop-oldest", "block" or "fail"
//! block_timeout = "100ms"          # a whole number and ns, us, ms or s; or "forever"
//! max_tail_bytes = 0
//! pool_classes = "powers-of-two"   # or the tails of the size classes: [4096, 65536]
//! reserve_chunks = "auto"          # chunks a size class starts with; or "worst-case"
//! max_pool_bytes = "256MiB"        # budget of one publisher's pool; or "none"
//!
//! [subscriber]                     # SubscriberConfig
//! queue_depth = 64
//! ```
//!
//! Every key is optional; a key that is not there keeps its built-in value. An unknown key
//! or table, a value of the wrong type or out of range (as the builders check them: mode
//! `0777`, a queue depth of 0, overflow `"maybe"`, a publisher's queue depth over the
//! topic's `max_queue_depth`) is [`Error::Config`] naming the file, the line and the column.
//! `max_tail_bytes` is that of [`Publisher`](crate::Publisher)s: archive publishers keep
//! their own `max_bytes` (64 KiB).
//!
//! # Precedence
//!
//! A builder's own calls win over the file, and the file wins over the built-in values:
//! [`Publisher::builder`](crate::Publisher::builder), [`Subscriber::builder`](crate::Subscriber::builder)
//! and the archive builders start from [`Defaults::get`]'s values, so `.queue_depth(2)`
//! gives 2 whatever the file says, and a value not set by the builder comes from the file.
//! (`topic_config(..)` replaces the whole [`TopicConfig`], mode and group included: start it
//! from `Defaults::get()?.topic()` to keep the file's other values.) For the root,
//! the environment comes first: `root(..)`, else `$SHMX_ROOT`, else the file's `root`, else
//! `/dev/shm/shmx-<uid>`. `PublisherConfig::default()`, `SubscriberConfig::default()` and
//! `TopicConfig::default()` stay the built-in values, as do the raw endpoints
//! ([`RawPublisher`](crate::inspect::RawPublisher), [`RawSubscriber`](crate::inspect::RawSubscriber)),
//! which take their root and configuration from their caller.
//!
//! A file that cannot be used makes every builder's `create()` fail with its
//! [`Error::Config`] (`Publisher::new` and `Subscriber::new` too): a program never runs with
//! half of the defaults its user wrote.
//!
//! # Trust
//!
//! The file decides where a program's topics live and who may read them, so it must be as
//! private as the program: it is refused (an [`Error::Config`] that says why) unless it is a
//! regular file owned by the process's effective uid or by root, that neither its group nor
//! others may write, reached through no symbolic link of another user. The owner and mode
//! are those of the opened descriptor (`fstat`), and links are looked at through descriptors
//! of their own, so a file swapped in after the check is never read. A `shmx.toml` in a
//! shared current directory (say `/tmp`) is not looked at; another user's file in a
//! directory of yours is an error, not a silent change of root; files of procfs and sysfs
//! are refused.
//!
//! ```
//! use shmx::defaults::{Defaults, Source};
//!
//! let text = "[publisher]\nqueue_depth = 64\noverflow = \"block\"\n";
//! let defaults = Defaults::parse(text, "/etc/shmx/shmx.toml")?;
//! assert_eq!(defaults.publisher().queue_depth, 64);
//! assert_eq!(defaults.subscriber().queue_depth, 16);  // built-in
//! let depth = defaults.settings().into_iter().find(|s| s.key == "publisher.queue_depth");
//! assert_eq!(depth.unwrap().source.to_string(), "/etc/shmx/shmx.toml:2");
//!
//! let bad = Defaults::parse("[publisher]\noverflow = \"maybe\"\n", "shmx.toml").unwrap_err();
//! assert!(matches!(bad, shmx::Error::Config { line: Some(2), .. }));
//! # Ok::<(), shmx::Error>(())
//! ```

mod file;
mod key;
mod trust;

use crate::config::{Overflow, PublisherConfig, SubscriberConfig, TopicConfig};
use crate::error::{Error, Result};
use std::ffi::OsString;
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use key::Key;

/// The environment variable that names the defaults file (empty: none).
pub const CONFIG_VAR: &str = "SHMX_CONFIG";

/// The environment variable that names the root; it wins over the file's `root`.
pub const ROOT_VAR: &str = "SHMX_ROOT";

/// The largest defaults file read (a larger one is an error: it is not a `shmx.toml`).
const MAX_BYTES: u64 = 1 << 20;

/// The defaults of this process's endpoints: the built-in values, with what a defaults file
/// sets instead (see the [module docs](self)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Defaults {
    file: Option<PathBuf>,
    searched: Vec<PathBuf>,
    root: Option<PathBuf>,
    topic: TopicConfig,
    publisher: PublisherConfig,
    subscriber: SubscriberConfig,
    /// The line of each [`Key`] in the file, if the file sets it.
    lines: [Option<usize>; Key::ALL.len()],
}

/// Where an effective setting comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Source {
    /// shmx's own default.
    BuiltIn,
    /// A line of the defaults file.
    File {
        /// The file.
        path: PathBuf,
        /// The line (1-based).
        line: usize,
    },
    /// An environment variable (`SHMX_ROOT`).
    Environment(&'static str),
}

impl fmt::Display for Source {
    /// `built-in`, `<file>:<line>` or `environment SHMX_ROOT`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::BuiltIn => f.write_str("built-in"),
            Source::File { path, line } => write!(f, "{}:{line}", path.display()),
            Source::Environment(var) => write!(f, "environment {var}"),
        }
    }
}

/// One effective setting, for people and tools (`shmx config show`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Setting {
    /// The key as the file writes it, with its table: `root`, `topic.mode`,
    /// `publisher.queue_depth`, `subscriber.queue_depth`, ….
    pub key: &'static str,
    /// The value as the file would write it (without quotes): `0660`, `drop-oldest`,
    /// `100ms`, `forever`; `none` for a group that is not set.
    pub value: String,
    /// Where it comes from.
    pub source: Source,
}

impl Defaults {
    /// The defaults of this process: the defaults file found as the [module docs](self) say,
    /// read on the first call and kept for the life of the process (a later change of the
    /// file or of `SHMX_CONFIG` changes nothing). Builders call it; so may programs that
    /// want to report or start from the same values.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// use shmx::defaults::Defaults;
    /// use shmx::{Publisher, TopicConfig};
    ///
    /// // Fewer subscribers than the defaults say, and the defaults' mode, group and limits.
    /// let topic = TopicConfig { max_subscribers: 2, ..Defaults::get()?.topic() };
    /// let publisher = Publisher::<u64>::builder("doc/defaults")
    ///     .root(dir.path())
    ///     .topic_config(topic)
    ///     .create()?;
    /// # Ok::<(), shmx::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Config`] when the file cannot be used (every call returns the same error).
    pub fn get() -> Result<&'static Defaults> {
        static DEFAULTS: OnceLock<Result<Defaults, ConfigError>> = OnceLock::new();
        DEFAULTS
            .get_or_init(|| Self::search(Candidates::from_env()))
            .as_ref()
            .map_err(|e| e.clone().into())
    }

    /// Looks for the defaults file now and reads it, without keeping it (see [`get`](Self::get)).
    ///
    /// # Errors
    /// [`Error::Config`] when the file cannot be used.
    pub fn load() -> Result<Defaults> {
        Ok(Self::search(Candidates::from_env())?)
    }

    /// Reads the defaults file at `path`, refused unless it may be trusted (see the
    /// [module docs](self)).
    ///
    /// # Errors
    /// [`Error::Config`] when it does not exist, cannot be read, is refused or is wrong.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Defaults> {
        let path = path.as_ref();
        match Self::read(path)? {
            Ok(d) => Ok(d),
            Err(trust::Found::Hidden(reason)) => Err(ConfigError::about(path, reason).into()),
            Err(_) => Err(ConfigError::about(path, "the file does not exist").into()),
        }
    }

    /// Reads `text` as the content of a defaults file at `path` (named in errors and
    /// sources; not opened, so not checked for trust).
    ///
    /// # Errors
    /// [`Error::Config`] at the line and column of the first problem.
    pub fn parse(text: &str, path: impl AsRef<Path>) -> Result<Defaults> {
        Ok(file::parse(text, path.as_ref())?)
    }

    /// The built-in defaults, as if there were no defaults file.
    pub fn built_in() -> Defaults {
        let topic = TopicConfig::default();
        Defaults {
            file: None,
            searched: Vec::new(),
            root: None,
            topic,
            publisher: PublisherConfig::default(),
            subscriber: SubscriberConfig::default(),
            lines: [None; Key::ALL.len()],
        }
    }

    /// The defaults file these values come from, if any.
    pub fn file(&self) -> Option<&Path> {
        self.file.as_deref()
    }

    /// The paths looked at to find the file, in order, up to the one used (empty when
    /// `SHMX_CONFIG` named the file or was empty, or for [`from_file`](Self::from_file) and
    /// [`parse`](Self::parse)).
    pub fn searched(&self) -> &[PathBuf] {
        &self.searched
    }

    /// The root of endpoints that are not given one: `$SHMX_ROOT` if set and not empty
    /// (read now), else the file's `root`, else the private per-user `/dev/shm/shmx-<uid>`
    /// (a `shmx-<uid>` folder in the temporary directory on systems without `/dev/shm`).
    pub fn root(&self) -> PathBuf {
        self.root_and_source().0
    }

    /// The topic configuration endpoints start from ([`TopicConfig::default`] with the
    /// file's `[topic]`).
    pub fn topic(&self) -> TopicConfig {
        self.topic
    }

    /// The publisher configuration builders start from (its `topic` is [`topic`](Self::topic)).
    pub fn publisher(&self) -> PublisherConfig {
        self.publisher
    }

    /// The subscriber configuration builders start from (its `topic` is
    /// [`topic`](Self::topic)).
    pub fn subscriber(&self) -> SubscriberConfig {
        self.subscriber
    }

    /// Every setting, its effective value and where it comes from, in the file's order of
    /// tables: `root`, then `topic.*`, `publisher.*` and `subscriber.*`.
    pub fn settings(&self) -> Vec<Setting> {
        Key::ALL
            .iter()
            .map(|&key| {
                let (value, source) = if key == Key::Root {
                    let (root, source) = self.root_and_source();
                    (root.display().to_string(), source)
                } else {
                    (self.value(key), self.source(key))
                };
                Setting {
                    key: key.name(),
                    value,
                    source,
                }
            })
            .collect()
    }

    fn source(&self, key: Key) -> Source {
        match (&self.file, self.lines[key as usize]) {
            (Some(path), Some(line)) => Source::File {
                path: path.clone(),
                line,
            },
            _ => Source::BuiltIn,
        }
    }

    fn root_and_source(&self) -> (PathBuf, Source) {
        match std::env::var_os(ROOT_VAR).filter(|r| !r.is_empty()) {
            Some(root) => (PathBuf::from(root), Source::Environment(ROOT_VAR)),
            None => match &self.root {
                Some(root) => (root.clone(), self.source(Key::Root)),
                None => (crate::root::built_in_path(), Source::BuiltIn),
            },
        }
    }

    /// The file's `root`, if it sets one.
    pub(crate) fn file_root(&self) -> Option<&Path> {
        self.root.as_deref()
    }

    fn value(&self, key: Key) -> String {
        let (t, p) = (&self.topic, &self.publisher);
        match key {
            Key::Root => unreachable!("root is resolved with the environment"),
            Key::Mode => format!("{:04o}", t.mode),
            Key::Group => t.group.map_or_else(|| "none".into(), |g| g.to_string()),
            Key::MaxPublishers => t.max_publishers.to_string(),
            Key::MaxSubscribers => t.max_subscribers.to_string(),
            Key::MaxQueueDepth => t.max_queue_depth.to_string(),
            Key::MaxHeld => t.max_held.to_string(),
            Key::MaxHistory => t.max_history.to_string(),
            Key::QueueDepth => p.queue_depth.to_string(),
            Key::History => p.history.to_string(),
            Key::MaxLoans => p.max_loans.to_string(),
            Key::Overflow => match p.overflow {
                Overflow::DropOldest => "drop-oldest",
                Overflow::Block => "block",
                Overflow::Fail => "fail",
            }
            .into(),
            Key::BlockTimeout => p
                .block_timeout
                .map_or_else(|| "forever".into(), file::duration_text),
            Key::MaxTailBytes => p.max_tail_bytes.to_string(),
            Key::PoolClasses => match p.pool_classes.tails() {
                None => "powers-of-two".into(),
                Some(tails) => format!("{tails:?}"),
            },
            Key::ReserveChunks => match p.reserve_chunks {
                None => "auto".into(),
                Some(usize::MAX) => "worst-case".into(),
                Some(n) => n.to_string(),
            },
            Key::MaxPoolBytes => p
                .max_pool_bytes
                .map_or_else(|| "none".into(), file::byte_size_text),
            Key::MaxRootBytes => p
                .max_root_bytes
                .map_or_else(|| "none".into(), file::byte_size_text),
            Key::SubscriberQueueDepth => self.subscriber.queue_depth.to_string(),
        }
    }

    /// Finds and reads the file among `candidates`.
    fn search(candidates: Candidates) -> Result<Defaults, ConfigError> {
        match candidates {
            Candidates::Disabled => Ok(Defaults::built_in()),
            Candidates::Given(path) => match Self::read(&path)? {
                Ok(d) => Ok(d),
                Err(trust::Found::Hidden(reason)) => Err(ConfigError::about(&path, reason)),
                Err(_) => Err(ConfigError::about(
                    &path,
                    "SHMX_CONFIG names this file, but it does not exist (set SHMX_CONFIG empty \
                     to read no defaults file)",
                )),
            },
            Candidates::Search(paths) => {
                let mut searched = Vec::new();
                for path in paths {
                    searched.push(path.clone());
                    if let Ok(mut d) = Self::read(&path)? {
                        d.searched = searched;
                        return Ok(d);
                    }
                }
                Ok(Defaults {
                    searched,
                    ..Defaults::built_in()
                })
            }
        }
    }

    /// Opens (checking trust) and parses the file at `path`; `Ok(Err(found))` when there is
    /// no file there for this process ([`Found::Missing`](trust::Found::Missing) or
    /// [`Found::Hidden`](trust::Found::Hidden)).
    fn read(path: &Path) -> Result<Result<Defaults, trust::Found>, ConfigError> {
        let file = match trust::open(path).map_err(|reason| ConfigError::about(path, reason))? {
            trust::Found::File(file) => file,
            other => return Ok(Err(other)),
        };
        let mut bytes = Vec::new();
        file.take(MAX_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| ConfigError::about(path, format!("cannot read it: {e}")))?;
        if bytes.len() as u64 > MAX_BYTES {
            return Err(ConfigError::about(
                path,
                format!("it is larger than {MAX_BYTES} bytes: not a defaults file"),
            ));
        }
        let text = String::from_utf8(bytes)
            .map_err(|_| ConfigError::about(path, "it is not UTF-8 text"))?;
        file::parse(&text, path).map(Ok)
    }
}

/// The builders' starting point: the effective defaults, or the built-in ones when the file
/// cannot be used (their `create()` then returns its error through [`check`]).
pub(crate) fn publisher() -> PublisherConfig {
    Defaults::get().map_or_else(|_| PublisherConfig::default(), Defaults::publisher)
}

/// See [`publisher`].
pub(crate) fn subscriber() -> SubscriberConfig {
    Defaults::get().map_or_else(|_| SubscriberConfig::default(), Defaults::subscriber)
}

/// The error of a defaults file that cannot be used, for every builder's `create()`.
pub(crate) fn check() -> Result<()> {
    Defaults::get().map(|_| ())
}

/// Where to look for the file.
#[derive(Debug, PartialEq, Eq)]
enum Candidates {
    /// `SHMX_CONFIG` is set and empty: no file.
    Disabled,
    /// `SHMX_CONFIG` names the file.
    Given(PathBuf),
    /// The first of these that exists.
    Search(Vec<PathBuf>),
}

impl Candidates {
    fn from_env() -> Candidates {
        // `./shmx.toml` only from a current directory that no other user may write: in a
        // shared one (`/tmp`) anyone could plant a file there and make every program started
        // there fail (or pick which of your files is read).
        let cwd = std::env::current_dir().ok().filter(|d| private_dir(d));
        Self::of(
            std::env::var_os(CONFIG_VAR),
            cwd,
            std::env::var_os("XDG_CONFIG_HOME"),
            std::env::var_os("HOME"),
        )
    }

    /// The search order for these values of `SHMX_CONFIG`, the current directory,
    /// `XDG_CONFIG_HOME` and `HOME`.
    fn of(
        config: Option<OsString>,
        cwd: Option<PathBuf>,
        xdg: Option<OsString>,
        home: Option<OsString>,
    ) -> Candidates {
        match config {
            Some(c) if c.is_empty() => return Candidates::Disabled,
            Some(c) => return Candidates::Given(PathBuf::from(c)),
            None => {}
        }
        let mut paths: Vec<PathBuf> = cwd.map(|d| d.join("shmx.toml")).into_iter().collect();
        // The XDG base directory rules: a relative XDG_CONFIG_HOME is ignored.
        let xdg = xdg.map(PathBuf::from).filter(|p| p.is_absolute());
        let home = home.filter(|h| !h.is_empty()).map(PathBuf::from);
        if let Some(dir) = xdg.or_else(|| Some(home?.join(".config"))) {
            paths.push(dir.join("shmx").join("shmx.toml"));
        }
        paths.push(PathBuf::from("/etc/shmx/shmx.toml"));
        Candidates::Search(paths)
    }
}

/// Whether `dir` is owned by this process's effective uid or root and may be written by
/// no group or other user.
fn private_dir(dir: &Path) -> bool {
    let euid = rustix::process::geteuid().as_raw();
    rustix::fs::stat(dir)
        .is_ok_and(|st| (st.st_uid == euid || st.st_uid == 0) && st.st_mode & 0o022 == 0)
}

/// An [`Error::Config`] that can be kept and handed out again (the cached result of
/// [`Defaults::get`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ConfigError {
    path: PathBuf,
    line: Option<usize>,
    column: Option<usize>,
    reason: String,
}

impl ConfigError {
    /// A problem with the file as a whole (no line).
    fn about(path: &Path, reason: impl Into<String>) -> ConfigError {
        ConfigError {
            path: path.to_owned(),
            line: None,
            column: None,
            reason: reason.into(),
        }
    }
}

impl From<ConfigError> for Error {
    fn from(e: ConfigError) -> Error {
        Error::Config {
            path: e.path,
            line: e.line,
            column: e.column,
            reason: e.reason,
        }
    }
}

#[cfg(test)]
mod tests;
