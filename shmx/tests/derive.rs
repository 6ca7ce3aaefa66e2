//! Run-time behaviour of `#[derive(ShmMessage)]`: fingerprints, schemas, validation and the
//! `ALWAYS_VALID` / `ZEROABLE` flags of the generated impls.

use core::mem::{align_of, offset_of, size_of};
use shmx::message::{SchemaKind, ValidationContext, ValidationError};
use shmx::ShmMessage;

/// A context for values that contain no relative pointers (the bounds are not consulted).
fn ctx() -> ValidationContext {
    ValidationContext::new(core::ptr::null(), 0, 0)
}

/// Bytes with the alignment of every message in this file.
#[repr(C, align(16))]
struct Aligned<const N: usize>([u8; N]);

/// Validates the bytes as a `T`.
fn validate<T: ShmMessage, const N: usize>(bytes: &Aligned<N>) -> Result<(), ValidationError> {
    assert_eq!(N, size_of::<T>());
    assert!(align_of::<T>() <= 16);
    // SAFETY: `bytes` is 16-aligned (at least `T`'s alignment) and holds `size_of::<T>()`
    // readable bytes; `validate` reads them only as integers.
    unsafe { T::validate(bytes.0.as_ptr().cast::<T>(), &ctx()) }
}

mod publisher_side {
    #[derive(shmx::ShmMessage)]
    #[repr(C)]
    pub struct Pose {
        pub seq: u64,
        pub x: f64,
        pub y: f64,
    }
}

mod subscriber_side {
    #[derive(shmx::ShmMessage)]
    #[repr(C)]
    pub struct Pose {
        pub seq: u64,
        pub x: f64,
        pub y: f64,
    }
}

mod renamed_field {
    #[derive(shmx::ShmMessage)]
    #[repr(C)]
    pub struct Pose {
        pub seq: u64,
        pub x: f64,
        pub z: f64,
    }
}

mod swapped_fields {
    #[derive(shmx::ShmMessage)]
    #[repr(C)]
    pub struct Pose {
        pub x: f64,
        pub seq: u64,
        pub y: f64,
    }
}

mod same_size_types {
    #[derive(shmx::ShmMessage)]
    #[repr(C)]
    pub struct Unsigned {
        pub v: u32,
    }

    pub mod float {
        #[derive(shmx::ShmMessage)]
        #[repr(C)]
        #[shm(name = "Unsigned")]
        pub struct Float {
            pub v: f32,
        }
    }

    pub mod signed {
        #[derive(shmx::ShmMessage)]
        #[repr(C)]
        #[shm(name = "Unsigned")]
        pub struct Signed {
            pub v: i32,
        }
    }
}

#[derive(ShmMessage)]
#[repr(C)]
struct PoseV1 {
    seq: u64,
    x: f64,
    y: f64,
}

#[derive(ShmMessage)]
#[repr(C)]
#[shm(name = "PoseV1")]
struct PoseV2 {
    seq: u64,
    x: f64,
    y: f64,
}

#[derive(ShmMessage)]
#[repr(C)]
struct Numbers {
    a: u8,
    b: i8,
    c: u16,
    d: f32,
    e: [u64; 3],
    f: i128,
}

#[derive(ShmMessage, Debug, Clone, Copy, PartialEq)]
#[repr(u8)]
enum Mode {
    Idle = 1,
    Running = 2,
    Fault = 200,
}

#[derive(ShmMessage, Debug, Clone, Copy, PartialEq)]
#[repr(i32)]
enum Level {
    Low = -1,
    Zero,
    High = 1000,
}

#[derive(ShmMessage)]
#[repr(C)]
struct Flags {
    on: bool,
    _pad: [u8; 3],
    count: u32,
}

#[derive(ShmMessage)]
#[repr(C)]
struct Middle {
    id: u32,
    flags: [Flags; 2],
}

#[derive(ShmMessage)]
#[repr(C)]
struct Outer {
    seq: u64,
    level: Level,
    middle: Middle,
    _pad: [u8; 8],
}

#[test]
fn fingerprints_agree_for_equal_structs_in_different_modules() {
    assert_eq!(
        publisher_side::Pose::FINGERPRINT,
        subscriber_side::Pose::FINGERPRINT
    );
    assert_eq!(
        publisher_side::Pose::SCHEMA.describe(),
        subscriber_side::Pose::SCHEMA.describe()
    );
    assert_eq!(publisher_side::Pose::TYPE_NAME, "Pose");
    assert_eq!(
        publisher_side::Pose::FINGERPRINT,
        publisher_side::Pose::SCHEMA.fingerprint
    );
}

#[test]
fn fingerprints_differ_when_a_field_name_differs() {
    assert_ne!(
        publisher_side::Pose::FINGERPRINT,
        renamed_field::Pose::FINGERPRINT
    );
}

#[test]
fn fingerprints_differ_when_field_order_differs() {
    assert_ne!(
        publisher_side::Pose::FINGERPRINT,
        swapped_fields::Pose::FINGERPRINT
    );
}

#[test]
fn fingerprints_differ_when_a_field_type_of_the_same_size_differs() {
    use same_size_types::{float::Float, signed::Signed, Unsigned};
    // Same name, same size, same offsets: only the field's type differs.
    assert_eq!(Unsigned::TYPE_NAME, Float::TYPE_NAME);
    assert_eq!(Unsigned::TYPE_NAME, Signed::TYPE_NAME);
    assert_ne!(Unsigned::FINGERPRINT, Float::FINGERPRINT);
    assert_ne!(Unsigned::FINGERPRINT, Signed::FINGERPRINT);
    assert_ne!(Float::FINGERPRINT, Signed::FINGERPRINT);
}

#[test]
fn fingerprints_differ_when_the_type_name_differs() {
    assert_ne!(PoseV1::FINGERPRINT, publisher_side::Pose::FINGERPRINT);
}

#[test]
fn shm_name_makes_differently_named_types_agree() {
    assert_eq!(PoseV2::TYPE_NAME, "PoseV1");
    assert_eq!(PoseV2::SCHEMA.name, "PoseV1");
    assert_eq!(PoseV1::FINGERPRINT, PoseV2::FINGERPRINT);
}

#[test]
fn schema_lists_fields_with_their_offsets() {
    let schema = Numbers::SCHEMA;
    assert_eq!(schema.name, "Numbers");
    assert_eq!(schema.size, size_of::<Numbers>());
    assert_eq!(schema.align, align_of::<Numbers>());
    let SchemaKind::Struct(fields) = &schema.kind else {
        panic!("not a struct schema: {schema:?}");
    };
    let expected = [
        ("a", offset_of!(Numbers, a), u8::FINGERPRINT),
        ("b", offset_of!(Numbers, b), i8::FINGERPRINT),
        ("c", offset_of!(Numbers, c), u16::FINGERPRINT),
        ("d", offset_of!(Numbers, d), f32::FINGERPRINT),
        ("e", offset_of!(Numbers, e), <[u64; 3]>::FINGERPRINT),
        ("f", offset_of!(Numbers, f), i128::FINGERPRINT),
    ];
    assert_eq!(fields.len(), expected.len());
    for (field, (name, offset, fingerprint)) in fields.iter().zip(expected) {
        assert_eq!(field.name, name);
        assert_eq!(field.offset, offset, "offset of {name}");
        assert_eq!(field.schema.fingerprint, fingerprint, "schema of {name}");
    }
    assert_eq!(
        Outer::SCHEMA.describe(),
        "Outer(40,8){seq@0:u64,level@8:Level:i32{Low=-1,Zero=0,High=1000},\
         middle@12:Middle(20,4){id@0:u32,flags@4:[Flags(8,4){on@0:bool,_pad@1:[u8;3],count@4:u32};2]},\
         _pad@32:[u8;8]}"
    );
}

#[test]
fn enum_schema_lists_variants_and_repr() {
    let SchemaKind::Enum { repr, variants } = &Mode::SCHEMA.kind else {
        panic!("not an enum schema");
    };
    assert_eq!(*repr, shmx::message::Primitive::U8);
    let listed: Vec<(&str, i128)> = variants.iter().map(|v| (v.name, v.value)).collect();
    assert_eq!(listed, [("Idle", 1), ("Running", 2), ("Fault", 200)]);
    assert_eq!(Mode::SCHEMA.size, 1);
    assert_eq!(Level::SCHEMA.size, 4);
}

#[test]
fn enum_validation_accepts_known_discriminants() {
    for mode in [Mode::Idle, Mode::Running, Mode::Fault] {
        assert_eq!(validate::<Mode, 1>(&Aligned([mode as u8])), Ok(()));
    }
    for level in [Level::Low, Level::Zero, Level::High] {
        let bytes = Aligned((level as i32).to_ne_bytes());
        assert_eq!(validate::<Level, 4>(&bytes), Ok(()));
    }
}

#[test]
fn enum_validation_rejects_unknown_discriminants() {
    for byte in 0u8..=255 {
        let result = validate::<Mode, 1>(&Aligned([byte]));
        if [1, 2, 200].contains(&byte) {
            assert_eq!(result, Ok(()), "byte {byte}");
        } else {
            assert_eq!(
                result,
                Err(ValidationError::InvalidDiscriminant {
                    type_name: "Mode",
                    offset: 0,
                    value: i128::from(byte),
                }),
                "byte {byte}"
            );
        }
    }
    let bytes = Aligned((-2i32).to_ne_bytes());
    assert_eq!(
        validate::<Level, 4>(&bytes),
        Err(ValidationError::InvalidDiscriminant {
            type_name: "Level",
            offset: 0,
            value: -2,
        })
    );
}

/// Writes a valid `Outer` into aligned bytes (all zero except `level`, which must be known).
fn valid_outer() -> Aligned<{ size_of::<Outer>() }> {
    let mut bytes = Aligned([0u8; size_of::<Outer>()]);
    let level = offset_of!(Outer, level);
    bytes.0[level..level + 4].copy_from_slice(&(Level::High as i32).to_ne_bytes());
    bytes
}

#[test]
fn nested_validation_reports_the_offset_of_a_bad_bool() {
    const SIZE: usize = size_of::<Outer>();
    assert_eq!(validate::<Outer, SIZE>(&valid_outer()), Ok(()));

    let bad = offset_of!(Outer, middle)
        + offset_of!(Middle, flags)
        + size_of::<Flags>()
        + offset_of!(Flags, on);
    let mut bytes = valid_outer();
    bytes.0[bad] = 7;
    assert_eq!(
        validate::<Outer, SIZE>(&bytes),
        Err(ValidationError::InvalidBool {
            offset: bad,
            value: 7,
        })
    );
    assert_eq!(bad, 12 + 4 + 8);
}

#[test]
fn nested_validation_reports_the_offset_of_a_bad_enum() {
    const SIZE: usize = size_of::<Outer>();
    let mut bytes = valid_outer();
    let level = offset_of!(Outer, level);
    bytes.0[level..level + 4].copy_from_slice(&5i32.to_ne_bytes());
    assert_eq!(
        validate::<Outer, SIZE>(&bytes),
        Err(ValidationError::InvalidDiscriminant {
            type_name: "Level",
            offset: level,
            value: 5,
        })
    );
}

#[test]
fn zeroable_is_false_for_an_enum_without_a_zero_discriminant() {
    const { assert!(!Mode::ZEROABLE) };
    const { assert!(Level::ZEROABLE) };
    // A struct is zeroable only when every field is.
    const { assert!(Flags::ZEROABLE) };
    const { assert!(Outer::ZEROABLE) };
    #[derive(ShmMessage)]
    #[repr(C)]
    struct HasMode {
        mode: Mode,
        _pad: [u8; 3],
        n: u32,
    }
    const { assert!(!HasMode::ZEROABLE) };
}

#[test]
fn always_valid_is_true_for_numbers_and_false_with_a_bool_or_an_enum() {
    const { assert!(Numbers::ALWAYS_VALID) };
    const { assert!(PoseV1::ALWAYS_VALID) };
    const { assert!(!Flags::ALWAYS_VALID) };
    const { assert!(!Middle::ALWAYS_VALID) };
    const { assert!(!Mode::ALWAYS_VALID) };
    const { assert!(!Outer::ALWAYS_VALID) };
    // An always-valid message accepts any bytes.
    let bytes = Aligned([0xa5u8; size_of::<Numbers>()]);
    assert_eq!(
        validate::<Numbers, { size_of::<Numbers>() }>(&bytes),
        Ok(())
    );
}

#[test]
fn an_enum_covering_every_byte_is_always_valid() {
    macro_rules! all_bytes_enum {
        ($($v:ident)*) => {
            #[derive(ShmMessage)]
            #[repr(u8)]
            #[allow(dead_code, clippy::upper_case_acronyms)]
            enum Byte { $($v),* }
        };
    }
    all_bytes_enum!(
        V00 V01 V02 V03 V04 V05 V06 V07 V08 V09 V0A V0B V0C V0D V0E V0F
        V10 V11 V12 V13 V14 V15 V16 V17 V18 V19 V1A V1B V1C V1D V1E V1F
        V20 V21 V22 V23 V24 V25 V26 V27 V28 V29 V2A V2B V2C V2D V2E V2F
        V30 V31 V32 V33 V34 V35 V36 V37 V38 V39 V3A V3B V3C V3D V3E V3F
        V40 V41 V42 V43 V44 V45 V46 V47 V48 V49 V4A V4B V4C V4D V4E V4F
        V50 V51 V52 V53 V54 V55 V56 V57 V58 V59 V5A V5B V5C V5D V5E V5F
        V60 V61 V62 V63 V64 V65 V66 V67 V68 V69 V6A V6B V6C V6D V6E V6F
        V70 V71 V72 V73 V74 V75 V76 V77 V78 V79 V7A V7B V7C V7D V7E V7F
        V80 V81 V82 V83 V84 V85 V86 V87 V88 V89 V8A V8B V8C V8D V8E V8F
        V90 V91 V92 V93 V94 V95 V96 V97 V98 V99 V9A V9B V9C V9D V9E V9F
        VA0 VA1 VA2 VA3 VA4 VA5 VA6 VA7 VA8 VA9 VAA VAB VAC VAD VAE VAF
        VB0 VB1 VB2 VB3 VB4 VB5 VB6 VB7 VB8 VB9 VBA VBB VBC VBD VBE VBF
        VC0 VC1 VC2 VC3 VC4 VC5 VC6 VC7 VC8 VC9 VCA VCB VCC VCD VCE VCF
        VD0 VD1 VD2 VD3 VD4 VD5 VD6 VD7 VD8 VD9 VDA VDB VDC VDD VDE VDF
        VE0 VE1 VE2 VE3 VE4 VE5 VE6 VE7 VE8 VE9 VEA VEB VEC VED VEE VEF
        VF0 VF1 VF2 VF3 VF4 VF5 VF6 VF7 VF8 VF9 VFA VFB VFC VFD VFE VFF
    );
    const { assert!(Byte::ALWAYS_VALID) };
    const { assert!(Byte::ZEROABLE) };
}
