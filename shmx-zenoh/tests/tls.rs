//! Zenoh's own configuration, passed through: two "hosts" talking over TLS, one the
//! `shmx-zenoh` command reading a Zenoh configuration file, the other a library bridge, with
//! certificates made for the test by `openssl`.
#![cfg(feature = "tls")]

mod common;

use common::{free_port, root, u64_publisher, u64_subscriber};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const DEADLINE: Duration = Duration::from_secs(30);

/// Runs `openssl` with `args` in `dir`.
fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl (README: the tests need it)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A certificate authority `ca.pem` and a key and certificate for `localhost` and 127.0.0.1
/// that it signed (`key.pem`, `cert.pem`), in `dir`.
fn certificates(dir: &Path) {
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let mut ca = vec!["req", "-x509", "-days", "2", "-subj", "/CN=shmx test CA"];
    ca.extend(ec);
    ca.extend([
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign",
    ]);
    openssl(dir, &ca);
    let mut req = vec!["req", "-subj", "/CN=localhost"];
    req.extend(ec);
    req.extend(["-keyout", "key.pem", "-out", "req.csr"]);
    openssl(dir, &req);
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "req.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-out",
            "cert.pem",
            "-extfile",
            "ext.cnf",
        ],
    );
}

#[test]
fn bridges_talk_over_tls_with_zenohs_own_configuration_file() {
    let certs = tempfile::tempdir().unwrap();
    certificates(certs.path());
    let pem = |f: &str| certs.path().join(f).display().to_string();
    let (a, b) = (root(), root());
    let port = free_port();
    // Host A: the command, its Zenoh configuration (a TLS listener) from a file.
    let file = certs.path().join("zenoh-a.json5");
    std::fs::write(
        &file,
        format!(
            r#"{{
  mode: "peer",
  listen: {{ endpoints: ["tls/127.0.0.1:{port}"] }},
  scouting: {{ multicast: {{ enabled: false }} }},
  transport: {{ link: {{ tls: {{
    listen_private_key: "{}",
    listen_certificate: "{}",
  }} }} }},
}}"#,
            pem("key.pem"),
            pem("cert.pem")
        ),
    )
    .unwrap();
    let host_a = common::bridge_command(&[
        "--forward".as_ref(),
        "**".as_ref(),
        "--config".as_ref(),
        file.as_os_str(),
        "--root".as_ref(),
        a.path().as_os_str(),
    ]);
    // Host B: a library bridge that trusts the test's CA and checks the name.
    let mut config = zenoh::Config::default();
    config.insert_json5("mode", r#""peer""#).unwrap();
    config
        .insert_json5("connect/endpoints", &format!(r#"["tls/localhost:{port}"]"#))
        .unwrap();
    config
        .insert_json5("scouting/multicast/enabled", "false")
        .unwrap();
    config
        .insert_json5(
            "transport/link/tls/root_ca_certificate",
            &format!("{:?}", pem("ca.pem")),
        )
        .unwrap();
    let bridge_b = shmx_zenoh::Bridge::builder()
        .root(b.path())
        .zenoh_config(config)
        .receive(["**"])
        .start()
        .expect("bridge b");
    let pub_a = u64_publisher(a.path(), "t/secret", 64);
    let sub_b = u64_subscriber(b.path(), "t/secret", 64);
    let start = Instant::now();
    let mut i = 0;
    let got = loop {
        pub_a.send(i).unwrap();
        i += 1;
        if let Some(v) = sub_b.recv_timeout(Duration::from_millis(50)).unwrap() {
            break *v;
        }
        assert!(start.elapsed() < DEADLINE, "nothing crossed over TLS");
    };
    assert!(got < i);
    drop(host_a);
    drop(bridge_b);
    // The killed command's subscription and claim: cleaned as any dead participant's.
    shmx::inspect::clean(a.path(), false).unwrap();
}
