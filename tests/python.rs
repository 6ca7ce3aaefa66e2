//! The Python binding's tests (`shmx-python/tests`, pytest) as part of `cargo test`: runs
//! `shmx-python/test.sh`, which builds the extension into `target/python-venv` (maturin,
//! numpy and pytest from the package index) and runs pytest, whose tests talk to Rust
//! processes (`examples/seed_peer`, `examples/struct_peer`, ...) and read what the `shmx`
//! tool records. Fails with the script's message when `python3` is missing.

use std::process::Command;

#[test]
fn the_python_binding_passes_its_tests() {
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    // `cargo test` builds the examples beside the test binaries (target/<profile>/deps):
    // building it again from here would wait for the build directory's lock.
    let exe = std::env::current_exe().expect("the test binary's path");
    let examples = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>")
        .join("examples");
    let (seed, structs) = (examples.join("seed_peer"), examples.join("struct_peer"));
    for peer in [&seed, &structs] {
        assert!(peer.exists(), "{} was not built", peer.display());
    }
    let out = Command::new("bash")
        .arg(repo.join("shmx-python/test.sh"))
        .env("SHMX_SEED_PEER", &seed)
        .env("SHMX_STRUCT_PEER", &structs)
        .env("SHMX_EXAMPLES_DIR", &examples)
        // The `shmx` tool (the shmx-cli package, which `cargo test --workspace` builds).
        .env("SHMX_TOOL", examples.with_file_name("shmx"))
        .current_dir(repo)
        .output()
        .expect("run shmx-python/test.sh");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("{text}");
    assert!(out.status.success(), "shmx-python/test.sh failed:\n{text}");
    assert!(text.contains(" passed"), "pytest ran no test:\n{text}");
}
