//! Names from topic files never reach the terminal raw: a topic or type name made of escape
//! sequences is printed escaped by every command, and `--json` stays exact JSON.

mod common;

use common::{fresh_root, shmx};
use shmx::{Publisher, ShmMessage, Subscriber};

/// The derive refuses such a name, but any process that may write the topic's files can
/// put it there: the tests write it over a placeholder of the same length.
const EVIL_NAME: &str = "Evil\u{1b}]0;pwned\u{7}\u{1b}[2J";

#[derive(ShmMessage, Clone, Copy)]
#[shm(name = "EvilXXXXXXXXXXXXXX")]
#[repr(C)]
struct Evil {
    x: u64,
}

/// Writes [`EVIL_NAME`] over every copy of `Evil`'s placeholder name in the topic's service
/// file (the stored type name and the start of the schema text).
fn plant_evil_name(root: &std::path::Path, topic: &str) {
    use std::io::{Seek, SeekFrom, Write};
    let placeholder = <Evil as ShmMessage>::TYPE_NAME.as_bytes();
    assert_eq!(placeholder.len(), EVIL_NAME.len());
    let path = root
        .join(shmx::name::TopicName::new(topic).unwrap().encoded())
        .join("service");
    let bytes = std::fs::read(&path).unwrap();
    let mut file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    let mut planted = 0;
    for at in 0..bytes.len() - placeholder.len() {
        if &bytes[at..at + placeholder.len()] == placeholder {
            file.seek(SeekFrom::Start(at as u64)).unwrap();
            file.write_all(EVIL_NAME.as_bytes()).unwrap();
            planted += 1;
        }
    }
    assert_eq!(planted, 2, "the name and the schema text's start");
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
    plant_evil_name(root.path(), TOPIC);

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
    assert_eq!(topics[0]["type_name"], EVIL_NAME);

    let echo = shmx(root.path(), &["echo", TOPIC, "--timeout", "0.1"]);
    assert_safe(&echo.stdout);
    assert_safe(&echo.stderr);

    // Errors name the topic escaped too.
    let missing = shmx(root.path(), &["info", "no\u{1b}[2Jsuch"]);
    assert!(!missing.status.success());
    assert_safe(&missing.stderr);
    assert!(missing.stderr.contains("[2Jsuch"), "{}", missing.stderr);
}
