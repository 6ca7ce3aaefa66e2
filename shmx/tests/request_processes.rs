//! Request/response across real processes: 8 clients in 4 processes against 2 server
//! processes (100,000 requests answered once and 1,000 streams of 10, every response matched
//! to its request), a server SIGKILLed mid-stream, a client SIGKILLed with 50 requests in
//! flight, a timeout against a slow server process (its late answer goes nowhere), and the
//! types checked against another process's on each side. Each test re-executes this binary
//! as its child processes.

use shmx::{Client, Error, Server, ShmMessage};
use std::ffi::OsStr;
use std::io::Read;
use std::path::Path;
use std::time::{Duration, Instant};

mod common;
use common::{assert_empty, root, Kid};

const WAIT: Duration = Duration::from_secs(60);

#[derive(ShmMessage, Clone, Copy, Debug, PartialEq)]
#[repr(C)]
struct Get {
    key: u64,
    count: u32,
    /// Microseconds the server sleeps before each response.
    pause_us: u32,
}

#[derive(ShmMessage, Clone, Copy, Debug, PartialEq)]
#[repr(C)]
struct Value {
    key: u64,
    index: u32,
    server: u32,
}

/// Not `Value`: the same size, another type (its fields differ).
#[derive(ShmMessage, Clone, Copy, Debug, PartialEq)]
#[repr(C)]
struct OtherValue {
    key: u64,
    weight: f32,
    server: u32,
}

fn server(root: &Path) -> Server<Get, Value> {
    Server::builder("rr").root(root).create().unwrap()
}

/// Answers requests until stdin closes; then says how many and exits.
fn run_server(root: &Path, tag: u32) {
    let s = server(root);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = stop.clone();
    std::thread::spawn(move || {
        let _ = std::io::stdin().read_to_end(&mut Vec::new());
        flag.store(true, std::sync::atomic::Ordering::Relaxed);
    });
    println!("server ready");
    let mut answered = 0u64;
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        let Some(req) = s.recv_timeout(Duration::from_millis(20)).unwrap() else {
            continue;
        };
        for index in 0..req.count {
            if req.pause_us > 0 {
                std::thread::sleep(Duration::from_micros(req.pause_us.into()));
            }
            let sent = req.respond(Value {
                key: req.key,
                index,
                server: tag,
            });
            if let Err(e) = sent {
                panic!("server {tag}: {e}");
            }
        }
        answered += 1;
    }
    let stats = s.pool_stats();
    println!(
        "server done {answered} loaned {} delivered {}",
        stats.loaned, stats.delivered
    );
}

/// Two clients (threads), each sending `singles` one-response requests and `streams`
/// requests of 10 responses, up to 16 in flight, checking each response's key and order.
fn run_clients(root: &Path, process: u64, singles: u64, streams: u64) {
    let threads: Vec<_> = (0..2u64)
        .map(|t| {
            let root = root.to_owned();
            std::thread::spawn(move || {
                let c: Client<Get, Value> = Client::builder("rr")
                    .root(&root)
                    .max_in_flight(16)
                    .create()
                    .unwrap();
                c.wait_for_servers(2, WAIT).unwrap();
                let me = (process * 2 + t) << 40;
                let total = singles + streams;
                let mut inflight = std::collections::VecDeque::new();
                let (mut next, mut done, mut responses) = (0u64, 0u64, 0u64);
                let mut servers = [0u64; 2];
                while done < total {
                    while next < total && inflight.len() < 16 {
                        // Every 100th request a stream, spread over the run.
                        let count = if next % (total / streams.max(1)).max(1) == 0
                            && next / (total / streams.max(1)).max(1) < streams
                        {
                            10
                        } else {
                            1
                        };
                        let key = me | next;
                        let p = c
                            .send(Get {
                                key,
                                count,
                                pause_us: 0,
                            })
                            .unwrap();
                        inflight.push_back((p, key, count));
                        next += 1;
                    }
                    let (p, key, count) = inflight.pop_front().unwrap();
                    let mut index = 0;
                    while let Some(r) = p.recv_timeout(WAIT).unwrap() {
                        assert_eq!(
                            (r.key, r.index),
                            (key, index),
                            "a response to another request"
                        );
                        servers[(r.server & 1) as usize] += 1;
                        index += 1;
                        responses += 1;
                    }
                    assert_eq!(
                        index, count,
                        "request {key:#x}: {index} of {count} responses"
                    );
                    done += 1;
                }
                // The servers give the last requests back just after they end their streams.
                let deadline = Instant::now() + WAIT;
                loop {
                    let stats = c.pool_stats();
                    if (stats.loaned, stats.delivered) == (0, 0) {
                        break;
                    }
                    assert!(
                        Instant::now() < deadline,
                        "the request pool stays {stats:?}"
                    );
                    std::thread::sleep(Duration::from_millis(1));
                }
                (done, responses, servers)
            })
        })
        .collect();
    let (mut requests, mut responses, mut per_server) = (0, 0, [0u64; 2]);
    for t in threads {
        let (d, r, s) = t.join().unwrap();
        requests += d;
        responses += r;
        per_server[0] += s[0];
        per_server[1] += s[1];
    }
    println!(
        "clients done {requests} {responses} {} {}",
        per_server[0], per_server[1]
    );
}

/// A child process running role `role` of `child_main` (with `arg`) in `root`.
fn start_kid(root: &Path, role: &str, arg: &str) -> Kid {
    Kid::spawn(&[
        ("SHMX_RR_ROLE", OsStr::new(role)),
        ("SHMX_RR_ARG", OsStr::new(arg)),
        ("SHMX_ROOT", root.as_os_str()),
    ])
}

#[test]
fn child_main() {
    let Ok(role) = std::env::var("SHMX_RR_ROLE") else {
        return;
    };
    let arg = std::env::var("SHMX_RR_ARG").unwrap_or_default();
    let root = std::path::PathBuf::from(std::env::var_os("SHMX_ROOT").unwrap());
    match role.as_str() {
        "server" => run_server(&root, arg.parse().unwrap()),
        "clients" => {
            let mut it = arg.split(',').map(|a| a.parse::<u64>().unwrap());
            let (p, singles, streams) =
                (it.next().unwrap(), it.next().unwrap(), it.next().unwrap());
            run_clients(&root, p, singles, streams);
        }
        // Sends 50 requests that ask for 3 responses each, says so, and waits to be killed.
        "client-50" => {
            let c: Client<Get, Value> = Client::builder("rr")
                .root(&root)
                .max_in_flight(64)
                .create()
                .unwrap();
            c.wait_for_servers(1, WAIT).unwrap();
            let pending: Vec<_> = (0..50)
                .map(|k| {
                    c.send(Get {
                        key: k,
                        count: 3,
                        pause_us: 0,
                    })
                    .unwrap()
                })
                .collect();
            println!("sent {}", pending.len());
            std::thread::sleep(Duration::from_secs(3600));
        }
        // Tries to serve the service with another response type, says what it got.
        "server-other-type" => {
            match Server::<Get, OtherValue>::builder("rr")
                .root(&root)
                .create()
            {
                Err(Error::TypeMismatch { topic, .. }) => println!("type mismatch: {topic}"),
                Err(e) => println!("other error: {e}"),
                Ok(_) => println!("created"),
            }
        }
        other => panic!("unknown role {other}"),
    }
}

#[test]
fn a_timeout_against_a_slow_server_process_drops_its_late_answer() {
    let dir = root();
    let mut kid = start_kid(dir.path(), "server", "0");
    kid.expect("server ready");
    let c: Client<Get, Value> = Client::builder("rr").root(dir.path()).create().unwrap();
    c.wait_for_servers(1, WAIT).unwrap();
    // The server sleeps 300 ms before it answers this one (from when it takes it: after t0).
    let t0 = Instant::now();
    let slow = c
        .send(Get {
            key: 1,
            count: 1,
            pause_us: 300_000,
        })
        .unwrap();
    let got = slow
        .recv_timeout(Duration::from_millis(50))
        .map(|r| r.map(|r| r.key));
    assert!(matches!(got, Err(Error::Timeout { .. })), "{got:?}");
    assert!(t0.elapsed() < Duration::from_secs(5));
    assert!(slow.is_finished(), "a timed-out request is cancelled");
    assert!(slow
        .recv_timeout(Duration::from_millis(10))
        .unwrap()
        .is_none());
    // The next request is answered after the late one (one server, in order): its response,
    // not the late answer, reaches it.
    let next = c
        .send(Get {
            key: 2,
            count: 1,
            pause_us: 0,
        })
        .unwrap();
    let r = next.recv_timeout(WAIT).unwrap().expect("a response");
    assert_eq!((r.key, r.index), (2, 0));
    assert!(
        t0.elapsed() >= Duration::from_millis(300),
        "answered before the slow one"
    );
    drop(r);
    assert!(next.recv_timeout(WAIT).unwrap().is_none());
    drop((slow, next));
    assert_eq!(c.in_flight(), 0);
    kid.finish();
    drop(c);
    assert_empty(dir.path());
}

#[test]
fn types_are_checked_against_another_process_on_each_side() {
    let dir = root();
    // A server process of `Get -> Value`; clients here of other types.
    let mut kid = start_kid(dir.path(), "server", "0");
    kid.expect("server ready");
    match Client::<Get, OtherValue>::builder("rr")
        .root(dir.path())
        .create()
    {
        Err(Error::TypeMismatch { topic, .. }) => {
            assert!(topic.contains("response type"), "{topic}")
        }
        other => panic!("{:?}", other.map(|_| ())),
    }
    match Client::<Value, Value>::builder("rr")
        .root(dir.path())
        .create()
    {
        Err(Error::TypeMismatch { topic, .. }) => {
            assert!(topic.contains("request type"), "{topic}")
        }
        other => panic!("{:?}", other.map(|_| ())),
    }
    // A client here of `Get -> Value`; a server process of another response type.
    let c: Client<Get, Value> = Client::builder("rr").root(dir.path()).create().unwrap();
    kid.finish();
    let mut other = start_kid(dir.path(), "server-other-type", "");
    let said = other.expect("type mismatch: ");
    assert!(said.contains("response type"), "{said}");
    other.finish();
    drop(c);
    assert_empty(dir.path());
}

#[test]
fn eight_clients_in_four_processes_and_two_servers() {
    let dir = root();
    let servers: Vec<_> = (0..2)
        .map(|tag| {
            let mut k = start_kid(dir.path(), "server", &tag.to_string());
            k.expect("server ready");
            k
        })
        .collect();
    // 100,000 single-response requests and 1,000 streams of 10, over 8 clients.
    let clients: Vec<_> = (0..4)
        .map(|p| start_kid(dir.path(), "clients", &format!("{p},12500,125")))
        .collect();
    let (mut requests, mut responses, mut per_server) = (0u64, 0u64, [0u64; 2]);
    for mut c in clients {
        let line = c.expect("clients done");
        let v: Vec<u64> = line
            .split_whitespace()
            .skip(2)
            .map(|x| x.parse().unwrap())
            .collect();
        requests += v[0];
        responses += v[1];
        per_server[0] += v[2];
        per_server[1] += v[3];
        c.finish();
    }
    assert_eq!(requests, 101_000);
    assert_eq!(responses, 100_000 + 1_000 * 10);
    // Round robin: each server answered about half.
    for n in per_server {
        assert!(n > responses / 4, "servers answered {per_server:?}");
    }
    let mut answered = 0;
    for mut s in servers {
        s.close_stdin(); // the server stops and reports
        let line = s.expect("server done");
        let v: Vec<u64> = line
            .split_whitespace()
            .skip(2)
            .step_by(2)
            .map(|x| x.parse().unwrap())
            .collect();
        answered += v[0];
        assert_eq!(
            (v[1], v[2]),
            (0, 0),
            "a server's response pool is not whole: {line}"
        );
        s.finish();
    }
    assert_eq!(answered, 101_000, "every request answered exactly once");
    assert_empty(dir.path());
}

#[test]
fn a_server_killed_mid_stream_fails_its_pending_requests() {
    let dir = root();
    let mut kid = start_kid(dir.path(), "server", "0");
    kid.expect("server ready");
    let c: Client<Get, Value> = Client::builder("rr").root(dir.path()).create().unwrap();
    c.wait_for_servers(1, WAIT).unwrap();
    let stream = c
        .send(Get {
            key: 1,
            count: 100_000,
            pause_us: 1000,
        })
        .unwrap();
    let queued = c
        .send(Get {
            key: 2,
            count: 1,
            pause_us: 0,
        })
        .unwrap();
    for index in 0..3 {
        let r = stream.recv_timeout(WAIT).unwrap().expect("a response");
        assert_eq!((r.key, r.index), (1, index));
    }
    kid.kill();
    let t0 = Instant::now();
    let mut got = 0;
    let err = loop {
        match stream.recv_timeout(WAIT) {
            Ok(Some(_)) => got += 1,
            Ok(None) => panic!("the stream ended although its server died"),
            Err(e) => break e,
        }
    };
    assert!(matches!(err, Error::PeerGone { .. }), "{err}");
    assert!(
        t0.elapsed() < Duration::from_secs(5),
        "noticed after {:?}",
        t0.elapsed()
    );
    assert!(got < 100, "{got} responses after the kill");
    assert!(matches!(
        queued.recv_timeout(WAIT),
        Err(Error::PeerGone { .. })
    ));
    drop((stream, queued));
    // No server: a request fails at once rather than hanging.
    assert!(matches!(
        c.send(Get {
            key: 3,
            count: 1,
            pause_us: 0
        }),
        Err(Error::PeerGone { .. })
    ));
    drop(c);
    assert_empty(dir.path());
}

#[test]
fn a_client_killed_with_50_requests_in_flight_leaves_every_chunk_back() {
    let dir = root();
    let s = server(dir.path());
    let mut kid = start_kid(dir.path(), "client-50", "");
    kid.expect("sent 50");
    // Answer 10 of them (30 responses and 10 end markers wait in the client's queue,
    // unread).
    for _ in 0..10 {
        let req = s.recv_timeout(WAIT).unwrap().expect("a request");
        for index in 0..3 {
            req.respond(Value {
                key: req.key,
                index,
                server: 0,
            })
            .unwrap();
        }
    }
    assert_eq!(s.pool_stats().delivered, 40);
    kid.kill();
    // The 40 requests left belong to a client that is gone: skipped, once the server sees
    // it gone (its node's lock went with it).
    let deadline = Instant::now() + WAIT;
    let mut answered_into_nothing = 0;
    loop {
        match s.take().unwrap() {
            Some(req) => {
                answered_into_nothing += 1;
                let _ = req.respond(Value {
                    key: req.key,
                    index: 0,
                    server: 0,
                });
            }
            None if s.client_count() == 0 => break,
            None => {}
        }
        assert!(
            Instant::now() < deadline,
            "the dead client is never noticed"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(answered_into_nothing <= 40);
    let stats = s.pool_stats();
    assert_eq!((stats.loaned, stats.delivered), (0, 0), "{stats:?}");
    drop(s);
    assert_empty(dir.path());
}

#[test]
fn a_client_waits_for_a_server_process_in_a_wait_set() {
    let dir = root();
    let mut kid = start_kid(dir.path(), "server", "0");
    kid.expect("server ready");
    let c: Client<Get, Value> = Client::builder("rr").root(dir.path()).create().unwrap();
    c.wait_for_servers(1, WAIT).unwrap();
    let mut waitset = shmx::WaitSet::new().unwrap();
    let responses = waitset.attach_client(&c).unwrap();
    let pending: Vec<_> = (0..16)
        .map(|key| {
            c.send(Get {
                key,
                count: 3,
                pause_us: 100,
            })
            .unwrap()
        })
        .collect();
    let mut got = vec![0u32; pending.len()];
    let deadline = Instant::now() + WAIT;
    while pending.iter().any(|p| !p.is_finished()) {
        assert!(Instant::now() < deadline, "responses missing: {got:?}");
        waitset
            .wait_timeout(Duration::from_secs(1), |event| {
                assert!(event.is(responses));
            })
            .unwrap();
        // An event: every pending request is drained (responses to one may have been kept
        // while taking another's).
        for (k, p) in pending.iter().enumerate() {
            while let Some(r) = p.take().unwrap() {
                assert_eq!((r.key, r.index), (k as u64, got[k]));
                got[k] += 1;
            }
        }
    }
    assert!(got.iter().all(|&n| n == 3), "{got:?}");
    drop(pending);
    drop(waitset);
    drop(c);
    kid.finish();
    assert_empty(dir.path());
}

#[test]
fn tools_list_services_and_clean_what_a_killed_server_left() {
    let dir = root();
    let mut kid = start_kid(dir.path(), "server", "0");
    kid.expect("server ready");
    let c: Client<Get, Value> = Client::builder("rr").root(dir.path()).create().unwrap();
    c.wait_for_servers(1, WAIT).unwrap();
    // Services are not topics; they are listed as services, with their types and queues.
    assert!(shmx::inspect::topics(dir.path()).unwrap().is_empty());
    let services = shmx::inspect::services(dir.path()).unwrap();
    assert_eq!(services.len(), 1, "{services:?}");
    let s = &services[0];
    assert_eq!(s.name, "rr");
    assert_eq!(s.request.as_ref().unwrap().0, "Get");
    assert_eq!(s.response.as_ref().unwrap().1, Value::FINGERPRINT);
    assert_eq!((s.servers.len(), s.clients.len()), (1, 1));
    assert!(s.servers[0].alive && s.servers[0].pid != u64::from(std::process::id()));
    assert_eq!(s.clients[0].id, c.id());
    assert_eq!(s.clients[0].pid, u64::from(std::process::id()));
    // A clean while both live removes nothing of the service.
    let report = shmx::inspect::clean(dir.path(), false).unwrap();
    assert!(report.removed.is_empty(), "{report:?}");
    assert_eq!(
        shmx::inspect::service(dir.path(), "rr")
            .unwrap()
            .servers
            .len(),
        1
    );
    drop(c);
    kid.kill();
    // What the killed server left: its queue and the record, removed by clean.
    assert!(!shmx::inspect::services(dir.path()).unwrap().is_empty());
    let dry = shmx::inspect::clean(dir.path(), true).unwrap();
    assert!(!dry.removed.is_empty(), "{dry:?}");
    shmx::inspect::clean(dir.path(), false).unwrap();
    assert_empty(dir.path());
}
