//! Decoding: the bytes of a sample (a message and its tail) into JSON.

use super::{Ty, REL_SIZE};
use serde_json::{Map, Number, Value};
use shmx::message::Primitive;

/// The most elements a relative slice of zero-sized elements may have (as many as the
/// library's schema parser allows one tail).
const MAX_EMPTY_ELEMENTS: usize = 1 << 16;

/// Decodes the bytes of one sample of type `ty` into JSON: the message, followed for a type
/// with relative pointers by the used part of its tail (what `RawSample::bytes` gives).
/// Bytes after the message that no relative pointer uses are ignored.
///
/// A relative slice shows at most `max_elements` elements, then (when some were left out)
/// a marker object `{"...": N}` with the number `N` left out. Strings are shown whole.
///
/// # Errors
/// When `bytes` is shorter than the message, or a relative pointer does not point to whole,
/// aligned elements inside the tail, or a string is not UTF-8. The message names the field,
/// e.g. `field "label": relative pointer (offset 4096, 3 elements) runs past the end of
/// the sample (40 bytes)`.
pub fn decode(ty: &Ty, bytes: &[u8], max_elements: usize) -> Result<Value, String> {
    let size = ty.size();
    if bytes.len() < size {
        return Err(format!(
            "a message of this type is {size} bytes, but only {} were given",
            bytes.len()
        ));
    }
    let decoder = Decoder {
        sample: bytes,
        fixed: size,
        max_elements,
    };
    decoder.value(ty, 0).map_err(Bad::into_message)
}

/// Why a value did not decode: the problem, and the path to it, innermost part first (built
/// while unwinding, so that decoding a good sample builds no paths).
struct Bad {
    problem: String,
    rev_path: Vec<String>,
}

impl Bad {
    fn new(problem: String) -> Bad {
        Bad {
            problem,
            rev_path: Vec::new(),
        }
    }

    /// The same error, inside `part` (`.field` or `[i]`).
    fn inside(mut self, part: String) -> Bad {
        self.rev_path.push(part);
        self
    }

    fn into_message(self) -> String {
        if self.rev_path.is_empty() {
            return format!("the message: {}", self.problem);
        }
        let path: String = self.rev_path.into_iter().rev().collect();
        format!(
            "field {:?}: {}",
            path.strip_prefix('.').unwrap_or(&path),
            self.problem
        )
    }
}

/// A sample being decoded.
struct Decoder<'a> {
    /// The whole sample: the message, then its tail.
    sample: &'a [u8],
    /// Bytes in the message: the tail starts here.
    fixed: usize,
    /// Elements of a relative slice shown at most.
    max_elements: usize,
}

impl Decoder<'_> {
    /// The value of type `ty` at byte `pos` of the sample. The caller has checked that the
    /// `ty.size()` bytes from `pos` lie inside the sample.
    fn value(&self, ty: &Ty, pos: usize) -> Result<Value, Bad> {
        let bytes = &self.sample[pos..pos + ty.size()];
        Ok(match ty {
            Ty::Primitive(p) => decode_primitive(*p, bytes),
            Ty::Struct { fields, .. } => {
                let mut map = Map::with_capacity(fields.len());
                for (name, offset, ty) in fields {
                    let value = self
                        .value(ty, pos + offset)
                        .map_err(|e| e.inside(format!(".{name}")))?;
                    map.insert(name.clone(), value);
                }
                Value::Object(map)
            }
            Ty::Array { elem, len } => {
                let step = elem.size();
                let mut items = Vec::with_capacity(*len);
                for i in 0..*len {
                    let value = self
                        .value(elem, pos + i * step)
                        .map_err(|e| e.inside(format!("[{i}]")))?;
                    items.push(value);
                }
                Value::Array(items)
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
            Ty::RelSlice { elem } => {
                let Some((start, len)) = self.span(pos, elem.size(), elem.align())? else {
                    return Ok(Value::Array(Vec::new()));
                };
                let shown = len.min(self.max_elements);
                let step = elem.size();
                // (Zero-sized elements are not bounded by the sample's length.)
                let mut items = Vec::with_capacity(shown.min(1024) + 1);
                for i in 0..shown {
                    let value = self
                        .value(elem, start + i * step)
                        .map_err(|e| e.inside(format!("[{i}]")))?;
                    items.push(value);
                }
                if shown < len {
                    let mut more = Map::with_capacity(1);
                    more.insert("...".to_owned(), (len - shown).into());
                    items.push(Value::Object(more));
                }
                Value::Array(items)
            }
            Ty::RelStr => {
                let Some((start, len)) = self.span(pos, 1, 1)? else {
                    return Ok(Value::String(String::new()));
                };
                match std::str::from_utf8(&self.sample[start..start + len]) {
                    Ok(text) => Value::String(text.to_owned()),
                    Err(e) => {
                        return Err(Bad::new(format!(
                            "string of {len} bytes at byte {start} is not UTF-8 ({e})"
                        )))
                    }
                }
            }
        })
    }

    /// Checks the relative pointer at byte `pos` (whose 8 bytes lie in the sample), of
    /// elements of `elem_size` bytes aligned to `elem_align`, and returns where its elements
    /// start and how many there are (`None` when it is empty). Checked as the library's
    /// subscribers check it: the elements lie whole inside the tail, aligned, with no
    /// arithmetic overflow.
    fn span(
        &self,
        pos: usize,
        elem_size: usize,
        elem_align: usize,
    ) -> Result<Option<(usize, usize)>, Bad> {
        let word = |at: usize| {
            let mut w = [0; 4];
            w.copy_from_slice(&self.sample[at..at + 4]);
            u32::from_ne_bytes(w)
        };
        debug_assert!(pos + REL_SIZE <= self.sample.len());
        let (offset, len) = (word(pos), word(pos + 4));
        if len == 0 {
            return Ok(None);
        }
        let bad = |problem: String| {
            Err(Bad::new(format!(
                "relative pointer (offset {offset}, {len} elements) {problem}"
            )))
        };
        let Some(start) = pos.checked_add(offset as usize) else {
            return bad("overflows the address space".into());
        };
        // Elements of no bytes are not bounded by the sample's length: as many as the
        // library's parser allows a tail, no more (a count of 2^32 would be decoded whole
        // by callers that show every element).
        if elem_size == 0 && len as usize > MAX_EMPTY_ELEMENTS {
            return bad(format!(
                "has more elements of no bytes than {MAX_EMPTY_ELEMENTS}"
            ));
        }
        let Some(end) = (len as usize)
            .checked_mul(elem_size)
            .and_then(|bytes| start.checked_add(bytes))
        else {
            return bad("is too long: its length overflows".into());
        };
        if start < self.fixed {
            return bad(format!(
                "points before the tail, into the message ({} bytes)",
                self.fixed
            ));
        }
        if end > self.sample.len() {
            return bad(format!(
                "runs past the end of the sample ({} bytes)",
                self.sample.len()
            ));
        }
        if start % elem_align != 0 {
            return bad(format!(
                "points to byte {start}, not aligned to {elem_align} for its elements"
            ));
        }
        Ok(Some((start, len as usize)))
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
        let ty = parse("T(3,1){z@0:u8,a@1:u8,m@2:u8}").unwrap();
        let text = decode(&ty, &[1, 2, 3], 64).unwrap().to_string();
        assert_eq!(text, r#"{"z":1,"a":2,"m":3}"#);
    }
}
