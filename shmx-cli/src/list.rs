//! `shmx list`: every topic, one line each.

use crate::output::{self, hex, pid_cell, Table, Topic};
use crate::terminal::printable;
use shmx::inspect::TopicInfo;
use std::io::Write;
use std::path::Path;

/// Lists the topics under `root`.
pub fn run(out: &mut dyn Write, root: &Path, json: bool) -> output::Result {
    let topics = shmx::inspect::topics(root)?;
    let services = shmx::inspect::services(root)?;
    if json {
        // Topics, then services (`"kind": "service"`).
        let mut all: Vec<serde_json::Value> = Vec::new();
        for t in &topics {
            all.push(serde_json::to_value(Topic::from(t)).map_err(std::io::Error::other)?);
        }
        for s in &services {
            all.push(
                serde_json::to_value(crate::services::Service::from(s))
                    .map_err(std::io::Error::other)?,
            );
        }
        return output::write_json(out, &all);
    }
    if topics.is_empty() && services.is_empty() {
        let root = root.display().to_string();
        writeln!(out, "no topics under {}", printable(&root))?;
        return Ok(());
    }
    if topics.is_empty() {
        return crate::services::table(out, &services);
    }
    let mut table = Table::new(&[
        "TOPIC",
        "TYPE",
        "FINGERPRINT",
        "RESERVED",
        "USED",
        "PUBLISHERS",
        "SUBSCRIBERS",
    ]);
    for t in &topics {
        table.row(row(t));
    }
    table.write(out, "")?;
    crate::services::table(out, &services)
}

/// One topic's cells: publishers as `pid(alive|DEAD)` (and their state unless active),
/// subscribers likewise with their queued samples.
fn row(t: &TopicInfo) -> Vec<String> {
    let publishers: Vec<String> = t
        .publishers
        .iter()
        .map(|p| {
            let cell = with_state(pid_cell(p.pid, p.alive), p.state);
            format!("{cell} {}/{} chunks", p.chunks_in_use, p.chunks)
        })
        .collect();
    let subscribers: Vec<String> = t
        .subscribers
        .iter()
        .map(|s| {
            let cell = with_state(pid_cell(s.pid, s.alive), s.state);
            format!("{cell} {} queued", s.queued)
        })
        .collect();
    vec![
        printable(&t.name).into_owned(),
        printable(&t.type_name).into_owned(),
        hex(t.fingerprint),
        output::bytes(t.reserved_bytes),
        output::bytes(t.publishers.iter().map(|p| p.used_bytes).sum()),
        join(publishers),
        join(subscribers),
    ]
}

fn with_state(cell: String, state: &str) -> String {
    if state == "active" {
        cell
    } else {
        format!("{cell} {state}")
    }
}

fn join(cells: Vec<String>) -> String {
    if cells.is_empty() {
        "-".to_owned()
    } else {
        cells.join(", ")
    }
}
