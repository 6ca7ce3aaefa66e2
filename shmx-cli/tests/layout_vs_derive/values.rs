//! Values as JSON: as `shmx echo` prints them ([`Gen::json`]), as the test gives them to
//! `shmx pub` ([`GenJson`]), compared with what `echo` or the probe printed
//! ([`Gen::compare`]); and the bytes of tail a value needs ([`Gen::tail_need`]).

use crate::generate::{Gen, Rng};
use crate::model::{align_up, Prim, Ty, Val};
use serde_json::{json, Value};

impl Gen {
    /// The value as `shmx echo` prints it (padding included, as arrays of zeros).
    pub(crate) fn json(&self, ty: &Ty, val: &Val) -> Value {
        match (ty, val) {
            (Ty::Prim(p), v) => prim_json(*p, v),
            (Ty::Array(elem, _), Val::List(items)) | (Ty::RelSlice(elem), Val::List(items)) => {
                Value::Array(items.iter().map(|v| self.json(elem, v)).collect())
            }
            (Ty::Struct(i), Val::List(items)) => Value::Object(
                self.structs[*i]
                    .fields
                    .iter()
                    .zip(items)
                    .map(|(f, v)| (f.name.clone(), self.json(&f.ty, v)))
                    .collect(),
            ),
            (Ty::Enum(i), Val::Enum(v)) => Value::String(self.enums[*i].variants[*v].1.clone()),
            (Ty::RelStr, Val::Str(s)) => Value::String(s.clone()),
            _ => unreachable!("a value of another type: {ty:?} {val:?}"),
        }
    }

    /// Checks `got` (printed by `shmx echo` or the probe) against `want`, a value of `ty`:
    /// floats compare as values of their own width (an `f32` shows as its shortest text,
    /// which is not always the `f64` of the same value), bit for bit (so -0.0 is not 0.0).
    pub(crate) fn compare(
        &self,
        ty: &Ty,
        want: &Val,
        got: &Value,
        path: &str,
    ) -> Result<(), String> {
        let fail = |what: String| Err(format!("at {path:?}: {what}"));
        match (ty, want) {
            (Ty::Prim(p @ (Prim::F32 | Prim::F64)), Val::F(x)) => {
                let read = match got {
                    Value::Number(n) => n.as_f64(),
                    Value::String(s) => match s.as_str() {
                        "NaN" => Some(f64::NAN),
                        "inf" => Some(f64::INFINITY),
                        "-inf" => Some(f64::NEG_INFINITY),
                        _ => None,
                    },
                    _ => None,
                };
                let Some(y) = read else {
                    return fail(format!("expected the number {x:?}, got {got}"));
                };
                let same = if *p == Prim::F32 {
                    (*x as f32).to_bits() == (y as f32).to_bits() || (x.is_nan() && y.is_nan())
                } else {
                    x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan())
                };
                // NaN must be shown as "NaN", infinities as strings.
                let form_ok = x.is_finite() == got.is_number();
                if same && form_ok {
                    Ok(())
                } else {
                    fail(format!("expected {x:?} ({}), got {got}", p.name()))
                }
            }
            (Ty::Prim(p), v) => {
                let want = prim_json(*p, v);
                if &want == got {
                    Ok(())
                } else {
                    fail(format!("expected {want}, got {got}"))
                }
            }
            (Ty::Array(elem, _), Val::List(items)) | (Ty::RelSlice(elem), Val::List(items)) => {
                let Value::Array(got) = got else {
                    return fail(format!("expected an array, got {got}"));
                };
                if got.len() != items.len() {
                    return fail(format!(
                        "expected {} elements, got {}: {}",
                        items.len(),
                        got.len(),
                        Value::Array(got.clone())
                    ));
                }
                for (i, (w, g)) in items.iter().zip(got).enumerate() {
                    self.compare(elem, w, g, &format!("{path}[{i}]"))?;
                }
                Ok(())
            }
            (Ty::Struct(i), Val::List(items)) => {
                let Value::Object(map) = got else {
                    return fail(format!("expected an object, got {got}"));
                };
                let fields = &self.structs[*i].fields;
                let want_keys: Vec<&str> = fields.iter().map(|f| f.name.as_str()).collect();
                let got_keys: Vec<&str> = map.keys().map(String::as_str).collect();
                if want_keys != got_keys {
                    return fail(format!(
                        "expected the fields {want_keys:?} in this order, got {got_keys:?}"
                    ));
                }
                for (f, w) in fields.iter().zip(items) {
                    let sub = if path.is_empty() {
                        f.name.clone()
                    } else {
                        format!("{path}.{}", f.name)
                    };
                    self.compare(&f.ty, w, &map[&f.name], &sub)?;
                }
                Ok(())
            }
            (Ty::Enum(_), _) | (Ty::RelStr, _) => {
                let want = self.json(ty, want);
                if &want == got {
                    Ok(())
                } else {
                    fail(format!("expected {want}, got {got}"))
                }
            }
            _ => unreachable!("a value of another type: {ty:?} {want:?}"),
        }
    }

    /// The bytes of tail the value needs, laid out in order, each allocation aligned for its
    /// elements (as both the derive's writer and `shmx pub` do).
    pub(crate) fn tail_need(&self, ty: &Ty, val: &Val) -> usize {
        let fixed = self.size(ty);
        let mut used = fixed;
        self.tail_walk(ty, val, &mut used);
        used - fixed
    }

    fn tail_walk(&self, ty: &Ty, val: &Val, used: &mut usize) {
        match (ty, val) {
            (Ty::Array(elem, _), Val::List(items)) => {
                for v in items {
                    self.tail_walk(elem, v, used);
                }
            }
            (Ty::Struct(i), Val::List(items)) => {
                for (f, v) in self.structs[*i].fields.iter().zip(items) {
                    self.tail_walk(&f.ty, v, used);
                }
            }
            (Ty::RelSlice(elem), Val::List(items)) if !items.is_empty() => {
                *used = align_up(*used, self.align(elem)) + items.len() * self.size(elem);
            }
            (Ty::RelStr, Val::Str(s)) if !s.is_empty() => *used += s.len(),
            _ => {}
        }
    }
}

fn prim_json(p: Prim, v: &Val) -> Value {
    match (p, v) {
        (Prim::U128, Val::U(v)) => Value::String(v.to_string()),
        (Prim::I128, Val::I(v)) => Value::String(v.to_string()),
        (_, Val::U(v)) => json!(*v as u64),
        (_, Val::I(v)) => json!(*v as i64),
        (_, Val::Bool(b)) => json!(*b),
        (_, Val::F(x)) if x.is_nan() => json!("NaN"),
        (_, Val::F(x)) if x.is_infinite() => json!(if *x > 0.0 { "inf" } else { "-inf" }),
        (_, Val::F(x)) => json!(*x),
        _ => unreachable!("a value of another type: {p:?} {v:?}"),
    }
}

/// The value as the test gives it to `shmx pub`: as [`Gen::json`], but padding fields
/// sometimes left out, enums sometimes by number, 128-bit integers sometimes as numbers (all
/// of which `pub` accepts); the choices are seeded by the run's seed and the case.
pub(crate) struct GenJson<'a> {
    gen: &'a Gen,
    rng: Rng,
}

impl<'a> GenJson<'a> {
    pub(crate) fn new(gen: &'a Gen, salt: u64) -> GenJson<'a> {
        GenJson {
            gen,
            rng: Rng(gen.seed ^ salt.wrapping_mul(0x2545_f491_4f6c_dd1d)),
        }
    }

    pub(crate) fn pub_json(&mut self, ty: &Ty, val: &Val) -> Value {
        let gen = self.gen;
        match (ty, val) {
            (Ty::Prim(Prim::U128), Val::U(v))
                if *v <= u128::from(u64::MAX) && self.rng.chance(30) =>
            {
                json!(*v as u64)
            }
            (Ty::Prim(Prim::I128), Val::I(v))
                if i64::try_from(*v).is_ok() && self.rng.chance(30) =>
            {
                json!(*v as i64)
            }
            (Ty::Array(elem, _), Val::List(items)) | (Ty::RelSlice(elem), Val::List(items)) => {
                Value::Array(items.iter().map(|v| self.pub_json(elem, v)).collect())
            }
            (Ty::Struct(i), Val::List(items)) => {
                let mut map = serde_json::Map::new();
                for (f, v) in gen.structs[*i].fields.iter().zip(items) {
                    if f.padding && self.rng.chance(50) {
                        continue;
                    }
                    map.insert(f.name.clone(), self.pub_json(&f.ty, v));
                }
                Value::Object(map)
            }
            (Ty::Enum(i), Val::Enum(v)) if self.rng.chance(30) => {
                let d = gen.enums[*i].variants[*v].2;
                match i64::try_from(d) {
                    Ok(d) => json!(d),
                    Err(_) => json!(d as u64),
                }
            }
            _ => gen.json(ty, val),
        }
    }
}
