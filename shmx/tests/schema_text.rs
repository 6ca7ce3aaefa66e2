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
