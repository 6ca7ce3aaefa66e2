//! Tests across the parts: JSON that round-trips through [`encode()`] and [`decode()`].

use super::*;
use serde_json::{json, Value};

pub(super) const POSE: &str = "Pose{seq@0:u64,x@8:f64,y@16:f64,heading@24:f32,flags@28:u32}";

fn round_trip(schema: &str, value: Value) -> Vec<u8> {
    let ty = parse(schema).unwrap();
    let mut bytes = vec![0xAA; ty.size()];
    encode(&ty, &value, &mut bytes).unwrap();
    assert_eq!(decode(&ty, &bytes).unwrap(), value, "{schema}");
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
    let schema = "Robot{pose@0:Pose{x@0:f64,y@8:f64},path@16:[[f32;2];2],mode@32:Mode:u8(Idle=0,Drive=1,Stop=2),\
                  ok@33:bool,id@34:[u8;4],_pad0@38:[u8;2],level@40:i32,_pad1@44:[u8;4]}";
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
    let mut again = vec![0xFF; 48];
    encode(&ty, &without, &mut again).unwrap();
    assert_eq!(again, bytes);

    // Enums accept a variant's number too; bytes naming no variant decode as the number.
    let mut by_number = value.clone();
    by_number["mode"] = json!(2);
    encode(&ty, &by_number, &mut again).unwrap();
    assert_eq!(decode(&ty, &again).unwrap()["mode"], "Stop");
    again[32] = 9;
    again[33] = 7;
    let decoded = decode(&ty, &again).unwrap();
    assert_eq!(decoded["mode"], 9);
    assert_eq!(decoded["ok"], 7);
}

#[test]
fn wide_integers_and_odd_floats() {
    round_trip(
        "W{a@0:u128,b@16:i128}",
        json!({"a": u128::MAX.to_string(), "b": i128::MIN.to_string()}),
    );
    round_trip(
        "I{a@0:i8,b@1:u8,c@2:i16,d@4:u32,e@8:i64,f@16:u64}",
        json!({"a": -128, "b": 255, "c": -32768, "d": 0, "e": i64::MIN, "f": u64::MAX}),
    );
    round_trip(
        "F{a@0:f64,b@8:f64,c@16:f64,d@24:f32}",
        json!({"a": "NaN", "b": "inf", "c": "-inf", "d": 3.5}),
    );
    // 128-bit integers also accept plain numbers.
    let ty = parse("u128").unwrap();
    let mut bytes = [0; 16];
    encode(&ty, &json!(5), &mut bytes).unwrap();
    assert_eq!(decode(&ty, &bytes).unwrap(), "5");
    let ty = parse("Neg:i16(Down=-1,Up=1)").unwrap();
    let mut bytes = [0; 2];
    encode(&ty, &json!("Down"), &mut bytes).unwrap();
    assert_eq!(i16::from_ne_bytes(bytes), -1);
    assert_eq!(decode(&ty, &bytes).unwrap(), "Down");
}

#[test]
fn short_input_is_an_error() {
    let ty = parse(POSE).unwrap();
    let e = decode(&ty, &[0; 31]).unwrap_err();
    assert!(e.contains("32 bytes"), "{e}");
    assert!(decode(&ty, &[]).is_err());
    assert!(decode(&ty, &[0; 40]).is_ok());
    let e = encode(&ty, &json!({}), &mut [0; 31]).unwrap_err();
    assert!(e.contains("32 bytes"), "{e}");
}
