//! The README as its doctests see it (`ReadmeDoctests` in `src/lib.rs`): each Rust block
//! starts, in hidden lines, by pointing `SHMX_ROOT` at a fresh directory removed when the
//! block ends, so that the examples, written against the default root as a newcomer would
//! run them, leave nothing in `/dev/shm` when they run as tests.

use std::fmt::Write as _;

/// Hidden lines (rustdoc does not show lines that start with `# `).
const PRELUDE: &str = "# let _shmx_root = tempfile::tempdir().unwrap();\n\
                       # std::env::set_var(\"SHMX_ROOT\", _shmx_root.path());\n";

fn main() {
    println!("cargo:rerun-if-changed=README.md");
    let readme = std::fs::read_to_string("README.md").expect("README.md");
    let mut out = String::with_capacity(readme.len() + 4096);
    // In a Rust block: whether the prelude is still to come (it goes first, or first in
    // `fn main`'s body when the block writes its own `main`).
    let mut block: Option<bool> = None;
    let mut pending = String::new();
    for line in readme.lines() {
        match block {
            None => {
                out.push_str(line);
                out.push('\n');
                if line.trim_start() == "```rust" {
                    block = Some(true);
                    pending.clear();
                }
            }
            Some(to_come) => {
                if line.trim_start().starts_with("```") {
                    // The block ends: the prelude first unless it went into `main`.
                    if to_come {
                        out.push_str(PRELUDE);
                    }
                    out.push_str(&pending);
                    out.push_str(line);
                    out.push('\n');
                    block = None;
                    continue;
                }
                let _ = writeln!(pending, "{line}");
                if to_come && line.contains("fn main") && line.trim_end().ends_with('{') {
                    pending.push_str(PRELUDE);
                    block = Some(false);
                }
            }
        }
    }
    let dest =
        std::path::Path::new(&std::env::var("OUT_DIR").expect("OUT_DIR")).join("README.doctest.md");
    std::fs::write(dest, out).expect("write the README for doctests");
}
