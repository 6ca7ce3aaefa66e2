//! Parsing `shmx.toml`: every key, and every kind of mistake at its line and column.

use super::*;
use crate::defaults::Defaults;

fn parse_ok(text: &str) -> Defaults {
    parse(text, Path::new("/cfg/shmx.toml")).unwrap_or_else(|e| panic!("{e:?}"))
}

/// The error's (line, column, reason).
fn parse_err(text: &str) -> (Option<usize>, Option<usize>, String) {
    match parse(text, Path::new("/cfg/shmx.toml")) {
        Ok(d) => panic!("parsed: {d:?}"),
        Err(e) => {
            assert_eq!(e.path, Path::new("/cfg/shmx.toml"));
            (e.line, e.column, e.reason)
        }
    }
}

#[test]
fn every_key_is_read_into_its_config() {
    let d = parse_ok(
        r#"
root = "/dev/shm/shmx-robot"
max_root_bytes = "2GiB"

[topic]
mode = "0660"
group = 0
max_publishers = 2
max_subscribers = 3
max_queue_depth = 1000
max_held = 5
max_history = 6

[publisher]
queue_depth = 7
history = 6
max_loans = 9
overflow = "block"
block_timeout = "250ms"
max_tail_bytes = 4096
pool_classes = [1024, 256]
reserve_chunks = 3
max_pool_bytes = 1000000

[subscriber]
queue_depth = 11
"#,
    );
    let topic = TopicConfig {
        max_publishers: 2,
        max_subscribers: 3,
        max_queue_depth: 1000,
        max_held: 5,
        max_history: 6,
        mode: 0o660,
        group: Some(0),
    };
    assert_eq!(d.file_root(), Some(Path::new("/dev/shm/shmx-robot")));
    assert_eq!(d.topic(), topic);
    let p = d.publisher();
    assert_eq!(
        (p.queue_depth, p.history, p.max_loans, p.overflow),
        (7, 6, 9, Overflow::Block)
    );
    assert_eq!(p.block_timeout, Some(Duration::from_millis(250)));
    assert_eq!((p.max_tail_bytes, p.topic), (4096, topic));
    assert_eq!(p.pool_classes.tails(), Some(&[1024, 256][..]));
    assert_eq!(p.reserve_chunks, Some(3));
    assert_eq!(p.max_pool_bytes, Some(1_000_000));
    assert_eq!(p.max_root_bytes, Some(2 << 30));
    assert_eq!(
        (d.subscriber().queue_depth, d.subscriber().topic),
        (11, topic)
    );
    assert_eq!(d.file(), Some(Path::new("/cfg/shmx.toml")));
}

#[test]
fn an_empty_file_or_one_of_comments_is_the_built_in_defaults() {
    for text in [
        "",
        "# nothing here\n\n",
        "[topic]\n[publisher]\n[subscriber]\n",
    ] {
        let d = parse_ok(text);
        assert_eq!(d.topic(), TopicConfig::default());
        assert_eq!(d.publisher(), crate::PublisherConfig::default());
        assert_eq!(d.subscriber(), crate::SubscriberConfig::default());
        assert_eq!(d.file_root(), None);
    }
}

#[test]
fn modes_are_octal_strings_or_integers() {
    for (text, mode) in [
        ("\"0660\"", 0o660),
        ("\"640\"", 0o640),
        ("\"0o600\"", 0o600),
        ("0o644", 0o644),
        ("384", 0o600),
    ] {
        let d = parse_ok(&format!("[topic]\nmode = {text}\n"));
        assert_eq!(d.topic().mode, mode, "{text}");
    }
}

#[test]
fn a_mode_that_builders_refuse_names_its_line_and_column() {
    for (value, says) in [
        ("\"0777\"", "mode 777"),
        ("\"0666\"", "does not let others write"),
        ("\"0400\"", "lets the owner read and write"),
        ("660", "mode 1224"),
        ("\"rw-rw----\"", "not an octal file mode"),
        ("\"0689\"", "not an octal file mode"),
        ("\"\"", "not an octal file mode"),
        ("-1", "not a file mode"),
        ("1.5", "expected an integer or a string"),
    ] {
        let (line, column, reason) = parse_err(&format!("# shared\n[topic]\nmode = {value}\n"));
        assert_eq!((line, column), (Some(3), Some(8)), "{value}: {reason}");
        assert!(reason.contains(says), "{value}: {reason}");
    }
}

#[test]
fn groups_are_names_or_gids() {
    assert_eq!(
        parse_ok("[topic]\ngroup = 1234\n").topic().group,
        Some(1234)
    );
    assert_eq!(
        parse_ok("[topic]\ngroup = \"4321\"\n").topic().group,
        Some(4321)
    );
    // Every system has a group `root`, gid 0.
    assert_eq!(
        parse_ok("[topic]\ngroup = \"root\"\n").topic().group,
        Some(0)
    );
    let (line, _, reason) = parse_err("[topic]\n\ngroup = \"no-such-group-here\"\n");
    assert_eq!(line, Some(3));
    assert!(reason.contains("not in /etc/group"), "{reason}");
    let (line, _, reason) = parse_err("[topic]\ngroup = 4294967295\n");
    assert_eq!(line, Some(2));
    assert!(reason.contains("not a group id"), "{reason}");
}

#[test]
fn group_names_are_looked_up_by_their_whole_name() {
    let db = "root:x:0:\nrobots:x:1001:alice,bob\nrobot:x:1002:\n#bad line\n";
    assert_eq!(gid_of("robot", db), Some(1002));
    assert_eq!(gid_of("robots", db), Some(1001));
    assert_eq!(gid_of("rob", db), None);
    assert_eq!(gid_of("", ":x:5:"), None);
}

#[test]
fn limits_out_of_range_name_their_line() {
    for (key, value, says) in [
        ("max_publishers", "0", "max_publishers 0 is not in 1..=64"),
        ("max_publishers", "65", "is not in 1..=64"),
        ("max_subscribers", "100", "max_subscribers 100"),
        ("max_queue_depth", "0", "max_queue_depth 0"),
        ("max_held", "0", "max_held 0"),
        ("max_history", "5000", "max_history 5000 is over 4096"),
        ("max_held", "-1", "invalid value"),
        ("max_held", "\"8\"", "invalid type"),
    ] {
        let text = format!("[topic]\nmode = \"0600\"\n{key} = {value}\n");
        let (line, column, reason) = parse_err(&text);
        assert_eq!(line, Some(3), "{key} = {value}: {reason}");
        assert_eq!(column, Some(key.len() + 4), "{key} = {value}: {reason}");
        assert!(reason.contains(says), "{key} = {value}: {reason}");
    }
}

#[test]
fn publisher_and_subscriber_values_are_checked_as_builders_check_them() {
    for (text, line, says) in [
        (
            "[publisher]\nqueue_depth = 0\n",
            2,
            "queue_depth 0 must be at least 1",
        ),
        (
            "[publisher]\nmax_loans = 0\n",
            2,
            "max_loans 0 must be at least 1",
        ),
        (
            "[subscriber]\nqueue_depth = 0\n",
            2,
            "queue_depth 0 must be at least 1",
        ),
        (
            "[publisher]\noverflow = \"maybe\"\n",
            2,
            "unknown variant `maybe`, expected one of `drop-oldest`, `block`, `fail`",
        ),
        (
            "[publisher]\noverflow = \"DropOldest\"\n",
            2,
            "unknown variant",
        ),
        // Over the file's own topic limits (built-in ones here).
        (
            "[publisher]\n\nqueue_depth = 300\n",
            3,
            "publisher.queue_depth 300 is over",
        ),
        (
            "[publisher]\nhistory = 65\n",
            2,
            "publisher.history 65 is over topic.max_history 64",
        ),
        (
            "[subscriber]\nqueue_depth = 257\n",
            2,
            "subscriber.queue_depth 257 is over topic.max_queue_depth 256",
        ),
        // The limit is the file's: the error is at the limit when only it is in the file.
        (
            "[topic]\nmax_queue_depth = 4\n",
            2,
            "publisher.queue_depth 16 is over",
        ),
        (
            "[topic]\nmax_history = 2\n[publisher]\nhistory = 3\n",
            4,
            "history 3",
        ),
    ] {
        let (l, _, reason) = parse_err(text);
        assert_eq!(l, Some(line), "{text}: {reason}");
        assert!(reason.contains(says), "{text}: {reason}");
    }
    // A queue depth up to the ring's capacity (a power of two) is what builders accept.
    let d = parse_ok("[topic]\nmax_queue_depth = 100\n[publisher]\nqueue_depth = 128\n");
    assert_eq!(d.publisher().queue_depth, 128);
}

#[test]
fn block_timeouts_are_strings_with_a_unit_or_forever() {
    for (text, d) in [
        ("\"100ms\"", Some(Duration::from_millis(100))),
        ("\"2s\"", Some(Duration::from_secs(2))),
        ("\"750us\"", Some(Duration::from_micros(750))),
        ("\"10ns\"", Some(Duration::from_nanos(10))),
        ("\"0ms\"", Some(Duration::ZERO)),
        ("\"forever\"", None),
    ] {
        let p = parse_ok(&format!("[publisher]\nblock_timeout = {text}\n")).publisher();
        assert_eq!(p.block_timeout, d, "{text}");
    }
    for (text, says) in [
        ("100", "has no unit"),
        ("\"100\"", "not a duration"),
        ("\"1.5s\"", "not a duration"),
        ("\"ms\"", "not a duration"),
        ("\"10 ms\"", "not a duration"),
        ("\"10h\"", "not a duration"),
        ("\"99999999999999999999s\"", "not a duration"),
    ] {
        let (line, column, reason) = parse_err(&format!("[publisher]\nblock_timeout = {text}\n"));
        assert_eq!((line, column), (Some(2), Some(17)), "{text}: {reason}");
        assert!(reason.contains(says), "{text}: {reason}");
    }
    for d in [
        Duration::from_secs(3),
        Duration::from_millis(1500),
        Duration::from_micros(7),
        Duration::from_nanos(1_000_001),
        Duration::ZERO,
    ] {
        let text = format!("[publisher]\nblock_timeout = \"{}\"\n", duration_text(d));
        assert_eq!(parse_ok(&text).publisher().block_timeout, Some(d));
    }
}

#[test]
fn unknown_keys_and_tables_are_errors_at_their_line() {
    for (text, line, says) in [
        (
            "root = \"/r\"\nroots = \"/r\"\n",
            2,
            "unknown field `roots`",
        ),
        (
            "[topic]\nmode = \"0600\"\npool_size = 4\n",
            3,
            "unknown field `pool_size`",
        ),
        (
            "[publisher]\nqueue_depht = 4\n",
            2,
            "unknown field `queue_depht`",
        ),
        ("[subscriber]\nhistory = 1\n", 2, "unknown field `history`"),
        ("\n[pool]\nsize = 1\n", 2, "unknown field `pool`"),
        ("topic = 5\n", 1, "expected the table [topic]"),
    ] {
        let (l, _, reason) = parse_err(text);
        assert_eq!(l, Some(line), "{text}: {reason}");
        assert!(reason.contains(says), "{text}: {reason}");
    }
    // The message lists what is known.
    let (_, _, reason) = parse_err("[subscriber]\nhistory = 1\n");
    assert!(reason.contains("`queue_depth`"), "{reason}");
}

#[test]
fn syntax_errors_name_their_line_and_column() {
    for (text, line) in [
        ("[topic]\nmode = \"0600\n", 2),
        ("[topic\n", 1),
        ("[publisher]\nqueue_depth = = 3\n", 2),
        ("[publisher]\nqueue_depth = 3\nqueue_depth = 4\n", 3),
        ("root = \"/a\"\n\n\nroot = \"/b\"\n", 4),
    ] {
        let (l, column, reason) = parse_err(text);
        assert_eq!(l, Some(line), "{text:?}: {reason}");
        assert!(column.is_some(), "{text:?}: {reason}");
        assert!(!reason.is_empty() && !reason.contains('\n'), "{reason:?}");
    }
}

#[test]
fn a_root_must_be_an_absolute_path() {
    for value in ["\"shm\"", "\"\"", "\"./r\"", "\"/a\\u0000b\""] {
        let (line, column, reason) = parse_err(&format!("\nroot = {value}\n"));
        assert_eq!((line, column), (Some(2), Some(8)), "{value}");
        assert!(reason.contains("absolute path"), "{reason}");
    }
}

#[test]
fn lines_are_kept_for_the_keys_the_file_sets() {
    let d = parse_ok("# c\nroot = \"/r\"\n[publisher]\n\n  overflow = \"fail\"\n");
    let lines: Vec<(Key, usize)> = Key::ALL
        .iter()
        .filter_map(|&k| Some((k, d.lines[k as usize]?)))
        .collect();
    assert_eq!(lines, [(Key::Root, 2), (Key::Overflow, 5)]);
}

#[test]
fn positions_count_lines_and_characters() {
    let text = "ab\nçd=1\n";
    assert_eq!(position(text, 0), (1, 1));
    assert_eq!(position(text, 3), (2, 1));
    assert_eq!(position(text, 6), (2, 3)); // after `ç` (2 bytes) and `d`
    assert_eq!(position(text, 4), (2, 1)); // inside `ç`: its start
    assert_eq!(position(text, 100), (3, 1));
}

#[test]
fn pool_keys_take_units_names_and_refuse_nonsense_at_their_line() {
    let p = parse_ok("max_root_bytes = \"none\"\n[publisher]\npool_classes = \"powers-of-two\"\nreserve_chunks = \"worst-case\"\nmax_pool_bytes = \"64 MiB\"\n").publisher();
    assert_eq!(p.pool_classes.tails(), None);
    assert_eq!(p.reserve_chunks, Some(usize::MAX));
    assert_eq!(p.max_pool_bytes, Some(64 << 20));
    assert_eq!(p.max_root_bytes, None);
    for (text, size) in [
        ("\"512MB\"", 512_000_000),
        ("\"3KiB\"", 3072),
        ("17", 17),
        ("\"1TiB\"", 1 << 40),
    ] {
        let p = parse_ok(&format!("[publisher]\nmax_pool_bytes = {text}\n")).publisher();
        assert_eq!(p.max_pool_bytes, Some(size), "{text}");
    }
    for n in [1u64, 4096, 3 << 20, 5 << 30, 12345] {
        let text = format!("[publisher]\nmax_pool_bytes = \"{}\"\n", byte_size_text(n));
        assert_eq!(parse_ok(&text).publisher().max_pool_bytes, Some(n));
    }
    for (text, needle) in [
        ("[publisher]\nmax_pool_bytes = \"lots\"\n", "not a size"),
        (
            "[publisher]\nmax_pool_bytes = -1\n",
            "not a number of bytes",
        ),
        (
            "[publisher]\nmax_pool_bytes = \"99999999999TiB\"\n",
            "not a size",
        ),
        ("[publisher]\nreserve_chunks = 0\n", "at least 1"),
        ("[publisher]\nreserve_chunks = \"many\"\n", "worst-case"),
        (
            "[publisher]\npool_classes = \"fibonacci\"\n",
            "powers-of-two",
        ),
        ("[publisher]\npool_classes = []\n", "1 to 16"),
        ("[publisher]\npool_classes = [true]\n", "powers-of-two"),
    ] {
        let (line, column, reason) = parse_err(text);
        assert_eq!(line, Some(2), "{text}: {reason}");
        assert!(column.is_some(), "{text}");
        assert!(reason.contains(needle), "{text}: {reason}");
    }
}
