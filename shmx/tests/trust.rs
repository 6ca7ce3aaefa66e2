//! Trust boundaries on the filesystem: the root and topic directories another user made, or
//! that others may write, or that are links, are refused and left untouched; modes only
//! narrow; no lock another user can take delays anyone; a relative root survives `chdir`.
//!
//! Tests that play another user need root (they run as root here) and use uid/gid 65534
//! (`nobody`/`nogroup`): as the owner of a file (`chown`), or as the user of a child process
//! (this test binary, re-executed with `Command::uid`, or `runuser -u nobody`).

mod common;

use common::root;
use shmx::{Error, Publisher, Subscriber, TopicConfig};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const NOBODY: u32 = 65534;

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// Everything under `dir` with its owner, group and mode, to tell that nothing changed.
fn snapshot(dir: &Path) -> Vec<(PathBuf, u32, u32, u32, u64)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        let m = std::fs::symlink_metadata(&d).unwrap();
        out.push((d.clone(), m.uid(), m.gid(), m.mode(), m.len()));
        if m.is_dir() {
            for e in std::fs::read_dir(&d).unwrap().flatten() {
                stack.push(e.path());
            }
        }
    }
    out.sort();
    out
}

/// The reason of a `PermissionDenied`, or a panic naming what came instead.
fn denied(e: Option<Error>, path: &Path) -> String {
    match e {
        Some(Error::PermissionDenied { path: p, reason }) => {
            assert_eq!(p, path, "the error names the path: {reason}");
            reason
        }
        other => panic!("expected PermissionDenied on {path:?}, got {other:?}"),
    }
}

fn open_publisher(root: &Path, topic: &str) -> Option<Error> {
    Publisher::<u64>::builder(topic).root(root).create().err()
}

#[test]
fn a_root_made_by_another_user_is_refused_and_left_untouched() {
    if !is_root() {
        eprintln!("skipped: needs root to make a directory of another user");
        return;
    }
    let base = root();
    let theirs = base.path().join("theirs");
    std::fs::create_dir(&theirs).unwrap();
    std::fs::write(theirs.join("planted"), b"x").unwrap();
    std::os::unix::fs::chown(&theirs, Some(NOBODY), Some(NOBODY)).unwrap();
    std::fs::set_permissions(&theirs, PermissionsExt::from_mode(0o755)).unwrap();
    let before = snapshot(&theirs);
    let reason = denied(open_publisher(&theirs, "t"), &theirs);
    assert!(reason.contains("uid 65534"), "{reason}");
    let reason = denied(
        Subscriber::<u64>::builder("t").root(&theirs).create().err(),
        &theirs,
    );
    assert!(reason.contains("another user"), "{reason}");
    assert_eq!(snapshot(&theirs), before, "nothing was written into it");
}

#[test]
fn a_root_writable_by_others_is_refused_and_left_untouched() {
    let base = root();
    let open = base.path().join("open");
    std::fs::create_dir(&open).unwrap();
    std::fs::set_permissions(&open, PermissionsExt::from_mode(0o777)).unwrap();
    let before = snapshot(&open);
    let reason = denied(open_publisher(&open, "t"), &open);
    assert!(
        reason.contains("0777") && reason.contains("chmod"),
        "{reason}"
    );
    assert_eq!(snapshot(&open), before);
}

#[test]
fn a_root_that_is_a_symlink_is_refused_and_left_untouched() {
    let base = root();
    let real = base.path().join("real");
    std::fs::create_dir(&real).unwrap();
    let link = base.path().join("link");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let before = snapshot(base.path());
    let reason = denied(open_publisher(&link, "t"), &link);
    assert!(reason.contains("symbolic link"), "{reason}");
    assert_eq!(snapshot(base.path()), before);
}

#[test]
fn a_topic_directory_made_by_another_user_is_refused_and_left_untouched() {
    if !is_root() {
        eprintln!("skipped: needs root to make a directory of another user");
        return;
    }
    let dir = root();
    let topic = dir.path().join("t");
    std::fs::create_dir(&topic).unwrap();
    std::fs::write(topic.join("service"), vec![0u8; 4096]).unwrap();
    for p in [&topic, &topic.join("service")] {
        std::os::unix::fs::chown(p, Some(NOBODY), Some(NOBODY)).unwrap();
    }
    std::fs::set_permissions(&topic, PermissionsExt::from_mode(0o755)).unwrap();
    let before = snapshot(&topic);
    let reason = denied(open_publisher(dir.path(), "t"), &topic);
    assert!(reason.contains("uid 65534"), "{reason}");
    assert_eq!(snapshot(&topic), before);
    // The topic next door is ours and works.
    let (sub, publisher) = (
        Subscriber::<u64>::builder("u")
            .root(dir.path())
            .create()
            .unwrap(),
        Publisher::<u64>::builder("u")
            .root(dir.path())
            .create()
            .unwrap(),
    );
    publisher.send(7).unwrap();
    assert_eq!(*sub.take().unwrap().unwrap(), 7);
}

#[test]
fn a_topic_directory_or_segment_replaced_by_a_symlink_is_refused_and_left_untouched() {
    let dir = root();
    let elsewhere = root();
    std::os::unix::fs::symlink(elsewhere.path(), dir.path().join("t")).unwrap();
    let reason = denied(open_publisher(dir.path(), "t"), &dir.path().join("t"));
    assert!(reason.contains("symbolic link"), "{reason}");
    assert_eq!(
        std::fs::read_dir(elsewhere.path()).unwrap().count(),
        0,
        "nothing was written through the link"
    );
    // A segment that is a link to a file of ours elsewhere.
    let victim = elsewhere.path().join("precious");
    std::fs::write(&victim, b"keep me").unwrap();
    std::fs::set_permissions(&victim, PermissionsExt::from_mode(0o600)).unwrap();
    let topic = dir.path().join("u");
    std::fs::create_dir(&topic).unwrap();
    std::fs::set_permissions(&topic, PermissionsExt::from_mode(0o700)).unwrap();
    std::os::unix::fs::symlink(&victim, topic.join("service")).unwrap();
    let reason = denied(open_publisher(dir.path(), "u"), &topic.join("service"));
    assert!(reason.contains("symbolic link"), "{reason}");
    assert_eq!(std::fs::read(&victim).unwrap(), b"keep me");
}

#[test]
fn a_header_widened_to_0666_widens_no_file() {
    let dir = root();
    let first = Publisher::<u64>::builder("t")
        .root(dir.path())
        .create()
        .unwrap();
    let service = dir.path().join("t").join("service");
    // The stored mode is the `u32` after the magic (8 bytes) and the version (4 bytes).
    let mut bytes = std::fs::read(&service).unwrap();
    bytes[12..16].copy_from_slice(&0o666u32.to_ne_bytes());
    std::fs::write(&service, &bytes).unwrap();
    let reason = denied(open_publisher(dir.path(), "t"), &service);
    assert!(reason.contains("0666"), "{reason}");
    let e = Subscriber::<u64>::builder("t")
        .root(dir.path())
        .create()
        .err();
    denied(e, &service);
    for f in std::fs::read_dir(dir.path().join("t")).unwrap().flatten() {
        let mode = f.metadata().unwrap().mode() & 0o777;
        assert_eq!(mode, 0o600, "{:?}", f.path());
    }
    // A mode that is no permission mode at all is corrupt.
    bytes[12..16].copy_from_slice(&0o7777u32.to_ne_bytes());
    std::fs::write(&service, &bytes).unwrap();
    assert!(
        matches!(open_publisher(dir.path(), "t"), Some(Error::Corrupt { .. })),
        "an invalid stored mode is corrupt"
    );
    drop(first);
}

#[test]
fn a_topic_shared_more_widely_than_an_endpoint_allows_is_refused() {
    let dir = root();
    let wide = TopicConfig {
        mode: 0o640,
        ..TopicConfig::default()
    };
    let _owner = Publisher::<u64>::builder("t")
        .topic_config(wide)
        .root(dir.path())
        .create()
        .unwrap();
    let reason = denied(
        Subscriber::<u64>::builder("t")
            .root(dir.path())
            .create()
            .err(),
        &dir.path().join("t").join("service"),
    );
    assert!(
        reason.contains("0640") && reason.contains("0600"),
        "{reason}"
    );
    // Joining with the topic's mode works, and the file it creates has that mode.
    let _second = Publisher::<u64>::builder("t")
        .topic_config(wide)
        .root(dir.path())
        .create()
        .unwrap();
    for f in std::fs::read_dir(dir.path().join("t")).unwrap().flatten() {
        assert_eq!(
            f.metadata().unwrap().mode() & 0o777,
            0o640,
            "{:?}",
            f.path()
        );
    }
}

/// Runs `cmd` as a child in a process group of its own and returns it once it printed
/// `ready` (its lock is held).
fn spawn_ready(mut cmd: Command) -> std::process::Child {
    use std::io::BufRead;
    let mut child = cmd
        .stdout(Stdio::piped())
        .process_group(0)
        .spawn()
        .expect("spawn");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "ready", "the locker started");
    child
}

/// Kills `child` and everything it started (its process group), and reaps it.
fn kill_group(child: &mut std::process::Child) {
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{}", child.id())])
        .status();
    let _ = child.wait();
}

/// Runs `f` on another thread and returns its result, failing if it takes longer than
/// `limit` (what it waits for is held for far longer than that).
fn within<R: Send + 'static>(limit: Duration, f: impl FnOnce() -> R + Send + 'static) -> R {
    let handle = std::thread::spawn(f);
    let deadline = Instant::now() + limit;
    while !handle.is_finished() {
        assert!(
            Instant::now() < deadline,
            "blocked on a lock held by someone else"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    handle.join().unwrap()
}

#[test]
fn a_lock_taken_by_another_user_on_anything_in_the_root_delays_nobody() {
    if !is_root() {
        eprintln!("skipped: needs root to run a process as another user");
        return;
    }
    let dir = root();
    // Others may enter (not write) the root, so the other user can reach every file in it.
    std::fs::set_permissions(dir.path(), PermissionsExt::from_mode(0o755)).unwrap();
    let keep = Subscriber::<u64>::builder("t")
        .root(dir.path())
        .create()
        .unwrap();
    let mut files: Vec<PathBuf> = vec![dir.path().to_owned(), dir.path().join("t")];
    for e in std::fs::read_dir(dir.path()).unwrap().flatten() {
        files.push(e.path());
    }
    files.extend(
        std::fs::read_dir(dir.path().join("t"))
            .unwrap()
            .flatten()
            .map(|e| e.path()),
    );
    // The other user takes every lock it can get, in one process, and holds them.
    let script = r#"for f in "$@"; do exec {fd}<"$f" && flock -n -x $fd && echo "held $f" >&2; done; echo ready; sleep 60"#;
    let mut cmd = Command::new("runuser");
    cmd.args(["-u", "nobody", "--", "bash", "-c", script, "locker"])
        .args(&files)
        .stderr(Stdio::piped());
    let mut locker = spawn_ready(cmd);
    let root_path = dir.path().to_owned();
    within(Duration::from_secs(20), move || {
        let publisher = Publisher::<u64>::builder("t")
            .root(&root_path)
            .create()
            .unwrap();
        let sub = Subscriber::<u64>::builder("u")
            .root(&root_path)
            .create()
            .unwrap();
        publisher.send(1).unwrap();
        assert_eq!(publisher.subscriber_count(), 1);
        drop((publisher, sub));
    });
    assert_eq!(
        *keep.recv_timeout(Duration::from_secs(5)).unwrap().unwrap(),
        1
    );
    kill_group(&mut locker);
    let mut held = String::new();
    std::io::Read::read_to_string(locker.stderr.as_mut().unwrap(), &mut held).unwrap();
    let held: Vec<&str> = held
        .lines()
        .filter_map(|l| l.strip_prefix("held "))
        .collect();
    assert!(
        !held
            .iter()
            .any(|f| f.ends_with(".lock") || f.contains("/node.")),
        "the other user could lock the root lock or a node file: {held:?}"
    );
    // What it could lock (the root directory, which others may read here) is no lock of ours.
    assert!(
        held.contains(&dir.path().to_str().unwrap()),
        "the other user held no lock at all, so this test proved nothing: {held:?}"
    );
}

#[test]
fn the_take_path_never_waits_for_the_root_lock() {
    let dir = root();
    let sub = Subscriber::<u64>::builder("t")
        .root(dir.path())
        .create()
        .unwrap();
    let publisher = Publisher::<u64>::builder("t")
        .root(dir.path())
        .create()
        .unwrap();
    publisher.send(1).unwrap();
    let leaving = Publisher::<u64>::builder("t")
        .root(dir.path())
        .create()
        .unwrap();
    leaving.send(2).unwrap();
    drop(leaving); // its sample stays queued: draining it is on the take path
    let lock = dir.path().join(".lock");
    let mut cmd = Command::new("flock");
    cmd.arg("-x")
        .arg(&lock)
        .args(["-c", "echo ready; sleep 60"]);
    let mut holder = spawn_ready(cmd);
    let got = within(Duration::from_secs(20), move || {
        let mut got = Vec::new();
        while let Some(s) = sub.recv_timeout(Duration::from_millis(200)).unwrap() {
            got.push(*s);
        }
        publisher.send(3).unwrap();
        got.push(*sub.take().unwrap().unwrap());
        assert_eq!(sub.publisher_count(), 1);
        assert_eq!(publisher.subscriber_count(), 1);
        (got, sub, publisher)
    });
    let (mut values, sub, publisher) = got;
    values.sort();
    assert_eq!(values, [1, 2, 3]);
    kill_group(&mut holder);
    drop((sub, publisher));
    common::assert_empty(dir.path());
}

/// The test binary, re-executed as uid/gid 65534 running test `name` with `env`; `None` if
/// this machine cannot (not root, or the binary is out of that user's reach).
fn run_as_nobody(name: &str, env: &[(&str, &Path)]) -> Option<String> {
    if !is_root() {
        eprintln!("skipped: needs root to run a child as another user");
        return None;
    }
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["--exact", name, "--nocapture", "--test-threads=1"])
        .env_remove("SHMX_ROOT")
        .uid(NOBODY)
        .gid(NOBODY);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().ok()?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if !stdout.contains("child:") {
        eprintln!(
            "skipped: the test binary did not run as another user: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        return None;
    }
    assert!(out.status.success(), "{stdout}");
    Some(stdout)
}

#[test]
fn the_default_root_is_private_and_one_made_by_another_user_is_refused() {
    let default = PathBuf::from(format!("/dev/shm/shmx-{NOBODY}"));
    if !Path::new("/dev/shm").is_dir() || default.exists() {
        eprintln!("skipped: no /dev/shm, or {default:?} exists (in use)");
        return;
    }
    // Made by nobody itself: created 0700, and usable.
    let Some(out) = run_as_nobody(
        "child_uses_its_default_root",
        &[("SHMX_CHILD", Path::new("1"))],
    ) else {
        return;
    };
    assert!(out.contains("child: ok"), "{out}");
    let m = std::fs::metadata(&default).unwrap();
    assert_eq!((m.uid(), m.mode() & 0o777), (NOBODY, 0o700));
    assert_eq!(
        std::fs::read_dir(&default).unwrap().count(),
        0,
        "left empty"
    );
    std::fs::remove_dir(&default).unwrap();
    // Made first by another user (root here), even wide open: refused, untouched.
    std::fs::create_dir(&default).unwrap();
    std::fs::set_permissions(&default, PermissionsExt::from_mode(0o777)).unwrap();
    let before = snapshot(&default);
    let out = run_as_nobody(
        "child_uses_its_default_root",
        &[("SHMX_CHILD", Path::new("1"))],
    );
    let after = snapshot(&default);
    std::fs::remove_dir_all(&default).unwrap();
    let out = out.expect("ran before");
    assert!(out.contains("child: PermissionDenied"), "{out}");
    assert_eq!(after, before);
}

#[test]
fn child_uses_its_default_root() {
    if std::env::var_os("SHMX_CHILD").is_none() {
        return;
    }
    let run = || -> shmx::Result<()> {
        let sub = Subscriber::<u64>::new("t")?;
        let publisher = Publisher::<u64>::new("t")?;
        publisher.send(5)?;
        assert_eq!(*sub.take()?.unwrap(), 5);
        Ok(())
    };
    match run() {
        Ok(()) => println!("child: ok"),
        Err(Error::PermissionDenied { path, reason }) => {
            println!("child: PermissionDenied {path:?}: {reason}")
        }
        Err(e) => println!("child: unexpected {e}"),
    }
}

#[test]
fn a_topic_shared_with_a_group_works_across_users() {
    if !is_root() {
        eprintln!("skipped: needs root to share with another user");
        return;
    }
    let dir = root();
    // A root shared with group 65534: the owner's, and that group's to write.
    std::os::unix::fs::chown(dir.path(), None, Some(NOBODY)).unwrap();
    std::fs::set_permissions(dir.path(), PermissionsExt::from_mode(0o770)).unwrap();
    let shared = TopicConfig {
        mode: 0o660,
        group: Some(NOBODY),
        ..TopicConfig::default()
    };
    let publisher = Publisher::<u64>::builder("t")
        .topic_config(shared)
        .history(1)
        .root(dir.path())
        .create()
        .unwrap();
    publisher.send(41).unwrap();
    // Without naming the group, the root itself is refused; tools name no group.
    let reason = denied(open_publisher(dir.path(), "t"), dir.path());
    assert!(reason.contains("group 65534"), "{reason}");
    denied(shmx::inspect::topic(dir.path(), "t").err(), dir.path());
    denied(shmx::inspect::topics(dir.path()).err(), dir.path());
    let Some(out) = run_as_nobody(
        "child_joins_a_shared_topic",
        &[("SHMX_CHILD_ROOT", dir.path())],
    ) else {
        return;
    };
    assert!(out.contains("child: got 41 and 1 publisher"), "{out}");
    for f in std::fs::read_dir(dir.path().join("t")).unwrap().flatten() {
        let m = f.metadata().unwrap();
        assert_eq!(
            (m.gid(), m.mode() & 0o777),
            (NOBODY, 0o660),
            "{:?}",
            f.path()
        );
    }
    drop(publisher);
    common::assert_empty(dir.path());
}

#[test]
fn child_joins_a_shared_topic() {
    let Some(root) = std::env::var_os("SHMX_CHILD_ROOT") else {
        return;
    };
    let shared = TopicConfig {
        mode: 0o660,
        group: Some(NOBODY),
        ..TopicConfig::default()
    };
    let sub = Subscriber::<u64>::builder("t")
        .topic_config(shared)
        .root(&root)
        .create();
    match sub {
        Ok(sub) => {
            let got = sub
                .recv_timeout(Duration::from_secs(5))
                .unwrap()
                .map(|s| *s);
            // The publisher's node file is 0600: its liveness comes from the kernel's locks.
            let n = sub.publisher_count();
            println!("child: got {} and {n} publisher", got.unwrap_or(0));
        }
        Err(e) => println!("child: unexpected {e}"),
    }
}

#[test]
fn a_relative_root_and_a_chdir_between_endpoints_keep_them_alive_and_leave_nothing() {
    let base = root();
    let (a, b) = (base.path().join("a"), base.path().join("b"));
    std::fs::create_dir(&a).unwrap();
    std::fs::create_dir(&b).unwrap();
    // A child process of its own: `chdir` changes the whole process.
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_changes_directory",
            "--nocapture",
            "--test-threads=1",
        ])
        .current_dir(&a)
        .env("SHMX_ROOT", "r")
        .env("SHMX_CHILD_BASE", base.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("child: ok") && out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    common::assert_empty(&a.join("r"));
    common::assert_empty(&b);
}

#[test]
fn child_changes_directory() {
    let Some(base) = std::env::var_os("SHMX_CHILD_BASE").map(PathBuf::from) else {
        return;
    };
    // The current directory is base/a and SHMX_ROOT is the relative `r`: base/a/r.
    let sub = Subscriber::<u64>::new("t").unwrap();
    std::env::set_current_dir(base.join("b")).unwrap();
    // Another endpoint joins the same root by its absolute path after the chdir.
    let publisher = Publisher::<u64>::builder("t")
        .root(base.join("a").join("r"))
        .create()
        .unwrap();
    // Both look for dead peers here (the sweep): neither may take the other for dead.
    assert_eq!(
        sub.publisher_count(),
        1,
        "the subscriber lost its publisher"
    );
    assert_eq!(
        publisher.subscriber_count(),
        1,
        "the publisher lost its subscriber"
    );
    publisher.send(9).unwrap();
    assert_eq!(*sub.take().unwrap().unwrap(), 9);
    assert_eq!(sub.publisher_count(), 1);
    drop((sub, publisher));
    println!("child: ok");
}

#[test]
fn a_fifo_in_place_of_a_file_is_refused_at_once_and_blocks_nothing() {
    let dir = root();
    let sub = Subscriber::<u64>::builder("t")
        .root(dir.path())
        .create()
        .unwrap();
    let lock = dir.path().join(".lock");
    std::fs::remove_file(&lock).unwrap();
    let made = Command::new("mkfifo")
        .args(["-m", "600"])
        .arg(&lock)
        .status();
    if !made.is_ok_and(|s| s.success()) {
        eprintln!("skipped: no mkfifo here");
        return;
    }
    let root_path = dir.path().to_owned();
    let sub = within(Duration::from_secs(20), move || {
        assert!(sub.take().unwrap().is_none());
        assert_eq!(sub.publisher_count(), 0);
        let e = Publisher::<u64>::builder("t")
            .root(&root_path)
            .create()
            .err();
        let reason = denied(e, &root_path.join(".lock"));
        assert!(reason.contains("not a regular file"), "{reason}");
        sub
    });
    std::fs::remove_file(&lock).unwrap();
    drop(sub);
    common::assert_empty(dir.path());
}

#[test]
fn a_mode_that_lets_others_write_is_an_invalid_configuration() {
    let dir = root();
    for mode in [0o606, 0o622, 0o666] {
        let config = TopicConfig {
            mode,
            ..TopicConfig::default()
        };
        let e = Publisher::<u64>::builder("t")
            .topic_config(config)
            .root(dir.path())
            .create()
            .err();
        assert!(
            matches!(e, Some(Error::InvalidConfig { .. })),
            "{mode:o}: {e:?}"
        );
    }
    common::assert_empty(dir.path());
}
