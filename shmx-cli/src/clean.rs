//! `shmx clean [--dry-run]`: take back what dead processes left.

use crate::output;
use crate::terminal::printable;
use serde::Serialize;
use std::io::Write;
use std::path::Path;

/// What `--json` shows.
#[derive(Debug, Serialize)]
struct Report {
    /// Whether nothing was actually removed.
    dry_run: bool,
    /// Slots of dead processes taken back (or to take back).
    reclaimed_slots: usize,
    /// Files and directories removed (or to remove).
    removed: Vec<String>,
    /// Topics left alone, with why (another shmx version's segments may be in use).
    kept: Vec<Kept>,
}

/// A topic `clean` left alone.
#[derive(Debug, Serialize)]
struct Kept {
    path: String,
    reason: String,
}

/// Cleans `root` (the library never touches what a live process uses).
pub fn run(out: &mut dyn Write, root: &Path, dry_run: bool, json: bool) -> output::Result {
    let report = shmx::inspect::clean(root, dry_run)?;
    if json {
        let report = Report {
            dry_run,
            reclaimed_slots: report.reclaimed_slots,
            removed: report
                .removed
                .iter()
                .map(|p| p.display().to_string())
                .collect(),
            kept: report
                .kept
                .iter()
                .map(|(p, r)| Kept {
                    path: p.display().to_string(),
                    reason: r.clone(),
                })
                .collect(),
        };
        return output::write_json(out, &report);
    }
    for (path, reason) in &report.kept {
        let path = path.display().to_string();
        writeln!(out, "kept {}: {}", printable(&path), printable(reason))?;
    }
    if report.reclaimed_slots == 0 && report.removed.is_empty() {
        writeln!(out, "nothing to clean")?;
        return Ok(());
    }
    let (reclaim, remove) = if dry_run {
        ("would reclaim", "would remove")
    } else {
        ("reclaimed", "removed")
    };
    writeln!(
        out,
        "{reclaim} {} slot(s) of dead processes; {remove} {} path(s){}",
        report.reclaimed_slots,
        report.removed.len(),
        if report.removed.is_empty() { "" } else { ":" }
    )?;
    for path in &report.removed {
        let path = path.display().to_string();
        writeln!(out, "  {}", printable(&path))?;
    }
    Ok(())
}
