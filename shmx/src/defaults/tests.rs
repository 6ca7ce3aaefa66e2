//! The search order, sources and precedence of the defaults (no environment is changed: the
//! search is given its inputs, and files live in temporary directories).

use super::*;
use std::os::unix::fs::PermissionsExt;

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, PermissionsExt::from_mode(0o644)).unwrap();
}

fn os(s: &Path) -> Option<OsString> {
    Some(s.as_os_str().to_owned())
}

#[test]
fn shmx_config_names_the_one_file_or_none_at_all() {
    let cwd = Some(PathBuf::from("/work"));
    let home = Some(OsString::from("/home/u"));
    assert_eq!(
        Candidates::of(Some("".into()), cwd.clone(), None, home.clone()),
        Candidates::Disabled
    );
    assert_eq!(
        Candidates::of(Some("my.toml".into()), cwd.clone(), None, home.clone()),
        Candidates::Given("my.toml".into())
    );
    assert_eq!(
        Candidates::of(None, cwd.clone(), None, home.clone()),
        Candidates::Search(vec![
            "/work/shmx.toml".into(),
            "/home/u/.config/shmx/shmx.toml".into(),
            "/etc/shmx/shmx.toml".into(),
        ])
    );
    assert_eq!(
        Candidates::of(None, cwd.clone(), Some("/xdg".into()), home.clone()),
        Candidates::Search(vec![
            "/work/shmx.toml".into(),
            "/xdg/shmx/shmx.toml".into(),
            "/etc/shmx/shmx.toml".into(),
        ])
    );
    // A relative XDG_CONFIG_HOME is ignored (XDG base directory rules); no HOME, no user file.
    assert_eq!(
        Candidates::of(None, cwd.clone(), Some("xdg".into()), home),
        Candidates::Search(vec![
            "/work/shmx.toml".into(),
            "/home/u/.config/shmx/shmx.toml".into(),
            "/etc/shmx/shmx.toml".into(),
        ])
    );
    assert_eq!(
        Candidates::of(None, cwd, None, Some("".into())),
        Candidates::Search(vec!["/work/shmx.toml".into(), "/etc/shmx/shmx.toml".into()])
    );
}

#[test]
fn the_first_file_found_is_used_and_the_others_are_not_read() {
    let dir = tempfile::tempdir().unwrap();
    let (cwd, xdg) = (dir.path().join("cwd"), dir.path().join("xdg"));
    std::fs::create_dir_all(&cwd).unwrap();
    let user = xdg.join("shmx/shmx.toml");
    write(&user, "[publisher]\nqueue_depth = 32\n");
    let search = || Defaults::search(Candidates::of(None, Some(cwd.clone()), os(&xdg), None));
    let d = search().unwrap();
    assert_eq!(d.file(), Some(user.as_path()));
    assert_eq!(d.searched(), [cwd.join("shmx.toml"), user.clone()]);
    assert_eq!(d.publisher().queue_depth, 32);
    // One in the current directory wins, even with fewer settings: files do not merge.
    write(&cwd.join("shmx.toml"), "[subscriber]\nqueue_depth = 8\n");
    let d = search().unwrap();
    assert_eq!(d.file(), Some(cwd.join("shmx.toml").as_path()));
    assert_eq!(d.searched(), [cwd.join("shmx.toml")]);
    assert_eq!(
        (d.publisher().queue_depth, d.subscriber().queue_depth),
        (16, 8)
    );
    // A bad file found first is an error, not a reason to go on to the next.
    write(&cwd.join("shmx.toml"), "[subscriber]\nqueue_depth = 0\n");
    let e = search().unwrap_err();
    assert_eq!((e.path, e.line), (cwd.join("shmx.toml"), Some(2)));
}

#[test]
fn a_missing_file_named_by_shmx_config_is_an_error_and_an_empty_one_reads_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.toml");
    let e = Defaults::search(Candidates::Given(missing.clone())).unwrap_err();
    assert_eq!((e.path.as_path(), e.line), (missing.as_path(), None));
    assert!(e.reason.contains("SHMX_CONFIG"), "{}", e.reason);
    let d = Defaults::search(Candidates::Disabled).unwrap();
    assert_eq!(d, Defaults::built_in());
    // Nothing found anywhere: the built-in values, and where it looked.
    let d = Defaults::search(Candidates::Search(vec![missing.clone()])).unwrap();
    assert_eq!((d.file(), d.searched()), (None, &[missing][..]));
    assert_eq!(d.publisher(), PublisherConfig::default());
}

#[test]
fn a_file_that_cannot_be_read_as_text_is_an_error_about_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shmx.toml");
    std::fs::write(&path, b"root = \"/\xff\"\n").unwrap();
    let e = Defaults::search(Candidates::Given(path.clone())).unwrap_err();
    assert!(e.reason.contains("UTF-8"), "{}", e.reason);
    std::fs::write(&path, vec![b'#'; MAX_BYTES as usize + 1]).unwrap();
    let e = Defaults::search(Candidates::Given(path.clone())).unwrap_err();
    assert!(e.reason.contains("larger than"), "{}", e.reason);
    std::fs::set_permissions(&path, PermissionsExt::from_mode(0o666)).unwrap();
    let e = Error::from(Defaults::search(Candidates::Given(path.clone())).unwrap_err());
    let text = e.to_string();
    assert!(
        text.starts_with(&format!("{}: refused", path.display())),
        "{text}"
    );
}

#[test]
fn settings_say_where_each_value_comes_from() {
    let d = Defaults::parse(
        "[topic]\nmode = \"0640\"\n\n[publisher]\noverflow = \"fail\"\nblock_timeout = \"5ms\"\n",
        "/etc/shmx/shmx.toml",
    )
    .unwrap();
    let settings = d.settings();
    let keys: Vec<&str> = settings.iter().map(|s| s.key).collect();
    assert_eq!(keys.len(), Key::ALL.len());
    assert_eq!(keys[..3], ["root", "max_root_bytes", "topic.mode"]);
    let get = |key: &str| settings.iter().find(|s| s.key == key).unwrap().clone();
    let file = |line| Source::File {
        path: "/etc/shmx/shmx.toml".into(),
        line,
    };
    assert_eq!(
        (get("topic.mode").value, get("topic.mode").source),
        ("0640".into(), file(2))
    );
    assert_eq!(get("publisher.overflow").value, "fail");
    assert_eq!(get("publisher.overflow").source, file(5));
    assert_eq!(get("publisher.block_timeout").value, "5ms");
    assert_eq!(
        get("publisher.block_timeout").source.to_string(),
        "/etc/shmx/shmx.toml:6"
    );
    let depth = get("subscriber.queue_depth");
    assert_eq!(
        (depth.value.as_str(), depth.source),
        ("16", Source::BuiltIn)
    );
    assert_eq!(get("topic.group").value, "none");
    assert_eq!(
        get("publisher.block_timeout").key,
        "publisher.block_timeout"
    );
    let built_in = Defaults::built_in().settings();
    assert!(built_in
        .iter()
        .all(|s| s.source == Source::BuiltIn || s.key == "root"));
    let timeout = built_in.iter().find(|s| s.key == "publisher.block_timeout");
    assert_eq!(timeout.unwrap().value, "forever");
    assert_eq!(
        Source::Environment("SHMX_ROOT").to_string(),
        "environment SHMX_ROOT"
    );
}

#[test]
fn the_built_in_defaults_are_the_configs_defaults() {
    let d = Defaults::built_in();
    assert_eq!(d.topic(), TopicConfig::default());
    assert_eq!(d.publisher(), PublisherConfig::default());
    assert_eq!(d.subscriber(), SubscriberConfig::default());
    assert_eq!((d.file(), d.file_root()), (None, None));
}

#[test]
fn the_example_file_of_the_readme_is_valid_and_means_what_it_says() {
    let readme = include_str!("../../../README.md");
    let start = readme
        .find("```toml\n# shmx.toml")
        .expect("the README shows a shmx.toml");
    let text = &readme[start + "```toml\n".len()..];
    let text = &text[..text.find("```").unwrap()];
    let d = Defaults::parse(text, "shmx.toml").unwrap();
    assert_eq!(d.file_root(), Some(Path::new("/dev/shm/shmx-robot")));
    assert_eq!((d.topic().mode, d.topic().group), (0o660, Some(1001)));
    assert_eq!(d.publisher().overflow, Overflow::Block);
    assert_eq!(d.publisher().max_pool_bytes, Some(256 << 20));
    assert_eq!(d.publisher().max_root_bytes, Some(1 << 30));
    assert_eq!(d.publisher().reserve_chunks, None);
    assert!(
        d.settings()
            .iter()
            .filter(|s| s.source != Source::BuiltIn)
            .count()
            >= 10
    );
}
