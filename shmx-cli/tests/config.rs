//! `shmx config show` and the defaults file in the tool: the real binary, run with an
//! environment of the test's own (`SHMX_CONFIG`, `SHMX_ROOT`, `HOME` and the current
//! directory set, `XDG_CONFIG_HOME` unset), never the machine's.

use serde_json::Value;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A fresh directory with `cwd/` and `home/` for the tool.
struct Scene {
    dir: tempfile::TempDir,
}

impl Scene {
    fn new() -> Scene {
        let dir = tempfile::Builder::new()
            .prefix("shmx-cli-config-")
            .tempdir()
            .unwrap();
        for d in ["cwd", "home"] {
            std::fs::create_dir(dir.path().join(d)).unwrap();
        }
        Scene { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn file(&self, name: &str, text: &str) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, PermissionsExt::from_mode(0o644)).unwrap();
        path
    }

    /// Runs `shmx args` with `env` on top of the scene's environment.
    fn shmx(&self, args: &[&str], env: &[(&str, &Path)]) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_shmx"));
        cmd.args(args)
            .current_dir(self.path("cwd"))
            .env("HOME", self.path("home"))
            .env_remove("XDG_CONFIG_HOME")
            .env_remove("SHMX_CONFIG")
            .env_remove("SHMX_ROOT");
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    }
}

fn stdout(out: &Output) -> String {
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

/// The `(value, source)` of `key` in the table `shmx config show` prints.
fn row(table: &str, key: &str) -> (String, String) {
    let line = table
        .lines()
        .find(|l| l.split_whitespace().next() == Some(key))
        .unwrap_or_else(|| panic!("no {key} in {table}"));
    let cells: Vec<&str> = line.split_whitespace().collect();
    (cells[1].to_owned(), cells[2..].join(" "))
}

#[test]
fn config_show_prints_each_setting_with_its_file_and_line() {
    let scene = Scene::new();
    let root = scene.path("file-root");
    let config = scene.file(
        "shmx.toml",
        &format!(
            "root = {:?}\n\n[topic]\nmode = \"0640\"\n[publisher]\noverflow = \"fail\"\nblock_timeout = \"20ms\"\n",
            root.to_str().unwrap()
        ),
    );
    let out = stdout(&scene.shmx(&["config", "show"], &[("SHMX_CONFIG", &config)]));
    let c = config.display();
    assert!(
        out.starts_with(&format!("defaults file: {c} (named by SHMX_CONFIG)\n")),
        "{out}"
    );
    let at = |line: usize| format!("{c}:{line}");
    assert_eq!(row(&out, "root"), (root.display().to_string(), at(1)));
    assert_eq!(row(&out, "topic.mode"), ("0640".into(), at(4)));
    assert_eq!(row(&out, "publisher.overflow"), ("fail".into(), at(6)));
    assert_eq!(row(&out, "publisher.block_timeout"), ("20ms".into(), at(7)));
    let built_in = ("16".to_owned(), "built-in".to_owned());
    assert_eq!(row(&out, "subscriber.queue_depth"), built_in);
    assert_eq!(out.lines().filter(|l| l.contains("built-in")).count(), 15);

    // The environment's root wins over the file's, and the tool's --root over both.
    let env_root = scene.path("env-root");
    let env = [("SHMX_CONFIG", config.as_path()), ("SHMX_ROOT", &env_root)];
    let out = stdout(&scene.shmx(&["config", "show"], &env));
    let environment = "environment SHMX_ROOT".to_owned();
    assert_eq!(
        row(&out, "root"),
        (env_root.display().to_string(), environment)
    );
    let out = stdout(&scene.shmx(&["config", "show", "--root", "/x/y"], &env));
    assert_eq!(
        row(&out, "root"),
        ("/x/y".into(), "command line --root".into())
    );
}

#[test]
fn config_show_json_has_the_file_and_every_setting() {
    let scene = Scene::new();
    let config = scene.file("shmx.toml", "[subscriber]\nqueue_depth = 32\n");
    let out = stdout(&scene.shmx(&["config", "show", "--json"], &[("SHMX_CONFIG", &config)]));
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["file"], config.to_str().unwrap());
    assert_eq!(v["found_by"], "SHMX_CONFIG");
    let settings = v["settings"].as_array().unwrap();
    assert_eq!(settings.len(), 19);
    let depth = settings
        .iter()
        .find(|s| s["key"] == "subscriber.queue_depth")
        .unwrap();
    assert_eq!(depth["value"], "32");
    assert_eq!(depth["source"], format!("{}:2", config.display()));
}

#[test]
fn config_show_says_where_it_looked_when_there_is_no_file() {
    let scene = Scene::new();
    let out = stdout(&scene.shmx(&["config", "show"], &[]));
    if Path::new("/etc/shmx/shmx.toml").exists() {
        eprintln!("skipped the search: this machine has /etc/shmx/shmx.toml");
        return;
    }
    let cwd = scene.path("cwd").canonicalize().unwrap();
    let home = scene.path("home");
    let expected = format!(
        "defaults file: none found (looked for {}, {}, /etc/shmx/shmx.toml)",
        cwd.join("shmx.toml").display(),
        home.join(".config/shmx/shmx.toml").display()
    );
    assert_eq!(out.lines().next(), Some(expected.as_str()), "{out}");
    assert_eq!(out.lines().filter(|l| l.ends_with("built-in")).count(), 19);
    // Found in the current directory.
    let here = scene.file("cwd/shmx.toml", "[topic]\nmax_held = 2\n");
    let out = stdout(&scene.shmx(&["config", "show"], &[]));
    assert!(out.starts_with(&format!(
        "defaults file: {}\n",
        cwd.join("shmx.toml").display()
    )));
    assert_eq!(
        row(&out, "topic.max_held").1,
        format!("{}:2", cwd.join("shmx.toml").display())
    );
    drop(here);
    // SHMX_CONFIG set empty: none, even with ./shmx.toml there.
    let out = stdout(&scene.shmx(&["config", "show"], &[("SHMX_CONFIG", Path::new(""))]));
    assert!(
        out.starts_with("defaults file: none (SHMX_CONFIG is set empty)\n"),
        "{out}"
    );
}

#[test]
fn a_bad_file_makes_the_tool_fail_with_its_line() {
    let scene = Scene::new();
    let config = scene.file("shmx.toml", "[publisher]\n\noverflow = \"maybe\"\n");
    let env = [("SHMX_CONFIG", config.as_path())];
    for args in [
        &["config", "show"][..],
        &["list"],
        &["config", "show", "--json"],
    ] {
        let out = scene.shmx(args, &env);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.starts_with(&format!(
                "shmx: {}:3:12: unknown variant `maybe`",
                config.display()
            )),
            "{args:?}: {stderr}"
        );
        assert!(out.stdout.is_empty(), "{args:?}");
    }
    // A file others may write is refused the same way, naming the file.
    scene.file("shmx.toml", "[publisher]\noverflow = \"block\"\n");
    std::fs::set_permissions(&config, PermissionsExt::from_mode(0o666)).unwrap();
    let out = scene.shmx(&["config", "show"], &env);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "{}: refused: the file has mode 0666",
            config.display()
        )),
        "{stderr}"
    );
    // A missing file named by SHMX_CONFIG.
    let missing = scene.path("missing.toml");
    let out = scene.shmx(&["config", "show"], &[("SHMX_CONFIG", &missing)]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not exist"));
}

#[test]
fn the_tool_looks_for_topics_in_the_files_root() {
    let scene = Scene::new();
    let root = scene.path("file-root");
    let config = scene.file(
        "shmx.toml",
        &format!("root = {:?}\n", root.to_str().unwrap()),
    );
    let publisher = shmx::Publisher::<u64>::builder("robot/pose")
        .root(&root)
        .create()
        .unwrap();
    let out = stdout(&scene.shmx(&["list", "--json"], &[("SHMX_CONFIG", &config)]));
    let topics: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(topics[0]["name"], "robot/pose", "{out}");
    // SHMX_ROOT still wins: no topics there.
    let other = scene.path("other");
    let env = [("SHMX_CONFIG", config.as_path()), ("SHMX_ROOT", &other)];
    let out = stdout(&scene.shmx(&["list"], &env));
    assert_eq!(out.trim(), format!("no topics under {}", other.display()));
    drop(publisher);
}
