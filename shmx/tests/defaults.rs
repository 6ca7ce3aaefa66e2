//! The defaults file `shmx.toml`, in real processes: each test runs this test binary again as
//! a child (test `child`, with `SHMX_DEFAULTS_CHILD` naming its role) in an environment of
//! its own (`SHMX_CONFIG`, `SHMX_ROOT`, `HOME`, `XDG_CONFIG_HOME` and the current directory
//! set by the test, never the machine's), since a process reads its defaults once.
//!
//! Tests that play another user need root (they run as root here) and use uid/gid 65534
//! (`nobody`): as the owner of a file or link (`chown`), or as the user of the child.

mod common;

use shmx::{Error, Publisher, Subscriber};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const NOBODY: u32 = 65534;
const ROLE: &str = "SHMX_DEFAULTS_CHILD";

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// A directory for one test: the defaults files, the child's current directory and home,
/// and the roots it uses (in `/dev/shm` where there is one).
struct Scene {
    dir: tempfile::TempDir,
}

impl Scene {
    fn new() -> Scene {
        let scene = Scene {
            dir: common::root(),
        };
        for d in ["cwd", "home"] {
            std::fs::create_dir(scene.path(d)).unwrap();
        }
        scene
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes a defaults file of mode 0644 at `name`.
    fn file(&self, name: &str, text: &str) -> PathBuf {
        let path = self.path(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, PermissionsExt::from_mode(0o644)).unwrap();
        path
    }

    /// The child with role `role`: no defaults of the machine (its current directory and
    /// home are the scene's), `SHMX_CONFIG` and `SHMX_ROOT` unset unless `env` sets them.
    fn child(&self, role: &str, env: &[(&str, &str)]) -> Command {
        let mut cmd = Command::new(std::env::current_exe().unwrap());
        cmd.args(["--exact", "child", "--nocapture", "--test-threads=1"])
            .current_dir(self.path("cwd"))
            .env(ROLE, role)
            .env("HOME", self.path("home"))
            .env_remove("XDG_CONFIG_HOME")
            .env_remove("SHMX_CONFIG")
            .env_remove("SHMX_ROOT");
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd
    }

    /// Runs a child to its end and returns its `child: ` lines.
    fn run(&self, role: &str, env: &[(&str, &str)]) -> String {
        output_of(self.child(role, env))
    }
}

fn output_of(mut cmd: Command) -> String {
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = stdout.lines().filter_map(said).collect();
    assert!(!lines.is_empty(), "the child said nothing: {stdout}");
    lines.join("\n")
}

/// What a child said on one line of its output (libtest may print `test child ... ` before
/// it on the same line).
fn said(line: &str) -> Option<&str> {
    line.find("child: ").map(|i| &line[i..])
}

/// A child that holds its endpoints until its stdin closes.
struct Holder {
    child: Child,
}

impl Holder {
    fn start(mut cmd: Command) -> Holder {
        let child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        // From here on, dropped on every path: its stdin closes and it is waited for.
        let mut holder = Holder { child };
        let stdout = holder.child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        loop {
            let line = rx
                .recv_timeout(Duration::from_secs(30))
                .expect("the child says ready");
            let said = said(&line).unwrap_or("");
            assert!(!said.starts_with("child: error"), "{line}");
            if said == "child: ready" {
                return holder;
            }
        }
    }

    /// Lets the child drop its endpoints and exit, and checks that it succeeded.
    fn finish(mut self) {
        drop(self.child.stdin.take());
        assert!(self.child.wait().unwrap().success());
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

/// The mode bits of `path`.
fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path).unwrap().mode() & 0o7777
}

#[test]
fn a_topic_created_under_the_files_mode_has_that_mode_in_the_files_root() {
    let scene = Scene::new();
    let root = scene.path("file-root");
    let config = scene.file(
        "shmx.toml",
        &format!(
            "root = {:?}\n\n[topic]\nmode = \"0660\"\n",
            root.to_str().unwrap()
        ),
    );
    // Neither endpoint is given a root or a mode: both come from the file.
    let holder = Holder::start(scene.child("hold", &[("SHMX_CONFIG", config.to_str().unwrap())]));
    let topic = root.join("t");
    assert_eq!(
        mode(&topic),
        0o770,
        "the topic's directory: group may enter"
    );
    let files: Vec<PathBuf> = std::fs::read_dir(&topic)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(files.iter().any(|f| f.ends_with("service")), "{files:?}");
    assert!(files.len() >= 2, "service and a data segment: {files:?}");
    for f in &files {
        assert_eq!(mode(f), 0o660, "{f:?}");
    }
    assert_eq!(mode(&root), 0o700, "the root itself stays private");
    holder.finish();
    common::assert_empty(&root);
}

#[test]
fn shmx_root_wins_over_the_files_root() {
    let scene = Scene::new();
    let (file_root, env_root) = (scene.path("file-root"), scene.path("env-root"));
    let config = scene.file(
        "shmx.toml",
        &format!("root = {:?}\n", file_root.to_str().unwrap()),
    );
    let env = [
        ("SHMX_CONFIG", config.to_str().unwrap()),
        ("SHMX_ROOT", env_root.to_str().unwrap()),
    ];
    let out = scene.run("show", &env);
    assert!(
        out.contains(&format!(
            "child: root {} from environment SHMX_ROOT",
            env_root.display()
        )),
        "{out}"
    );
    let holder = Holder::start(scene.child("hold", &env));
    assert!(env_root.join("t").join("service").exists());
    assert!(!file_root.exists(), "the file's root is not used");
    holder.finish();
}

#[test]
fn builder_calls_win_over_the_file_and_the_file_over_the_built_in_values() {
    let scene = Scene::new();
    let (file_root, given_root) = (scene.path("file-root"), scene.path("given-root"));
    let config = scene.file(
        "shmx.toml",
        &format!(
            "root = {:?}\n[publisher]\nqueue_depth = 4\nhistory = 2\n[subscriber]\nqueue_depth = 3\n",
            file_root.to_str().unwrap()
        ),
    );
    let given = given_root.to_str().unwrap();
    let env = [
        ("SHMX_CONFIG", config.to_str().unwrap()),
        ("SHMX_TEST_ROOT", given),
    ];
    // The child's publisher sets its queue depth (2) and root; its subscriber sets nothing.
    let holder = Holder::start(scene.child("override", &env));
    let topic = shmx::inspect::topic(&given_root, "t").unwrap();
    let publisher = &topic.publishers[0];
    assert_eq!(publisher.queue_depth, 2, "the builder's call");
    assert_eq!(publisher.history, 2, "the file's value");
    assert_eq!(topic.subscribers[0].queue_depth, 3, "the file's value");
    assert_eq!(topic.limits.max_queue_depth, 256, "built-in");
    assert!(!file_root.exists(), "root(..) wins over the file's root");
    holder.finish();
}

#[test]
fn a_bad_file_fails_every_builder_with_its_line_and_touches_no_root() {
    let scene = Scene::new();
    let root = scene.path("root");
    for (text, line, says) in [
        ("[topic]\nmode = \"0600\n", 2, "string"),
        (
            "[publisher]\nqueue_depth = 8\npool_size = 4\n",
            3,
            "unknown field `pool_size`",
        ),
        ("\n[topic]\nmode = \"0777\"\n", 3, "mode 777"),
        (
            "[publisher]\nqueue_depth = 0\n",
            2,
            "queue_depth 0 must be at least 1",
        ),
        (
            "[publisher]\noverflow = \"maybe\"\n",
            2,
            "unknown variant `maybe`",
        ),
    ] {
        let config = scene.file("bad.toml", text);
        let env = [
            ("SHMX_CONFIG", config.to_str().unwrap()),
            ("SHMX_ROOT", root.to_str().unwrap()),
        ];
        let out = scene.run("create", &env);
        let at = format!("{}:{line}:", config.display());
        for who in [
            "publisher",
            "subscriber",
            "archive publisher",
            "archive subscriber",
        ] {
            let expected = format!("child: {who}: config error at line {line}: {at}");
            assert!(out.contains(&expected), "{text:?}: {who}: {out}");
        }
        assert!(out.contains(says), "{text:?}: {out}");
        assert!(!root.exists(), "nothing was created");
    }
}

#[test]
fn shmx_config_names_the_file_empty_reads_none_and_missing_is_an_error() {
    let scene = Scene::new();
    let root = scene.path("root");
    let root_env = ("SHMX_ROOT", root.to_str().unwrap());
    // A bad file in the current directory: found when nothing else is said...
    let here = scene.file("cwd/shmx.toml", "[subscriber]\nqueue_depth = -1\n");
    let out = scene.run("create", &[root_env]);
    assert!(
        out.contains(&format!("config error at line 2: {}:2:", here.display())),
        "{out}"
    );
    // ...not read at all with SHMX_CONFIG empty...
    let out = scene.run("create", &[root_env, ("SHMX_CONFIG", "")]);
    assert!(out.contains("child: publisher: created"), "{out}");
    assert!(out.contains("child: file none"), "{out}");
    // ...and never a fall back to it when SHMX_CONFIG names a file that is not there.
    let missing = scene.path("missing.toml");
    let out = scene.run(
        "create",
        &[root_env, ("SHMX_CONFIG", missing.to_str().unwrap())],
    );
    let expected = format!(
        "child: publisher: config error at line 0: {}: SHMX_CONFIG",
        missing.display()
    );
    assert!(out.contains(&expected), "{out}");
    // A relative SHMX_CONFIG is relative to the current directory.
    scene.file("cwd/other.toml", "[publisher]\nmax_loans = 7\n");
    let out = scene.run("show", &[root_env, ("SHMX_CONFIG", "other.toml")]);
    assert!(
        out.contains("child: publisher.max_loans 7 from other.toml:2"),
        "{out}"
    );
}

#[test]
fn the_users_file_is_found_through_xdg_config_home_else_home() {
    let scene = Scene::new();
    let home_file = scene.file(
        "home/.config/shmx/shmx.toml",
        "[publisher]\nmax_loans = 5\n",
    );
    let out = scene.run("show", &[]);
    let expected = format!(
        "child: publisher.max_loans 5 from {}:2",
        home_file.display()
    );
    assert!(out.contains(&expected), "{out}");
    let xdg = scene.path("xdg");
    let xdg_file = scene.file("xdg/shmx/shmx.toml", "\n[publisher]\nmax_loans = 6\n");
    let out = scene.run("show", &[("XDG_CONFIG_HOME", xdg.to_str().unwrap())]);
    let expected = format!("child: publisher.max_loans 6 from {}:3", xdg_file.display());
    assert!(out.contains(&expected), "{out}");
    // One in the current directory comes first.
    let here = scene.file("cwd/shmx.toml", "[publisher]\nmax_loans = 1\n");
    let out = scene.run("show", &[("XDG_CONFIG_HOME", xdg.to_str().unwrap())]);
    let expected = format!("child: publisher.max_loans 1 from {}:2", here.display());
    assert!(out.contains(&expected), "{out}");
}

#[test]
fn a_file_in_a_current_directory_others_may_write_is_not_looked_at() {
    if !is_root() {
        eprintln!("skipped: needs root to make files of another user");
        return;
    }
    let scene = Scene::new();
    let root = scene.path("root");
    let root_env = ("SHMX_ROOT", root.to_str().unwrap());
    // Another user's file, and a directory named like it, in a shared directory like /tmp.
    let planted = scene.file("cwd/shmx.toml", "[publisher]\nmax_loans = 7\n");
    std::os::unix::fs::chown(&planted, Some(NOBODY), Some(NOBODY)).unwrap();
    let cwd = scene.path("cwd");
    std::fs::set_permissions(&cwd, PermissionsExt::from_mode(0o1777)).unwrap();
    let out = scene.run("create", &[root_env]);
    assert!(
        out.contains("child: publisher: created"),
        "a planted file breaks nothing: {out}"
    );
    assert!(!out.contains("config error"), "{out}");
    let out = scene.run("show", &[]);
    assert!(
        out.contains("child: publisher.max_loans 4 from built-in"),
        "{out}"
    );
    std::fs::remove_file(&planted).unwrap();
    std::fs::create_dir(&planted).unwrap();
    assert!(scene
        .run("create", &[root_env])
        .contains("child: publisher: created"));
    // The same file in a private current directory is refused, loudly.
    std::fs::remove_dir(&planted).unwrap();
    let planted = scene.file("cwd/shmx.toml", "[publisher]\nmax_loans = 7\n");
    std::os::unix::fs::chown(&planted, Some(NOBODY), Some(NOBODY)).unwrap();
    std::fs::set_permissions(&cwd, PermissionsExt::from_mode(0o700)).unwrap();
    let out = scene.run("create", &[root_env]);
    assert!(
        out.contains("refused: the file belongs to uid 65534"),
        "{out}"
    );
}

#[test]
fn files_of_procfs_are_refused() {
    // Root's, but their words may be another process's (a process's name, say).
    let err = shmx::defaults::Defaults::from_file("/proc/self/comm").unwrap_err();
    assert!(err.to_string().contains("procfs or sysfs"), "{err}");
}

#[test]
fn a_file_others_may_write_is_refused() {
    let scene = Scene::new();
    let root = scene.path("root");
    let config = scene.file(
        "shmx.toml",
        &format!("root = {:?}\n", root.to_str().unwrap()),
    );
    for (mode, who) in [(0o666, "other users"), (0o620, "its group")] {
        std::fs::set_permissions(&config, PermissionsExt::from_mode(mode)).unwrap();
        let out = scene.run("create", &[("SHMX_CONFIG", config.to_str().unwrap())]);
        assert!(
            out.contains(&format!(
                "{}: refused: the file has mode {mode:04o}: {who}",
                config.display()
            )),
            "{out}"
        );
        assert!(!root.exists());
    }
}

#[test]
fn a_file_or_a_link_of_another_user_is_refused() {
    if !is_root() {
        eprintln!("skipped: needs root to make files of another user");
        return;
    }
    let scene = Scene::new();
    let root = scene.path("root");
    let text = format!(
        "root = {:?}\n[topic]\nmode = \"0640\"\n",
        root.to_str().unwrap()
    );
    // In the current directory, as another user might leave it in a shared one.
    let planted = scene.file("cwd/shmx.toml", &text);
    std::os::unix::fs::chown(&planted, Some(NOBODY), Some(NOBODY)).unwrap();
    let out = scene.run("create", &[]);
    assert!(
        out.contains(&format!(
            "{}: refused: the file belongs to uid 65534",
            planted.display()
        )),
        "{out}"
    );
    std::fs::remove_file(&planted).unwrap();
    // A link of another user to a file of ours.
    let mine = scene.file("mine.toml", &text);
    std::os::unix::fs::symlink(&mine, &planted).unwrap();
    assert!(scene.run("show", &[]).contains("child: topic.mode 0640"));
    std::os::unix::fs::lchown(&planted, Some(NOBODY), Some(NOBODY)).unwrap();
    let out = scene.run("create", &[]);
    assert!(
        out.contains("refused: it is reached through the symbolic link")
            && out.contains("uid 65534"),
        "{out}"
    );
    assert!(!root.exists(), "nothing was created");
}

#[test]
fn another_user_trusts_its_own_files_and_roots_but_no_one_elses() {
    if !is_root() {
        eprintln!("skipped: needs root to run a child as another user");
        return;
    }
    let scene = Scene::new();
    // The other user may enter the scene and owns its current directory.
    std::fs::set_permissions(scene.dir.path(), PermissionsExt::from_mode(0o755)).unwrap();
    std::os::unix::fs::chown(scene.path("cwd"), Some(NOBODY), Some(NOBODY)).unwrap();
    let as_nobody = |config: &Path| -> Option<String> {
        let mut cmd = scene.child("show", &[("SHMX_CONFIG", config.to_str().unwrap())]);
        cmd.uid(NOBODY).gid(NOBODY);
        let out = cmd.output().ok()?;
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        if !stdout.contains("child:") {
            eprintln!(
                "skipped: the test binary did not run as another user: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            return None;
        }
        Some(stdout)
    };
    let text = "[topic]\nmax_held = 3\n";
    // Root's file: trusted by everyone (as /etc/shmx/shmx.toml is).
    let roots = scene.file("roots.toml", text);
    let Some(out) = as_nobody(&roots) else {
        return;
    };
    assert!(out.contains("child: topic.max_held 3"), "{out}");
    // Its own file.
    let own = scene.file("cwd/own.toml", text);
    std::os::unix::fs::chown(&own, Some(NOBODY), Some(NOBODY)).unwrap();
    let out = as_nobody(&own).unwrap();
    assert!(out.contains("child: topic.max_held 3"), "{out}");
    // A third user's file, and root's file that its group may write.
    let third = scene.file("third.toml", text);
    std::os::unix::fs::chown(&third, Some(4242), Some(4242)).unwrap();
    let out = as_nobody(&third).unwrap();
    assert!(
        out.contains(
            "refused: the file belongs to uid 4242, neither this process's uid 65534 nor root"
        ),
        "{out}"
    );
    std::fs::set_permissions(&roots, PermissionsExt::from_mode(0o664)).unwrap();
    let out = as_nobody(&roots).unwrap();
    assert!(out.contains("refused: the file has mode 0664"), "{out}");
    // A home it may not enter (HOME left at root's after `su`): nothing found there...
    let private = scene.file("private/.config/shmx/shmx.toml", text);
    std::fs::set_permissions(scene.path("private"), PermissionsExt::from_mode(0o700)).unwrap();
    let mut cmd = scene.child("show", &[("HOME", scene.path("private").to_str().unwrap())]);
    cmd.uid(NOBODY).gid(NOBODY);
    let out = output_of(cmd);
    assert!(out.contains("child: file none"), "{out}");
    assert!(
        out.contains("child: topic.max_held 8 from built-in"),
        "{out}"
    );
    // ...but named by SHMX_CONFIG, an error that says why.
    let out = as_nobody(&private).unwrap();
    assert!(
        out.contains("child: defaults error") && out.contains("may not search"),
        "{out}"
    );
}

/// The children's roles (a no-op in the test process itself).
#[test]
fn child() {
    let Some(role) = std::env::var_os(ROLE) else {
        return;
    };
    let role = role.to_str().unwrap().to_owned();
    match role.as_str() {
        // Endpoints with nothing but the defaults, held until stdin closes.
        "hold" => {
            let sub = Subscriber::<u64>::new("t").unwrap_or_else(|e| fail(&e));
            let publisher = Publisher::<u64>::new("t").unwrap_or_else(|e| fail(&e));
            hold();
            drop((publisher, sub));
        }
        // A publisher that sets its queue depth and root, a subscriber that sets its root.
        "override" => {
            let root = std::env::var("SHMX_TEST_ROOT").unwrap();
            let sub = Subscriber::<u64>::builder("t")
                .root(&root)
                .create()
                .unwrap_or_else(|e| fail(&e));
            let publisher = Publisher::<u64>::builder("t")
                .root(&root)
                .queue_depth(2)
                .create()
                .unwrap_or_else(|e| fail(&e));
            hold();
            drop((publisher, sub));
        }
        // Every builder, each reporting what it got.
        "create" => {
            report("publisher", Publisher::<u64>::new("t").map(drop));
            report("subscriber", Subscriber::<u64>::new("t").map(drop));
            #[cfg(feature = "rkyv")]
            {
                use shmx::archive::{ArchivePublisher, ArchiveSubscriber};
                let p = ArchivePublisher::<String>::builder("a").create();
                report("archive publisher", p.map(drop));
                report(
                    "archive subscriber",
                    ArchiveSubscriber::<String>::new("a").map(drop),
                );
            }
            show();
        }
        "show" => show(),
        other => panic!("unknown role {other}"),
    }
}

fn fail(e: &Error) -> ! {
    println!("child: error {e}");
    std::process::exit(1)
}

fn hold() {
    println!("child: ready");
    std::io::stdout().flush().unwrap();
    let mut rest = String::new();
    let _ = std::io::Read::read_to_string(&mut std::io::stdin(), &mut rest);
}

fn report(who: &str, result: Result<(), Error>) {
    match result {
        Ok(()) => println!("child: {who}: created"),
        Err(e @ Error::Config { line, .. }) => {
            println!(
                "child: {who}: config error at line {}: {e}",
                line.unwrap_or(0)
            );
        }
        Err(e) => println!("child: {who}: other error {e}"),
    }
}

/// Prints the effective defaults, one `child: <key> <value> from <source>` line each.
fn show() {
    match shmx::defaults::Defaults::get() {
        Ok(d) => {
            let file = d.file().map_or("none".into(), |f| f.display().to_string());
            println!("child: file {file}");
            for s in d.settings() {
                println!("child: {} {} from {}", s.key, s.value, s.source);
            }
        }
        Err(e) => println!("child: defaults error {e}"),
    }
}
