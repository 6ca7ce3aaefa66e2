//! Names from topic files never reach the terminal raw: a topic or type name made of escape
//! sequences is printed escaped by every command, and `--json` stays exact JSON.

mod common;

use common::{fresh_root, shmx};
use shmx::{Publisher, ShmMessage, Subscriber};

#[derive(ShmMessage, Clone, Copy)]
#[shm(name = "Evil\u{1b}]0;pwned\u{7}\u{1b}[2J")]
#[repr(C)]
struct Evil {
    x: u64,
}

const TOPIC: &str = "evil\u{1b}[2J\u{9b}31m\n/\u{202e}name";

/// No control or bidirectional-text character but the newline in `text`.
#[track_caller]
fn assert_safe(text: &str) {
    let bad: Vec<char> = text
        .chars()
        .filter(|&c| {
            c != '\n'
                && (c.is_control()
                    || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'))
        })
        .collect();
    assert!(bad.is_empty(), "raw controls {bad:?} in {text:?}");
}

#[test]
fn escape_sequences_in_names_are_printed_escaped() {
    let root = fresh_root();
    let _sub = Subscriber::<Evil>::builder(TOPIC)
        .root(root.path())
        .create()
        .unwrap();
    let publisher = Publisher::<Evil>::builder(TOPIC)
        .root(root.path())
        .create()
        .unwrap();
    publisher.send(Evil { x: 1 }).unwrap();

    let list = shmx(root.path(), &["list"]).ok();
    assert_safe(&list);
    assert!(
        list.contains("evil\\u001b[2J\\u009b31m\\u000a/\\u202ename"),
        "{list}"
    );
    assert!(
        list.contains("Evil\\u001b]0;pwned\\u0007\\u001b[2J"),
        "{list}"
    );
    assert_eq!(list.lines().count(), 2, "a name cannot fake lines: {list}");

    let info = shmx(root.path(), &["info", TOPIC]).ok();
    assert_safe(&info);
    assert!(info.contains("Evil\\u001b]0;pwned"), "{info}");

    // JSON: the same characters, as JSON escapes; the values are exactly the names.
    let json = shmx(root.path(), &["list", "--json"]);
    assert_safe(&json.stdout);
    let topics = json.json();
    assert_eq!(topics[0]["name"], TOPIC);
    assert_eq!(topics[0]["type_name"], "Evil\u{1b}]0;pwned\u{7}\u{1b}[2J");

    let echo = shmx(root.path(), &["echo", TOPIC, "--timeout", "0.1"]);
    assert_safe(&echo.stdout);
    assert_safe(&echo.stderr);

    // Errors name the topic escaped too.
    let missing = shmx(root.path(), &["info", "no\u{1b}[2Jsuch"]);
    assert!(!missing.status.success());
    assert_safe(&missing.stderr);
    assert!(missing.stderr.contains("[2Jsuch"), "{}", missing.stderr);
}
