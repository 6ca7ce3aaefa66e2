//! `shmx echo` and `shmx pub` against real publishers and subscribers in other processes.
//! The harness is in `common/mod.rs`.

mod common;

use common::*;
use serde_json::Value;
use std::time::{Duration, Instant};

/// The children's entry point (see [`common::run_child_role`]); an ordinary (empty) test when
/// [`common::ROLE_VAR`] is unset.
#[test]
fn child_main() {
    run_child_role();
}

#[test]
fn echo_prints_samples_as_json() {
    let root = fresh_root();
    let mut child = Participant::start_as(root.path(), "waitpub", "robot/pose");

    // The child publishes once `echo` has subscribed.
    let out = shmx(
        root.path(),
        &["echo", "robot/pose", "-n", "3", "--timeout", "30"],
    )
    .ok();
    let lines: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let expected: Vec<Value> = echoed_poses()
        .iter()
        .map(|p| {
            serde_json::json!({
                "seq": p.seq, "x": p.x, "y": p.y, "heading": p.heading, "flags": p.flags,
            })
        })
        .collect();
    let values: Vec<&Value> = lines.iter().map(|l| &l["value"]).collect();
    assert_eq!(values, expected.iter().collect::<Vec<_>>(), "{out}");
    // Fields in declaration order, and the publisher's sequence numbers, increasing.
    assert!(out.starts_with(r#"{"seq":"#), "{out}");
    assert!(
        out.lines().next().is_some_and(|l| l.contains(
            r#"{"seq":100,"x":0.5,"y":-1.25,"heading":0.0,"flags":7}"#
        )),
        "{out}"
    );
    let seqs: Vec<u64> = lines
        .iter()
        .map(|l| l["seq"].as_u64().expect("seq"))
        .collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    child.finish();

    // Nothing more comes: a timeout without -n ends quietly, with -n it is an error.
    let mut child = Participant::start(root.path(), "robot/pose");
    assert_eq!(
        shmx(root.path(), &["echo", "robot/pose", "--timeout", "0.2"]).ok(),
        ""
    );
    let run = shmx(
        root.path(),
        &["echo", "robot/pose", "-n", "1", "--timeout", "0.2"],
    );
    assert_eq!(run.status.code(), Some(1), "{}", run.stderr);
    assert!(run.stderr.contains("received 0 of 1"), "{}", run.stderr);
    child.finish();
}

/// The JSON `shmx pub` sends in the tests below, and the value it stands for.
fn robot_json() -> (Value, Robot) {
    let json = serde_json::json!({
        "pose": {"seq": 9, "x": 1.5, "y": -2.0, "heading": 0.75, "flags": 3},
        "path": [[1.0, 2.0], [3.5, -4.0]],
        "mode": "Drive",
        "armed": true,
    });
    let robot = Robot {
        pose: Pose {
            seq: 9,
            x: 1.5,
            y: -2.0,
            heading: 0.75,
            flags: 3,
        },
        path: [[1.0, 2.0], [3.5, -4.0]],
        mode: Mode::Drive,
        armed: true,
        _pad: [0; 6],
    };
    (json, robot)
}

#[test]
fn pub_encodes_json_for_a_typed_subscriber() {
    let root = fresh_root();
    let mut child = Participant::start_as(root.path(), "sub", "robot/state");
    let (json, robot) = robot_json();

    let out = shmx(root.path(), &["pub", "robot/state", &json.to_string()]).ok();
    assert!(out.starts_with("published 1 sample(s)"), "{out}");
    assert_eq!(child.line_starting("got "), format!("got {robot:?}"));
    child.finish();

    // Round trip through `echo`: a second `pub` (paced, twice) while `echo` listens.
    let _child = Participant::start_as(root.path(), "sub", "robot/state");
    let echo_root = root.path().to_owned();
    let echo = std::thread::spawn(move || {
        shmx(
            &echo_root,
            &["echo", "robot/state", "-n", "2", "--timeout", "30"],
        )
        .ok()
    });
    let start = Instant::now();
    loop {
        let t = shmx(root.path(), &["info", "robot/state", "--json"]).json();
        if t["subscribers"].as_array().map(Vec::len) == Some(2) {
            break;
        }
        assert!(start.elapsed() < DEADLINE, "echo never subscribed: {t:#}");
        std::thread::sleep(Duration::from_millis(10));
    }
    let report = shmx(
        root.path(),
        &[
            "pub",
            "robot/state",
            &json.to_string(),
            "--count",
            "2",
            "--rate",
            "50",
            "--json",
        ],
    )
    .json();
    assert_eq!(report["published"], 2, "{report:#}");
    // The participant, and `echo` unless it took its two samples and left before `pub`
    // counted.
    let subscribers = report["subscribers"].as_u64();
    assert!(matches!(subscribers, Some(1 | 2)), "{report:#}");
    let out = echo.join().expect("echo");
    let mut with_padding = json.clone();
    with_padding["_pad"] = serde_json::json!([0, 0, 0, 0, 0, 0]);
    for line in out.lines() {
        let line: Value = serde_json::from_str(line).expect("JSON");
        assert_eq!(line["value"], with_padding, "{out}");
    }
    assert_eq!(out.lines().count(), 2, "{out}");
}

#[test]
fn pub_names_the_missing_or_mistyped_field() {
    let root = fresh_root();
    let mut child = Participant::start_as(root.path(), "sub", "robot/state");
    let (json, _) = robot_json();
    let cases: [(&[&str], Value, &str); 5] = [
        (
            &["pose", "x"],
            "abc".into(),
            r#"field "pose.x": expected a number, found "abc""#,
        ),
        (&["armed"], Value::Null, r#"missing field "armed""#),
        (
            &["mode"],
            "Fly".into(),
            r#"field "mode": expected a variant of Mode"#,
        ),
        (
            &["path"],
            serde_json::json!([[1.0, 2.0]]),
            r#"field "path": expected an array of 2"#,
        ),
        (
            &["pose", "extra"],
            1.into(),
            r#"unknown field "pose.extra""#,
        ),
    ];
    for (path, value, message) in cases {
        let mut bad = json.clone();
        let (last, parents) = path.split_last().expect("a path");
        let mut at = &mut bad;
        for p in parents {
            at = &mut at[*p];
        }
        if value.is_null() {
            at.as_object_mut().expect("an object").remove(*last);
        } else {
            at[*last] = value;
        }
        let run = shmx(root.path(), &["pub", "robot/state", &bad.to_string()]);
        assert_eq!(run.status.code(), Some(1), "{path:?}: {}", run.stderr);
        assert!(run.stdout.is_empty(), "{}", run.stdout);
        assert!(
            run.stderr.starts_with(&format!("shmx: {message}")),
            "{path:?}: {}",
            run.stderr
        );
    }
    let run = shmx(root.path(), &["pub", "robot/state", "{not json"]);
    assert_eq!(run.status.code(), Some(1), "{}", run.stderr);
    assert!(run.stderr.contains("not valid JSON"), "{}", run.stderr);
    // Nothing bad was published: the first thing the child receives is a good message.
    shmx(root.path(), &["pub", "robot/state", &json.to_string()]).ok();
    assert_eq!(
        child.line_starting("got "),
        format!("got {:?}", robot_json().1)
    );
    child.finish();
}

#[test]
fn echo_and_pub_need_an_existing_topic() {
    let root = fresh_root();
    for args in [
        &["echo", "no/such", "--timeout", "1"][..],
        &["pub", "no/such", "{}"][..],
    ] {
        let run = shmx(root.path(), args);
        assert_eq!(run.status.code(), Some(1), "{args:?}: {}", run.stderr);
        assert_eq!(
            run.stderr, "shmx: no topic \"no/such\": start a publisher or subscriber of it first\n",
            "{args:?}"
        );
    }
}

#[test]
fn echo_accepts_any_timeout() {
    let root = fresh_root();
    let mut child = Participant::start_as(root.path(), "waitpub", "robot/pose");
    // 1.8e19 s is within `Duration` but past the clock's range: it means "forever".
    let out = shmx(
        root.path(),
        &["echo", "robot/pose", "-n", "1", "--timeout", "1.8e19"],
    )
    .ok();
    assert_eq!(out.lines().count(), 1, "{out}");
    child.finish();
}
