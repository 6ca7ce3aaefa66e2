//! Reading `shmx.toml`: TOML into structs that refuse unknown keys, then every value checked
//! as the builders check it, each error at the line and column of its key's value.

use super::{ConfigError, Defaults, Key};
use crate::config::{Overflow, PoolClasses, TopicConfig};
use crate::error::Error;
use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;
use toml::Spanned;

/// The whole file.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table of shmx defaults")]
struct RawFile {
    root: Option<Spanned<String>>,
    max_root_bytes: Option<Spanned<Scalar>>,
    topic: Option<RawTopic>,
    publisher: Option<RawPublisher>,
    subscriber: Option<RawSubscriber>,
}

/// `[topic]`: the topic-wide limits and the files' mode and group.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "the table [topic]")]
struct RawTopic {
    mode: Option<Spanned<Scalar>>,
    group: Option<Spanned<Scalar>>,
    max_publishers: Option<Spanned<usize>>,
    max_subscribers: Option<Spanned<usize>>,
    max_queue_depth: Option<Spanned<usize>>,
    max_held: Option<Spanned<usize>>,
    max_history: Option<Spanned<usize>>,
}

/// `[publisher]`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "the table [publisher]")]
struct RawPublisher {
    queue_depth: Option<Spanned<usize>>,
    history: Option<Spanned<usize>>,
    max_loans: Option<Spanned<usize>>,
    overflow: Option<Spanned<OverflowName>>,
    block_timeout: Option<Spanned<Scalar>>,
    max_tail_bytes: Option<Spanned<usize>>,
    pool_classes: Option<Spanned<RawClasses>>,
    reserve_chunks: Option<Spanned<Scalar>>,
    max_pool_bytes: Option<Spanned<Scalar>>,
}

/// `pool_classes`: `"powers-of-two"` or a list of tails in bytes.
#[derive(Deserialize)]
#[serde(
    untagged,
    expecting = "\"powers-of-two\" or a list of tail sizes in bytes"
)]
enum RawClasses {
    Name(String),
    Tails(Vec<usize>),
}

/// `[subscriber]`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "the table [subscriber]")]
struct RawSubscriber {
    queue_depth: Option<Spanned<usize>>,
}

/// The names of [`Overflow`]'s policies in the file.
#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
enum OverflowName {
    DropOldest,
    Block,
    Fail,
}

/// An integer or a string (a mode, a group, a timeout), told apart after parsing so that
/// each gets its own message.
enum Scalar {
    Int(i64),
    Text(String),
}

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Scalar, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Scalar;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an integer or a string")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar, E> {
                Ok(Scalar::Int(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar, E> {
                i64::try_from(v)
                    .map(Scalar::Int)
                    .map_err(|_| E::custom("integer out of range"))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar, E> {
                Ok(Scalar::Text(v.to_owned()))
            }
        }
        d.deserialize_any(V)
    }
}

/// Where the values of the file are, for errors and for [`Defaults::settings`].
struct Reader<'a> {
    text: &'a str,
    path: &'a Path,
    spans: [Option<Range<usize>>; Key::ALL.len()],
}

impl Reader<'_> {
    fn error(&self, span: &Range<usize>, reason: String) -> ConfigError {
        let (line, column) = position(self.text, span.start);
        ConfigError {
            path: self.path.to_owned(),
            line: Some(line),
            column: Some(column),
            reason,
        }
    }

    fn seen(&mut self, key: Key, span: Range<usize>) {
        self.spans[key as usize] = Some(span);
    }

    /// Sets one topic field, checked by [`TopicConfig::check`] on its own (every rule of
    /// `check` concerns one field).
    fn topic_field(
        &mut self,
        topic: &mut TopicConfig,
        key: Key,
        span: Range<usize>,
        set: impl Fn(&mut TopicConfig),
    ) -> Result<(), ConfigError> {
        let mut alone = TopicConfig::default();
        set(&mut alone);
        match alone.check("") {
            Ok(()) => {}
            Err(Error::InvalidConfig { reason, .. }) => return Err(self.error(&span, reason)),
            Err(e) => return Err(self.error(&span, e.to_string())),
        }
        set(topic);
        self.seen(key, span);
        Ok(())
    }

    /// A number of samples that must be at least 1.
    fn at_least_one(&mut self, key: Key, value: Spanned<usize>) -> Result<usize, ConfigError> {
        let span = value.span();
        let n = value.into_inner();
        if n == 0 {
            return Err(self.error(&span, format!("{} 0 must be at least 1", key.short())));
        }
        self.seen(key, span);
        Ok(n)
    }

    fn any(&mut self, key: Key, value: Spanned<usize>) -> usize {
        self.seen(key, value.span());
        value.into_inner()
    }

    /// A limit of the file's own topic defaults that a publisher or subscriber default must
    /// fit in: the error goes to whichever of the two the file sets (the value's own key if
    /// both).
    fn fits(
        &self,
        key: Key,
        value: usize,
        limit_key: Key,
        limit: usize,
    ) -> Result<(), ConfigError> {
        if value <= limit {
            return Ok(());
        }
        let span = self.spans[key as usize]
            .as_ref()
            .or(self.spans[limit_key as usize].as_ref())
            .expect("built-in values fit");
        Err(self.error(
            span,
            format!(
                "{} {value} is over {} {limit}{}: an endpoint that creates the topic with \
                 these defaults would be refused",
                key.name(),
                limit_key.name(),
                if limit_key == Key::MaxQueueDepth {
                    " (rounded up to a power of two)"
                } else {
                    ""
                }
            ),
        ))
    }
}

/// Sets one limit of a [`TopicConfig`].
type SetLimit = fn(&mut TopicConfig, usize);

/// Reads the text of a defaults file; `path` is where it came from (for errors).
pub(super) fn parse(text: &str, path: &Path) -> Result<Defaults, ConfigError> {
    let raw: RawFile = toml::from_str(text).map_err(|e| {
        let (line, column) = e.span().map(|s| position(text, s.start)).unzip();
        ConfigError {
            path: path.to_owned(),
            line,
            column,
            reason: e.message().trim_end().to_owned(),
        }
    })?;
    let mut r = Reader {
        text,
        path,
        spans: Default::default(),
    };
    let mut d = Defaults::built_in();
    d.file = Some(path.to_owned());
    if let Some(root) = raw.root {
        let span = root.span();
        let root = root.into_inner();
        if root.is_empty() || root.contains('\0') || !Path::new(&root).is_absolute() {
            return Err(r.error(
                &span,
                format!("root {root:?} must be an absolute path, such as \"/dev/shm/shmx-robot\""),
            ));
        }
        d.root = Some(PathBuf::from(root));
        r.seen(Key::Root, span);
    }
    if let Some(v) = raw.max_root_bytes {
        let span = v.span();
        let n = byte_size("max_root_bytes", v.into_inner()).map_err(|e| r.error(&span, e))?;
        d.publisher.max_root_bytes = n;
        r.seen(Key::MaxRootBytes, span);
    }
    let topic = &mut d.topic;
    if let Some(t) = raw.topic {
        if let Some(v) = t.mode {
            let span = v.span();
            let mode = mode(v.into_inner()).map_err(|reason| r.error(&span, reason))?;
            r.topic_field(topic, Key::Mode, span, |c| c.mode = mode)?;
        }
        if let Some(v) = t.group {
            let span = v.span();
            let gid = group(v.into_inner()).map_err(|reason| r.error(&span, reason))?;
            r.topic_field(topic, Key::Group, span, |c| c.group = Some(gid))?;
        }
        let limits: [(Key, Option<Spanned<usize>>, SetLimit); 5] = [
            (Key::MaxPublishers, t.max_publishers, |c, n| {
                c.max_publishers = n;
            }),
            (Key::MaxSubscribers, t.max_subscribers, |c, n| {
                c.max_subscribers = n;
            }),
            (Key::MaxQueueDepth, t.max_queue_depth, |c, n| {
                c.max_queue_depth = n;
            }),
            (Key::MaxHeld, t.max_held, |c, n| c.max_held = n),
            (Key::MaxHistory, t.max_history, |c, n| c.max_history = n),
        ];
        for (key, value, set) in limits {
            if let Some(v) = value {
                let (span, n) = (v.span(), v.into_inner());
                r.topic_field(topic, key, span, |c| set(c, n))?;
            }
        }
    }
    let p = &mut d.publisher;
    if let Some(raw) = raw.publisher {
        if let Some(v) = raw.queue_depth {
            p.queue_depth = r.at_least_one(Key::QueueDepth, v)?;
        }
        if let Some(v) = raw.history {
            p.history = r.any(Key::History, v);
        }
        if let Some(v) = raw.max_loans {
            p.max_loans = r.at_least_one(Key::MaxLoans, v)?;
        }
        if let Some(v) = raw.overflow {
            r.seen(Key::Overflow, v.span());
            p.overflow = match v.into_inner() {
                OverflowName::DropOldest => Overflow::DropOldest,
                OverflowName::Block => Overflow::Block,
                OverflowName::Fail => Overflow::Fail,
            };
        }
        if let Some(v) = raw.block_timeout {
            let span = v.span();
            p.block_timeout = duration(v.into_inner()).map_err(|reason| r.error(&span, reason))?;
            r.seen(Key::BlockTimeout, span);
        }
        if let Some(v) = raw.max_tail_bytes {
            p.max_tail_bytes = r.any(Key::MaxTailBytes, v);
        }
        if let Some(v) = raw.pool_classes {
            let span = v.span();
            p.pool_classes = match v.into_inner() {
                RawClasses::Name(name) if name == "powers-of-two" => PoolClasses::powers_of_two(),
                RawClasses::Name(name) => {
                    return Err(r.error(
                        &span,
                        format!(
                            "pool_classes {name:?} is not \"powers-of-two\" or a list of tail \
                             sizes in bytes"
                        ),
                    ))
                }
                RawClasses::Tails(tails) => PoolClasses::list(&tails).ok_or_else(|| {
                    r.error(
                        &span,
                        format!(
                            "pool_classes lists 1 to {} tail sizes, not {}",
                            PoolClasses::MAX,
                            tails.len()
                        ),
                    )
                })?,
            };
            r.seen(Key::PoolClasses, span);
        }
        if let Some(v) = raw.reserve_chunks {
            let span = v.span();
            p.reserve_chunks = match v.into_inner() {
                Scalar::Text(t) if t == "auto" => None,
                Scalar::Text(t) if t == "worst-case" => Some(usize::MAX),
                Scalar::Int(n) if n >= 1 => usize::try_from(n).ok(),
                other => {
                    let text = match other {
                        Scalar::Int(n) => n.to_string(),
                        Scalar::Text(t) => format!("{t:?}"),
                    };
                    return Err(r.error(
                        &span,
                        format!(
                            "reserve_chunks {text} is not a number of chunks (at least 1), \
                             \"auto\" or \"worst-case\""
                        ),
                    ));
                }
            };
            r.seen(Key::ReserveChunks, span);
        }
        if let Some(v) = raw.max_pool_bytes {
            let span = v.span();
            p.max_pool_bytes =
                byte_size("max_pool_bytes", v.into_inner()).map_err(|e| r.error(&span, e))?;
            r.seen(Key::MaxPoolBytes, span);
        }
    }
    if let Some(v) = raw.subscriber.and_then(|s| s.queue_depth) {
        d.subscriber.queue_depth = r.at_least_one(Key::SubscriberQueueDepth, v)?;
    }
    // What the builders check against the topic when they create it with these defaults.
    let ring = d.topic.max_queue_depth.next_power_of_two();
    r.fits(
        Key::QueueDepth,
        d.publisher.queue_depth,
        Key::MaxQueueDepth,
        ring,
    )?;
    let history = d.topic.max_history;
    r.fits(Key::History, d.publisher.history, Key::MaxHistory, history)?;
    let depth = d.subscriber.queue_depth;
    r.fits(Key::SubscriberQueueDepth, depth, Key::MaxQueueDepth, ring)?;
    d.publisher.topic = d.topic;
    d.subscriber.topic = d.topic;
    for (line, span) in d.lines.iter_mut().zip(&r.spans) {
        *line = span.as_ref().map(|s| position(text, s.start).0);
    }
    Ok(d)
}

/// A mode: an integer (TOML writes octal as `0o660`), or a string of octal digits with an
/// optional `0o`: `"0660"`, `"660"`, `"0o660"`.
fn mode(value: Scalar) -> Result<u32, String> {
    match value {
        Scalar::Int(n) => u32::try_from(n).map_err(|_| format!("mode {n} is not a file mode")),
        Scalar::Text(text) => {
            let digits = text.strip_prefix("0o").unwrap_or(&text);
            let octal = !digits.is_empty() && digits.bytes().all(|b| (b'0'..=b'7').contains(&b));
            octal
                .then(|| u32::from_str_radix(digits, 8).ok())
                .flatten()
                .ok_or_else(|| format!("mode {text:?} is not an octal file mode such as \"0660\""))
        }
    }
}

/// A group: a gid, or a name looked up in `/etc/group` (a name that is all digits and not
/// found there is a gid).
fn group(value: Scalar) -> Result<u32, String> {
    let gid = match value {
        Scalar::Int(n) => u32::try_from(n).map_err(|_| format!("group {n} is not a group id"))?,
        Scalar::Text(name) => {
            let db = std::fs::read_to_string("/etc/group").unwrap_or_default();
            match (gid_of(&name, &db), name.parse::<u32>()) {
                (Some(gid), _) | (None, Ok(gid)) => gid,
                (None, Err(_)) => {
                    return Err(format!(
                        "group {name:?} is not in /etc/group; give its number (group = 1234)"
                    ))
                }
            }
        }
    };
    Ok(gid)
}

/// The gid of group `name` in the text of an `/etc/group` file.
fn gid_of(name: &str, db: &str) -> Option<u32> {
    db.lines().find_map(|line| {
        let mut fields = line.split(':');
        (fields.next() == Some(name) && !name.is_empty())
            .then(|| fields.nth(1)?.trim().parse().ok())
            .flatten()
    })
}

/// A `block_timeout`: a whole number and a unit (`ns`, `us`, `ms`, `s`), or `"forever"`.
fn duration(value: Scalar) -> Result<Option<Duration>, String> {
    let text = match value {
        Scalar::Text(text) => text,
        Scalar::Int(n) => {
            return Err(format!(
                "block_timeout {n} has no unit: write a string such as \"{n}ms\""
            ))
        }
    };
    if text == "forever" {
        return Ok(None);
    }
    let bad = || {
        format!(
            "block_timeout {text:?} is not a duration: write a whole number and a unit (ns, us, \
             ms, s), such as \"100ms\", or \"forever\""
        )
    };
    let split = text.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let n: u64 = text[..split].parse().map_err(|_| bad())?;
    let d = match &text[split..] {
        "ns" => Duration::from_nanos(n),
        "us" => Duration::from_micros(n),
        "ms" => Duration::from_millis(n),
        "s" => Duration::from_secs(n),
        _ => return Err(bad()),
    };
    Ok(Some(d))
}

/// A budget in bytes: a whole number of bytes, or a string of a whole number and a unit
/// (`B`, `KiB`, `MiB`, `GiB`, `TiB`; `KB`, `MB`, `GB`, `TB` in powers of ten), or `"none"`.
fn byte_size(key: &str, value: Scalar) -> Result<Option<u64>, String> {
    let text = match value {
        Scalar::Int(n) => {
            return u64::try_from(n)
                .map(Some)
                .map_err(|_| format!("{key} {n} is not a number of bytes"))
        }
        Scalar::Text(text) => text,
    };
    if text == "none" {
        return Ok(None);
    }
    let bad = || {
        format!(
            "{key} {text:?} is not a size: write a whole number of bytes, or a number and a unit \
             (B, KiB, MiB, GiB, TiB, KB, MB, GB, TB) such as \"512MiB\", or \"none\""
        )
    };
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let n: u64 = text[..split].parse().map_err(|_| bad())?;
    let unit: u64 = match text[split..].trim_start() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "TiB" => 1 << 40,
        "KB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        "TB" => 1_000_000_000_000,
        _ => return Err(bad()),
    };
    n.checked_mul(unit).map(Some).ok_or_else(bad)
}

/// The shortest text [`byte_size`] reads back as `n` bytes.
pub(super) fn byte_size_text(n: u64) -> String {
    let units = [
        (1u64 << 40, "TiB"),
        (1 << 30, "GiB"),
        (1 << 20, "MiB"),
        (1 << 10, "KiB"),
    ];
    for (per, unit) in units {
        if n >= per && n % per == 0 {
            return format!("{}{unit}", n / per);
        }
    }
    n.to_string()
}

/// The shortest text [`duration`] reads back as `d`.
pub(super) fn duration_text(d: Duration) -> String {
    let ns = d.as_nanos();
    let units = [(1_000_000_000, "s"), (1_000_000, "ms"), (1_000, "us")];
    for (per, unit) in units {
        if ns % per == 0 {
            return format!("{}{unit}", ns / per);
        }
    }
    format!("{ns}ns")
}

/// The line and column (1-based, the column in characters) of byte `offset` of `text`.
fn position(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

#[cfg(test)]
#[path = "file_tests.rs"]
mod tests;
