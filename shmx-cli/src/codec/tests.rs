//! Tests across the parts: JSON that round-trips through [`encode()`] and [`decode()`].

use super::*;
use serde_json::{json, Value};

pub(super) const POSE: &str = "Pose(32,8){seq@0:u64,x@8:f64,y@16:f64,heading@24:f32,flags@28:u32}";

/// Elements of a relative slice `decode` shows in these tests, unless a test says otherwise.
const SHOWN: usize = 1000;

fn round_trip(schema: &str, value: Value) -> Vec<u8> {
    let ty = parse(schema).unwrap();
    let bytes = encode(&ty, &value, 4096).unwrap();
    if !ty.has_relative() {
        assert_eq!(bytes.len(), ty.size(), "{schema}");
    }
    assert_eq!(decode(&ty, &bytes, SHOWN).unwrap(), value, "{schema}");
    bytes
}

#[test]
fn round_trips_a_flat_struct() {
    let bytes = round_trip(
        POSE,
        json!({"seq": 7, "x": 1.5, "y": -2.25, "heading": 0.1, "flags": 4000000000u32}),
    );
    assert_eq!(u64::from_ne_bytes(bytes[0..8].try_into().unwrap()), 7);
    assert_eq!(f64::from_ne_bytes(bytes[8..16].try_into().unwrap()), 1.5);
    assert_eq!(f32::from_ne_bytes(bytes[24..28].try_into().unwrap()), 0.1);
    assert_eq!(
        u32::from_ne_bytes(bytes[28..32].try_into().unwrap()),
        4_000_000_000
    );
}

#[test]
fn round_trips_nested_structs_arrays_enums_and_bools() {
    let schema = "Robot(48,8){pose@0:Pose(16,8){x@0:f64,y@8:f64},path@16:[[f32;2];2],\
                  mode@32:Mode:u8{Idle=0,Drive=1,Stop=2},ok@33:bool,id@34:[u8;4],_pad0@38:[u8;2],\
                  level@40:i32,_pad1@44:[u8;4]}";
    let ty = parse(schema).unwrap();
    assert_eq!(ty.size(), 48);
    let value = json!({
        "pose": {"x": 1.0, "y": -3.5},
        "path": [[0.5, 1.5], [2.5, -0.0]],
        "mode": "Drive",
        "ok": true,
        "id": [1, 2, 3, 255],
        "_pad0": [0, 0],
        "level": -5,
        "_pad1": [0, 0, 0, 0],
    });
    let bytes = round_trip(schema, value.clone());
    assert_eq!(bytes[32], 1);
    assert_eq!(bytes[33], 1);
    assert_eq!(&bytes[34..38], &[1, 2, 3, 255]);

    // Padding may be left out; it is then zeros.
    let mut without = value.clone();
    let obj = without.as_object_mut().unwrap();
    obj.remove("_pad0");
    obj.remove("_pad1");
    let mut again = encode(&ty, &without, 0).unwrap();
    assert_eq!(again, bytes);

    // Enums accept a variant's number too; bytes naming no variant decode as the number.
    let mut by_number = value.clone();
    by_number["mode"] = json!(2);
    again = encode(&ty, &by_number, 0).unwrap();
    assert_eq!(decode(&ty, &again, SHOWN).unwrap()["mode"], "Stop");
    again[32] = 9;
    again[33] = 7;
    let decoded = decode(&ty, &again, SHOWN).unwrap();
    assert_eq!(decoded["mode"], 9);
    assert_eq!(decoded["ok"], 7);
}

#[test]
fn wide_integers_and_odd_floats() {
    round_trip(
        "W(32,16){a@0:u128,b@16:i128}",
        json!({"a": u128::MAX.to_string(), "b": i128::MIN.to_string()}),
    );
    round_trip(
        "I(24,8){a@0:i8,b@1:u8,c@2:i16,d@4:u32,e@8:i64,f@16:u64}",
        json!({"a": -128, "b": 255, "c": -32768, "d": 0, "e": i64::MIN, "f": u64::MAX}),
    );
    round_trip(
        "F(32,8){a@0:f64,b@8:f64,c@16:f64,d@24:f32,_pad@28:[u8;4]}",
        json!({"a": "NaN", "b": "inf", "c": "-inf", "d": 3.5, "_pad": [0, 0, 0, 0]}),
    );
    // 128-bit integers also accept plain numbers.
    let ty = parse("u128").unwrap();
    let bytes = encode(&ty, &json!(5), 0).unwrap();
    assert_eq!(bytes.len(), 16);
    assert_eq!(decode(&ty, &bytes, SHOWN).unwrap(), "5");
    let ty = parse("Neg:i16{Down=-1,Up=1}").unwrap();
    let bytes = encode(&ty, &json!("Down"), 0).unwrap();
    assert_eq!(i16::from_ne_bytes(bytes[..].try_into().unwrap()), -1);
    assert_eq!(decode(&ty, &bytes, SHOWN).unwrap(), "Down");
}

#[test]
fn floats_read_back_exactly_from_their_text() {
    // What `decode` shows of a value is encoded as that value, as text (the JSON of the
    // command line) as well as a number, for extremes and 17-digit values too.
    let ty = parse("F(16,8){a@0:f64,b@8:f32,_pad@12:[u8;4]}").unwrap();
    for (a, b) in [
        (1.9660436650416766e282, f32::MAX),
        (-6.956272547438346e-112, f32::MIN),
        (f64::MAX, f32::MIN_POSITIVE),
        (5e-324, 1e-45),
    ] {
        let bytes = encode(&ty, &json!({"a": a, "b": b}), 0).unwrap();
        let shown = decode(&ty, &bytes, SHOWN).unwrap();
        let read: Value = serde_json::from_str(&shown.to_string()).unwrap();
        let again = encode(&ty, &read, 0).unwrap_or_else(|e| panic!("{shown}: {e}"));
        assert_eq!(again, bytes, "{shown}");
        assert_eq!(f64::from_ne_bytes(again[..8].try_into().unwrap()), a);
        assert_eq!(f32::from_ne_bytes(again[8..12].try_into().unwrap()), b);
    }
    // Beyond f32::MAX by half a unit in the last place or more: an infinity, refused.
    let ty = parse("f32").unwrap();
    assert!(encode(&ty, &json!(3.4028236e38), 0).is_err());
    assert_eq!(
        decode(&ty, &f32::MAX.to_ne_bytes(), SHOWN).unwrap(),
        3.4028235e38
    );
}

#[test]
fn short_input_is_an_error() {
    let ty = parse(POSE).unwrap();
    let e = decode(&ty, &[0; 31], SHOWN).unwrap_err();
    assert!(e.contains("32 bytes"), "{e}");
    assert!(decode(&ty, &[], SHOWN).is_err());
    // Bytes after the message (an unused tail) are ignored.
    assert!(decode(&ty, &[0; 40], SHOWN).is_ok());
}

// Relative pointers.

pub(super) const FRAME: &str = "Frame(24,8){seq@0:u64,label@8:relstr,pixels@16:rel[u8]}";

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes(bytes[at..at + 4].try_into().unwrap())
}

/// Writes a relative pointer (`offset`, `len`) at byte `at`.
fn put(bytes: &mut [u8], at: usize, offset: u32, len: u32) {
    bytes[at..at + 4].copy_from_slice(&offset.to_ne_bytes());
    bytes[at + 4..at + 8].copy_from_slice(&len.to_ne_bytes());
}

#[test]
fn relative_pointers_point_into_the_tail_from_their_own_position() {
    let bytes = round_trip(
        FRAME,
        json!({"seq": 3, "label": "cam0", "pixels": [1, 2, 3, 255]}),
    );
    // The message is 24 bytes; "cam0" at 24 (8 + 16), the pixels at 28 (16 + 12); the
    // sample ends with the last pixel.
    assert_eq!((u32_at(&bytes, 8), u32_at(&bytes, 12)), (16, 4));
    assert_eq!((u32_at(&bytes, 16), u32_at(&bytes, 20)), (12, 4));
    assert_eq!(&bytes[24..], b"cam0\x01\x02\x03\xff");

    // Each allocation is aligned for its elements: "abc" at 24..27, the u16s at 28, the
    // u64 at 40.
    let schema = "S(24,4){s@0:relstr,v@8:rel[u16],w@16:rel[u64]}";
    let bytes = round_trip(
        schema,
        json!({"s": "abc", "v": [1, 65535, 3], "w": [u64::MAX]}),
    );
    assert_eq!(bytes.len(), 48);
    assert_eq!((u32_at(&bytes, 0), u32_at(&bytes, 4)), (24, 3));
    assert_eq!((u32_at(&bytes, 8), u32_at(&bytes, 12)), (20, 3));
    assert_eq!((u32_at(&bytes, 16), u32_at(&bytes, 20)), (24, 1));
    assert_eq!(&bytes[40..], &u64::MAX.to_ne_bytes());
}

#[test]
fn empty_relative_pointers_use_no_tail() {
    let bytes = round_trip(FRAME, json!({"seq": 1, "label": "", "pixels": []}));
    assert_eq!(bytes.len(), 24);
    assert_eq!(&bytes[8..], &[0; 16]);
    // An empty pointer may hold any offset.
    let ty = parse(FRAME).unwrap();
    let mut odd = bytes.clone();
    put(&mut odd, 8, u32::MAX, 0);
    assert_eq!(
        decode(&ty, &odd, SHOWN).unwrap(),
        json!({"seq": 1, "label": "", "pixels": []})
    );
}

#[test]
fn relative_slices_of_structs_and_nested_pointers_round_trip() {
    round_trip(
        "Path(24,4){points@0:rel[P(8,4){x@0:f32,y@4:f32}],modes@8:rel[M:u8{A=0,B=1}],ok@16:rel[bool]}",
        json!({
            "points": [{"x": 1.5, "y": -2.0}, {"x": 0.0, "y": 3.25}],
            "modes": ["B", "A", "B"],
            "ok": [true, false],
        }),
    );
    let bytes = round_trip(
        "Outer(28,4){id@0:u32,inner@4:Inner(24,4){names@0:[relstr;2],big@16:rel[u128]}}",
        json!({
            "id": 9,
            "inner": {"names": ["a", "ünïcode"], "big": [u128::MAX.to_string(), "5"]},
        }),
    );
    // Message 28 bytes; "a" at 28, "ünïcode" (9 bytes) at 29..38, the u128s at 48.
    assert_eq!(bytes.len(), 48 + 32);
    assert_eq!(u32_at(&bytes, 20) as usize + 20, 48);
}

#[test]
fn long_slices_are_cut_short_with_a_count_of_the_rest() {
    let ty = parse("T(8,4){v@0:rel[u16]}").unwrap();
    let all: Vec<u16> = (0..100).collect();
    let bytes = encode(&ty, &json!({ "v": all }), 4096).unwrap();
    let mut shown: Vec<Value> = (0..64).map(|i| json!(i)).collect();
    shown.push(json!({"...": 36}));
    assert_eq!(decode(&ty, &bytes, 64).unwrap(), json!({ "v": shown }));
    assert_eq!(
        decode(&ty, &bytes, 0).unwrap(),
        json!({"v": [{"...": 100}]})
    );
    assert_eq!(decode(&ty, &bytes, 100).unwrap(), json!({ "v": all }));
    // Strings are never cut.
    let ty = parse("T(8,4){s@0:relstr}").unwrap();
    let long = "x".repeat(1000);
    let bytes = encode(&ty, &json!({ "s": long }), 4096).unwrap();
    assert_eq!(decode(&ty, &bytes, 0).unwrap(), json!({ "s": long }));
}

#[test]
fn encoding_relative_pointers_checks_the_json_and_the_tail() {
    let ty = parse(FRAME).unwrap();
    let err = |value: Value, tail: usize| encode(&ty, &value, tail).unwrap_err();
    assert_eq!(
        err(json!({"seq": 1, "label": 5, "pixels": []}), 64),
        r#"field "label": expected a string, found 5"#
    );
    assert_eq!(
        err(json!({"seq": 1, "label": "", "pixels": "abc"}), 64),
        r#"field "pixels": expected an array, found "abc""#
    );
    assert_eq!(
        err(json!({"seq": 1, "label": "", "pixels": [1, 256]}), 64),
        r#"field "pixels[1]": 256 is out of range for u8"#
    );
    // "cam0" takes 4 of the 6 bytes: 3 pixels do not fit.
    assert_eq!(
        err(json!({"seq": 1, "label": "cam0", "pixels": [1, 2, 3]}), 6),
        "field \"pixels\": the tail is full: 3 element(s) of 1 byte(s) need 3 byte(s) of \
         tail, but only 2 of 6 are free (raise --max-tail-bytes)"
    );
    // Exactly full is fine; a type without relative pointers needs no tail.
    let bytes = encode(
        &ty,
        &json!({"seq": 1, "label": "cam0", "pixels": [1, 2]}),
        6,
    )
    .unwrap();
    assert_eq!(bytes.len(), 30);
    assert!(encode(&ty, &json!({"seq": 1, "label": "x", "pixels": []}), 0).is_err());
}

/// The error of decoding `bytes` as `schema`, which must not decode.
fn decode_err(schema: &str, bytes: &[u8]) -> String {
    let ty = parse(schema).unwrap();
    match decode(&ty, bytes, SHOWN) {
        Ok(v) => panic!("{schema}: decoded {v}"),
        Err(e) => e,
    }
}

#[test]
fn hostile_relative_pointers_are_errors_that_name_the_field() {
    let good = encode(
        &parse(FRAME).unwrap(),
        &json!({"seq": 1, "label": "cam0", "pixels": [1, 2, 3]}),
        64,
    )
    .unwrap();
    assert_eq!(good.len(), 31);
    let with = |at: usize, offset: u32, len: u32| {
        let mut b = good.clone();
        put(&mut b, at, offset, len);
        b
    };
    let cases: &[(Vec<u8>, &str)] = &[
        // One byte past the published end.
        (
            with(16, 12, 4),
            r#"field "pixels": relative pointer (offset 12, 4 elements) runs past the end of the sample (31 bytes)"#,
        ),
        (with(16, u32::MAX, 1), "runs past the end of the sample"),
        (with(16, 12, u32::MAX), "runs past the end of the sample"),
        // Into the message itself (at itself, and before the tail).
        (
            with(16, 0, 1),
            r#"field "pixels": relative pointer (offset 0, 1 elements) points before the tail, into the message (24 bytes)"#,
        ),
        (with(8, 4, 4), "points before the tail"),
        // Bytes that are not UTF-8.
        (
            {
                let mut b = good.clone();
                b[26] = 0xff;
                b
            },
            r#"field "label": string of 4 bytes at byte 24 is not UTF-8"#,
        ),
        // Cut short: the message itself is incomplete.
        (
            good[..20].to_vec(),
            "a message of this type is 24 bytes, but only 20",
        ),
    ];
    for (bytes, expected) in cases {
        let e = decode_err(FRAME, bytes);
        assert!(e.contains(expected), "expected {expected:?} in {e:?}");
    }

    // Misaligned: a u32 slice whose data starts 2 bytes into the tail.
    let schema = "T(8,4){v@0:rel[u32]}";
    let mut b = vec![0; 8 + 2 + 8];
    put(&mut b, 0, 10, 2);
    let e = decode_err(schema, &b);
    assert_eq!(
        e,
        r#"field "v": relative pointer (offset 10, 2 elements) points to byte 10, not aligned to 4 for its elements"#
    );
    put(&mut b, 0, 8, 2);
    assert!(decode(&parse(schema).unwrap(), &b, SHOWN).is_ok());

    // Overflow: 2^61 elements of 16 bytes each do not fit in any address space.
    let schema = "T(8,4){v@0:rel[[u8;17]]}";
    let mut b = vec![0; 8];
    put(&mut b, 0, 8, u32::MAX);
    let ty = parse(schema).unwrap();
    assert!(decode(&ty, &b, SHOWN)
        .unwrap_err()
        .contains("runs past the end"));
    let schema = "T(8,4){v@0:rel[[u64;2305843009213693951]]}";
    let e = decode_err(schema, &b);
    assert!(e.contains("is too long: its length overflows"), "{e}");

    // Nested: the path names the pointer.
    let schema = "Outer(20,4){id@0:u32,inner@4:Inner(16,4){names@0:[relstr;2]}}";
    let mut b = vec![0; 20 + 2];
    put(&mut b, 4, 16, 1); // names[0] -> byte 20
    put(&mut b, 12, 9, 2); // names[1] -> byte 21, one too many
    b[20] = b'a';
    b[21] = b'b';
    let e = decode_err(schema, &b);
    assert!(
        e.starts_with(
            r#"field "inner.names[1]": relative pointer (offset 9, 2 elements) runs past"#
        ),
        "{e}"
    );
}

/// A small deterministic generator of bytes for the test below (xorshift64*).
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

#[test]
fn decoding_any_bytes_never_panics() {
    let schemas = [
        FRAME,
        "S(24,4){s@0:relstr,v@8:rel[u16],w@16:rel[u64]}",
        "Path(24,4){points@0:rel[P(8,4){x@0:f32,y@4:f32}],modes@8:rel[M:u8{A=0,B=1}],ok@16:rel[bool]}",
        "Outer(28,4){id@0:u32,inner@4:Inner(24,4){names@0:[relstr;2],big@16:rel[u128]}}",
        "T(8,4){v@0:rel[[u64;2305843009213693951]]}",
        "T(8,4){v@0:rel[Empty(0,1){}]}",
    ];
    let mut noise = Noise(0x9e37_79b9_7f4a_7c15);
    for schema in schemas {
        let ty = parse(schema).unwrap();
        for round in 0..2000 {
            let len = ty.size() + (noise.next() % 64) as usize;
            let mut bytes: Vec<u8> = (0..len).map(|_| noise.next() as u8).collect();
            // Half the time, small offsets and lengths, which point somewhere near.
            if round % 2 == 0 {
                for at in (0..ty.size()).step_by(4) {
                    let small = (noise.next() % 48) as u8;
                    bytes[at] = small;
                    bytes[at + 1..at + 4].fill(0);
                }
            }
            // Ok or Err, never a panic; a slice shows at most 8 elements (and the marker).
            if let Ok(value) = decode(&ty, &bytes, 8) {
                let text = value.to_string();
                assert!(text.len() < 64 * 1024, "{schema}: {text}");
            }
        }
    }
}
