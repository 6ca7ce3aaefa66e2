//! Encoding: JSON into the bytes of a sample (a message and its tail), with errors that name
//! the field at fault.

use super::{Ty, REL_SIZE};
use serde_json::Value;
use shmx::message::Primitive;

/// Encodes `value` as a sample of type `ty`: the message (`ty.size()` bytes), followed by
/// the data of its relative pointers, laid out in order in a tail of at most `max_tail`
/// bytes (each allocation aligned for its element type, as the library's writers do). The
/// result holds exactly the message and the used part of the tail. Errors name the field at
/// fault, e.g. `field "pose.x": expected a number, found "abc"`.
///
/// Offsets are counted within the result, so the data is aligned in memory when the sample
/// starts at an address aligned to 16 bytes (a chunk's payload always is).
pub fn encode(ty: &Ty, value: &Value, max_tail: usize) -> Result<Vec<u8>, String> {
    let fixed = ty.size();
    let mut encoder = Encoder {
        out: vec![0; fixed],
        fixed,
        limit: fixed.saturating_add(max_tail),
    };
    encoder.value(ty, value, 0, &mut String::new())?;
    Ok(encoder.out)
}

/// A sample being encoded.
struct Encoder {
    /// The message, then the tail used so far; zeros where nothing was written.
    out: Vec<u8>,
    /// Bytes in the message: the tail starts here.
    fixed: usize,
    /// Bytes the sample may have at most (the message and its tail).
    limit: usize,
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

impl Encoder {
    /// Writes `value` as a `ty` at byte `pos` of the sample, where `ty.size()` bytes of
    /// zeros lie; its relative pointers' data goes to the tail.
    fn value(
        &mut self,
        ty: &Ty,
        value: &Value,
        pos: usize,
        path: &mut String,
    ) -> Result<(), String> {
        match ty {
            Ty::Primitive(p) => {
                encode_primitive(*p, value, &mut self.out[pos..pos + p.size()], path)
            }
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
                        Some(v) => self.value(fty, v, pos + offset, path)?,
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
                self.elements(elem, items, pos, path)
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
                    let names: Vec<String> =
                        variants.iter().map(|(v, d)| format!("{v}={d}")).collect();
                    return Err(at(
                        path,
                        format!(
                            "expected a variant of {name} ({}), found {}",
                            names.join(", "),
                            shown(value)
                        ),
                    ));
                };
                write_int(*repr, *discriminant as u128, &mut self.out[pos..]);
                Ok(())
            }
            Ty::RelSlice { elem } => {
                let Value::Array(items) = value else {
                    return Err(at(
                        path,
                        format!("expected an array, found {}", shown(value)),
                    ));
                };
                let Some(start) = self.point(pos, items.len(), elem.size(), elem.align(), path)?
                else {
                    return Ok(());
                };
                self.elements(elem, items, start, path)
            }
            Ty::RelStr => {
                let Value::String(text) = value else {
                    return Err(at(
                        path,
                        format!("expected a string, found {}", shown(value)),
                    ));
                };
                if let Some(start) = self.point(pos, text.len(), 1, 1, path)? {
                    self.out[start..start + text.len()].copy_from_slice(text.as_bytes());
                }
                Ok(())
            }
        }
    }

    /// Writes `items` as consecutive `elem`s from byte `pos`, where room for them is.
    fn elements(
        &mut self,
        elem: &Ty,
        items: &[Value],
        pos: usize,
        path: &mut String,
    ) -> Result<(), String> {
        let step = elem.size();
        for (i, item) in items.iter().enumerate() {
            let len = path.len();
            path.push_str(&format!("[{i}]"));
            self.value(elem, item, pos + i * step, path)?;
            path.truncate(len);
        }
        Ok(())
    }

    /// Reserves `len` elements of `size` bytes aligned to `align` in the tail, and points the
    /// relative pointer at byte `pos` at them: the offset from `pos`, then `len`. Returns
    /// where the (zeroed) elements start, or `None` when `len` is 0 (an empty pointer is all
    /// zeros, pointing nowhere).
    fn point(
        &mut self,
        pos: usize,
        len: usize,
        size: usize,
        align: usize,
        path: &str,
    ) -> Result<Option<usize>, String> {
        if len == 0 {
            return Ok(None);
        }
        let used = self.out.len();
        let start = used.checked_next_multiple_of(align);
        let end = len
            .checked_mul(size)
            .zip(start)
            .and_then(|(bytes, start)| start.checked_add(bytes));
        let (Some(start), Some(end)) = (start, end) else {
            return Err(at(path, format!("{len} elements are too many")));
        };
        if end > self.limit {
            return Err(at(
                path,
                format!(
                    "the tail is full: {len} element(s) of {size} byte(s) need {} byte(s) of \
                     tail, but only {} of {} are free (raise --max-tail-bytes)",
                    end - used,
                    self.limit - used,
                    self.limit - self.fixed
                ),
            ));
        }
        let (Ok(offset), Ok(count)) = (u32::try_from(start - pos), u32::try_from(len)) else {
            return Err(at(
                path,
                format!("{len} elements at byte {start} do not fit a relative pointer"),
            ));
        };
        self.out.resize(end, 0);
        debug_assert!(pos + REL_SIZE <= self.fixed);
        self.out[pos..pos + 4].copy_from_slice(&offset.to_ne_bytes());
        self.out[pos + 4..pos + REL_SIZE].copy_from_slice(&count.to_ne_bytes());
        Ok(Some(start))
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
    let n = p.size();
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
                // Out of range only when it rounds to an infinity: the shortest text of
                // `f32::MAX` (what `decode` shows, 3.4028235e38) is a little more than it.
                let single = x as f32;
                if x.is_finite() && single.is_infinite() {
                    return Err(at(
                        path,
                        format!("{} is out of range for f32", shown(value)),
                    ));
                }
                out.copy_from_slice(&single.to_ne_bytes());
            } else {
                out.copy_from_slice(&x.to_ne_bytes());
            }
            Ok(())
        }
        _ => {
            let (min, max) = p.int_range().unwrap_or((0, 0));
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
    use crate::codec::parse;
    use serde_json::json;

    fn encode_err(schema: &str, value: Value) -> String {
        let ty = parse(schema).unwrap();
        encode(&ty, &value, 64).unwrap_err()
    }

    #[test]
    fn encode_errors_name_the_field() {
        let nested = "Outer(24,8){pose@0:Pose(16,8){seq@0:u64,x@8:f64},arr@16:[u8;2],mode@18:M:u8{A=0,B=1},ok@19:bool,_pad@20:[u8;4]}";
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
