//! `shmx list`, `info`, `monitor` and `clean` against real publishers and subscribers in other
//! processes, and the errors of unknown or invalid topics. The harness is in `common/mod.rs`.

mod common;

use common::*;
use serde_json::Value;
use std::path::PathBuf;

/// The children's entry point (see [`common::run_child_role`]); an ordinary (empty) test when
/// [`common::ROLE_VAR`] is unset.
#[test]
fn child_main() {
    run_child_role();
}

#[test]
fn list_shows_topics_types_and_live_processes() {
    let root = fresh_root();
    let child = Participant::start(root.path(), "robot/pose");

    let topics = shmx(root.path(), &["list", "--json"]).json();
    assert_eq!(topics.as_array().map(Vec::len), Some(1), "{topics:#}");
    let t = topic_named(&topics, "robot/pose");
    assert!(
        t["type_name"].as_str().is_some_and(|n| n.ends_with("Pose")),
        "{t:#}"
    );
    assert!(
        t["fingerprint"]
            .as_str()
            .is_some_and(|f| f.starts_with("0x")),
        "{t:#}"
    );
    for role in ["publishers", "subscribers"] {
        let slots = t[role].as_array().expect("slots");
        assert_eq!(slots.len(), 1, "{role}: {t:#}");
        assert_eq!(slots[0]["pid"], child.pid(), "{role}: {t:#}");
        assert_eq!(slots[0]["alive"], true, "{role}: {t:#}");
        assert_eq!(slots[0]["state"], "active", "{role}: {t:#}");
    }
    assert_eq!(t["subscribers"][0]["queued"], SENT, "{t:#}");
    let in_use = t["publishers"][0]["chunks_in_use"]
        .as_u64()
        .expect("chunks in use");
    assert!(in_use >= SENT, "the queued samples hold chunks: {t:#}");
    assert_eq!(t["publishers"][0]["published"], SENT, "{t:#}");
    // Memory: a chunk holds at least the message; the data segment's allocated blocks hold
    // every chunk (it is fallocated whole); what is in use is counted in whole chunks; the
    // topic holds its publisher's segment and more (the service segment).
    let p = &t["publishers"][0];
    let (chunk, chunks) = (
        p["chunk_bytes"].as_u64().unwrap(),
        p["chunks"].as_u64().unwrap(),
    );
    assert!(chunk >= 32, "{t:#}");
    let reserved = p["reserved_bytes"].as_u64().unwrap();
    assert!(reserved >= chunk * chunks, "{t:#}");
    assert_eq!(p["used_bytes"].as_u64(), Some(in_use * chunk), "{t:#}");
    assert!(t["reserved_bytes"].as_u64().unwrap() > reserved, "{t:#}");
    // A type without a tail has one size class: the whole pool, in one segment.
    let classes = p["classes"].as_array().expect("classes");
    assert_eq!(classes.len(), 1, "{t:#}");
    assert_eq!(classes[0]["chunks"], p["chunks"], "{t:#}");
    assert_eq!(classes[0]["segments"], 1, "{t:#}");
    assert_eq!(classes[0]["chunk_bytes"], p["chunk_bytes"], "{t:#}");
    assert_eq!(classes[0]["reserved_bytes"], p["reserved_bytes"], "{t:#}");

    let table = shmx(root.path(), &["list"]).ok();
    assert!(table.starts_with("TOPIC"), "{table}");
    assert!(table.contains("robot/pose"), "{table}");
    assert!(
        table.contains(&format!("{}(alive)", child.pid())),
        "{table}"
    );
    assert!(table.contains(&format!("{SENT} queued")), "{table}");
    assert!(
        table.contains("RESERVED") && table.contains(" KiB"),
        "{table}"
    );
}

#[test]
fn info_shows_schema_and_slots() {
    let root = fresh_root();
    let child = Participant::start(root.path(), "robot/pose");

    let text = shmx(root.path(), &["info", "robot/pose"]).ok();
    for field in ["seq@0", "x@8", "y@16", "heading@24", "flags@28"] {
        assert!(text.contains(field), "no {field} in:\n{text}");
    }
    assert!(text.contains("(32 bytes)"), "{text}");
    assert!(text.contains("mode         0600"), "{text}");
    assert!(text.contains("publishers (1):"), "{text}");
    assert!(text.contains("subscribers (1):"), "{text}");
    assert!(text.contains("pool size classes:"), "{text}");
    assert!(text.contains(&child.pid().to_string()), "{text}");

    let t = shmx(root.path(), &["info", "robot/pose", "--json"]).json();
    assert_eq!(t["name"], "robot/pose");
    assert_eq!(t["type_size"], 32);
    assert!(
        t["schema"]
            .as_str()
            .is_some_and(|s| s.contains("heading@24")),
        "{t:#}"
    );
    assert_eq!(t["limits"]["mode"], "0600");
    assert_eq!(t["publishers"][0]["pid"], child.pid());
    assert_eq!(t["publishers"][0]["alive"], true);
    // The id its samples carry: random, never 0.
    assert!(
        t["publishers"][0]["id"].as_u64().is_some_and(|id| id != 0),
        "{t:#}"
    );
    assert_eq!(t["subscribers"][0]["pid"], child.pid());
    assert_eq!(t["subscribers"][0]["queued"], SENT);
}

#[test]
fn clean_removes_what_a_killed_process_left_and_keeps_live_topics() {
    let root = fresh_root();
    let mut killed = Participant::start(root.path(), "a");
    let mut live = Participant::start(root.path(), "b");
    let topics = shmx(root.path(), &["list", "--json"]).json();
    let dir_a = PathBuf::from(topic_named(&topics, "a")["dir"].as_str().expect("dir"));
    let dir_b = PathBuf::from(topic_named(&topics, "b")["dir"].as_str().expect("dir"));

    killed.kill();
    let t = shmx(root.path(), &["info", "a", "--json"]).json();
    assert_eq!(t["publishers"][0]["alive"], false, "{t:#}");
    assert!(shmx(root.path(), &["list"]).ok().contains("(DEAD)"));

    // A dry run names topic a's files and removes nothing.
    let before = files_under(root.path());
    let dry = shmx(root.path(), &["clean", "--dry-run", "--json"]).json();
    assert_eq!(dry["dry_run"], true);
    assert_eq!(dry["reclaimed_slots"], 2, "{dry:#}");
    let would: Vec<PathBuf> = dry["removed"]
        .as_array()
        .expect("removed paths")
        .iter()
        .map(|p| PathBuf::from(p.as_str().expect("a path")))
        .collect();
    assert!(would.contains(&dir_a), "{dry:#}");
    assert!(would.iter().any(|p| p.starts_with(&dir_a) && p != &dir_a));
    assert!(!would.iter().any(|p| p.starts_with(&dir_b)), "{dry:#}");
    assert_eq!(
        files_under(root.path()),
        before,
        "the dry run removed something"
    );
    let text = shmx(root.path(), &["clean", "--dry-run"]).ok();
    assert!(text.starts_with("would reclaim 2 slot(s)"), "{text}");
    assert!(text.contains(&dir_a.display().to_string()), "{text}");

    // The real thing removes them, and only them.
    let done = shmx(root.path(), &["clean", "--json"]).json();
    assert_eq!(done["dry_run"], false);
    assert_eq!(done["reclaimed_slots"], 2, "{done:#}");
    assert!(
        done["removed"]
            .as_array()
            .expect("removed paths")
            .iter()
            .any(|p| p == dir_a.to_str().expect("utf-8 path")),
        "{done:#}"
    );
    assert!(!dir_a.exists(), "{:?}", files_under(root.path()));
    assert!(dir_b.exists());
    let topics = shmx(root.path(), &["list", "--json"]).json();
    assert_eq!(topics.as_array().map(Vec::len), Some(1), "{topics:#}");
    let b = topic_named(&topics, "b");
    assert_eq!(b["publishers"][0]["pid"], live.pid());
    assert_eq!(b["publishers"][0]["alive"], true);
    assert_eq!(shmx(root.path(), &["clean"]).ok(), "nothing to clean\n");

    live.finish();
    shmx(root.path(), &["clean"]).ok();
    assert_eq!(files_under(root.path()), Vec::<PathBuf>::new());
}

#[test]
fn unknown_topic_is_a_clear_error() {
    let root = fresh_root();
    let run = shmx(root.path(), &["info", "no/such/topic"]);
    assert_eq!(run.status.code(), Some(1), "{}", run.stderr);
    assert!(run.stdout.is_empty(), "{}", run.stdout);
    assert!(run.stderr.starts_with("shmx: "), "{}", run.stderr);
    assert!(run.stderr.contains("no/such/topic"), "{}", run.stderr);
}

#[test]
fn invalid_topic_name_is_a_clear_error() {
    let root = fresh_root();
    for bad in ["", "a//b", "/x"] {
        let run = shmx(root.path(), &["info", bad]);
        assert_eq!(run.status.code(), Some(1), "{bad:?}: {}", run.stderr);
        assert!(
            run.stderr.starts_with("shmx: invalid topic name"),
            "{bad:?}: {}",
            run.stderr
        );
    }
}

#[test]
fn an_empty_or_missing_root_lists_nothing() {
    let root = fresh_root();
    assert_eq!(
        shmx(root.path(), &["list", "--json"]).json(),
        Value::Array(vec![])
    );
    let missing = root.path().join("missing");
    assert!(shmx(&missing, &["list"])
        .ok()
        .starts_with("no topics under"));
    assert_eq!(shmx(&missing, &["clean"]).ok(), "nothing to clean\n");
    assert!(!missing.exists());
}

#[test]
fn monitor_shows_publish_counts_and_queue_fill() {
    let root = fresh_root();
    let child = Participant::start(root.path(), "robot/pose");
    let out = shmx(
        root.path(),
        &["monitor", "--json", "--count", "2", "--interval", "0.05"],
    )
    .ok();
    let refreshes: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON array per refresh"))
        .collect();
    assert_eq!(refreshes.len(), 2, "{out}");
    for r in &refreshes {
        let t = topic_named(r, "robot/pose");
        assert_eq!(t["publishers"][0]["published"], SENT, "{t:#}");
        assert_eq!(t["publishers"][0]["pid"], child.pid(), "{t:#}");
        assert_eq!(t["subscribers"][0]["queued"], SENT, "{t:#}");
    }
    // Nothing was published between the two refreshes.
    assert_eq!(
        topic_named(&refreshes[1], "robot/pose")["publishers"][0]["rate"],
        0.0
    );
    let screen = shmx(root.path(), &["monitor", "--count", "1"]).ok();
    assert!(
        screen.contains("TOPIC") && screen.contains("robot/pose"),
        "{screen}"
    );
}

#[test]
fn list_and_info_show_services_with_their_types_servers_and_clients() {
    let root = fresh_root();
    let server = shmx::Server::<u64, [u32; 2]>::builder("robot/params")
        .root(root.path())
        .create()
        .unwrap();
    let client = shmx::Client::<u64, [u32; 2]>::builder("robot/params")
        .root(root.path())
        .create()
        .unwrap();
    let pending = client.send(7).unwrap();
    let all = shmx(root.path(), &["list", "--json"]).json();
    let entries = all.as_array().expect("an array");
    assert_eq!(entries.len(), 1, "a service, and no topic: {all:#}");
    let s = &entries[0];
    assert_eq!(s["kind"], "service", "{s:#}");
    assert_eq!(s["name"], "robot/params", "{s:#}");
    assert_eq!(s["request"]["type_name"], "u64", "{s:#}");
    assert_eq!(s["servers"].as_array().map(Vec::len), Some(1), "{s:#}");
    assert_eq!(s["clients"].as_array().map(Vec::len), Some(1), "{s:#}");
    assert_eq!(s["servers"][0]["queued"], 1, "one request in flight: {s:#}");
    assert_eq!(s["servers"][0]["peers"], 1, "{s:#}");
    let text = shmx(root.path(), &["list"]).stdout;
    assert!(
        text.contains("robot/params") && text.contains("IN FLIGHT"),
        "{text}"
    );
    let info = shmx(root.path(), &["info", "robot/params"]).stdout;
    assert!(
        info.contains("request type") && info.contains("servers (1)"),
        "{info}"
    );
    let json = shmx(root.path(), &["info", "robot/params", "--json"]).json();
    assert_eq!(
        json["clients"][0]["id"],
        format!("{:016x}", client.id()),
        "{json:#}"
    );
    drop(pending);
    drop((client, server));
}

#[derive(shmx::ShmMessage)]
#[repr(C)]
struct Query {
    key: u32,
    count: u32,
    name: shmx::RelStr,
}

#[derive(shmx::ShmMessage)]
#[repr(C)]
struct Reply {
    index: u32,
    key: u32,
    name: shmx::RelStr,
}

#[test]
fn call_sends_a_json_request_and_prints_each_response() {
    let root = fresh_root();
    let dir = root.path().to_owned();
    let (ready, started) = std::sync::mpsc::channel();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stopped = stop.clone();
    let server = std::thread::spawn(move || {
        let server = shmx::Server::<Query, Reply>::builder("robot/params")
            .root(&dir)
            .max_tail_bytes(64)
            .create()
            .unwrap();
        ready.send(()).unwrap();
        let mut answered = 0;
        while !stopped.load(std::sync::atomic::Ordering::Relaxed) {
            let Some(req) = server
                .recv_timeout(std::time::Duration::from_millis(20))
                .unwrap()
            else {
                continue;
            };
            for index in 0..req.count {
                let mut r = req.loan_response().unwrap();
                let mut w = r.writer();
                *w.index = index;
                *w.key = req.key;
                w.set_name(req.name()).unwrap();
                r.send().unwrap();
            }
            answered += 1;
        }
        answered
    });
    started.recv().unwrap();
    let out = shmx(
        root.path(),
        &[
            "call",
            "robot/params",
            r#"{"key":7,"count":3,"name":"speed"}"#,
        ],
    )
    .ok();
    let lines: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(lines.len(), 3, "{out}");
    for (i, l) in lines.iter().enumerate() {
        assert_eq!(l["value"]["index"], i, "{out}");
        assert_eq!(l["value"]["key"], 7, "{out}");
        assert_eq!(l["value"]["name"], "speed", "{out}");
    }
    // A request that does not fit the schema, and a service that does not exist.
    let bad = shmx(root.path(), &["call", "robot/params", r#"{"key":"x"}"#]);
    assert!(
        !bad.status.success() && !bad.stderr.is_empty(),
        "{}",
        bad.stderr
    );
    let none = shmx(root.path(), &["call", "no/such", "{}"]);
    assert!(none.stderr.contains("no service"), "{}", none.stderr);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert_eq!(server.join().unwrap(), 1);
}
