//! What the commands print: serializable mirrors of the `shmx::inspect` types, aligned text
//! tables, and the error type of the commands.

use serde::Serialize;
use shmx::inspect::{PublisherInfo, SubscriberInfo, TopicInfo};
use std::fmt;
use std::io::{self, Write};

/// Why a command failed.
#[derive(Debug)]
pub enum Failure {
    /// The library refused or failed.
    Shmx(shmx::Error),
    /// Something the tool itself has to say (e.g. an unknown topic).
    Message(String),
    /// Writing the output failed.
    Write(io::Error),
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Shmx(e) => e.fmt(f),
            Failure::Message(m) => f.write_str(m),
            Failure::Write(e) => write!(f, "writing the output: {e}"),
        }
    }
}

impl From<shmx::Error> for Failure {
    fn from(e: shmx::Error) -> Self {
        Failure::Shmx(e)
    }
}

impl From<io::Error> for Failure {
    fn from(e: io::Error) -> Self {
        Failure::Write(e)
    }
}

impl From<serde_json::Error> for Failure {
    fn from(e: serde_json::Error) -> Self {
        Failure::Write(e.into())
    }
}

/// The library's error on opening `topic`, with a clear message when the topic does not exist.
pub fn no_topic(e: shmx::Error, topic: &str) -> Failure {
    match e {
        shmx::Error::Io { source, .. } if source.kind() == io::ErrorKind::NotFound => {
            Failure::Message(format!(
                "no topic {topic:?}: start a publisher or subscriber of it first"
            ))
        }
        e => Failure::Shmx(e),
    }
}

/// What a command returns.
pub type Result<T = ()> = std::result::Result<T, Failure>;

/// Writes `value` as pretty JSON and a newline.
pub fn write_json(out: &mut dyn Write, value: &impl Serialize) -> Result {
    serde_json::to_writer_pretty(&mut *out, value)?;
    writeln!(out)?;
    Ok(())
}

/// A fingerprint as the library's errors show it: `0x` and 16 hex digits.
pub fn hex(fingerprint: u64) -> String {
    format!("{fingerprint:#018x}")
}

/// A file mode in octal, e.g. `0600`.
pub fn octal(mode: u32) -> String {
    format!("{mode:04o}")
}

/// `pid(alive)` or `pid(DEAD)`.
pub fn pid_cell(pid: u64, alive: bool) -> String {
    format!("{pid}({})", if alive { "alive" } else { "DEAD" })
}

/// One topic, as `--json` shows it.
#[derive(Debug, Serialize)]
pub struct Topic {
    /// The topic's name.
    pub name: String,
    /// Its directory.
    pub dir: String,
    /// The message type's name.
    pub type_name: String,
    /// The message type's fingerprint, in hex.
    pub fingerprint: String,
    /// `size_of` the message type.
    pub type_size: u64,
    /// The message type's layout.
    pub schema: String,
    /// The topic-wide limits.
    pub limits: Limits,
    /// Bytes of memory the topic's files hold (allocated blocks).
    pub reserved_bytes: u64,
    /// Publisher slots in use.
    pub publishers: Vec<Publisher>,
    /// Subscriber slots in use.
    pub subscribers: Vec<Subscriber>,
}

/// The topic-wide limits.
#[derive(Debug, Serialize)]
pub struct Limits {
    /// Publishers that may be connected at once.
    pub max_publishers: usize,
    /// Subscribers that may be connected at once.
    pub max_subscribers: usize,
    /// Largest queue depth.
    pub max_queue_depth: usize,
    /// Samples one subscriber may hold at once.
    pub max_held: usize,
    /// Largest history of a publisher.
    pub max_history: usize,
    /// File mode of the topic's files, in octal (`"0600"`).
    pub mode: String,
}

/// One publisher slot in use.
#[derive(Debug, Serialize)]
pub struct Publisher {
    /// Slot number.
    pub slot: usize,
    /// The id its samples carry (`publisher_id`, the same on every machine bridges join).
    pub id: u64,
    /// Process id of the owner.
    pub pid: u64,
    /// Whether the owner is alive.
    pub alive: bool,
    /// `active`, `draining` or `claiming`.
    pub state: &'static str,
    /// Its queue depth.
    pub queue_depth: u64,
    /// Chunks in its pool.
    pub chunks: u64,
    /// Chunks of the pool in use (as of its last publish, less returns since).
    pub chunks_in_use: u64,
    /// Bytes of one chunk.
    pub chunk_bytes: u64,
    /// Bytes of memory its data segments hold (allocated blocks).
    pub reserved_bytes: u64,
    /// Bytes of its chunks in use.
    pub used_bytes: u64,
    /// Samples it has published.
    pub published: u64,
    /// Samples it keeps as history.
    pub history: u64,
    /// Its pool, size class by size class.
    pub classes: Vec<Class>,
}

/// One size class of a publisher's pool.
#[derive(Debug, Serialize)]
pub struct Class {
    /// Payload bytes of a chunk (message and tail).
    pub payload_bytes: u64,
    /// Bytes of one chunk.
    pub chunk_bytes: u64,
    /// Chunks of the class.
    pub chunks: u64,
    /// Chunks in use (as of the publisher's last look).
    pub in_use: u64,
    /// Segment files of the class.
    pub segments: u64,
    /// Bytes of memory its segment files hold.
    pub reserved_bytes: u64,
    /// Bytes of its chunks in use.
    pub used_bytes: u64,
}

/// One subscriber slot in use.
#[derive(Debug, Serialize)]
pub struct Subscriber {
    /// Slot number.
    pub slot: usize,
    /// Process id of the owner.
    pub pid: u64,
    /// Whether the owner is alive.
    pub alive: bool,
    /// `active` or `claiming`.
    pub state: &'static str,
    /// Its queue depth (per publisher).
    pub queue_depth: u64,
    /// Samples waiting in its queues.
    pub queued: u64,
}

impl From<&TopicInfo> for Topic {
    fn from(t: &TopicInfo) -> Self {
        Topic {
            name: t.name.clone(),
            dir: t.dir.display().to_string(),
            type_name: t.type_name.clone(),
            fingerprint: hex(t.fingerprint),
            type_size: t.type_size,
            schema: t.schema.clone(),
            limits: Limits {
                max_publishers: t.limits.max_publishers,
                max_subscribers: t.limits.max_subscribers,
                max_queue_depth: t.limits.max_queue_depth,
                max_held: t.limits.max_held,
                max_history: t.limits.max_history,
                mode: octal(t.limits.mode),
            },
            reserved_bytes: t.reserved_bytes,
            publishers: t.publishers.iter().map(Publisher::from).collect(),
            subscribers: t.subscribers.iter().map(Subscriber::from).collect(),
        }
    }
}

impl From<&PublisherInfo> for Publisher {
    fn from(p: &PublisherInfo) -> Self {
        Publisher {
            slot: p.slot,
            id: p.id,
            pid: p.pid,
            alive: p.alive,
            state: p.state,
            queue_depth: p.queue_depth,
            chunks: p.chunks,
            chunks_in_use: p.chunks_in_use,
            chunk_bytes: p.chunk_bytes,
            reserved_bytes: p.reserved_bytes,
            used_bytes: p.used_bytes,
            published: p.published,
            history: p.history,
            classes: p
                .classes
                .iter()
                .map(|c| Class {
                    payload_bytes: c.payload_bytes,
                    chunk_bytes: c.chunk_bytes,
                    chunks: c.chunks,
                    in_use: c.in_use,
                    segments: c.segments,
                    reserved_bytes: c.reserved_bytes,
                    used_bytes: c.in_use.saturating_mul(c.chunk_bytes),
                })
                .collect(),
        }
    }
}

impl From<&SubscriberInfo> for Subscriber {
    fn from(s: &SubscriberInfo) -> Self {
        Subscriber {
            slot: s.slot,
            pid: s.pid,
            alive: s.alive,
            state: s.state,
            queue_depth: s.queue_depth,
            queued: s.queued,
        }
    }
}

/// `bytes` for people: `512 B`, `4.0 KiB`, `1.2 GiB` (binary units, one decimal).
pub fn bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// A text table whose columns line up; the last column is not padded.
pub struct Table {
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column headers.
    pub fn new(headers: &[&str]) -> Table {
        Table {
            rows: vec![headers.iter().map(|h| (*h).to_owned()).collect()],
        }
    }

    /// Adds one row.
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// Writes the table, each line starting with `indent`.
    pub fn write(&self, out: &mut dyn Write, indent: &str) -> io::Result<()> {
        let columns = self.rows.iter().map(Vec::len).max().unwrap_or(0);
        let mut widths = vec![0; columns];
        for row in &self.rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        for row in &self.rows {
            let mut line = String::from(indent);
            for (i, cell) in row.iter().enumerate() {
                if i > 0 {
                    line.push_str("  ");
                }
                line.push_str(cell);
                if i + 1 < row.len() {
                    let pad = widths[i] - cell.chars().count();
                    line.extend(std::iter::repeat_n(' ', pad));
                }
            }
            writeln!(out, "{}", line.trim_end())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_read_as_people_say_them() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(1023), "1023 B");
        assert_eq!(bytes(1024), "1.0 KiB");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(196 * 6_221_000), "1.1 GiB");
        assert_eq!(bytes(u64::MAX), "16384.0 PiB");
    }

    #[test]
    fn table_aligns_columns_and_pads_no_last_cell() {
        let mut t = Table::new(&["A", "BB", "C"]);
        t.row(vec!["xxx".into(), "y".into(), "z".into()]);
        let mut out = Vec::new();
        t.write(&mut out, "").unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "A    BB  C\nxxx  y   z\n");
    }

    #[test]
    fn numbers_are_shown_in_hex_and_octal() {
        assert_eq!(hex(0xab), "0x00000000000000ab");
        assert_eq!(octal(0o600), "0600");
        assert_eq!(pid_cell(7, false), "7(DEAD)");
    }
}
