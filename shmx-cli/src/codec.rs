//! Messages as JSON, without their Rust type: a parser of the schema text each topic stores
//! ([`shmx::message::Schema::describe`]), and a decoder and encoder between a message's bytes
//! and JSON.
//!
//! The schema text looks like `Pose{seq@0:u64,x@8:f64,heading@16:f32,flags@20:u32}`:
//! structs are `Name{field@offset:type,...}`, arrays `[type;len]`, fieldless enums
//! `Name:repr(Variant=value,...)`, primitives `u8`..`u128`, `i8`..`i128`, `f32`, `f64` and
//! `bool`. Padding is always explicit (`_pad` fields of `[u8;N]`), so every byte of a message
//! belongs to some field.
//!
//! The JSON form of a value:
//! - a struct is an object with its fields in declaration order (padding fields included when
//!   decoding; they may be left out when encoding, and are then zeros);
//! - an array is a JSON array (also `[u8;N]`);
//! - an enum is its variant's name, or its number when the bytes name no variant; encoding
//!   accepts a variant's name or its number;
//! - a `bool` is `true`/`false`, or its number when the byte is neither 0 nor 1;
//! - integers up to 64 bits are numbers; `u128`/`i128` are decimal strings (encoding also
//!   accepts numbers);
//! - floats are numbers, except NaN and the infinities, which are the strings `"NaN"`,
//!   `"inf"` and `"-inf"`.
//!
//! Bytes are in the machine's native byte order, as the processes sharing the memory use them.

use serde_json::{Map, Number, Value};
use shmx::message::Primitive;

/// A message type, as parsed from its schema text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ty {
    /// A primitive scalar.
    Primitive(Primitive),
    /// A struct with named fields at fixed offsets.
    Struct {
        /// The type's name.
        name: String,
        /// Each field's name, byte offset and type, in declaration order.
        fields: Vec<(String, usize, Ty)>,
        /// `size_of` the struct: the end of its last byte rounded up to its alignment.
        size: usize,
        /// `align_of` the struct: the largest alignment of its fields (1 if none).
        align: usize,
    },
    /// An array `[elem; len]`.
    Array {
        /// The element type.
        elem: Box<Ty>,
        /// The number of elements.
        len: usize,
    },
    /// A fieldless enum stored as the integer `repr`.
    Enum {
        /// The type's name.
        name: String,
        /// The integer representation.
        repr: Primitive,
        /// Each variant's name and discriminant.
        variants: Vec<(String, i128)>,
    },
}

impl Ty {
    /// `size_of` the type, in bytes.
    pub fn size(&self) -> usize {
        match self {
            Ty::Primitive(p) | Ty::Enum { repr: p, .. } => prim_size(*p),
            Ty::Struct { size, .. } => *size,
            Ty::Array { elem, len } => elem.size().saturating_mul(*len),
        }
    }

    /// `align_of` the type, in bytes.
    pub fn align(&self) -> usize {
        match self {
            Ty::Primitive(p) | Ty::Enum { repr: p, .. } => prim_align(*p),
            Ty::Struct { align, .. } => *align,
            Ty::Array { elem, .. } => elem.align(),
        }
    }
}

const PRIMITIVES: [Primitive; 13] = [
    Primitive::U8,
    Primitive::U16,
    Primitive::U32,
    Primitive::U64,
    Primitive::U128,
    Primitive::I8,
    Primitive::I16,
    Primitive::I32,
    Primitive::I64,
    Primitive::I128,
    Primitive::F32,
    Primitive::F64,
    Primitive::Bool,
];

fn prim_size(p: Primitive) -> usize {
    match p {
        Primitive::U8 | Primitive::I8 | Primitive::Bool => 1,
        Primitive::U16 | Primitive::I16 => 2,
        Primitive::U32 | Primitive::I32 | Primitive::F32 => 4,
        Primitive::U64 | Primitive::I64 | Primitive::F64 => 8,
        Primitive::U128 | Primitive::I128 => 16,
    }
}

/// The alignment on this machine, which is the one the publishing processes used.
fn prim_align(p: Primitive) -> usize {
    use std::mem::align_of;
    match p {
        Primitive::U8 | Primitive::I8 | Primitive::Bool => 1,
        Primitive::U16 | Primitive::I16 => align_of::<u16>(),
        Primitive::U32 | Primitive::I32 => align_of::<u32>(),
        Primitive::F32 => align_of::<f32>(),
        Primitive::U64 | Primitive::I64 => align_of::<u64>(),
        Primitive::F64 => align_of::<f64>(),
        Primitive::U128 | Primitive::I128 => align_of::<u128>(),
    }
}

/// The smallest and largest value of an integer primitive; `None` for floats and `bool`.
fn int_range(p: Primitive) -> Option<(i128, u128)> {
    Some(match p {
        Primitive::U8 => (0, u8::MAX.into()),
        Primitive::U16 => (0, u16::MAX.into()),
        Primitive::U32 => (0, u32::MAX.into()),
        Primitive::U64 => (0, u64::MAX.into()),
        Primitive::U128 => (0, u128::MAX),
        Primitive::I8 => (i8::MIN.into(), i8::MAX as u128),
        Primitive::I16 => (i16::MIN.into(), i16::MAX as u128),
        Primitive::I32 => (i32::MIN.into(), i32::MAX as u128),
        Primitive::I64 => (i64::MIN.into(), i64::MAX as u128),
        Primitive::I128 => (i128::MIN, i128::MAX as u128),
        Primitive::F32 | Primitive::F64 | Primitive::Bool => return None,
    })
}

// ---------------------------------------------------------------------------------------------
// Parsing

/// Parses schema text (as [`shmx::message::Schema::describe`] writes it) into a type.
pub fn parse(schema: &str) -> Result<Ty, String> {
    let mut p = Parser {
        text: schema,
        pos: 0,
    };
    let ty = p.ty(0)?;
    if p.pos != schema.len() {
        return Err(p.error("unexpected text after the type"));
    }
    Ok(ty)
}

/// How deep types may nest: schema text from a topic file should not overflow our stack.
const MAX_DEPTH: usize = 64;

struct Parser<'a> {
    text: &'a str,
    pos: usize,
}

impl Parser<'_> {
    fn error(&self, what: &str) -> String {
        let rest: String = self.text[self.pos..].chars().take(20).collect();
        if rest.is_empty() {
            format!("bad schema {:?}: {what} at its end", self.text)
        } else {
            format!(
                "bad schema {:?}: {what} at byte {} ({rest:?})",
                self.text, self.pos
            )
        }
    }

    fn peek(&self) -> Option<char> {
        self.text[self.pos..].chars().next()
    }

    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.pos += c.len_utf8();
            true
        } else {
            false
        }
    }

    fn expect(&mut self, c: char) -> Result<(), String> {
        if self.eat(c) {
            Ok(())
        } else {
            Err(self.error(&format!("expected {c:?}")))
        }
    }

    /// A name: anything up to the next punctuation of the grammar.
    fn ident(&mut self) -> Result<&str, String> {
        let start = self.pos;
        let rest = &self.text[start..];
        let len = rest
            .find(|c: char| "{}[]():;,@=".contains(c))
            .unwrap_or(rest.len());
        if len == 0 {
            return Err(self.error("expected a name"));
        }
        self.pos += len;
        Ok(&self.text[start..start + len])
    }

    fn integer(&mut self) -> Result<i128, String> {
        let start = self.pos;
        let rest = &self.text[start..];
        let sign = usize::from(rest.starts_with('-'));
        let digits = rest[sign..]
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len() - sign);
        if digits == 0 {
            return Err(self.error("expected a number"));
        }
        let n = rest[..sign + digits]
            .parse()
            .map_err(|_| self.error("number too large"))?;
        self.pos += sign + digits;
        Ok(n)
    }

    fn count(&mut self) -> Result<usize, String> {
        let at = self.pos;
        let n = self.integer()?;
        usize::try_from(n).map_err(|_| {
            self.pos = at;
            self.error("expected a size or an offset")
        })
    }

    fn ty(&mut self, depth: usize) -> Result<Ty, String> {
        if depth > MAX_DEPTH {
            return Err(self.error("types nest too deeply"));
        }
        if self.eat('[') {
            let elem = self.ty(depth + 1)?;
            self.expect(';')?;
            let len = self.count()?;
            self.expect(']')?;
            if elem.size().checked_mul(len).is_none() {
                return Err(self.error("array too large"));
            }
            return Ok(Ty::Array {
                elem: Box::new(elem),
                len,
            });
        }
        let name = self.ident()?.to_owned();
        if self.eat('{') {
            return self.structure(name, depth);
        }
        if self.eat(':') {
            return self.enumeration(name);
        }
        match primitive(&name) {
            Some(p) => Ok(Ty::Primitive(p)),
            None => {
                self.pos -= name.len();
                Err(self.error("unknown type"))
            }
        }
    }

    /// The rest of `Name{field@offset:type,...}`, after the `{`.
    fn structure(&mut self, name: String, depth: usize) -> Result<Ty, String> {
        let mut fields: Vec<(String, usize, Ty)> = Vec::new();
        let mut end = 0usize;
        let mut align = 1usize;
        if !self.eat('}') {
            loop {
                let field = self.ident()?.to_owned();
                if fields.iter().any(|(f, _, _)| *f == field) {
                    self.pos -= field.len();
                    return Err(self.error("duplicate field"));
                }
                self.expect('@')?;
                let offset = self.count()?;
                self.expect(':')?;
                let ty = self.ty(depth + 1)?;
                end = offset
                    .checked_add(ty.size())
                    .map(|e| e.max(end))
                    .ok_or_else(|| self.error("struct too large"))?;
                align = align.max(ty.align());
                fields.push((field, offset, ty));
                if self.eat('}') {
                    break;
                }
                if !self.eat(',') {
                    return Err(self.error("expected ',' or '}'"));
                }
            }
        }
        let size = end
            .checked_next_multiple_of(align)
            .ok_or_else(|| self.error("struct too large"))?;
        Ok(Ty::Struct {
            name,
            fields,
            size,
            align,
        })
    }

    /// The rest of `Name:repr(Variant=value,...)`, after the `:`.
    fn enumeration(&mut self, name: String) -> Result<Ty, String> {
        let repr_at = self.pos;
        let repr = self.ident()?;
        let Some((repr, (min, max))) = primitive(repr).and_then(|p| Some((p, int_range(p)?)))
        else {
            self.pos = repr_at;
            return Err(self.error("expected an integer type"));
        };
        self.expect('(')?;
        let mut variants: Vec<(String, i128)> = Vec::new();
        if !self.eat(')') {
            loop {
                let variant = self.ident()?.to_owned();
                self.expect('=')?;
                let at = self.pos;
                let value = self.integer()?;
                if value < min || (value >= 0 && value as u128 > max) {
                    self.pos = at;
                    return Err(
                        self.error(&format!("discriminant out of range for {}", repr.name()))
                    );
                }
                variants.push((variant, value));
                if self.eat(')') {
                    break;
                }
                if !self.eat(',') {
                    return Err(self.error("expected ',' or ')'"));
                }
            }
        }
        Ok(Ty::Enum {
            name,
            repr,
            variants,
        })
    }
}

fn primitive(name: &str) -> Option<Primitive> {
    PRIMITIVES.into_iter().find(|p| p.name() == name)
}

// ---------------------------------------------------------------------------------------------
// Decoding

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

// ---------------------------------------------------------------------------------------------
// Encoding

/// Encodes `value` as a message of type `ty` into `out`, which must be exactly `ty.size()`
/// bytes. Errors name the field at fault, e.g. `field "pose.x": expected a number, found
/// "abc"`.
pub fn encode(ty: &Ty, value: &Value, out: &mut [u8]) -> Result<(), String> {
    let size = ty.size();
    if out.len() != size {
        return Err(format!(
            "a message of this type is {size} bytes, not {}",
            out.len()
        ));
    }
    out.fill(0);
    encode_at(ty, value, out, &mut String::new())
}

/// `what` at `path`, for an error message.
fn at(path: &str, what: impl std::fmt::Display) -> String {
    if path.is_empty() {
        format!("the message: {what}")
    } else {
        format!("field {path:?}: {what}")
    }
}

/// A JSON value as an error message shows it: compact, and cut short when long.
fn shown(value: &Value) -> String {
    let text = value.to_string();
    const MAX: usize = 40;
    if text.chars().count() > MAX {
        let cut: String = text.chars().take(MAX).collect();
        format!("{cut}...")
    } else {
        text
    }
}

fn join_path(path: &str, field: &str) -> String {
    if path.is_empty() {
        field.to_owned()
    } else {
        format!("{path}.{field}")
    }
}

fn is_padding(field: &str) -> bool {
    field.starts_with("_pad")
}

/// `out` is exactly `ty.size()` bytes, all zero.
fn encode_at(ty: &Ty, value: &Value, out: &mut [u8], path: &mut String) -> Result<(), String> {
    match ty {
        Ty::Primitive(p) => encode_primitive(*p, value, out, path),
        Ty::Struct { name, fields, .. } => {
            let Value::Object(map) = value else {
                return Err(at(
                    path,
                    format!("expected an object ({name}), found {}", shown(value)),
                ));
            };
            if let Some(extra) = map.keys().find(|k| !fields.iter().any(|(f, _, _)| f == *k)) {
                let known: Vec<&str> = fields
                    .iter()
                    .map(|(f, _, _)| f.as_str())
                    .filter(|f| !is_padding(f))
                    .collect();
                return Err(format!(
                    "unknown field {:?}: {name} has {}",
                    join_path(path, extra),
                    if known.is_empty() {
                        "no fields".to_owned()
                    } else {
                        known.join(", ")
                    }
                ));
            }
            for (field, offset, fty) in fields {
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(field);
                match map.get(field) {
                    Some(v) => {
                        encode_at(fty, v, &mut out[*offset..*offset + fty.size()], path)?;
                    }
                    None if is_padding(field) => {}
                    None => return Err(format!("missing field {path:?}")),
                }
                path.truncate(len);
            }
            Ok(())
        }
        Ty::Array { elem, len } => {
            let items = match value {
                Value::Array(items) if items.len() == *len => items,
                _ => {
                    let found = match value {
                        Value::Array(items) => format!("{} elements", items.len()),
                        _ => shown(value),
                    };
                    return Err(at(
                        path,
                        format!("expected an array of {len} elements, found {found}"),
                    ));
                }
            };
            let step = elem.size();
            for (i, item) in items.iter().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                encode_at(elem, item, &mut out[i * step..(i + 1) * step], path)?;
                path.truncate(len);
            }
            Ok(())
        }
        Ty::Enum {
            name,
            repr,
            variants,
        } => {
            let found = match value {
                Value::String(s) => variants.iter().find(|(v, _)| v == s),
                Value::Number(_) => {
                    let n = json_int(value);
                    variants.iter().find(|(_, d)| Some(*d) == n)
                }
                _ => None,
            };
            let Some((_, discriminant)) = found else {
                let names: Vec<String> = variants.iter().map(|(v, d)| format!("{v}={d}")).collect();
                return Err(at(
                    path,
                    format!(
                        "expected a variant of {name} ({}), found {}",
                        names.join(", "),
                        shown(value)
                    ),
                ));
            };
            write_int(*repr, *discriminant as u128, out);
            Ok(())
        }
    }
}

/// A JSON number that is an integer, widened.
fn json_int(value: &Value) -> Option<i128> {
    let Value::Number(n) = value else {
        return None;
    };
    n.as_i64()
        .map(i128::from)
        .or_else(|| n.as_u64().map(i128::from))
}

/// Writes the low `size_of(p)` bytes of `bits` (two's complement for negative values).
fn write_int(p: Primitive, bits: u128, out: &mut [u8]) {
    let n = prim_size(p);
    let bytes = bits.to_ne_bytes();
    if cfg!(target_endian = "little") {
        out[..n].copy_from_slice(&bytes[..n]);
    } else {
        out[..n].copy_from_slice(&bytes[16 - n..]);
    }
}

fn encode_primitive(p: Primitive, value: &Value, out: &mut [u8], path: &str) -> Result<(), String> {
    match p {
        Primitive::Bool => match value {
            Value::Bool(b) => {
                out[0] = u8::from(*b);
                Ok(())
            }
            _ => Err(at(
                path,
                format!("expected true or false, found {}", shown(value)),
            )),
        },
        Primitive::F32 | Primitive::F64 => {
            let x = match value {
                Value::Number(n) => n.as_f64(),
                // Only what `decode` writes for the values JSON has no number for.
                Value::String(s) => s.parse::<f64>().ok().filter(|x| !x.is_finite()),
                _ => None,
            };
            let Some(x) = x else {
                return Err(at(
                    path,
                    format!("expected a number, found {}", shown(value)),
                ));
            };
            if p == Primitive::F32 {
                if x.is_finite() && x.abs() > f64::from(f32::MAX) {
                    return Err(at(
                        path,
                        format!("{} is out of range for f32", shown(value)),
                    ));
                }
                out.copy_from_slice(&(x as f32).to_ne_bytes());
            } else {
                out.copy_from_slice(&x.to_ne_bytes());
            }
            Ok(())
        }
        _ => {
            let (min, max) = int_range(p).unwrap_or((0, 0));
            let wide = p == Primitive::U128 || p == Primitive::I128;
            // Some(Ok(signed)) / Some(Err(large unsigned)) / None: not an integer.
            let v: Option<Result<i128, u128>> = match value {
                Value::Number(_) => json_int(value).map(Ok),
                Value::String(s) if wide => match s.parse::<i128>() {
                    Ok(v) => Some(Ok(v)),
                    Err(_) => s.parse::<u128>().ok().map(Err),
                },
                _ => None,
            };
            let Some(v) = v else {
                let expected = if wide {
                    "an integer or a string of one"
                } else {
                    "an integer"
                };
                return Err(at(
                    path,
                    format!("expected {expected}, found {}", shown(value)),
                ));
            };
            let in_range = match v {
                Ok(v) => v >= min && (v < 0 || v as u128 <= max),
                Err(v) => v <= max,
            };
            if !in_range {
                let shown = match v {
                    Ok(v) => v.to_string(),
                    Err(v) => v.to_string(),
                };
                return Err(at(
                    path,
                    format!("{shown} is out of range for {}", p.name()),
                ));
            }
            let bits = match v {
                Ok(v) => v as u128,
                Err(v) => v,
            };
            write_int(p, bits, out);
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const POSE: &str = "Pose{seq@0:u64,x@8:f64,y@16:f64,heading@24:f32,flags@28:u32}";

    fn round_trip(schema: &str, value: Value) -> Vec<u8> {
        let ty = parse(schema).unwrap();
        let mut bytes = vec![0xAA; ty.size()];
        encode(&ty, &value, &mut bytes).unwrap();
        assert_eq!(decode(&ty, &bytes).unwrap(), value, "{schema}");
        bytes
    }

    fn encode_err(schema: &str, value: Value) -> String {
        let ty = parse(schema).unwrap();
        let mut bytes = vec![0; ty.size()];
        encode(&ty, &value, &mut bytes).unwrap_err()
    }

    #[test]
    fn parses_structs_arrays_enums_and_primitives() {
        let ty = parse(POSE).unwrap();
        assert_eq!(ty.size(), 32);
        assert_eq!(ty.align(), 8);
        let Ty::Struct { name, fields, .. } = &ty else {
            panic!("{ty:?}")
        };
        assert_eq!(name, "Pose");
        assert_eq!(
            fields[3],
            ("heading".into(), 24, Ty::Primitive(Primitive::F32))
        );

        assert_eq!(parse("[u8;16]").unwrap().size(), 16);
        let nested = parse("[[f32;3];2]").unwrap();
        assert_eq!(nested.size(), 24);
        assert_eq!(nested.align(), 4);
        let outer = parse("Outer{inner@0:Inner{a@0:u32,b@4:u32},c@8:u64}").unwrap();
        assert_eq!(outer.size(), 16);
        let mode = parse("Mode:u8(Idle=0,Drive=1,Stop=2)").unwrap();
        assert_eq!(
            mode,
            Ty::Enum {
                name: "Mode".into(),
                repr: Primitive::U8,
                variants: vec![("Idle".into(), 0), ("Drive".into(), 1), ("Stop".into(), 2)],
            }
        );
        assert_eq!(mode.size(), 1);
        assert_eq!(parse("Neg:i16(Down=-1,Up=1)").unwrap().size(), 2);
        for p in PRIMITIVES {
            assert_eq!(parse(p.name()).unwrap(), Ty::Primitive(p));
        }
        assert_eq!(parse("u128").unwrap().size(), 16);
        // Size is rounded up to the alignment.
        assert_eq!(parse("T{a@0:u64,b@8:u8}").unwrap().size(), 16);
        assert_eq!(parse("Empty{}").unwrap().size(), 0);
    }

    #[test]
    fn parse_errors_say_where() {
        for (bad, what) in [
            ("", "expected a name"),
            ("u7", "unknown type"),
            ("[u8;16", "expected ']'"),
            ("[u8;-1]", "expected a size"),
            ("P{a@0:u8,a@1:u8}", "duplicate field"),
            ("P{a@0:u8", "expected ',' or '}'"),
            ("P{a:u8}", "expected '@'"),
            ("M:f32(A=0)", "expected an integer type"),
            ("M:u8(A=256)", "out of range for u8"),
            ("u8,", "unexpected text"),
            ("[u8;99999999999999999999999]", "expected a size"),
            ("[[u64;4294967296];4294967296]", "array too large"),
        ] {
            let e = parse(bad).unwrap_err();
            assert!(e.contains(what), "{bad:?}: {e}");
        }
        let deep = "[".repeat(1000) + "u8" + &";1]".repeat(1000);
        assert!(parse(&deep).unwrap_err().contains("too deeply"));
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
    fn fields_decode_in_declaration_order() {
        let ty = parse("T{z@0:u8,a@1:u8,m@2:u8}").unwrap();
        let text = decode(&ty, &[1, 2, 3]).unwrap().to_string();
        assert_eq!(text, r#"{"z":1,"a":2,"m":3}"#);
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

    #[test]
    fn encode_errors_name_the_field() {
        let nested = "Outer{pose@0:Pose{seq@0:u64,x@8:f64},arr@16:[u8;2],mode@18:M:u8(A=0,B=1),ok@19:bool,_pad@20:[u8;4]}";
        let good =
            || json!({"pose": {"seq": 1, "x": 2.0}, "arr": [1, 2], "mode": "A", "ok": false});
        let with = |path: &[&str], v: Value| {
            let mut g = good();
            let mut at = &mut g;
            for p in &path[..path.len() - 1] {
                at = &mut at[*p];
            }
            at[path[path.len() - 1]] = v;
            g
        };
        assert_eq!(
            encode_err(nested, with(&["pose", "x"], json!("abc"))),
            r#"field "pose.x": expected a number, found "abc""#
        );
        let mut missing = good();
        missing["pose"].as_object_mut().unwrap().remove("seq");
        assert_eq!(encode_err(nested, missing), r#"missing field "pose.seq""#);
        let mut missing = good();
        missing.as_object_mut().unwrap().remove("ok");
        assert_eq!(encode_err(nested, missing), r#"missing field "ok""#);
        assert_eq!(
            encode_err(nested, with(&["pose", "z"], json!(1))),
            r#"unknown field "pose.z": Pose has seq, x"#
        );
        assert_eq!(
            encode_err(nested, with(&["extra"], json!(1))),
            r#"unknown field "extra": Outer has pose, arr, mode, ok"#
        );
        assert_eq!(
            encode_err(nested, with(&["arr"], json!([1, 256]))),
            r#"field "arr[1]": 256 is out of range for u8"#
        );
        assert_eq!(
            encode_err(nested, with(&["arr"], json!([1]))),
            r#"field "arr": expected an array of 2 elements, found 1 elements"#
        );
        assert_eq!(
            encode_err(nested, with(&["pose", "seq"], json!(-1))),
            r#"field "pose.seq": -1 is out of range for u64"#
        );
        assert_eq!(
            encode_err(nested, with(&["pose", "seq"], json!(1.5))),
            r#"field "pose.seq": expected an integer, found 1.5"#
        );
        assert_eq!(
            encode_err(nested, with(&["mode"], json!("C"))),
            r#"field "mode": expected a variant of M (A=0, B=1), found "C""#
        );
        assert_eq!(
            encode_err(nested, with(&["mode"], json!(2))),
            r#"field "mode": expected a variant of M (A=0, B=1), found 2"#
        );
        assert_eq!(
            encode_err(nested, with(&["ok"], json!(1))),
            r#"field "ok": expected true or false, found 1"#
        );
        assert_eq!(
            encode_err(nested, with(&["pose"], json!([1, 2]))),
            r#"field "pose": expected an object (Pose), found [1,2]"#
        );
        assert_eq!(
            encode_err(nested, json!(5)),
            "the message: expected an object (Outer), found 5"
        );
        assert_eq!(
            encode_err("f32", json!(1e300)),
            "the message: 1e+300 is out of range for f32"
        );
        let long = "x".repeat(100);
        let e = encode_err("u8", json!(long));
        assert!(e.ends_with("...") && e.len() < 100, "{e}");
    }
}
