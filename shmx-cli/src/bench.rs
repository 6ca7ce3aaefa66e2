//! `shmx bench`: runs the benchmark report, a program of its own (`shmx-bench`, from the
//! crate of that name) so that this tool builds without any benchmark code.
//!
//! The program is looked for in `SHMX_BENCH` (a path), then beside this executable (where
//! `cargo build` and `cargo install` put both), then on `PATH`.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

/// The name of the benchmark program.
const PROGRAM: &str = "shmx-bench";

/// Runs `shmx-bench` with `args` and returns its exit status; says how to get it if it is
/// nowhere to be found.
pub fn run(args: &[String]) -> ExitCode {
    let Some(program) = find(
        std::env::var_os("SHMX_BENCH"),
        std::env::current_exe().ok(),
        std::env::var_os("PATH"),
    ) else {
        eprintln!(
            "shmx: `shmx bench` runs the `{PROGRAM}` program, which was not found (not in \
             SHMX_BENCH, beside this executable, nor on PATH): build it with `cargo build \
             --release -p {PROGRAM}` in the shmx workspace, or install it with `cargo install \
             --path {PROGRAM}`"
        );
        return ExitCode::FAILURE;
    };
    match Command::new(&program).args(args).status() {
        Ok(status) if status.success() => ExitCode::SUCCESS,
        Ok(status) => ExitCode::from(
            status
                .code()
                .and_then(|c| u8::try_from(c).ok())
                .unwrap_or(1),
        ),
        Err(e) => {
            eprintln!("shmx: could not run {}: {e}", program.display());
            ExitCode::FAILURE
        }
    }
}

/// Where `shmx-bench` is: `explicit` (from `SHMX_BENCH`) if given, else beside `exe`, else
/// in a directory of `path`.
fn find(
    explicit: Option<OsString>,
    exe: Option<PathBuf>,
    path: Option<OsString>,
) -> Option<PathBuf> {
    if let Some(p) = explicit.filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    let beside = exe
        .as_deref()
        .and_then(Path::parent)
        .map(|dir| dir.join(PROGRAM));
    if let Some(p) = beside.filter(|p| is_program(p)) {
        return Some(p);
    }
    std::env::split_paths(&path?)
        .map(|dir| dir.join(PROGRAM))
        .find(|p| is_program(p))
}

fn is_program(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    p.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::find;
    use std::path::PathBuf;

    #[test]
    fn the_program_is_looked_for_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let here = dir.path().join("bin");
        let elsewhere = dir.path().join("path");
        std::fs::create_dir_all(&here).unwrap();
        std::fs::create_dir_all(&elsewhere).unwrap();
        let exe = here.join("shmx");
        let on_path = elsewhere.join("shmx-bench");
        std::fs::write(&on_path, "").unwrap();
        let path = Some(elsewhere.clone().into_os_string());
        // Not executable: not a program.
        assert_eq!(find(None, Some(exe.clone()), path.clone()), None);
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&on_path, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(
            find(None, Some(exe.clone()), path.clone()),
            Some(on_path.clone())
        );
        let beside = here.join("shmx-bench");
        std::fs::write(&beside, "").unwrap();
        std::fs::set_permissions(&beside, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(find(None, Some(exe.clone()), path.clone()), Some(beside));
        let explicit = PathBuf::from("/somewhere/else");
        assert_eq!(
            find(Some(explicit.clone().into_os_string()), Some(exe), path),
            Some(explicit)
        );
    }
}
