//! Every error path of the public API that a caller can provoke through it, for real: bad
//! names, a type mismatch, an unusable root, too little space, a full participant table,
//! out-of-range configuration and another user's topic. Each test asserts the variant and
//! that its message names what went wrong. Corrupt, truncated and hostile files are in
//! `hostile.rs`.

use shmx::{Error, Publisher, ShmMessage, Subscriber, TopicConfig};
use std::process::Command;

mod common;
use common::root;

#[test]
fn bad_topic_names_are_refused() {
    let dir = root();
    let long = "x".repeat(256);
    let encoded_long = "é".repeat(50); // 100 bytes, 300 once percent-encoded
    for name in [
        "",
        "a//b",
        "/a",
        "a/",
        "..",
        "a/../b",
        "a\0b",
        &long,
        &encoded_long,
    ] {
        let err = Publisher::<u8>::builder(name)
            .root(dir.path())
            .create()
            .err();
        match err {
            Some(Error::InvalidName { name: n, reason }) => {
                assert_eq!(n, name);
                assert!(!reason.is_empty());
            }
            other => panic!("{name:?}: expected InvalidName, got {other:?}"),
        }
        assert!(matches!(
            Subscriber::<u8>::builder(name).root(dir.path()).create(),
            Err(Error::InvalidName { .. })
        ));
    }
    assert!(std::fs::read_dir(dir.path()).unwrap().next().is_none());
}

mod a {
    use shmx::ShmMessage;
    #[derive(ShmMessage, Clone, Copy)]
    #[repr(C)]
    pub struct Reading {
        pub id: u32,
        pub value: f32,
    }
}

mod b {
    use shmx::ShmMessage;
    /// Same name, same size, but `value` is a `u32`.
    #[derive(ShmMessage, Clone, Copy)]
    #[repr(C)]
    pub struct Reading {
        pub id: u32,
        pub value: u32,
    }
}

mod c {
    use shmx::ShmMessage;
    /// Same name, same types, but a field is named differently.
    #[derive(ShmMessage, Clone, Copy)]
    #[repr(C)]
    pub struct Reading {
        pub id: u32,
        pub level: f32,
    }
}

#[test]
fn a_different_type_on_the_same_topic_is_a_type_mismatch() {
    let dir = root();
    let _p = Publisher::<a::Reading>::builder("sensors/reading")
        .root(dir.path())
        .create()
        .unwrap();
    let e = Subscriber::<b::Reading>::builder("sensors/reading")
        .root(dir.path())
        .create()
        .err();
    let Some(Error::TypeMismatch {
        topic,
        existing_type,
        requested_type,
        existing_fingerprint,
        requested_fingerprint,
        difference,
        ..
    }) = e
    else {
        panic!("expected TypeMismatch, got {e:?}")
    };
    assert_eq!(
        &*difference,
        "field `value` differs: `value@4:f32` there, `value@4:u32` here"
    );
    assert_eq!(
        (
            topic.as_str(),
            existing_type.as_str(),
            requested_type.as_str()
        ),
        ("sensors/reading", "Reading", "Reading")
    );
    assert_ne!(existing_fingerprint, requested_fingerprint);
    let msg = Subscriber::<c::Reading>::builder("sensors/reading")
        .root(dir.path())
        .create()
        .err()
        .expect("a renamed field is a different type")
        .to_string();
    assert!(
        msg.contains("`value@4:f32` there, `level@4:f32` here"),
        "the error says which field differs: {msg}"
    );
    assert!(
        msg.contains("Reading") && msg.contains("sensors/reading"),
        "{msg}"
    );
    let msg = Publisher::<u64>::builder("sensors/reading")
        .root(dir.path())
        .create()
        .err()
        .unwrap()
        .to_string();
    assert!(msg.contains("`Reading`") && msg.contains("`u64`"), "{msg}");
    // The same type from another module agrees.
    mod again {
        use shmx::ShmMessage;
        #[derive(ShmMessage, Clone, Copy)]
        #[repr(C)]
        pub struct Reading {
            pub id: u32,
            pub value: f32,
        }
    }
    Subscriber::<again::Reading>::builder("sensors/reading")
        .root(dir.path())
        .create()
        .unwrap();
}

#[test]
fn a_root_that_is_a_file_is_an_io_error() {
    let dir = root();
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, b"").unwrap();
    let e = Publisher::<u64>::builder("t").root(&file).create().err();
    let Some(Error::Io { path, .. }) = e else {
        panic!("expected Io, got {e:?}")
    };
    assert_eq!(path, file);
}

#[test]
fn a_pool_larger_than_shared_memory_is_out_of_space() {
    #[derive(ShmMessage)]
    #[repr(C)]
    struct Huge {
        bytes: [u8; 1 << 30],
    }
    let dir = root();
    let cfg = TopicConfig {
        max_subscribers: 64,
        ..TopicConfig::default()
    };
    // The worst case up front, as a fixed pool (a growing pool starts with two chunks).
    let e = Publisher::<Huge>::builder("t")
        .topic_config(cfg)
        .reserve_chunks(usize::MAX)
        .root(dir.path())
        .create()
        .err();
    let Some(Error::OutOfSpace { bytes, path }) = e else {
        panic!("expected OutOfSpace, got {e:?}")
    };
    assert!(bytes > 1 << 40, "{bytes}");
    assert!(path.starts_with(dir.path()));
    // Nothing is left behind: no temporary file, no half-made topic.
    assert!(std::fs::read_dir(dir.path()).unwrap().next().is_none());
}

#[test]
fn a_full_participant_table_is_reported() {
    let dir = root();
    let cfg = TopicConfig {
        max_subscribers: 1,
        ..TopicConfig::default()
    };
    let _s = Subscriber::<u64>::builder("t")
        .topic_config(cfg)
        .root(dir.path())
        .create()
        .unwrap();
    let e = Subscriber::<u64>::builder("t")
        .root(dir.path())
        .create()
        .err();
    assert!(
        matches!(
            e,
            Some(Error::TooManyParticipants {
                role: "subscriber",
                max: 1,
                ..
            })
        ),
        "{e:?}"
    );
}

#[test]
fn out_of_range_configuration_is_refused() {
    let dir = root();
    let e = Publisher::<u64>::builder("t")
        .queue_depth(0)
        .root(dir.path())
        .create()
        .err();
    assert!(matches!(e, Some(Error::InvalidConfig { .. })), "{e:?}");
    let e = Subscriber::<u64>::builder("t")
        .queue_depth(100_000)
        .root(dir.path())
        .create()
        .err();
    assert!(matches!(e, Some(Error::InvalidConfig { .. })), "{e:?}");
    let cfg = TopicConfig {
        max_subscribers: 65,
        ..TopicConfig::default()
    };
    let e = Publisher::<u64>::builder("t")
        .topic_config(cfg)
        .root(dir.path())
        .create()
        .err();
    assert!(matches!(e, Some(Error::InvalidConfig { .. })), "{e:?}");
    let e = Publisher::<u64>::builder("t")
        .history(65)
        .root(dir.path())
        .create()
        .err();
    assert!(matches!(e, Some(Error::InvalidConfig { .. })), "{e:?}");
    assert!(std::fs::read_dir(dir.path()).unwrap().next().is_none());
}

/// Runs `child_opens_a_topic_it_may_not_read` as user `nobody` against a root-owned topic.
#[test]
fn a_topic_of_another_user_is_permission_denied() {
    if !rustix::process::geteuid().is_root() {
        eprintln!("skipped: needs root to run a child as another user");
        return;
    }
    let dir = root();
    let _p = Publisher::<u64>::builder("private")
        .root(dir.path())
        .create()
        .unwrap();
    // The root itself must be reachable by the other user; the topic (mode 0600) is not.
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .unwrap();
    use std::os::unix::process::CommandExt;
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_opens_a_topic_it_may_not_read",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("SHMX_CHILD_ROOT", dir.path())
        .uid(65534)
        .gid(65534)
        .output();
    let out = match out {
        Ok(out) => out,
        Err(e) => {
            eprintln!("skipped: cannot run the test binary as another user here ({e})");
            return;
        }
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !stdout.contains("child:") {
        // The binary lives where uid 65534 may not go (e.g. under a private home).
        eprintln!(
            "skipped: the test binary did not run as another user: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        return;
    }
    assert!(
        stdout.contains("child: PermissionDenied"),
        "child output: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success());
}

#[test]
fn child_opens_a_topic_it_may_not_read() {
    let Some(root) = std::env::var_os("SHMX_CHILD_ROOT") else {
        return;
    };
    match Subscriber::<u64>::builder("private").root(root).create() {
        Err(e @ Error::PermissionDenied { .. }) => {
            assert!(e.to_string().contains("permission denied"));
            println!("child: PermissionDenied");
        }
        other => println!("child: unexpected {:?}", other.err()),
    }
}

#[test]
fn endpoints_whose_root_was_removed_go_without_waiting_for_its_lock() {
    // Found while testing a bridge: with the root removed (`rm -rf`), dropping a publisher
    // waited 5 s and a subscriber 10 s for a lock nobody would ever let go of.
    let dir = common::root();
    let root = dir.path().join("r");
    std::fs::create_dir(&root).unwrap();
    let sub = shmx::Subscriber::<u64>::builder("t")
        .root(&root)
        .create()
        .unwrap();
    let publisher = shmx::Publisher::<u64>::builder("t")
        .root(&root)
        .create()
        .unwrap();
    std::fs::remove_dir_all(&root).unwrap();
    let start = std::time::Instant::now();
    drop(publisher);
    drop(sub);
    // Well under the 5 s an endpoint may wait for a lock that is merely busy.
    assert!(
        start.elapsed() < std::time::Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );
}
