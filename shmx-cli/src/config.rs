//! `shmx config show`: the defaults file used (or where it was looked for) and every
//! effective setting with where it comes from.

use crate::output::{self, Table};
use crate::terminal::printable;
use serde::Serialize;
use shmx::defaults::{Defaults, CONFIG_VAR};
use std::io::Write;
use std::path::Path;

/// What `--json` prints.
#[derive(Serialize)]
struct Shown {
    /// The defaults file used, if any.
    file: Option<String>,
    /// How it was found: `SHMX_CONFIG`, `search`, or `disabled` (`SHMX_CONFIG` empty).
    found_by: &'static str,
    /// The paths looked at, in order, up to the one used.
    searched: Vec<String>,
    settings: Vec<Row>,
}

/// One setting.
#[derive(Serialize)]
struct Row {
    key: &'static str,
    value: String,
    source: String,
}

/// Prints the effective defaults of a program started here, with this environment; `root`
/// is the tool's `--root`, which wins over everything for the tool itself.
pub fn show(out: &mut dyn Write, root: Option<&Path>, json: bool) -> output::Result {
    let defaults = Defaults::get()?;
    let found_by = match std::env::var_os(CONFIG_VAR) {
        Some(v) if v.is_empty() => "disabled",
        Some(_) => CONFIG_VAR,
        None => "search",
    };
    let mut rows: Vec<Row> = defaults
        .settings()
        .into_iter()
        .map(|s| Row {
            key: s.key,
            value: s.value,
            source: s.source.to_string(),
        })
        .collect();
    if let (Some(root), Some(row)) = (root, rows.iter_mut().find(|r| r.key == "root")) {
        row.value = root.display().to_string();
        row.source = "command line --root".into();
    }
    let file = defaults.file().map(|f| f.display().to_string());
    let searched: Vec<String> = defaults
        .searched()
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    if json {
        let shown = Shown {
            file,
            found_by,
            searched,
            settings: rows,
        };
        return output::write_json(out, &shown);
    }
    let file_line = match (&file, found_by) {
        (Some(f), CONFIG_VAR) => format!("{} (named by {CONFIG_VAR})", printable(f)),
        (Some(f), _) => printable(f).into_owned(),
        (None, "disabled") => format!("none ({CONFIG_VAR} is set empty)"),
        (None, _) => format!(
            "none found (looked for {})",
            printable(&searched.join(", "))
        ),
    };
    writeln!(out, "defaults file: {file_line}")?;
    writeln!(out)?;
    let mut table = Table::new(&["SETTING", "VALUE", "SOURCE"]);
    for r in &rows {
        table.row(vec![
            r.key.to_owned(),
            printable(&r.value).into_owned(),
            printable(&r.source).into_owned(),
        ]);
    }
    table.write(out, "")?;
    Ok(())
}
