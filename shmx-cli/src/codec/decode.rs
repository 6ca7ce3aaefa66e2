//! Decoding: the bytes of a message into JSON.

use super::Ty;
use serde_json::{Map, Number, Value};
use shmx::message::Primitive;

/// Decodes the bytes of one message of type `ty` into JSON. `bytes` may be longer than the
/// type (the rest is ignored), not shorter.
pub fn decode(ty: &Ty, bytes: &[u8]) -> Result<Value, String> {
    let size = ty.size();
    let Some(bytes) = bytes.get(..size) else {
        return Err(format!(
            "a message of this type is {size} bytes, but only {} were given",
            bytes.len()
        ));
    };
    Ok(decode_at(ty, bytes))
}

/// `bytes` holds at least `ty.size()` bytes.
fn decode_at(ty: &Ty, bytes: &[u8]) -> Value {
    match ty {
        Ty::Primitive(p) => decode_primitive(*p, bytes),
        Ty::Struct { fields, .. } => {
            let mut map = Map::with_capacity(fields.len());
            for (name, offset, ty) in fields {
                map.insert(name.clone(), decode_at(ty, &bytes[*offset..]));
            }
            Value::Object(map)
        }
        Ty::Array { elem, len } => {
            let step = elem.size();
            Value::Array(
                (0..*len)
                    .map(|i| decode_at(elem, &bytes[i * step..]))
                    .collect(),
            )
        }
        Ty::Enum { repr, variants, .. } => {
            let value = read_int(*repr, bytes);
            let found = i128::try_from(value)
                .ok()
                .and_then(|v| variants.iter().find(|(_, d)| *d == v));
            match found {
                Some((name, _)) => Value::String(name.clone()),
                None => decode_primitive(*repr, bytes),
            }
        }
    }
}

fn array<const N: usize>(bytes: &[u8]) -> [u8; N] {
    let mut a = [0; N];
    a.copy_from_slice(&bytes[..N]);
    a
}

/// An integer primitive's value, widened: `i128` or, for large `u128`, the `u128` itself.
enum Wide {
    Signed(i128),
    Unsigned(u128),
}

impl TryFrom<Wide> for i128 {
    type Error = ();
    fn try_from(w: Wide) -> Result<i128, ()> {
        match w {
            Wide::Signed(v) => Ok(v),
            Wide::Unsigned(v) => i128::try_from(v).map_err(|_| ()),
        }
    }
}

fn read_int(p: Primitive, b: &[u8]) -> Wide {
    Wide::Signed(match p {
        Primitive::U8 | Primitive::Bool => b[0].into(),
        Primitive::U16 => u16::from_ne_bytes(array(b)).into(),
        Primitive::U32 => u32::from_ne_bytes(array(b)).into(),
        Primitive::U64 => u64::from_ne_bytes(array(b)).into(),
        Primitive::U128 => return Wide::Unsigned(u128::from_ne_bytes(array(b))),
        Primitive::I8 => i8::from_ne_bytes(array(b)).into(),
        Primitive::I16 => i16::from_ne_bytes(array(b)).into(),
        Primitive::I32 => i32::from_ne_bytes(array(b)).into(),
        Primitive::I64 => i64::from_ne_bytes(array(b)).into(),
        Primitive::I128 => i128::from_ne_bytes(array(b)),
        // Not integers: their bits, which only `decode_primitive` reads properly.
        Primitive::F32 => u32::from_ne_bytes(array(b)).into(),
        Primitive::F64 => u64::from_ne_bytes(array(b)).into(),
    })
}

fn decode_primitive(p: Primitive, b: &[u8]) -> Value {
    match p {
        Primitive::Bool => match b[0] {
            0 => Value::Bool(false),
            1 => Value::Bool(true),
            n => n.into(),
        },
        Primitive::F32 => {
            let x = f32::from_ne_bytes(array(b));
            // The shortest text that reads back as the same f32, so 0.1f32 shows as 0.1.
            float(x.is_finite(), x.to_string())
        }
        Primitive::F64 => {
            let x = f64::from_ne_bytes(array(b));
            float(x.is_finite(), x.to_string())
        }
        Primitive::U128 | Primitive::I128 => match read_int(p, b) {
            Wide::Signed(v) => Value::String(v.to_string()),
            Wide::Unsigned(v) => Value::String(v.to_string()),
        },
        _ => match read_int(p, b) {
            Wide::Signed(v) => match (i64::try_from(v), u64::try_from(v)) {
                (Ok(v), _) => v.into(),
                (_, Ok(v)) => v.into(),
                _ => Value::String(v.to_string()),
            },
            Wide::Unsigned(v) => Value::String(v.to_string()),
        },
    }
}

/// A float as JSON: a number when finite (`text` is Rust's shortest round-trip form), else
/// the string `NaN`, `inf` or `-inf`.
fn float(finite: bool, text: String) -> Value {
    if finite {
        if let Some(n) = text.parse::<f64>().ok().and_then(Number::from_f64) {
            return Value::Number(n);
        }
    }
    Value::String(text)
}

#[cfg(test)]
mod tests {
    use super::decode;
    use crate::codec::parse;

    #[test]
    fn fields_decode_in_declaration_order() {
        let ty = parse("T{z@0:u8,a@1:u8,m@2:u8}").unwrap();
        let text = decode(&ty, &[1, 2, 3]).unwrap().to_string();
        assert_eq!(text, r#"{"z":1,"a":2,"m":3}"#);
    }
}
