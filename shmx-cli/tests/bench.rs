//! `shmx bench`: the benchmark report from the command line. Only its options are tested
//! here (a measurement is not a test); `tests/bench_smoke.rs` runs the harness itself.

use std::process::Command;

fn shmx(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_shmx"))
        .args(args)
        .output()
        .expect("run shmx")
}

#[test]
fn bench_lists_its_contenders() {
    let out = shmx(&["bench", "--", "--list"]);
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    for id in [
        "floor",
        "shmx-spin",
        "shmx-copy",
        "shmx-recv",
        "uds",
        "tcp",
        "pipe",
        "shmx-stream",
        "shmx-batch",
    ] {
        assert!(text.contains(id), "{id} missing from:\n{text}");
    }
}

#[test]
fn bench_refuses_an_unknown_option_with_its_usage() {
    let out = shmx(&["bench", "--", "--rounds", "0"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--rounds needs a positive number"), "{err}");
    assert!(err.contains("usage:"), "{err}");
}
