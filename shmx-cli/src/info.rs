//! `shmx info TOPIC`: one topic's configuration, schema and slots.

use crate::output::{self, bytes, hex, octal, Failure, Table, Topic};
use crate::terminal::printable;
use std::io::Write;
use std::path::Path;

/// Describes `topic` under `root`.
pub fn run(out: &mut dyn Write, root: &Path, topic: &str, json: bool) -> output::Result {
    let t = match shmx::inspect::topic(root, topic) {
        Ok(t) => t,
        Err(shmx::Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            // A service of that name?
            if let Ok(s) = shmx::inspect::service(root, topic) {
                return crate::services::info(out, &s, json);
            }
            return Err(Failure::Message(format!(
                "no topic or service {topic:?} under {}",
                root.display()
            )));
        }
        Err(e) => return Err(e.into()),
    };
    if json {
        return output::write_json(out, &Topic::from(&t));
    }
    let l = &t.limits;
    let mut head = Table::new(&["topic", &printable(&t.name)]);
    let dir = t.dir.display().to_string();
    head.row(vec!["directory".into(), printable(&dir).into_owned()]);
    head.row(vec![
        "type".into(),
        format!("{} ({} bytes)", printable(&t.type_name), t.type_size),
    ]);
    head.row(vec!["fingerprint".into(), hex(t.fingerprint)]);
    head.row(vec!["schema".into(), printable(&t.schema).into_owned()]);
    head.row(vec![
        "limits".into(),
        format!(
            "{} publishers, {} subscribers, queue depth {}, {} held, history {}",
            l.max_publishers, l.max_subscribers, l.max_queue_depth, l.max_held, l.max_history
        ),
    ]);
    head.row(vec!["mode".into(), octal(l.mode)]);
    head.row(vec![
        "memory".into(),
        format!("{} reserved", bytes(t.reserved_bytes)),
    ]);
    head.write(out, "")?;

    writeln!(out, "\npublishers ({}):", t.publishers.len())?;
    if !t.publishers.is_empty() {
        let mut table = Table::new(&[
            "SLOT",
            "ID",
            "PID",
            "ALIVE",
            "STATE",
            "QUEUE",
            "CHUNKS",
            "CHUNK",
            "RESERVED",
            "USED",
            "HISTORY",
            "PUBLISHED",
        ]);
        for p in &t.publishers {
            table.row(vec![
                p.slot.to_string(),
                format!("{:016x}", p.id),
                p.pid.to_string(),
                yes_no(p.alive),
                p.state.to_owned(),
                p.queue_depth.to_string(),
                format!("{}/{}", p.chunks_in_use, p.chunks),
                bytes(p.chunk_bytes),
                bytes(p.reserved_bytes),
                bytes(p.used_bytes),
                p.history.to_string(),
                p.published.to_string(),
            ]);
        }
        table.write(out, "  ")?;
        writeln!(out, "\npool size classes:")?;
        let mut table = Table::new(&[
            "SLOT", "PAYLOAD", "CHUNK", "CHUNKS", "SEGMENTS", "RESERVED", "USED",
        ]);
        for p in &t.publishers {
            for c in p.classes.iter().filter(|c| c.chunks > 0 || c.segments > 0) {
                table.row(vec![
                    p.slot.to_string(),
                    bytes(c.payload_bytes),
                    bytes(c.chunk_bytes),
                    format!("{}/{}", c.in_use, c.chunks),
                    c.segments.to_string(),
                    bytes(c.reserved_bytes),
                    bytes(c.in_use.saturating_mul(c.chunk_bytes)),
                ]);
            }
        }
        table.write(out, "  ")?;
    }
    writeln!(out, "\nsubscribers ({}):", t.subscribers.len())?;
    if !t.subscribers.is_empty() {
        let mut table = Table::new(&["SLOT", "PID", "ALIVE", "STATE", "QUEUE", "QUEUED"]);
        for s in &t.subscribers {
            table.row(vec![
                s.slot.to_string(),
                s.pid.to_string(),
                yes_no(s.alive),
                s.state.to_owned(),
                s.queue_depth.to_string(),
                s.queued.to_string(),
            ]);
        }
        table.write(out, "  ")?;
    }
    Ok(())
}

fn yes_no(alive: bool) -> String {
    if alive { "yes" } else { "DEAD" }.to_owned()
}
