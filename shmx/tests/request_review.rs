//! A second attacker's review of request/response, after its round trip was made faster:
//! each `finding_*` test failed while the problem it names was there (all are fixed); each
//! `holds_*` test checks a claim that was attacked and held.

use shmx::{Client, Error, Server};
use std::os::unix::fs::FileExt;
use std::time::{Duration, Instant};

mod common;
use common::{assert_empty, root};

const WAIT: Duration = Duration::from_secs(10);

/// An event loop that calls `take()` once per tick of 100 ms (a wait with a timeout) learns
/// that the server of its request is gone on its first or second call, as a spinning one
/// does within 50 ms. (The faster round trip had `take` look at the server on every 8th
/// empty call only: 9 ticks, 0.9 s, for this loop.)
#[test]
fn finding_a_slow_poller_learns_its_server_is_gone_at_once() {
    let dir = root();
    let client = Client::<u64, u64>::builder("review/slow")
        .root(dir.path())
        .create()
        .unwrap();
    let server = Server::<u64, u64>::builder("review/slow")
        .root(dir.path())
        .create()
        .unwrap();
    client.wait_for_servers(1, WAIT).unwrap();
    let pending = client.send(1).unwrap();
    drop(server); // the request is never taken
    let mut calls = 0;
    let got = loop {
        // The pace of the loop under test (a tick), not a wait for something to happen.
        std::thread::sleep(Duration::from_millis(100));
        calls += 1;
        match pending.take() {
            Ok(None) if calls < 20 => continue,
            other => break other.map(|r| r.map(|r| **r)),
        }
    };
    assert!(
        matches!(got, Err(Error::PeerGone { .. })),
        "{got:?} after {calls} calls"
    );
    assert!(calls <= 2, "PeerGone after {calls} calls of a 100 ms loop");
    drop(pending);
    drop(client);
    assert_empty(dir.path());
}

/// `is_last()` says what the response's header said when it was taken: a server that
/// rewrites its chunk's tag afterwards (it may: the chunk is its own) changes nothing the
/// client already holds. (Read live, it went from false to true.)
#[test]
fn finding_a_response_keeps_the_end_mark_it_was_taken_with() {
    let dir = root();
    let server = Server::<u64, u64>::builder("review/mark")
        .root(dir.path())
        .create()
        .unwrap();
    let client = Client::<u64, u64>::builder("review/mark")
        .root(dir.path())
        .create()
        .unwrap();
    let pending = client.send(1).unwrap();
    let request = server.recv_timeout(WAIT).unwrap().expect("a request");
    let id = request.request_id();
    const MARK: u64 = 0xDEAD_BEEF_0BAD_F00D;
    request.respond(MARK).unwrap();
    let response = pending.recv_timeout(WAIT).unwrap().expect("a response");
    assert!(!response.is_last());
    // The hostile server's move: LAST set in the tag word (the header's fourth word) of the
    // chunk that holds MARK, in the client's response queue's data segment.
    let mut flipped = 0;
    for entry in std::fs::read_dir(dir.path()).unwrap().flatten() {
        if !entry.file_name().to_string_lossy().contains("@resp.") {
            continue;
        }
        for file in std::fs::read_dir(entry.path()).unwrap().flatten() {
            if !file.file_name().to_string_lossy().starts_with("data") {
                continue;
            }
            let bytes = std::fs::read(file.path()).unwrap();
            let out = std::fs::OpenOptions::new()
                .write(true)
                .open(file.path())
                .unwrap();
            let word = |at: usize| u64::from_ne_bytes(bytes[at..at + 8].try_into().unwrap());
            let mut at = 0;
            while at + 40 <= bytes.len() {
                if word(at + 24) == id << 32 && word(at + 32) == MARK {
                    let last = (id << 32) | 1;
                    out.write_at(&last.to_ne_bytes(), (at + 24) as u64).unwrap();
                    flipped += 1;
                }
                at += 64;
            }
        }
    }
    assert_eq!(flipped, 1, "the response's chunk was not found");
    assert!(!response.is_last(), "the mark changed after the take");
    drop(response);
    drop(request); // ends the stream with a marker
    assert!(pending.recv_timeout(WAIT).unwrap().is_none());
}

/// A client whose `max_in_flight` is above 64 may have that many requests queued at a
/// server with the default settings (a default `request_depth` of 64 refused the 65th with
/// `QueueFull`, which the client's documentation did not say).
#[test]
fn finding_the_default_server_queues_what_a_client_may_have_in_flight() {
    let dir = root();
    let _server = Server::<u64, u64>::builder("review/depth")
        .root(dir.path())
        .create()
        .unwrap();
    let client = Client::<u64, u64>::builder("review/depth")
        .root(dir.path())
        .max_in_flight(200)
        .create()
        .unwrap();
    client.wait_for_servers(1, WAIT).unwrap();
    let pending: Vec<_> = (0..200).map(|i| client.send(i).unwrap()).collect();
    assert_eq!(client.in_flight(), 200);
    assert!(matches!(client.send(200), Err(Error::InFlightLimit { .. })));
    drop(pending);
}

/// A server asked for a shallow queue holds each client to it: `QueueFull` once that many
/// requests wait, whatever the client's `max_in_flight`; the queue takes more as the server
/// takes them.
#[test]
fn holds_a_shallow_request_queue_refuses_what_it_cannot_hold() {
    let dir = root();
    let server = Server::<u64, u64>::builder("review/shallow")
        .root(dir.path())
        .request_depth(4)
        .create()
        .unwrap();
    let client = Client::<u64, u64>::builder("review/shallow")
        .root(dir.path())
        .max_in_flight(16)
        .create()
        .unwrap();
    client.wait_for_servers(1, WAIT).unwrap();
    let mut pending: Vec<_> = (0..4).map(|i| client.send(i).unwrap()).collect();
    assert!(matches!(client.send(4), Err(Error::QueueFull { .. })));
    let deadline = Instant::now() + WAIT;
    let request = loop {
        if let Some(r) = server.take().unwrap() {
            break r;
        }
        assert!(Instant::now() < deadline, "no request");
    };
    assert_eq!(**request, 0);
    pending.push(client.send(5).unwrap());
    request.respond_last(10).unwrap();
    let response = pending[0].recv_timeout(WAIT).unwrap().expect("a response");
    assert!(response.is_last() && **response == 10);
}
