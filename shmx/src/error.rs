//! The one error type of shmx.

use std::path::PathBuf;

/// Everything that can go wrong in shmx. Each variant says what happened and to which topic
/// or file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The topic name cannot be used.
    #[error("invalid topic name {name:?}: {reason}")]
    InvalidName {
        /// The name as given.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The topic exists with another message type.
    #[error(
        "topic {topic:?} carries `{existing_type}` (fingerprint {existing_fingerprint:#018x}, \
         {existing_size} bytes) but this process uses `{requested_type}` (fingerprint \
         {requested_fingerprint:#018x}, {requested_size} bytes): {difference}"
    )]
    TypeMismatch {
        /// The topic.
        topic: String,
        /// The type name stored in the topic.
        existing_type: String,
        /// The fingerprint stored in the topic.
        existing_fingerprint: u64,
        /// The size stored in the topic.
        existing_size: u64,
        /// The type this process asked for.
        requested_type: String,
        /// Its fingerprint.
        requested_fingerprint: u64,
        /// Its size.
        requested_size: u64,
        /// What differs, the first difference of the two schemas first: e.g. "field `x`
        /// differs: `x@8:f64` there, `x@8:f32` here".
        /// (Boxed: it keeps every `Result` of this crate as small as it was.)
        difference: Box<str>,
    },
    /// A subscriber's queue was full and the publisher's policy is `Overflow::Fail`.
    #[error("topic {topic:?}: the queue of a subscriber is full ({depth} samples)")]
    QueueFull {
        /// The topic.
        topic: String,
        /// The queue depth of the full connection.
        depth: usize,
    },
    /// The publisher has no free chunk: every chunk is loaned, queued, held or kept as history.
    #[error("topic {topic:?}: all {chunks} chunks of the publisher's pool are in use")]
    PoolExhausted {
        /// The topic.
        topic: String,
        /// Number of chunks in the pool.
        chunks: usize,
    },
    /// The publisher's pool may not grow: it would pass a memory budget (the publisher's
    /// `max_pool_bytes`, or the root's `max_root_bytes`).
    #[error(
        "topic {topic:?}: the pool may not grow by {wanted} bytes: {budget} is {limit} bytes \
         and {reserved} are reserved"
    )]
    BudgetExceeded {
        /// The topic.
        topic: String,
        /// Which budget: `"max_pool_bytes"` (this publisher) or `"max_root_bytes"` (every
        /// publisher under the root).
        budget: &'static str,
        /// The budget, in bytes.
        limit: u64,
        /// Bytes it counts as reserved already.
        reserved: u64,
        /// Bytes the growth needed (the smallest it could have been).
        wanted: u64,
    },
    /// The publisher already lends out as many samples as `max_loans` allows.
    #[error(
        "topic {topic:?}: {max_loans} samples are loaned already (max_loans); publish or drop one"
    )]
    LoanLimit {
        /// The topic.
        topic: String,
        /// The configured limit.
        max_loans: usize,
    },
    /// The subscriber already holds as many samples as the topic allows.
    #[error(
        "topic {topic:?}: this subscriber holds {max_held} samples already (max_held); drop one \
         before taking the next"
    )]
    HeldLimit {
        /// The topic.
        topic: String,
        /// The configured limit.
        max_held: usize,
    },
    /// The other side of a request is gone: the server that had the request died (or no
    /// server of the service runs), or the client that asked did.
    #[error("service {service:?}: {reason}")]
    PeerGone {
        /// The service.
        service: String,
        /// Who is gone, and what became of the request.
        reason: String,
    },
    /// A client has as many requests in flight as it may: wait for responses (or drop a
    /// [`Pending`](crate::request::Pending)) before sending more.
    #[error("service {service:?}: {max_in_flight} requests in flight already (max_in_flight)")]
    InFlightLimit {
        /// The service.
        service: String,
        /// The client's limit.
        max_in_flight: usize,
    },
    /// A blocking operation did not complete in time.
    #[error("topic {topic:?}: {operation} timed out")]
    Timeout {
        /// The topic.
        topic: String,
        /// What timed out.
        operation: &'static str,
    },
    /// A shared-memory file does not hold what shmx wrote there.
    #[error(
        "{path}: corrupt shared-memory segment: {reason}; remove the file if no process uses it"
    )]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A shared-memory file was written by an incompatible version of shmx.
    #[error(
        "{path}: segment layout version {found}, this shmx speaks {expected}; stop the other \
         processes or remove the file"
    )]
    Version {
        /// The file.
        path: PathBuf,
        /// The version in the file.
        found: u32,
        /// The version this library writes.
        expected: u32,
    },
    /// The process may not open or create a file, or shmx refuses to use one that another
    /// user could have made or may write (see the trust model in the crate docs).
    #[error("{path}: permission denied: {reason}")]
    PermissionDenied {
        /// The file or directory.
        path: PathBuf,
        /// What is wrong and how to fix it.
        reason: String,
    },
    /// The shared-memory filesystem is full.
    #[error(
        "{path}: no space to reserve {bytes} bytes of shared memory; enlarge /dev/shm (docker: \
         --shm-size) or shrink the pool"
    )]
    OutOfSpace {
        /// The file.
        path: PathBuf,
        /// How many bytes were asked for.
        bytes: u64,
    },
    /// A topic's table of publishers or subscribers is full.
    #[error("topic {topic:?}: all {max} {role} slots are taken")]
    TooManyParticipants {
        /// The topic.
        topic: String,
        /// `"publisher"` or `"subscriber"`.
        role: &'static str,
        /// Capacity of the table.
        max: usize,
    },
    /// A configuration value is out of range or conflicts with the topic.
    #[error("topic {topic:?}: invalid configuration: {reason}")]
    InvalidConfig {
        /// The topic.
        topic: String,
        /// What is wrong.
        reason: String,
    },
    /// Schema text that is not the canonical text of a layout a message type can have (see
    /// [`schema_text`](crate::schema_text)), or that a type declared at run time (in another
    /// language) cannot be written as.
    #[error("invalid schema: {reason}")]
    InvalidSchema {
        /// What is wrong, and where in the text.
        reason: String,
    },
    /// A received sample failed validation: the publisher wrote bytes that are not a valid
    /// value. The sample was dropped; the subscriber keeps working.
    #[error("topic {topic:?}: invalid sample {sequence}: {reason}")]
    InvalidSample {
        /// The topic.
        topic: String,
        /// The sample's sequence number.
        sequence: u64,
        /// What validation found.
        reason: String,
    },
    /// A loaned sample's tail has no room left for what a relative pointer should hold.
    #[error(
        "topic {topic:?}: the sample's tail has {available} bytes left but {requested} are \
         needed; raise the publisher's max_tail_bytes"
    )]
    TailFull {
        /// The topic.
        topic: String,
        /// Bytes asked for (with alignment).
        requested: usize,
        /// Bytes still free in the tail.
        available: usize,
    },
    /// A relative pointer was asked to point into the tail of a sample that does not hold it.
    #[error(
        "topic {topic:?}: a relative pointer can only point into the tail of the sample that \
         holds it"
    )]
    ForeignTail {
        /// The topic of the tail that was given.
        topic: String,
    },
    /// A value could not be archived into a chunk (with the `rkyv` feature): most often the
    /// archive is larger than the publisher's `max_bytes`.
    #[error("topic {topic:?}: cannot archive the value: {reason}")]
    Archive {
        /// The topic.
        topic: String,
        /// What the serializer reported.
        reason: String,
    },
    /// The defaults file (`shmx.toml`, see [`defaults`](crate::defaults)) cannot be used: it
    /// does not parse, holds an unknown key or a value out of range, cannot be read, or may
    /// have been written by another user. Every builder's `create()` returns it while the
    /// file is wrong; fix the file, or set `SHMX_CONFIG` to another file (empty: none).
    #[error("{}: {reason}", location(.path, *.line, *.column))]
    Config {
        /// The file.
        path: PathBuf,
        /// The line of the offending key or value (1-based), when the problem has one.
        line: Option<usize>,
        /// Its column (1-based, in characters), when the problem has one.
        column: Option<usize>,
        /// What is wrong, and how to fix it.
        reason: String,
    },
    /// Any other I/O error, with the file it concerns.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

/// `Result<T, shmx::Error>`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// `path`, `path:line` or `path:line:column`, as compilers print a place in a file.
fn location(path: &std::path::Path, line: Option<usize>, column: Option<usize>) -> String {
    match (line, column) {
        (Some(line), Some(column)) => format!("{}:{line}:{column}", path.display()),
        (Some(line), None) => format!("{}:{line}", path.display()),
        _ => path.display().to_string(),
    }
}

impl Error {
    /// Classifies an I/O error on `path`: permission and space problems get their own variants.
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error, bytes: u64) -> Error {
        let path = path.into();
        match source.kind() {
            std::io::ErrorKind::PermissionDenied => Error::PermissionDenied {
                path,
                reason: "the system refused access; check the owner and mode of the file and \
                         of its directories (or SHMX_ROOT)"
                    .into(),
            },
            std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded => {
                Error::OutOfSpace { path, bytes }
            }
            _ => Error::Io { path, source },
        }
    }

    pub(crate) fn corrupt(path: impl Into<PathBuf>, reason: impl Into<String>) -> Error {
        Error::Corrupt {
            path: path.into(),
            reason: reason.into(),
        }
    }
}
