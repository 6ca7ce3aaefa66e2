//! `shmx monitor`: a live view of every topic, refreshed every interval: publish rates, queue
//! fill, liveness.

use crate::output::{self, Table};
use crate::terminal::{printable, Sanitizer};
use serde::Serialize;
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// One topic in a `--json` refresh.
#[derive(Debug, Serialize)]
struct TopicRates {
    name: String,
    type_name: String,
    publishers: Vec<PublisherRate>,
    subscribers: Vec<SubscriberFill>,
}

#[derive(Debug, Serialize)]
struct PublisherRate {
    pid: u64,
    alive: bool,
    published: u64,
    /// Samples per second since the previous refresh (0 on the first).
    rate: f64,
}

#[derive(Debug, Serialize)]
struct SubscriberFill {
    pid: u64,
    alive: bool,
    queued: u64,
    queue_depth: u64,
}

/// Refreshes every `interval`, `count` times (forever if `None`). People get a redrawn
/// screen; `--json` gets one JSON array per refresh, one per line.
pub fn run(
    out: &mut Sanitizer<impl Write>,
    root: &Path,
    interval: Duration,
    count: Option<u64>,
    json: bool,
) -> output::Result {
    let mut last: HashMap<(PathBuf, usize), (u64, Instant)> = HashMap::new();
    let mut round = 0u64;
    loop {
        let now = Instant::now();
        let topics = shmx::inspect::topics(root)?;
        let mut view = Vec::new();
        for t in &topics {
            let publishers = t
                .publishers
                .iter()
                .map(|p| {
                    let key = (t.dir.clone(), p.slot);
                    let rate = match last.insert(key, (p.published, now)) {
                        Some((before, then)) if p.published >= before => {
                            let secs = now.duration_since(then).as_secs_f64();
                            if secs > 0.0 {
                                (p.published - before) as f64 / secs
                            } else {
                                0.0
                            }
                        }
                        _ => 0.0,
                    };
                    PublisherRate {
                        pid: p.pid,
                        alive: p.alive,
                        published: p.published,
                        rate,
                    }
                })
                .collect();
            let subscribers = t
                .subscribers
                .iter()
                .map(|s| SubscriberFill {
                    pid: s.pid,
                    alive: s.alive,
                    queued: s.queued,
                    queue_depth: s.queue_depth,
                })
                .collect();
            view.push(TopicRates {
                name: t.name.clone(),
                type_name: t.type_name.clone(),
                publishers,
                subscribers,
            });
        }
        if json {
            serde_json::to_writer(&mut *out, &view).map_err(std::io::Error::from)?;
            writeln!(out)?;
        } else {
            draw(out, root, &view)?;
        }
        out.flush()?;
        round += 1;
        if count.is_some_and(|n| round >= n) {
            return Ok(());
        }
        std::thread::sleep(interval.saturating_sub(now.elapsed()));
    }
}

fn draw(out: &mut Sanitizer<impl Write>, root: &Path, view: &[TopicRates]) -> std::io::Result<()> {
    // Clear the screen and go home, as `watch` does: the only raw control the tool writes.
    out.control("\x1b[2J\x1b[H")?;
    writeln!(
        out,
        "shmx monitor: {} ({} topics)\n",
        root.display(),
        view.len()
    )?;
    let mut table = Table::new(&[
        "TOPIC",
        "TYPE",
        "PUBLISHER",
        "PUBLISHED",
        "RATE/s",
        "SUBSCRIBERS",
    ]);
    for t in view {
        let subs = t
            .subscribers
            .iter()
            .map(|s| {
                format!(
                    "{} {}/{}",
                    output::pid_cell(s.pid, s.alive),
                    s.queued,
                    s.queue_depth
                )
            })
            .collect::<Vec<_>>()
            .join(", ");
        if t.publishers.is_empty() {
            table.row(vec![
                printable(&t.name).into_owned(),
                printable(&t.type_name).into_owned(),
                "-".into(),
                "".into(),
                "".into(),
                subs,
            ]);
            continue;
        }
        for (i, p) in t.publishers.iter().enumerate() {
            let (name, ty, subs) = if i == 0 {
                (
                    printable(&t.name).into_owned(),
                    printable(&t.type_name).into_owned(),
                    subs.clone(),
                )
            } else {
                (String::new(), String::new(), String::new())
            };
            table.row(vec![
                name,
                ty,
                output::pid_cell(p.pid, p.alive),
                p.published.to_string(),
                format!("{:.0}", p.rate),
                subs,
            ]);
        }
    }
    table.write(out, "")
}
