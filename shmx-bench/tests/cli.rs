//! The `shmx-bench` program's command line (what `shmx bench` runs): its options, not a
//! measurement (`tests/bench_smoke.rs` in the workspace runs the harness itself).

use std::process::Command;

fn shmx_bench(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_shmx-bench"))
        .args(args)
        .output()
        .expect("run shmx-bench")
}

#[test]
fn lists_its_contenders() {
    let out = shmx_bench(&["--list"]);
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
        "shmx-rr-spin",
    ] {
        assert!(text.contains(id), "{id} missing from:\n{text}");
    }
}

#[test]
fn refuses_an_unknown_option_with_its_usage() {
    let out = shmx_bench(&["--rounds", "0"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--rounds needs a positive number"), "{err}");
    assert!(err.contains("usage:"), "{err}");
}
