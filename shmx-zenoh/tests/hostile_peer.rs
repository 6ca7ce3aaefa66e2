//! A hostile Zenoh peer against a receiving bridge (from an attacker's review): each test is an
//! attack that must fail.
mod common;

use common::{bridge, free_port, receiver_and_peer, root, u64_publisher, u64_subscriber};
use shmx::schema_text::MessageType;
use shmx::ShmMessage;
use shmx_zenoh::wire::{append, Header};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use zenoh::Wait;

fn hdr(fp: u64, size: u64, seq: u64, id: u64, len: u64) -> Header {
    Header {
        fingerprint: fp,
        size,
        sequence: seq,
        publisher_id: id,
        origin: 0xbad,
        publish_time: 0,
        len,
    }
}

fn rec(h: Header, body: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    append(&mut v, &h, body);
    v
}

/// An honest bridge on root `a`, connected to the receiving one (listening on `port_b`, on
/// root `b`), forwarding a `u64` topic, `t/legit`: the bridge, and whether a sample of it
/// arrived on `b` within `within`.
fn honest_u64_arrives(
    a: &std::path::Path,
    b: &std::path::Path,
    port_b: u16,
    within: Duration,
) -> (shmx_zenoh::Bridge, bool) {
    let bridge_a = bridge(a, free_port(), Some(port_b), &["**"], &[]);
    let sub_b = u64_subscriber(b, "t/legit", 64);
    let pub_a = u64_publisher(a, "t/legit", 64);
    let start = Instant::now();
    while start.elapsed() < within {
        pub_a.send(5).unwrap();
        if sub_b.take().unwrap().is_some() {
            return (bridge_a, true);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    (bridge_a, false)
}

/// A queryable on `peer` that answers every schema question with `schema`.
fn answer_schemas(peer: &zenoh::Session, schema: &str) -> zenoh::query::Queryable<()> {
    let schema = schema.to_owned();
    peer.declare_queryable("shmx-schema/*")
        .callback(move |q| {
            let _ = q.reply(q.key_expr().clone(), schema.clone()).wait();
        })
        .wait()
        .unwrap()
}

/// Puts `payload` until `done()` (peers may not be linked yet).
fn put_until(peer: &zenoh::Session, key: &str, payload: &[u8], mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < Duration::from_secs(20), "never linked");
        peer.put(key, payload.to_vec()).wait().unwrap();
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A: a peer answers a schema question with garbage first. Were answers cached before being
/// checked, the type would be refused for good; an honest bridge's topic of it must arrive.
#[test]
fn attack_schema_cache_poisoning() {
    let a = root();
    let (b, port_b, bridge_b, peer) = receiver_and_peer();
    let _q = peer
        .declare_queryable("shmx-schema/*")
        .callback(|q| {
            let _ = q.reply(q.key_expr().clone(), "garbage(").wait();
        })
        .wait()
        .unwrap();
    // One sample of u64's fingerprint on a junk topic.
    let r = rec(hdr(u64::FINGERPRINT, 8, 1, 7, 8), &1u64.to_ne_bytes());
    put_until(&peer, "shmx/junk", &r, || !bridge_b.problems().is_empty());
    eprintln!("problems: {:?}", bridge_b.problems());
    drop(_q);
    // Now an honest bridge forwards a u64 topic: it never arrives.
    let (bridge_a, got) = honest_u64_arrives(a.path(), b.path(), port_b, Duration::from_secs(8));
    eprintln!("problems: {:?}", bridge_b.problems());
    assert!(
        got,
        "honest u64 topic never delivered after one garbage schema answer"
    );
    drop((bridge_a, bridge_b));
}

/// B: one payload of records of 60 distinct fingerprints, and a schema queryable that never
/// answers. Were schemas asked for one at a time, waiting 2 s each, an honest topic would
/// wait minutes; it must arrive.
#[test]
fn attack_schema_timeout_stalls_ingress() {
    let a = root();
    let (b, port_b, bridge_b, peer) = receiver_and_peer();
    let held: Arc<Mutex<Vec<zenoh::query::Query>>> = Default::default();
    let h2 = held.clone();
    let _q = peer
        .declare_queryable("shmx-schema/*")
        .callback(move |q| h2.lock().unwrap().push(q))
        .wait()
        .unwrap();
    let mut payload = Vec::new();
    for i in 0..60u64 {
        append(&mut payload, &hdr(0x1000 + i, 8, 1, 7, 0), b"");
    }
    put_until(&peer, "shmx/junk", &payload, || {
        !held.lock().unwrap().is_empty()
    });
    let (bridge_a, got) = honest_u64_arrives(a.path(), b.path(), port_b, Duration::from_secs(15));
    eprintln!("schema queries held: {}", held.lock().unwrap().len());
    assert!(
        got,
        "honest topic not delivered within 15 s: ingress stalled on schema queries"
    );
    drop((bridge_a, bridge_b));
}

/// C: records under 20 made-up publisher ids (no bridge announces them). Were a relay made
/// for each and kept, they would fill the topic's publisher slots; a local publisher must
/// still join.
#[test]
fn attack_publisher_ids_fill_topic_slots() {
    let (b, _, bridge_b, peer) = receiver_and_peer();
    let _q = answer_schemas(&peer, MessageType::of::<u64>().schema());
    let sub_b = u64_subscriber(b.path(), "t/victim", 64);
    let mut payload = Vec::new();
    for id in 1..=20u64 {
        append(
            &mut payload,
            &hdr(u64::FINGERPRINT, 8, 1, 100 + id, 8),
            &id.to_ne_bytes(),
        );
    }
    put_until(&peer, "shmx/t/victim", &payload, || {
        bridge_b.stats().received.load(Ordering::Relaxed) >= 8
    });
    std::thread::sleep(Duration::from_millis(500));
    eprintln!("problems: {:?}", bridge_b.problems());
    let local = shmx::Publisher::<u64>::builder("t/victim")
        .root(b.path())
        .create();
    assert!(local.is_ok(), "local publisher refused: {:?}", local.err());
    drop((sub_b, bridge_b));
}

/// D: thousands of records of the wrong length (3 bytes for a u64 topic). They must be
/// counted, not published, without a problem string (or a new relay) each.
#[test]
fn attack_bad_length_grows_problems_and_churns_relays() {
    let (_b, _, bridge_b, peer) = receiver_and_peer();
    let _q = answer_schemas(&peer, MessageType::of::<u64>().schema());
    let mut payload = Vec::new();
    for _ in 0..200 {
        append(&mut payload, &hdr(u64::FINGERPRINT, 8, 1, 55, 3), b"abc");
    }
    // The relay is made from the first record (its length is checked only against the
    // type), then every short record is counted as malformed.
    put_until(&peer, "shmx/t/short", &payload, || {
        bridge_b.stats().malformed.load(Ordering::Relaxed) >= 1
    });
    for _ in 0..20 {
        peer.put("shmx/t/short", payload.clone()).wait().unwrap();
    }
    std::thread::sleep(Duration::from_secs(3));
    let n = bridge_b.problems().len();
    eprintln!(
        "problems after 21 payloads of 200 short records: {n}; first: {:?}",
        bridge_b.problems().first()
    );
    assert!(n < 100, "{n} problems kept");
    assert_eq!(bridge_b.stats().received.load(Ordering::Relaxed), 0);
    drop(bridge_b);
}

/// E: a publisher's samples wait for its relay (a slow schema answer) behind another's.
/// Those that waited must be published before newer ones of it: in order.
#[test]
fn attack_reordering_through_later_queue() {
    let (b, _, bridge_b, peer) = receiver_and_peer();
    let schemas: std::collections::HashMap<u64, String> = [
        (
            u64::FINGERPRINT,
            MessageType::of::<u64>().schema().to_owned(),
        ),
        (
            u32::FINGERPRINT,
            MessageType::of::<u32>().schema().to_owned(),
        ),
    ]
    .into_iter()
    .collect();
    let asked: Arc<Mutex<Vec<u64>>> = Default::default();
    let asked2 = asked.clone();
    let _q = peer
        .declare_queryable("shmx-schema/*")
        .callback(move |q| {
            let fp =
                u64::from_str_radix(q.key_expr().as_str().rsplit('/').next().unwrap(), 16).unwrap();
            asked2.lock().unwrap().push(fp);
            let s = schemas.get(&fp).cloned();
            // A slow (far) answer.
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(700));
                if let Some(s) = s {
                    let _ = q.reply(q.key_expr().clone(), s).wait();
                }
            });
        })
        .wait()
        .unwrap();
    let _sq = u64_subscriber(b.path(), "t/q", 64);
    let sp = shmx::Subscriber::<u32>::builder("t/p")
        .root(b.path())
        .queue_depth(64)
        .create()
        .unwrap();
    let p = |v: u32| {
        rec(
            hdr(u32::FINGERPRINT, 4, v as u64, 0x77, 4),
            &v.to_ne_bytes(),
        )
    };
    let q1 = rec(hdr(u64::FINGERPRINT, 8, 1, 0x66, 8), &1u64.to_ne_bytes());
    put_until(&peer, "shmx/t/q", &q1, || {
        asked.lock().unwrap().contains(&u64::FINGERPRINT)
    });
    peer.put("shmx/t/p", p(1)).wait().unwrap();
    peer.put("shmx/t/p", p(2)).wait().unwrap();
    let start = Instant::now();
    while !asked.lock().unwrap().contains(&u32::FINGERPRINT) {
        assert!(start.elapsed() < Duration::from_secs(10));
        std::thread::sleep(Duration::from_millis(5));
    }
    peer.put("shmx/t/p", p(3)).wait().unwrap();
    std::thread::sleep(Duration::from_secs(2));
    let mut got = Vec::new();
    while let Some(s) = sp.take().unwrap() {
        got.push((*s, s.sequence()));
    }
    eprintln!("(value, sequence) on t/p: {got:?}");
    assert_eq!(got.iter().map(|g| g.0).collect::<Vec<_>>(), [1, 2, 3]);
    drop(bridge_b);
}

/// F: a peer declares and undeclares a live publisher's liveliness token. The publisher's
/// relay must stay, and its later samples arrive.
#[test]
fn attack_liveliness_spoof_silences_a_publisher() {
    let a = root();
    let (b, port_b, bridge_b, peer) = receiver_and_peer();
    let bridge_a = bridge(a.path(), free_port(), Some(port_b), &["**"], &[]);
    let seen: Arc<Mutex<Option<Header>>> = Default::default();
    let seen2 = seen.clone();
    let _s = peer
        .declare_subscriber("shmx/t/live")
        .callback(move |s| {
            let bytes = s.payload().to_bytes();
            *seen2.lock().unwrap() = Header::decode(&bytes[..64]);
        })
        .wait()
        .unwrap();
    let sub_b = u64_subscriber(b.path(), "t/live", 256);
    let pub_a = u64_publisher(a.path(), "t/live", 64);
    let start = Instant::now();
    loop {
        pub_a.send(1).unwrap();
        std::thread::sleep(Duration::from_millis(50));
        if sub_b.take().unwrap().is_some() && seen.lock().unwrap().is_some() {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(20));
    }
    let h = seen.lock().unwrap().unwrap();
    let key = format!(
        "shmx-alive/{:016x}/{:016x}/t/live",
        h.origin, h.publisher_id
    );
    let token = peer.liveliness().declare_token(&key).wait().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    token.undeclare().wait().unwrap();
    std::thread::sleep(Duration::from_millis(500));
    while sub_b.take().unwrap().is_some() {}
    for v in 0..20 {
        pub_a.send(100 + v).unwrap();
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(500));
    let mut got = 0;
    while sub_b.take().unwrap().is_some() {
        got += 1;
    }
    eprintln!(
        "relays_removed={} got={got}",
        bridge_b.stats().relays_removed.load(Ordering::Relaxed)
    );
    assert!(
        got > 0,
        "a spoofed token's undeclare silenced a live publisher"
    );
    drop((bridge_a, bridge_b));
}

/// G: a peer puts under 100 topic names for a publisher no bridge announces. Their claims
/// (files and descriptors) and topics must not stay for the bridge's life.
#[test]
fn attack_topic_names_accumulate_claims_and_topics() {
    let (b, _, bridge_b, peer) = receiver_and_peer();
    let _q = answer_schemas(&peer, MessageType::of::<u64>().schema());
    let r = rec(hdr(u64::FINGERPRINT, 8, 1, 9, 8), &1u64.to_ne_bytes());
    put_until(&peer, "shmx/x/warm", &r, || {
        bridge_b.stats().received.load(Ordering::Relaxed) >= 1
    });
    for i in 0..100 {
        peer.put(format!("shmx/x/t{i}"), r.clone()).wait().unwrap();
    }
    let start = Instant::now();
    while bridge_b.stats().received.load(Ordering::Relaxed) < 101
        && start.elapsed() < Duration::from_secs(20)
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    // No bridge announces publisher 9 (no liveliness token): its relays go, and with them
    // the claims, their descriptors and the topics.
    let claims = || {
        std::fs::read_dir(b.path())
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with(".bridge.in"))
            .count()
    };
    let start = Instant::now();
    while claims() > 0 {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "claims kept: {}",
            claims()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let topics = shmx::inspect::topic_names(b.path()).unwrap().len();
    assert_eq!(topics, 0, "junk topics kept");
    drop(bridge_b);
}

/// H: a peer sends records as long as it likes (Zenoh carries messages of up to a gigabyte),
/// and each remote publisher's relay makes room in shared memory for its longest samples.
/// Records past the bridge's bound must be counted and neither published nor given room.
#[test]
fn attack_huge_records_take_shared_memory() {
    #[derive(ShmMessage)]
    #[repr(C)]
    struct Blob {
        data: shmx::RelSlice<u8>,
    }
    let b = root();
    let port = free_port();
    let bridge_b = shmx_zenoh::Bridge::builder()
        .root(b.path())
        .zenoh_config(common::config(port, None))
        .receive(["**"])
        .max_sample_bytes(64 << 10)
        .start()
        .unwrap();
    let peer = zenoh::open(common::config(free_port(), Some(port)))
        .wait()
        .unwrap();
    let ty = MessageType::of::<Blob>();
    let _q = answer_schemas(&peer, ty.schema());
    let size = ty.size() as u64;
    let huge_len = size + (1 << 20);
    let huge = rec(
        hdr(ty.fingerprint(), size, 1, 7, huge_len),
        &vec![0; huge_len as usize],
    );
    put_until(&peer, "shmx/x/blob", &huge, || {
        bridge_b.stats().too_large.load(Ordering::Relaxed) >= 1
    });
    assert_eq!(bridge_b.stats().received.load(Ordering::Relaxed), 0);
    assert!(
        shmx::inspect::topic_names(b.path()).unwrap().is_empty(),
        "a topic was made for a record past the bound"
    );
    // A record within the bound (an empty slice) is published.
    let small = rec(
        hdr(ty.fingerprint(), size, 2, 7, size),
        &vec![0; size as usize],
    );
    put_until(&peer, "shmx/x/blob", &small, || {
        bridge_b.stats().received.load(Ordering::Relaxed) >= 1
    });
    let info = shmx::inspect::topic(b.path(), "x/blob").unwrap();
    let reserved: u64 = info.publishers.iter().map(|p| p.reserved_bytes).sum();
    assert!(reserved < 4 << 20, "{reserved} bytes reserved");
    drop(bridge_b);
}
