//! Message types known at run time by their schema text (`MessageType`) are the Rust types
//! with that layout: the same fingerprint, computed independently of the derive's; raw
//! endpoints that create a topic from one share it with typed endpoints both ways, refuse
//! a topic of another type, and write samples in place through a loan.

mod common;

use shmx::inspect::{RawPublisher, RawSubscriber};
use shmx::schema_text::MessageType;
use shmx::{
    Error, Publisher, PublisherConfig, RelSlice, RelStr, ShmMessage, Subscriber, SubscriberConfig,
};
use std::time::Duration;

#[derive(ShmMessage, Clone, Copy, Debug, PartialEq)]
#[repr(u8)]
enum Mode {
    Idle = 0,
    Drive = 7,
}

#[derive(ShmMessage, Clone, Copy)]
#[repr(C)]
struct Inner {
    a: i16,
    b: [u8; 2],
}

#[derive(ShmMessage)]
#[repr(C, align(16))]
struct Everything {
    big: u128,
    seq: u64,
    xy: [[f32; 2]; 3],
    inner: Inner,
    mode: Mode,
    on: bool,
    _pad0: [u8; 2],
    label: RelStr,
    values: RelSlice<f32>,
    _pad1: [u8; 8],
}

#[derive(ShmMessage, Clone, Copy)]
#[repr(i64)]
enum Signed {
    Low = -5,
    High = 1 << 40,
}

fn same<T: ShmMessage>() {
    let t = MessageType::of::<T>();
    assert_eq!(t.fingerprint(), T::FINGERPRINT, "{}", t.schema());
    assert_eq!(t.size(), std::mem::size_of::<T>());
    assert_eq!(t.align(), std::mem::align_of::<T>());
    assert_eq!(t.ty().sample_align(), T::SCHEMA.sample_align());
    assert_eq!(t.has_tail(), T::SCHEMA.has_relative());
    assert_eq!(t.ty().type_name(), T::TYPE_NAME);
}

#[test]
fn fingerprints_equal_the_derives() {
    same::<u8>();
    same::<bool>();
    same::<i128>();
    same::<f64>();
    same::<[u16; 7]>();
    same::<[[u8; 3]; 0]>();
    same::<Mode>();
    same::<Signed>();
    same::<Inner>();
    same::<Everything>();
    same::<RelStr>();
    same::<RelSlice<Inner>>();
}

#[test]
fn fingerprints_tell_apart_what_the_text_tells_apart() {
    let a = MessageType::parse("P(8,4){a@0:u32,b@4:u32}").unwrap();
    for other in [
        "P(8,4){b@0:u32,a@4:u32}",
        "Q(8,4){a@0:u32,b@4:u32}",
        "P(8,4){a@0:i32,b@4:u32}",
        "P(8,4){a@0:u32,b@4:f32}",
        "P(8,8){a@0:u32,b@4:u32}",
    ] {
        let b = MessageType::parse(other).unwrap();
        assert_ne!(a.fingerprint(), b.fingerprint(), "{other}");
    }
    for bad in [
        "P(8,4){a@0:u32}",
        "rkyv:Telemetry",
        "P(8,4){a@0:u32,b@4:u32",
        "",
    ] {
        let err = MessageType::parse(bad).unwrap_err();
        assert!(matches!(err, Error::InvalidSchema { .. }), "{bad}: {err}");
    }
}

#[test]
fn a_raw_publisher_of_a_parsed_type_feeds_a_typed_subscriber() {
    let root = common::root();
    let ty = MessageType::of::<Inner>();
    let publisher = RawPublisher::open(
        Some(root.path()),
        "mt/inner",
        Some(&ty),
        PublisherConfig::default(),
    )
    .unwrap();
    let typed = Subscriber::<Inner>::builder("mt/inner")
        .root(root.path())
        .create()
        .unwrap();
    let mut loan = publisher.loan(4).unwrap();
    // SAFETY: the loan holds at least 4 bytes, aligned for `Inner` (2).
    unsafe {
        let p = loan.as_mut_ptr();
        assert_eq!(
            std::slice::from_raw_parts(p, 4),
            &[0; 4],
            "the message is zeroed"
        );
        p.cast::<Inner>().write(Inner { a: -3, b: [1, 2] });
    }
    loan.publish(4).unwrap();
    let got = typed.recv_timeout(Duration::from_secs(5)).unwrap().unwrap();
    assert_eq!((got.a, got.b), (-3, [1, 2]));
    // A loan dropped unpublished goes back to the pool: many more loans than chunks succeed.
    for _ in 0..1000 {
        drop(publisher.loan(4).unwrap());
    }
    assert!(matches!(
        publisher.loan(5),
        Err(Error::InvalidConfig { .. })
    ));
    assert!(matches!(
        publisher.loan(4).unwrap().publish(3),
        Err(Error::InvalidConfig { .. })
    ));
}

#[test]
fn a_raw_subscriber_of_a_parsed_type_hears_a_typed_publisher() {
    let root = common::root();
    let ty = MessageType::of::<[u16; 2]>();
    let sub = RawSubscriber::open(
        Some(root.path()),
        "mt/arr",
        Some(&ty),
        SubscriberConfig::default(),
    )
    .unwrap();
    assert_eq!(sub.message_type(), Some(ty));
    let typed = Publisher::<[u16; 2]>::builder("mt/arr")
        .root(root.path())
        .create()
        .unwrap();
    typed.send([3, 4]).unwrap();
    let sample = sub.recv_timeout(Duration::from_secs(5)).unwrap().unwrap();
    assert_eq!(
        sample.bytes(),
        [3u16.to_ne_bytes(), 4u16.to_ne_bytes()].concat()
    );
    drop(sample);
    assert!(sub
        .recv_timeout(Duration::from_millis(20))
        .unwrap()
        .is_none());
    // Adopting the stored type.
    let adopted = RawSubscriber::open(
        Some(root.path()),
        "mt/arr",
        None,
        SubscriberConfig::default(),
    )
    .unwrap();
    assert_eq!(adopted.schema(), "[u16;2]");
    // A topic that does not exist cannot be adopted.
    let missing = RawSubscriber::open(
        Some(root.path()),
        "mt/none",
        None,
        SubscriberConfig::default(),
    );
    assert!(matches!(missing, Err(Error::Io { .. })));
}

#[test]
fn a_parsed_type_that_differs_is_a_type_mismatch_naming_both() {
    let root = common::root();
    let _typed = Subscriber::<Inner>::builder("mt/mismatch")
        .root(root.path())
        .create()
        .unwrap();
    // The same fields in another order.
    let ty = MessageType::parse("Inner(4,2){b@0:[u8;2],a@2:i16}").unwrap();
    let err = RawPublisher::open(
        Some(root.path()),
        "mt/mismatch",
        Some(&ty),
        PublisherConfig::default(),
    )
    .err()
    .unwrap();
    let Error::TypeMismatch {
        existing_fingerprint,
        requested_fingerprint,
        ..
    } = &err
    else {
        panic!("{err}")
    };
    assert_eq!(*existing_fingerprint, Inner::FINGERPRINT);
    assert_eq!(*requested_fingerprint, ty.fingerprint());
    let text = err.to_string();
    assert!(text.contains("a@0:i16") && text.contains("`b@0:"), "{text}");
}
