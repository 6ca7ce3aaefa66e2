//! `shmx bench`: it runs the `shmx-bench` program (its own crate: the tool builds without
//! benchmark code) with the options given after `--`, and says how to get it when it is not
//! there. (`shmx-bench/tests/cli.rs` tests the program's options, `tests/bench_smoke.rs` the
//! harness itself; a measurement is not a test.)

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

fn shmx(args: &[&str], bench: &str) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_shmx"))
        .args(args)
        .env("SHMX_BENCH", bench)
        .output()
        .expect("run shmx")
}

#[test]
fn bench_runs_shmx_bench_with_its_options_and_exit_status() {
    let dir = tempfile::tempdir().unwrap();
    let fake = dir.path().join("shmx-bench");
    // Prints its arguments, one per line, and exits with status 3.
    std::fs::write(
        &fake,
        "#!/bin/sh\nfor a in \"$@\"; do echo \"$a\"; done\nexit 3\n",
    )
    .unwrap();
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = shmx(
        &["bench", "--", "--list", "--rounds", "2"],
        fake.to_str().unwrap(),
    );
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "--list\n--rounds\n2\n"
    );
}

#[test]
fn bench_says_how_to_get_shmx_bench_when_it_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-program");
    let out = shmx(&["bench", "--", "--list"], missing.to_str().unwrap());
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("could not run"), "{err}");
}
