//! One schema text per layout: what differs in the layout differs in the text and the
//! fingerprint, two types that differ only in alignment cannot share a topic (and the error
//! says so), and a hand-written impl whose names the grammar cannot hold is refused when it
//! would create a topic.

mod common;

use shmx::message::{Schema, ValidationContext, ValidationError};
use shmx::{Error, Publisher, ShmMessage, Subscriber};

mod natural {
    use shmx::ShmMessage;

    #[derive(ShmMessage, Clone, Copy)]
    #[repr(C)]
    #[shm(name = "Pair")]
    pub struct Pair {
        pub a: u32,
        pub b: u32,
    }
}

mod raised {
    use shmx::ShmMessage;

    /// The same fields as `natural::Pair`, aligned to 8.
    #[derive(ShmMessage, Clone, Copy)]
    #[repr(C, align(8))]
    #[shm(name = "Pair")]
    pub struct Pair {
        pub a: u32,
        pub b: u32,
    }
}

#[test]
fn the_same_fields_aligned_otherwise_print_otherwise() {
    let (n, r) = (natural::Pair::SCHEMA, raised::Pair::SCHEMA);
    assert_eq!(n.describe(), "Pair(8,4){a@0:u32,b@4:u32}");
    assert_eq!(r.describe(), "Pair(8,8){a@0:u32,b@4:u32}");
    assert_ne!(natural::Pair::FINGERPRINT, raised::Pair::FINGERPRINT);
    // In a relative slice, too (where the alignment decides where elements lie).
    #[derive(ShmMessage)]
    #[repr(C)]
    struct A {
        v: shmx::RelSlice<natural::Pair>,
    }
    #[derive(ShmMessage)]
    #[repr(C)]
    #[shm(name = "A")]
    struct B {
        v: shmx::RelSlice<raised::Pair>,
    }
    assert_ne!(A::SCHEMA.describe(), B::SCHEMA.describe());
    assert_eq!((A::SCHEMA.sample_align(), B::SCHEMA.sample_align()), (4, 8));
}

#[test]
fn a_topic_refuses_the_type_aligned_otherwise_and_says_so() {
    let root = common::root();
    let _sub = Subscriber::<natural::Pair>::builder("pair")
        .root(root.path())
        .create()
        .unwrap();
    let e = Publisher::<raised::Pair>::builder("pair")
        .root(root.path())
        .create()
        .map(drop)
        .unwrap_err();
    let Error::TypeMismatch { difference, .. } = &e else {
        panic!("{e}")
    };
    assert_eq!(&**difference, "the type has alignment 4 there, 8 here");
}

/// A hand-written impl whose type name holds the grammar's punctuation: the text would read
/// as another layout (`Evil(1,1){a@0:u8}` and then more fields).
struct Evil {
    _a: u8,
}

static EVIL_FIELDS: [shmx::message::Field; 1] = [shmx::message::Field {
    name: "a",
    offset: 0,
    schema: u8::SCHEMA,
}];
static EVIL_SCHEMA: Schema = Schema::structure("Evil(1,1){a@0:u8},b@1:u8", 1, 1, &EVIL_FIELDS);

// SAFETY: `Evil` is one `u8` (repr(Rust) of a single `u8` field has its layout: 1 byte, no
// padding, no pointers; every bit pattern valid). Its schema's *name* is one the grammar
// cannot hold, which is what this test is about: the topic is never created.
unsafe impl ShmMessage for Evil {
    const TYPE_NAME: &'static str = "Evil(1,1){a@0:u8},b@1:u8";
    const SCHEMA: &'static Schema = &EVIL_SCHEMA;
    const ALWAYS_VALID: bool = true;
    const ZEROABLE: bool = true;
    unsafe fn validate(_: *const Self, _: &ValidationContext) -> Result<(), ValidationError> {
        Ok(())
    }
    fn __shmx_sealed(_: shmx::__private::Sealed) {}
}

#[test]
fn a_hand_written_impl_with_names_outside_the_grammar_creates_no_topic() {
    assert!(EVIL_SCHEMA.name_problem().is_some());
    let root = common::root();
    let e = Publisher::<Evil>::builder("evil")
        .root(root.path())
        .create()
        .map(drop)
        .unwrap_err();
    let Error::InvalidConfig { reason, .. } = &e else {
        panic!("{e}")
    };
    assert!(reason.contains("cannot be written down"), "{reason}");
    common::assert_empty(root.path());
}

/// An enum whose name is a path ending in a grammar word: allowed, since only whole names
/// are reserved.
#[derive(ShmMessage, Clone, Copy)]
#[repr(u8)]
#[shm(name = "a::relstr")]
enum Tagged {
    A = 0,
}

#[derive(ShmMessage, Clone, Copy)]
#[repr(C)]
struct Marked {
    e: Tagged,
}

#[test]
fn whether_samples_have_a_tail_is_stored_not_guessed_from_the_text() {
    assert_eq!(
        Marked::SCHEMA.describe(),
        "Marked(1,1){e@0:a::relstr:u8{A=0}}"
    );
    let root = common::root();
    let sub = Subscriber::<Marked>::builder("marked")
        .root(root.path())
        .create()
        .unwrap();
    let raw = shmx::inspect::RawPublisher::new(root.path(), "marked").unwrap();
    // No tail: a sample is exactly the message (the text holds `:relstr` all the same).
    assert_eq!(raw.capacity(), 1);
    assert!(raw.send(&[0, 0]).is_err());
    raw.send(&[0]).unwrap();
    assert!(matches!(sub.take().unwrap().unwrap().e, Tagged::A));
}

/// A zero-sized element type: no bytes, one value.
#[derive(ShmMessage, Clone, Copy, Debug, PartialEq)]
#[repr(C, align(16))]
struct Nothing {}

#[derive(ShmMessage)]
#[repr(C)]
struct Marks {
    marks: shmx::RelSlice<Nothing>,
}

#[test]
fn a_slice_of_zero_sized_elements_reads_back_its_length() {
    let root = common::root();
    let (sub, publisher) = common::pair::<Marks>(root.path());
    let mut sample = publisher.loan().unwrap();
    sample.writer().set_marks(&[Nothing {}; 5]).unwrap();
    sample.publish().unwrap();
    let got = sub.take().unwrap().unwrap();
    assert_eq!(got.marks.len(), 5);
    assert_eq!(got.marks(), [Nothing {}; 5]);
}
