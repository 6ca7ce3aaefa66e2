//! Request/response in one process: responses matched to requests, streams, servers taken in
//! turn, timeouts and cancellation, limits, type mismatches on either side, bad names, and a
//! root left empty. (Across processes: `request_processes.rs`.)

use shmx::request::Pending;
use shmx::{Client, Error, Server, ShmMessage};
use std::path::Path;
use std::time::Duration;

mod common;
use common::{assert_empty, root};

const WAIT: Duration = Duration::from_secs(10);

#[derive(ShmMessage, Clone, Copy, Debug, PartialEq)]
#[repr(C)]
struct Get {
    key: u64,
    count: u32,
    _pad: u32,
}

#[derive(ShmMessage, Clone, Copy, Debug, PartialEq)]
#[repr(C)]
struct Value {
    key: u64,
    index: u32,
    server: u32,
}

#[derive(ShmMessage, Clone, Copy, Debug, PartialEq)]
#[repr(C)]
struct OtherValue {
    key: u64,
    index: f32,
    server: u32,
}

fn server(root: &Path) -> Server<Get, Value> {
    Server::builder("svc").root(root).create().unwrap()
}

fn client(root: &Path) -> Client<Get, Value> {
    Client::builder("svc").root(root).create().unwrap()
}

fn get(key: u64, count: u32) -> Get {
    Get {
        key,
        count,
        _pad: 0,
    }
}

/// Answers every waiting request of `server` with `count` responses (then drops it, which
/// ends the stream); returns how many it answered.
fn serve_all(server: &Server<Get, Value>, tag: u32) -> usize {
    let mut n = 0;
    while let Some(req) = server.take().unwrap() {
        for index in 0..req.count {
            req.respond(Value {
                key: req.key,
                index,
                server: tag,
            })
            .unwrap();
        }
        n += 1;
    }
    n
}

fn collect(pending: &Pending<'_, Get, Value>) -> Vec<Value> {
    let mut out = Vec::new();
    while let Some(r) = pending.recv_timeout(WAIT).unwrap() {
        out.push(**r);
    }
    out
}

#[test]
fn a_response_reaches_the_request_that_asked_and_streams_end() {
    let dir = root();
    let s = server(dir.path());
    let c = client(dir.path());
    assert_eq!(c.wait_for_servers(1, WAIT).unwrap(), 1);
    let one = c.send(get(1, 1)).unwrap();
    let ten = c.send(get(2, 10)).unwrap();
    let none = c.send(get(3, 0)).unwrap();
    assert_eq!(c.in_flight(), 3);
    assert_eq!(serve_all(&s, 7), 3);
    // Read out of order: the responses of the others wait for them.
    assert_eq!(collect(&none), vec![]);
    let got = collect(&ten);
    assert_eq!(got.len(), 10);
    for (i, v) in got.iter().enumerate() {
        assert_eq!((v.key, v.index, v.server), (2, i as u32, 7));
    }
    assert_eq!(
        collect(&one),
        vec![Value {
            key: 1,
            index: 0,
            server: 7
        }]
    );
    assert!(one.is_finished() && ten.is_finished() && none.is_finished());
    drop((one, ten, none));
    assert_eq!(c.in_flight(), 0);
    // Every chunk is back on both sides.
    let (cs, ss) = (c.pool_stats(), s.pool_stats());
    assert_eq!((cs.loaned, cs.delivered), (0, 0), "{cs:?}");
    assert_eq!((ss.loaned, ss.delivered), (0, 0), "{ss:?}");
    drop((c, s));
    assert_empty(dir.path());
}

#[test]
fn loaned_requests_and_responses_and_the_last_response() {
    let dir = root();
    let s = server(dir.path());
    let c = client(dir.path());
    let mut req = c.loan().unwrap();
    req.key = 9;
    req.count = 2;
    let pending = req.send().unwrap();
    let active = s.recv_timeout(WAIT).unwrap().expect("a request");
    assert_eq!((active.key, active.count), (9, 2));
    assert_eq!(active.client_id(), c.id());
    assert_eq!(active.request_id(), pending.id());
    let mut r = active.loan_response().unwrap();
    r.key = 9;
    r.index = 0;
    r.send().unwrap();
    active
        .respond_last(Value {
            key: 9,
            index: 1,
            server: 0,
        })
        .unwrap();
    let first = pending.recv_timeout(WAIT).unwrap().unwrap();
    assert!(!first.is_last());
    let last = pending.recv_timeout(WAIT).unwrap().unwrap();
    assert!(last.is_last() && last.index == 1);
    drop((first, last));
    assert!(pending.recv_timeout(WAIT).unwrap().is_none());
    // `finish` ends a stream with no response.
    let p2 = c.send(get(1, 0)).unwrap();
    s.recv_timeout(WAIT).unwrap().unwrap().finish().unwrap();
    assert!(p2.recv_timeout(WAIT).unwrap().is_none());
}

#[test]
fn requests_go_to_the_servers_in_turn_and_each_is_answered_once() {
    let dir = root();
    let (s1, s2) = (server(dir.path()), server(dir.path()));
    let c = client(dir.path());
    assert_eq!(c.wait_for_servers(2, WAIT).unwrap(), 2);
    let pendings: Vec<_> = (0..8).map(|k| c.send(get(k, 1)).unwrap()).collect();
    let (n1, n2) = (serve_all(&s1, 1), serve_all(&s2, 2));
    assert_eq!((n1, n2), (4, 4), "round robin over two servers");
    for (k, p) in pendings.iter().enumerate() {
        let got = collect(p);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].key, k as u64);
    }
}

#[test]
fn a_timeout_cancels_the_request_and_its_late_answer_goes_nowhere() {
    let dir = root();
    let s = server(dir.path());
    let c = client(dir.path());
    let slow = c.send(get(1, 1)).unwrap();
    let active = s.recv_timeout(WAIT).unwrap().unwrap();
    match slow.recv_timeout(Duration::from_millis(20)) {
        Err(Error::Timeout { .. }) => {}
        other => panic!(
            "expected a timeout, got {:?}",
            other.map(|r| r.map(|v| **v))
        ),
    }
    assert!(slow.is_finished());
    assert_eq!(
        c.in_flight(),
        0,
        "the timed-out request is no longer in flight"
    );
    let next = c.send(get(2, 1)).unwrap();
    // The slow answer to the cancelled request comes now: it must not reach `next`.
    active
        .respond(Value {
            key: 1,
            index: 0,
            server: 0,
        })
        .unwrap();
    drop(active);
    serve_all(&s, 0);
    assert_eq!(
        collect(&next),
        vec![Value {
            key: 2,
            index: 0,
            server: 0
        }]
    );
    assert!(slow.recv_timeout(WAIT).unwrap().is_none());
    // Dropping a pending request cancels it too.
    let dropped = c.send(get(3, 3)).unwrap();
    drop(dropped);
    serve_all(&s, 0);
    let after = c.send(get(4, 1)).unwrap();
    serve_all(&s, 0);
    assert_eq!(
        collect(&after),
        vec![Value {
            key: 4,
            index: 0,
            server: 0
        }]
    );
    drop((slow, next, after));
    // Nothing stays held: the cancelled responses were dropped.
    let ss = s.pool_stats();
    assert_eq!(ss.delivered, 0, "{ss:?}");
}

#[test]
fn limits_no_server_and_a_server_that_leaves() {
    let dir = root();
    let c: Client<Get, Value> = Client::builder("svc")
        .root(dir.path())
        .max_in_flight(2)
        .create()
        .unwrap();
    match c.send(get(1, 1)) {
        Err(Error::PeerGone { service, .. }) => assert_eq!(service, "svc"),
        other => panic!("no server: {:?}", other.err()),
    }
    let s = server(dir.path());
    let a = c.send(get(1, 1)).unwrap();
    let _b = c.send(get(2, 1)).unwrap();
    match c.send(get(3, 1)) {
        Err(Error::InFlightLimit { max_in_flight, .. }) => assert_eq!(max_in_flight, 2),
        other => panic!("expected InFlightLimit, got {:?}", other.err()),
    }
    // The server goes with the requests unanswered: each becomes PeerGone, in bounded time.
    drop(s);
    let t0 = std::time::Instant::now();
    match a.recv_timeout(WAIT) {
        Err(Error::PeerGone { reason, .. }) => assert!(reason.contains("gone"), "{reason}"),
        other => panic!("expected PeerGone, got {:?}", other.map(|r| r.is_some())),
    }
    assert!(t0.elapsed() < Duration::from_secs(2));
}

#[test]
fn types_are_checked_on_each_side_and_names_too() {
    let dir = root();
    let _s = server(dir.path());
    match Client::<Get, OtherValue>::builder("svc")
        .root(dir.path())
        .create()
    {
        Err(Error::TypeMismatch {
            topic,
            existing_type,
            requested_type,
            ..
        }) => {
            assert_eq!(topic, "svc (response type)");
            assert_eq!(
                (existing_type.as_str(), requested_type.as_str()),
                ("Value", "OtherValue")
            );
        }
        other => panic!("expected TypeMismatch, got {:?}", other.err()),
    }
    match Server::<Value, Value>::builder("svc")
        .root(dir.path())
        .create()
    {
        Err(Error::TypeMismatch { topic, .. }) => assert_eq!(topic, "svc (request type)"),
        other => panic!("expected TypeMismatch, got {:?}", other.err()),
    }
    for bad in ["", "a//b", "../x", "x\0y", &"n".repeat(250)] {
        match Client::<Get, Value>::builder(bad).root(dir.path()).create() {
            Err(Error::InvalidName { .. }) => {}
            other => panic!("{bad:?}: expected InvalidName, got {:?}", other.err()),
        }
    }
    // A service and a topic of the same name do not meet.
    let _topic = shmx::Publisher::<Value>::builder("svc")
        .root(dir.path())
        .create()
        .unwrap();
}

#[test]
fn the_last_endpoint_leaves_an_empty_root_and_new_types_may_follow() {
    let dir = root();
    {
        let _s = server(dir.path());
        let _c = client(dir.path());
    }
    assert_empty(dir.path());
    // Nobody uses the service: other types may take the name.
    let s = Server::<Value, Get>::builder("svc")
        .root(dir.path())
        .create()
        .unwrap();
    drop(s);
    assert_empty(dir.path());
}

#[cfg(feature = "tokio")]
#[test]
fn requests_and_responses_are_awaited_on_tokio() {
    let dir = root();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let s = server(dir.path());
        let c = client(dir.path());
        let pending = c.send(get(5, 3)).unwrap();
        let req = s.recv_async().await.unwrap();
        for index in 0..req.count {
            req.respond(Value {
                key: req.key,
                index,
                server: 1,
            })
            .unwrap();
        }
        drop(req);
        let mut got = Vec::new();
        while let Some(r) = pending.recv_async().await.unwrap() {
            got.push(r.index);
        }
        assert_eq!(got, vec![0, 1, 2]);
        // A server that goes: PeerGone, awaited.
        let orphan = c.send(get(6, 1)).unwrap();
        drop(s);
        let t0 = std::time::Instant::now();
        assert!(matches!(
            orphan.recv_async().await,
            Err(Error::PeerGone { .. })
        ));
        assert!(t0.elapsed() < Duration::from_secs(2));
    });
}
