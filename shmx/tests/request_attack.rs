//! Attacks on request/response (`shmx::request`): each `finding_*` test asserts the correct
//! behaviour and failed while the bug it names was there (an attacker's review found them;
//! all are fixed, and these keep them fixed); each `holds_*` test checks a claim that was
//! attacked and held. Cross-process cases re-execute this binary (`child_main`).

use shmx::{Client, Error, Publisher, Server};
use std::ffi::OsStr;
use std::path::Path;
use std::time::{Duration, Instant};

mod common;
use common::{assert_empty, root, Kid};

const WAIT: Duration = Duration::from_secs(10);

/// Polls `f` until it is true or `within` passed; returns its last answer.
fn poll(within: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// The names in `root` (for messages).
fn listing(root: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(root)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

// ---------------------------------------------------------------------------------------
// Child processes
// ---------------------------------------------------------------------------------------

/// A child process running role `role` of `child_main` in `root`.
fn start_kid(root: &Path, role: &str) -> Kid {
    Kid::spawn(&[
        ("SHMX_ATTACK_ROLE", OsStr::new(role)),
        ("SHMX_ROOT", root.as_os_str()),
    ])
}

#[test]
fn child_main() {
    let Ok(role) = std::env::var("SHMX_ATTACK_ROLE") else {
        return;
    };
    let root = std::path::PathBuf::from(std::env::var_os("SHMX_ROOT").unwrap());
    match role.as_str() {
        "steal-response-loan" => steal_response_loan(&root),
        "steal-request-loan" => steal_request_loan(&root),
        // A server that takes one request, says so, and never answers (until killed).
        "silent-server" => {
            let s: Server<u64, u64> = Server::builder("svc").root(&root).create().unwrap();
            println!("ready");
            let req = s.recv_timeout(WAIT * 6).unwrap().expect("a request");
            println!("took {}", **req);
            std::thread::sleep(Duration::from_secs(3600));
        }
        // A client with a response queue of depth 1 that sends one request for a stream and
        // never reads (until killed).
        "deaf-client" => {
            let c: Client<u64, u64> = Client::builder("svc")
                .root(&root)
                .response_depth(1)
                .create()
                .unwrap();
            c.wait_for_servers(1, WAIT).unwrap();
            let _p = c.send(7).unwrap();
            println!("sent");
            std::thread::sleep(Duration::from_secs(3600));
        }
        // A client and a server that do nothing (until killed).
        "idle-endpoints" => {
            let _s: Server<u64, u64> = Server::builder("svc").root(&root).create().unwrap();
            let _c: Client<u64, u64> = Client::builder("svc").root(&root).create().unwrap();
            println!("ready");
            std::thread::sleep(Duration::from_secs(3600));
        }
        other => panic!("unknown role {other}"),
    }
}

// ---------------------------------------------------------------------------------------
// Memory safety: loans moved out of ResponseMut / RequestMut
// ---------------------------------------------------------------------------------------

/// Safe code only: what a `ResponseMut` hands out is swapped for another value. (It used to
/// deref mutably to its `SampleMut`, whose loan could be swapped out and kept past the
/// server's publisher; now it derefs to the message alone, so a swap moves a value, and the
/// loan stays counted.) The server then lets go of the departed client's publisher.
fn steal_response_loan(root: &Path) {
    let plain = Publisher::<u64>::builder("plain")
        .root(root)
        .create()
        .unwrap();
    let server: Server<u64, u64> = Server::builder("svc").root(root).create().unwrap();
    let client: Client<u64, u64> = Client::builder("svc").root(root).create().unwrap();
    let pending = client.send(1).unwrap();
    let req = server.recv_timeout(WAIT).unwrap().expect("a request");
    let mut response = req.loan_response().unwrap();
    let mut stolen = plain.loan().unwrap();
    std::mem::swap(&mut *response, &mut *stolen);
    drop(response);
    drop(pending);
    drop(client);
    // Ending the request finds its client gone and drops its publisher (no loan is out).
    drop(req);
    *stolen = 42;
    println!("wrote {}", *stolen);
    drop(stolen);
    println!("survived");
}

/// The same on the client side: a request loan swapped out of its `RequestMut`, the server
/// gone, the client's `look` drops the connection the stolen loan borrows.
fn steal_request_loan(root: &Path) {
    let plain = Publisher::<u64>::builder("plain")
        .root(root)
        .create()
        .unwrap();
    let server: Server<u64, u64> = Server::builder("svc").root(root).create().unwrap();
    let client: Client<u64, u64> = Client::builder("svc").root(root).create().unwrap();
    let mut request = client.loan().unwrap();
    let mut stolen = plain.loan().unwrap();
    std::mem::swap(&mut *request, &mut *stolen);
    drop(request);
    drop(server);
    // Looks for servers: the gone one's connection (publisher, mapping) is dropped.
    assert_eq!(client.server_count(), 0);
    *stolen = 42;
    println!("wrote {}", *stolen);
    drop(stolen);
    println!("survived");
}

#[test]
fn holds_a_response_loan_cannot_be_moved_out_of_response_mut() {
    let dir = root();
    let kid = start_kid(dir.path(), "steal-response-loan");
    let (status, out) = kid.outcome();
    assert!(
        status.success() && out.contains("survived"),
        "safe code (mem::swap through ResponseMut's DerefMut) used a dropped publisher: \
         {status:?}\n{out}"
    );
}

#[test]
fn holds_a_request_loan_cannot_be_moved_out_of_request_mut() {
    let dir = root();
    let kid = start_kid(dir.path(), "steal-request-loan");
    let (status, out) = kid.outcome();
    assert!(
        status.success() && out.contains("survived"),
        "safe code (mem::swap through RequestMut's DerefMut) used a dropped connection: \
         {status:?}\n{out}"
    );
}

// ---------------------------------------------------------------------------------------
// Protocol
// ---------------------------------------------------------------------------------------

#[test]
fn finding_a_zero_sized_response_is_taken_for_the_end_of_the_stream() {
    let dir = root();
    {
        let s: Server<u64, [u8; 0]> = Server::builder("svc").root(dir.path()).create().unwrap();
        let c: Client<u64, [u8; 0]> = Client::builder("svc").root(dir.path()).create().unwrap();
        let p = c.send(1).unwrap();
        let req = s.recv_timeout(WAIT).unwrap().expect("a request");
        req.respond([]).unwrap();
        req.respond([]).unwrap();
        req.respond_last([]).unwrap();
        let mut got = 0;
        while let Some(r) = p.recv_timeout(WAIT).unwrap() {
            got += 1;
            if r.is_last() {
                break;
            }
        }
        assert_eq!(
            got, 3,
            "acknowledgements of a zero-sized type were taken for markers"
        );
    }
    assert_empty(dir.path());
}

#[test]
fn finding_max_in_flight_is_bypassed_by_loans_over_two_servers() {
    let dir = root();
    let _s1: Server<u64, u64> = Server::builder("svc").root(dir.path()).create().unwrap();
    let _s2: Server<u64, u64> = Server::builder("svc").root(dir.path()).create().unwrap();
    let c: Client<u64, u64> = Client::builder("svc")
        .root(dir.path())
        .max_in_flight(1)
        .create()
        .unwrap();
    assert_eq!(c.wait_for_servers(2, WAIT).unwrap(), 2);
    let a = c.loan();
    let b = c.loan();
    let mut pending = Vec::new();
    for r in [a, b].into_iter().flatten() {
        if let Ok(p) = r.send() {
            pending.push(p);
        }
    }
    assert!(
        c.in_flight() <= 1,
        "max_in_flight(1), yet {} requests are in flight",
        c.in_flight()
    );
}

#[test]
fn finding_an_error_while_taking_for_another_request_ends_this_stream_silently() {
    let dir = root();
    let s: Server<u64, u64> = Server::builder("svc").root(dir.path()).create().unwrap();
    let c: Client<u64, u64> = Client::builder("svc")
        .root(dir.path())
        .max_held(4)
        .create()
        .unwrap();
    let a = c.send(1).unwrap();
    let b = c.send(2).unwrap();
    // Server: b's stream of 5 first, then a's one response.
    let ra = s.recv_timeout(WAIT).unwrap().expect("request a");
    let rb = s.recv_timeout(WAIT).unwrap().expect("request b");
    for i in 0..5 {
        rb.respond(100 + i).unwrap();
    }
    rb.finish().unwrap();
    ra.respond_last(1).unwrap();
    // Waiting for a's response, the client keeps b's for b: past max_held it fails.
    let first = a.recv_timeout(WAIT);
    if let Ok(Some(r)) = &first {
        assert_eq!(***r, 1);
        return; // no error at all: nothing to see
    }
    // Read b out: nothing is held any more.
    let mut bs = Vec::new();
    while let Some(r) = b.recv_timeout(WAIT).unwrap() {
        bs.push(**r);
    }
    assert_eq!(bs, vec![100, 101, 102, 103, 104]);
    // a's response is still in the queue: it must come, not a silent end of stream.
    let again = a.recv_timeout(Duration::from_secs(2));
    assert!(
        matches!(&again, Ok(Some(r)) if ***r == 1),
        "after {:?}, request a's stream ends without its response: {:?}",
        first.err(),
        again.map(|r| r.map(|r| **r))
    );
}

#[test]
fn holds_the_end_of_a_stream_that_found_the_queue_full_follows_when_there_is_room() {
    let dir = root();
    let s: Server<u64, u64> = Server::builder("svc")
        .root(dir.path())
        .response_timeout(Duration::from_millis(20))
        .create()
        .unwrap();
    let c: Client<u64, u64> = Client::builder("svc")
        .root(dir.path())
        .response_depth(1)
        .create()
        .unwrap();
    let p = c.send(1).unwrap();
    let req = s.recv_timeout(WAIT).unwrap().expect("a request");
    req.respond(10).unwrap(); // fills the client's queue
    drop(req); // no room for the end marker: it waits in the server
    let first = p.recv_timeout(WAIT).unwrap().expect("the response");
    assert_eq!(**first, 10);
    drop(first);
    // The server's loop goes on (its next call finds room and sends the end).
    assert!(s.take().unwrap().is_none());
    // The server ended the stream and lives on: the client must learn the end (or an
    // error), not wait until its own timeout (forever with `recv()`).
    let t0 = Instant::now();
    let end = p.recv_timeout(Duration::from_secs(3));
    assert!(
        matches!(end, Ok(None)) || matches!(end, Err(Error::PeerGone { .. })),
        "the stream's end never reached the client: {:?} after {:?}",
        end.map(|r| r.map(|r| **r)),
        t0.elapsed()
    );
}

#[test]
fn finding_take_never_reports_a_killed_server() {
    let dir = root();
    let mut kid = start_kid(dir.path(), "silent-server");
    kid.expect("ready");
    let c: Client<u64, u64> = Client::builder("svc").root(dir.path()).create().unwrap();
    c.wait_for_servers(1, WAIT).unwrap();
    let p = c.send(5).unwrap();
    kid.expect("took 5");
    kid.kill();
    // The event-loop way (fd / WaitSet): take until `is_finished`. The server is gone: the
    // loop must end, with PeerGone or a finished stream.
    let ended = poll(Duration::from_secs(3), || match p.take() {
        Ok(Some(_)) => false,
        Ok(None) => p.is_finished(),
        Err(_) => true,
    });
    assert!(
        ended,
        "3 s after its server was SIGKILLed, take() still says `nothing yet` and the \
         request is not finished"
    );
    drop(p);
    drop(c);
}

#[test]
fn finding_a_departed_clients_response_queue_stays_while_the_server_idles() {
    let dir = root();
    let s: Server<u64, u64> = Server::builder("svc").root(dir.path()).create().unwrap();
    for k in 0..3 {
        let c: Client<u64, u64> = Client::builder("svc").root(dir.path()).create().unwrap();
        let p = c.send(k).unwrap();
        s.recv_timeout(WAIT)
            .unwrap()
            .unwrap()
            .respond_last(k)
            .unwrap();
        assert_eq!(**p.recv_timeout(WAIT).unwrap().unwrap(), k);
    }
    // Every client is gone; the server keeps polling for requests.
    let gone = poll(Duration::from_secs(2), || {
        assert!(s.take().unwrap().is_none());
        !listing(dir.path()).iter().any(|n| n.contains("@resp."))
    });
    assert!(
        gone,
        "response queues of departed clients left in the root: {:?}",
        listing(dir.path())
    );
    drop(s);
    assert_empty(dir.path());
}

// ---------------------------------------------------------------------------------------
// Limits of 64 publishers per queue
// ---------------------------------------------------------------------------------------

#[test]
fn finding_the_65th_client_of_a_server_is_told_that_no_server_runs() {
    let dir = root();
    let s: Server<u64, u64> = Server::builder("svc").root(dir.path()).create().unwrap();
    let clients: Vec<Client<u64, u64>> = (0..65)
        .map(|_| Client::builder("svc").root(dir.path()).create().unwrap())
        .collect();
    let mut results = Vec::new();
    for c in &clients {
        results.push(c.send(1).map(|_| ()));
    }
    let last = results.pop().unwrap();
    assert!(results.iter().all(|r| r.is_ok()));
    assert!(
        !matches!(last, Err(Error::PeerGone { .. })),
        "a server runs, yet the 65th client is told {:?}",
        last.err().map(|e| e.to_string())
    );
    drop(s);
}

#[test]
fn holds_a_client_of_65_servers_sends_to_64_and_every_request_is_answered() {
    let dir = root();
    let servers: Vec<Server<u64, u64>> = (0..65)
        .map(|_| Server::builder("svc").root(dir.path()).create().unwrap())
        .collect();
    let c: Client<u64, u64> = Client::builder("svc")
        .root(dir.path())
        .max_in_flight(128)
        .create()
        .unwrap();
    // A client sends to at most 64 servers (its response queue takes 64 publishers).
    assert_eq!(c.wait_for_servers(64, WAIT).unwrap(), 64);
    // Round robin: one request per server, and one more to the first again.
    let pending: Vec<_> = (0..65u64).map(|k| c.send(k).unwrap()).collect();
    let mut server_errors = Vec::new();
    let mut idle = 0;
    for s in &servers {
        loop {
            match s.recv_timeout(Duration::from_millis(100)) {
                Ok(Some(req)) => {
                    let v = **req;
                    let _ = req.respond_last(v);
                }
                Ok(None) => break,
                Err(e) => {
                    server_errors.push(e.to_string());
                    break;
                }
            }
        }
        idle += usize::from(s.client_count() == 0);
    }
    assert_eq!(idle, 1, "one server is not used by this client");
    // Every request is answered, or fails with an error: none waits for a live server that
    // dropped it.
    let mut silent = Vec::new();
    for (k, p) in pending.iter().enumerate() {
        match p.recv_timeout(Duration::from_millis(500)) {
            Ok(Some(r)) => assert_eq!(**r, k as u64),
            Err(Error::Timeout { .. }) => silent.push(k),
            Ok(None) | Err(_) => {}
        }
    }
    assert!(
        silent.is_empty(),
        "requests {silent:?} were dropped by a live server without telling the client \
         (server errors: {server_errors:?})"
    );
}

// ---------------------------------------------------------------------------------------
// Settings, records and names
// ---------------------------------------------------------------------------------------

#[test]
fn holds_bad_settings_are_typed_errors() {
    let dir = root();
    let c = |b: shmx::request::ClientBuilder<u64, u64>| b.root(dir.path()).create().err();
    let s = |b: shmx::request::ServerBuilder<u64, u64>| b.root(dir.path()).create().err();
    for e in [
        c(Client::builder("svc").max_in_flight(0)),
        c(Client::builder("svc").max_in_flight(1025)),
        c(Client::builder("svc").response_depth(0)),
        c(Client::builder("svc").max_held(0)),
        s(Server::builder("svc").request_depth(0)),
        s(Server::builder("svc").response_depth(100_000)),
        s(Server::builder("svc").max_active(0)),
    ] {
        assert!(matches!(e, Some(Error::InvalidConfig { .. })), "{e:?}");
    }
    assert_empty(dir.path());
}

/// A service's genuine record bytes for `Server<Req, Resp>` (made in a scratch root).
fn record_of<Req: shmx::ShmMessage, Resp: shmx::ShmMessage>() -> Vec<u8> {
    let scratch = root();
    let s: Server<Req, Resp> = Server::builder("svc")
        .root(scratch.path())
        .create()
        .unwrap();
    let bytes = std::fs::read(scratch.path().join("svc@service")).unwrap();
    drop(s);
    bytes
}

/// Puts `bytes` in place of `root`'s record of `svc` at once (rename), mode 0600.
fn plant_record(root: &Path, bytes: &[u8]) {
    use std::os::unix::fs::PermissionsExt;
    let tmp = root.join("planted.tmp");
    std::fs::write(&tmp, bytes).unwrap();
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::rename(&tmp, root.join("svc@service")).unwrap();
}

#[test]
fn holds_a_record_replaced_by_a_symlink_is_refused() {
    let dir = root();
    let elsewhere = root();
    let target = elsewhere.path().join("record");
    std::fs::write(&target, record_of::<u64, u64>()).unwrap();
    std::os::unix::fs::symlink(&target, dir.path().join("svc@service")).unwrap();
    let e = Client::<u64, u64>::builder("svc")
        .root(dir.path())
        .create()
        .err();
    assert!(
        matches!(e, Some(Error::PermissionDenied { .. } | Error::Io { .. })),
        "{e:?}"
    );
    let e = Server::<u64, u64>::builder("svc")
        .root(dir.path())
        .create()
        .err();
    assert!(e.is_some());
    // Not followed, not removed, the target untouched.
    assert!(dir.path().join("svc@service").is_symlink());
    assert_eq!(std::fs::read(&target).unwrap(), record_of::<u64, u64>());
    std::fs::remove_file(dir.path().join("svc@service")).unwrap();
    // (A failed create leaves the root's `.lock`, as a failed topic endpoint does; the
    // next endpoint to leave takes it.)
    drop(
        Client::<u64, u64>::builder("svc")
            .root(dir.path())
            .create()
            .unwrap(),
    );
    assert_empty(dir.path());
}

#[test]
fn holds_a_record_of_another_user_is_refused() {
    let dir = root();
    plant_record(dir.path(), &record_of::<u64, u64>());
    let path = dir.path().join("svc@service");
    std::os::unix::fs::chown(&path, Some(65534), Some(65534)).unwrap();
    let e = Client::<u64, u64>::builder("svc")
        .root(dir.path())
        .create()
        .err();
    assert!(matches!(e, Some(Error::PermissionDenied { .. })), "{e:?}");
    // A hard link to a file of ours is refused too (nlink 2).
    std::fs::remove_file(&path).unwrap();
    let ours = dir.path().join("ours");
    std::fs::write(&ours, record_of::<u64, u64>()).unwrap();
    std::fs::hard_link(&ours, &path).unwrap();
    let e = Server::<u64, u64>::builder("svc")
        .root(dir.path())
        .create()
        .err();
    assert!(matches!(e, Some(Error::PermissionDenied { .. })), "{e:?}");
    std::fs::remove_file(&path).unwrap();
    std::fs::remove_file(&ours).unwrap();
    drop(
        Client::<u64, u64>::builder("svc")
            .root(dir.path())
            .create()
            .unwrap(),
    );
    assert_empty(dir.path());
}

#[test]
fn holds_lying_and_garbage_records_are_typed_errors_never_panics() {
    let dir = root();
    let genuine = record_of::<u64, u64>();
    let mut cases: Vec<Vec<u8>> = vec![
        Vec::new(),
        b"SHMXSVC1".to_vec(),
        b"NOTARECORD".to_vec(),
        vec![0xff; 2 << 20],
    ];
    // Every length field at its largest, one at a time, and every prefix.
    for at in [32usize, 36] {
        let mut b = genuine.clone();
        b[at..at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        cases.push(b);
    }
    for cut in (0..genuine.len()).step_by(7) {
        cases.push(genuine[..cut].to_vec());
    }
    for bytes in &cases {
        plant_record(dir.path(), bytes);
        let e = Client::<u64, u64>::builder("svc")
            .root(dir.path())
            .create()
            .err();
        assert!(
            matches!(e, Some(Error::Corrupt { .. })),
            "{} bytes: {e:?}",
            bytes.len()
        );
    }
    std::fs::remove_file(dir.path().join("svc@service")).unwrap();
    // Records that lie about the types (odd schema texts included) while a server lives:
    // a TypeMismatch, never a panic in the code that describes the difference.
    let s: Server<u64, u64> = Server::builder("svc").root(dir.path()).create().unwrap();
    let text = |fp: u64, size: u64, align: u64, name: &str, schema: &str| {
        let mut t = Vec::new();
        for v in [fp, size, align] {
            t.extend_from_slice(&v.to_le_bytes());
        }
        t.extend_from_slice(&(name.len() as u32).to_le_bytes());
        t.extend_from_slice(&(schema.len() as u32).to_le_bytes());
        t.extend_from_slice(name.as_bytes());
        t.extend_from_slice(schema.as_bytes());
        t
    };
    let u64_type = &genuine[8..8 + 32 + 3 + 3]; // fingerprint.. name "u64".. schema "u64"
    assert_eq!(&u64_type[32..], b"u64u64", "record layout as expected");
    for schema in [
        "",
        "u6",
        "u64(",
        "(((((",
        ")))",
        "é(8,8){a@0:u64}",
        "u6é",
        "{a@0:(1,",
        &"{".repeat(100_000),
        "u64\u{1F600}",
    ] {
        let mut bytes = b"SHMXSVC1".to_vec();
        bytes.extend_from_slice(&text(1, 8, 8, "Liar", schema));
        bytes.extend_from_slice(u64_type);
        plant_record(dir.path(), &bytes);
        let e = Client::<u64, u64>::builder("svc")
            .root(dir.path())
            .create()
            .err();
        assert!(
            matches!(e, Some(Error::TypeMismatch { .. })),
            "{schema:?}: {e:?}"
        );
    }
    drop(s);
    let _ = std::fs::remove_file(dir.path().join("svc@service"));
    assert_empty(dir.path());
}

#[test]
fn holds_a_lying_record_cannot_mix_types_in_a_queue() {
    let dir = root();
    let s: Server<u64, u64> = Server::builder("svc").root(dir.path()).create().unwrap();
    // The record now says u32 both ways: a client of u32s is made...
    plant_record(dir.path(), &record_of::<u32, u32>());
    let c: Client<u32, u32> = Client::builder("svc").root(dir.path()).create().unwrap();
    // ...but the server's queue is of u64s: no request crosses.
    let sent = c.send(5);
    assert!(
        matches!(
            sent,
            Err(Error::PeerGone { .. } | Error::TypeMismatch { .. })
        ),
        "{:?}",
        sent.err()
    );
    drop(sent);
    assert!(s.take().unwrap().is_none());
    drop(c);
    drop(s);
    let _ = std::fs::remove_file(dir.path().join("svc@service"));
    assert_empty(dir.path());
}

#[test]
fn holds_topics_named_like_a_services_parts_do_not_collide() {
    let dir = root();
    let s: Server<u64, u64> = Server::builder("svc").root(dir.path()).create().unwrap();
    let fake = format!("svc@req.{:016x}", 1u64);
    let topics: Vec<Publisher<u32>> = [fake.as_str(), "svc@service", "svc", "svc@resp.1"]
        .iter()
        .map(|t| Publisher::builder(t).root(dir.path()).create().unwrap())
        .collect();
    let subs: Vec<shmx::Subscriber<u32>> = [fake.as_str(), "svc@service", "svc"]
        .iter()
        .map(|t| {
            shmx::Subscriber::builder(t)
                .root(dir.path())
                .create()
                .unwrap()
        })
        .collect();
    let c: Client<u64, u64> = Client::builder("svc").root(dir.path()).create().unwrap();
    assert_eq!(c.server_count(), 1);
    let p = c.send(3).unwrap();
    s.recv_timeout(WAIT)
        .unwrap()
        .unwrap()
        .respond_last(4)
        .unwrap();
    assert_eq!(**p.recv_timeout(WAIT).unwrap().unwrap(), 4);
    for t in &topics {
        t.send(9).unwrap();
    }
    for sub in &subs {
        assert_eq!(*sub.recv_timeout(WAIT).unwrap().unwrap(), 9);
    }
    drop(p);
    drop((c, s, topics, subs));
    assert_empty(dir.path());
}

// ---------------------------------------------------------------------------------------
// Holding things while calling others; chunks coming back; blocked servers
// ---------------------------------------------------------------------------------------

#[test]
fn holds_responses_requests_and_loans_held_while_every_method_runs() {
    let dir = root();
    let s1: Server<u64, u64> = Server::builder("svc").root(dir.path()).create().unwrap();
    let s2: Server<u64, u64> = Server::builder("svc").root(dir.path()).create().unwrap();
    let c: Client<u64, u64> = Client::builder("svc").root(dir.path()).create().unwrap();
    assert_eq!(c.wait_for_servers(2, WAIT).unwrap(), 2);
    let a = c.send(1).unwrap();
    let b = c.send(2).unwrap();
    let mut loan = c.loan().unwrap();
    *loan = 3;
    // Both servers answer with streams; their requests stay held meanwhile.
    let (x, y) = (
        s1.recv_timeout(WAIT).unwrap().unwrap(),
        s2.recv_timeout(WAIT).unwrap().unwrap(),
    );
    let (ra, rb) = if **x == 1 { (x, y) } else { (y, x) };
    assert_eq!((**ra, **rb), (1, 2));
    let mut rmut = ra.loan_response().unwrap();
    *rmut = 10;
    for i in 0..3 {
        rb.respond(20 + i).unwrap();
    }
    assert!(rb.client_alive());
    let _ = (
        s1.pool_stats(),
        s2.pool_stats(),
        s1.client_count(),
        s2.client_count(),
    );
    assert!(s1.take().unwrap().is_none() && s2.take().unwrap().is_none());
    rmut.send().unwrap();
    // Responses of b taken (and kept) while asking for a's; a's held while b is read.
    let first_a = a.recv_timeout(WAIT).unwrap().unwrap();
    assert_eq!(**first_a, 10);
    let b0 = b.recv_timeout(WAIT).unwrap().unwrap();
    assert_eq!(**b0, 20);
    let _ = (
        c.in_flight(),
        c.server_count(),
        c.pool_stats(),
        a.is_finished(),
    );
    // The loaned request goes out while all of that is held, and a server leaves.
    let third = loan.send().unwrap();
    drop(ra);
    drop(rb);
    let got_b: Vec<u64> =
        std::iter::from_fn(|| b.recv_timeout(WAIT).unwrap().map(|r| **r)).collect();
    assert_eq!(got_b, vec![21, 22]);
    assert!(a.recv_timeout(WAIT).unwrap().is_none());
    // The third request is somewhere; answer it wherever it is.
    {
        let r3 = match s1.recv_timeout(Duration::from_millis(200)).unwrap() {
            Some(r) => r,
            None => s2.recv_timeout(WAIT).unwrap().unwrap(),
        };
        assert_eq!(**r3, 3);
        r3.respond_last(30).unwrap();
    }
    assert_eq!(**third.recv_timeout(WAIT).unwrap().unwrap(), 30);
    drop((first_a, b0));
    drop((a, b, third));
    assert_eq!(c.in_flight(), 0);
    drop(c);
    drop((s1, s2));
    assert_empty(dir.path());
}

#[test]
fn holds_cancelled_and_unread_responses_all_come_back() {
    let dir = root();
    let s: Server<u64, u64> = Server::builder("svc").root(dir.path()).create().unwrap();
    {
        let c: Client<u64, u64> = Client::builder("svc").root(dir.path()).create().unwrap();
        let keep = c.send(1).unwrap();
        let timed_out = c.send(2).unwrap();
        let dropped = c.send(3).unwrap();
        // Nothing answered yet: the second times out (and is cancelled).
        assert!(matches!(
            timed_out.recv_timeout(Duration::from_millis(10)),
            Err(Error::Timeout { .. })
        ));
        drop(dropped);
        while let Some(req) = s.take().unwrap() {
            for i in 0..5 {
                req.respond(i).unwrap();
            }
        }
        // One response of `keep` read and held; the rest stashed or queued.
        let held = keep.recv_timeout(WAIT).unwrap().unwrap();
        assert_eq!(**held, 0);
        assert!(timed_out.recv_timeout(WAIT).unwrap().is_none());
        // The client goes with all of that.
        drop(held);
    }
    let whole = poll(WAIT, || {
        let st = s.pool_stats();
        (st.loaned, st.delivered) == (0, 0)
    });
    assert!(
        whole,
        "the server's response pool stays {:?}",
        s.pool_stats()
    );
    drop(s);
    assert_empty(dir.path());
}

#[test]
fn holds_a_server_blocked_on_a_full_queue_notices_its_client_killed() {
    let dir = root();
    let s: Server<u64, u64> = Server::builder("svc")
        .root(dir.path())
        .response_timeout(Duration::from_secs(60))
        .create()
        .unwrap();
    let mut kid = start_kid(dir.path(), "deaf-client");
    kid.expect("sent");
    let req = s.recv_timeout(WAIT).unwrap().expect("a request");
    // The client's queue (depth 1) is full after this one.
    req.respond(1).unwrap();
    // Killed once this thread sleeps in the blocked respond (either order is a valid run).
    let tid = rustix::thread::gettid().as_raw_nonzero().get();
    let go = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let go2 = go.clone();
    let killer = std::thread::spawn(move || {
        while !go2.load(std::sync::atomic::Ordering::Acquire) {
            std::thread::yield_now();
        }
        common::wait_until_asleep(tid);
        kid.kill();
    });
    let t0 = Instant::now();
    go.store(true, std::sync::atomic::Ordering::Release);
    let second = req.respond(2); // blocks until the kill is noticed
    assert!(
        t0.elapsed() < Duration::from_secs(10),
        "blocked {:?} ({second:?})",
        t0.elapsed()
    );
    killer.join().unwrap();
    drop(req);
    let whole = poll(WAIT, || {
        let _ = s.take();
        let st = s.pool_stats();
        (st.loaned, st.delivered) == (0, 0)
    });
    assert!(whole, "{:?}", s.pool_stats());
    drop(s);
    // The dead client's files: the next endpoint sweeps them.
    drop(
        Client::<u64, u64>::builder("svc")
            .root(dir.path())
            .create()
            .unwrap(),
    );
    assert_empty(dir.path());
}

#[test]
fn finding_a_server_with_unusable_response_settings_drops_every_request_silently() {
    let dir = root();
    // Accepted when made...
    let made = Server::<u64, u64>::builder("svc")
        .root(dir.path())
        .max_tail_bytes(usize::MAX / 2)
        .create();
    let Ok(s) = made else {
        return; // refused up front: fine
    };
    let c: Client<u64, u64> = Client::builder("svc").root(dir.path()).create().unwrap();
    let p = c.send(1).unwrap();
    // ...but no response can ever be made: the server's take fails and the request is gone.
    let taken = s.take().map(|r| r.is_some());
    let outcome = p.recv_timeout(Duration::from_secs(1));
    assert!(
        !matches!(outcome, Err(Error::Timeout { .. })),
        "the server's take said {:?}; the client was never told and timed out",
        taken.err().map(|e| e.to_string())
    );
}

#[test]
fn finding_a_client_with_unusable_request_settings_is_told_that_no_server_runs() {
    let dir = root();
    let _s: Server<u64, u64> = Server::builder("svc").root(dir.path()).create().unwrap();
    let made = Client::<u64, u64>::builder("svc")
        .root(dir.path())
        .max_tail_bytes(usize::MAX / 2)
        .create();
    let Ok(c) = made else {
        return; // refused up front: fine
    };
    let sent = c.send(1).map(|_| ());
    assert!(
        !matches!(sent, Err(Error::PeerGone { .. })),
        "a server runs; the real error (the pool is too large) is hidden: {:?}",
        sent.err().map(|e| e.to_string())
    );
}

#[test]
fn holds_killed_endpoints_parts_and_record_go_with_the_last_live_endpoint() {
    let dir = root();
    let mut kid = start_kid(dir.path(), "idle-endpoints");
    kid.expect("ready");
    kid.kill();
    // A client comes, looks for servers (finds the dead one's queue), and goes: it is the
    // last live endpoint of the service.
    let c: Client<u64, u64> = Client::builder("svc").root(dir.path()).create().unwrap();
    assert_eq!(c.server_count(), 0);
    drop(c);
    let left: Vec<String> = listing(dir.path())
        .into_iter()
        .filter(|n| n.starts_with("svc@"))
        .collect();
    assert!(
        left.is_empty(),
        "left by SIGKILLed endpoints after the last live one went: {left:?}"
    );
    assert_empty(dir.path());
}

#[test]
fn finding_a_leaving_endpoint_removes_the_record_of_a_server_being_made() {
    // Clients come and go while servers are made: a client that leaves (root lock held,
    // no part of the service left) removes the record between a new server's record check
    // and the creation of its request queue. The server then runs with no record, and a
    // client of other types is made without a TypeMismatch.
    let dir = root();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let churn: Vec<_> = (0..2)
        .map(|_| {
            let (r, st) = (dir.path().to_owned(), stop.clone());
            std::thread::spawn(move || {
                while !st.load(std::sync::atomic::Ordering::Relaxed) {
                    let _ = Client::<u64, u64>::builder("svc").root(&r).create();
                }
            })
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut bad = None;
    let mut made = 0;
    while Instant::now() < deadline && bad.is_none() {
        let s: Server<u64, u64> = Server::builder("svc").root(dir.path()).create().unwrap();
        made += 1;
        if !dir.path().join("svc@service").exists() {
            let other = Client::<u32, u32>::builder("svc").root(dir.path()).create();
            bad = Some(format!(
                "server {made}: no record while it runs; a Client<u32, u32> is then {}",
                match &other {
                    Ok(_) => "made".to_owned(),
                    Err(e) => format!("refused: {e}"),
                }
            ));
            drop(other);
        }
        drop(s);
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for t in churn {
        t.join().unwrap();
    }
    assert!(bad.is_none(), "{}", bad.unwrap());
    drop(Client::<u64, u64>::builder("svc").root(dir.path()).create());
    let _ = std::fs::remove_file(dir.path().join("svc@service"));
}

#[test]
fn holds_a_zero_sized_request_is_answered() {
    let dir = root();
    {
        let s: Server<[u8; 0], u64> = Server::builder("svc").root(dir.path()).create().unwrap();
        let c: Client<[u8; 0], u64> = Client::builder("svc").root(dir.path()).create().unwrap();
        let p = c.send([]).unwrap();
        s.recv_timeout(WAIT)
            .unwrap()
            .expect("a request")
            .respond_last(7)
            .unwrap();
        assert_eq!(**p.recv_timeout(WAIT).unwrap().unwrap(), 7);
    }
    assert_empty(dir.path());
}

#[test]
fn holds_a_symlink_planted_as_a_servers_queue_is_never_followed() {
    let dir = root();
    // A live topic, and a "request queue" that is a symlink to its directory.
    let victim_sub = shmx::Subscriber::<u64>::builder("victim")
        .root(dir.path())
        .create()
        .unwrap();
    let victim = Publisher::<u64>::builder("victim")
        .root(dir.path())
        .create()
        .unwrap();
    let planted = dir.path().join(format!("svc@req.{:016x}", 0xaau64));
    std::os::unix::fs::symlink(dir.path().join("victim"), &planted).unwrap();
    let before = listing(&dir.path().join("victim"));
    {
        // A client that looks for servers; one of other types (the record mismatches, so
        // the service's parts are swept); then the first leaves as the last endpoint.
        let c: Client<u64, u64> = Client::builder("svc").root(dir.path()).create().unwrap();
        assert_eq!(c.server_count(), 0);
        // The planted entry is no server: refused (the link is not followed).
        assert!(matches!(
            c.send(1),
            Err(Error::PeerGone { .. } | Error::PermissionDenied { .. })
        ));
        let other = Client::<u32, u32>::builder("svc").root(dir.path()).create();
        assert!(
            matches!(other, Err(Error::TypeMismatch { .. })),
            "{:?}",
            other.err()
        );
        drop(c);
    }
    assert!(planted.is_symlink());
    assert_eq!(listing(&dir.path().join("victim")), before);
    assert_eq!(victim.subscriber_count(), 1);
    victim.send(5).unwrap();
    assert_eq!(*victim_sub.recv_timeout(WAIT).unwrap().unwrap(), 5);
    drop((victim, victim_sub));
    std::fs::remove_file(&planted).unwrap();
    let _ = std::fs::remove_file(dir.path().join("svc@service"));
    drop(
        Client::<u64, u64>::builder("svc")
            .root(dir.path())
            .create()
            .unwrap(),
    );
    assert_empty(dir.path());
}
