//! Parsing: schema text (as [`shmx::message::Schema::describe`] writes it) into a [`Ty`].

use super::{int_range, Ty, PRIMITIVES};
use shmx::message::Primitive;

/// Parses schema text (as [`shmx::message::Schema::describe`] writes it) into a type.
/// Archived rkyv topics ([`super::is_archived`]) have no such text: an error says so.
pub fn parse(schema: &str) -> Result<Ty, String> {
    if super::is_archived(schema) {
        return Err(format!(
            "the topic holds archived rkyv values ({schema:?}), which have no schema to decode \
             or encode them by"
        ));
    }
    let mut p = Parser {
        text: schema,
        pos: 0,
    };
    let ty = p.ty(0)?;
    if p.pos != schema.len() {
        return Err(p.error("unexpected text after the type"));
    }
    check_values(&ty).map_err(|e| format!("bad schema {schema:?}: {e}"))?;
    Ok(ty)
}

/// Decoding costs a value per primitive, bounded by the sample's bytes, except where elements
/// have no bytes: a type (the message, or a relative slice's element) may decode into at most
/// [`MAX_EMPTY_ELEMENTS`] values more than its bytes could hold (a struct or array adds one a
/// level, at most [`MAX_DEPTH`] levels), whatever its nesting.
fn check_values(ty: &Ty) -> Result<(), String> {
    let bound = ty
        .size()
        .saturating_mul(MAX_DEPTH + 1)
        .saturating_add(MAX_EMPTY_ELEMENTS);
    if ty.values() > bound {
        return Err(format!(
            "a value of {} bytes would decode into {} values, over the limit of {bound}",
            ty.size(),
            ty.values()
        ));
    }
    Ok(())
}

/// How deep types may nest: schema text from a topic file should not overflow our stack.
const MAX_DEPTH: usize = 64;

/// The longest array of zero-sized elements (which a sample's length does not bound).
const MAX_EMPTY_ELEMENTS: usize = 1 << 16;

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
            // Elements of no bytes cost nothing in a sample but a value each when decoded.
            if elem.size() == 0 && len > MAX_EMPTY_ELEMENTS {
                return Err(self.error("array of zero-sized elements too long"));
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
        if name == "rel" && self.eat('[') {
            let at = self.pos;
            let elem = self.ty(depth + 1)?;
            if elem.has_relative() {
                self.pos = at;
                return Err(self.error("the elements of rel[...] hold relative pointers"));
            }
            self.expect(']')?;
            check_values(&elem).map_err(|e| self.error(&e))?;
            return Ok(Ty::RelSlice {
                elem: Box::new(elem),
            });
        }
        if name == "relstr" {
            return Ok(Ty::RelStr);
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
        // Names seen, for the duplicate check in constant time per field (linear parsing).
        let mut names = std::collections::HashSet::new();
        let mut end = 0usize;
        let mut align = 1usize;
        if !self.eat('}') {
            loop {
                let field = self.ident()?.to_owned();
                if !names.insert(field.clone()) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::tests::POSE;

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
            ("[E{};1000000000000]", "zero-sized elements too long"),
            // Each level is short, but together 2^48 values of no bytes.
            (
                "S{a@0:u64,z@8:[[[E{};65536];65536];65536]}",
                "values, over the limit",
            ),
        ] {
            let e = parse(bad).unwrap_err();
            assert!(e.contains(what), "{bad:?}: {e}");
        }
        let deep = "[".repeat(1000) + "u8" + &";1]".repeat(1000);
        assert!(parse(&deep).unwrap_err().contains("too deeply"));
        let deep = "rel[".repeat(1000) + "u8" + &"]".repeat(1000);
        assert!(parse(&deep).unwrap_err().contains("too deeply"));
    }

    #[test]
    fn parses_relative_pointers() {
        let ty = parse("Frame{seq@0:u64,label@8:relstr,pixels@16:rel[u8]}").unwrap();
        assert_eq!((ty.size(), ty.align()), (24, 8));
        assert!(ty.has_relative());
        let Ty::Struct { fields, .. } = &ty else {
            panic!("{ty:?}")
        };
        assert_eq!(fields[1], ("label".into(), 8, Ty::RelStr));
        assert_eq!(
            fields[2],
            (
                "pixels".into(),
                16,
                Ty::RelSlice {
                    elem: Box::new(Ty::Primitive(Primitive::U8))
                }
            )
        );
        let points = parse("rel[P{x@0:f32,y@4:f32}]").unwrap();
        assert_eq!((points.size(), points.align()), (8, 4));
        assert_eq!(parse("[relstr;2]").unwrap().size(), 16);
        assert!(!parse(crate::codec::tests::POSE).unwrap().has_relative());
        // A struct or enum may still be called `rel` or `relstr`.
        assert!(!parse("rel{a@0:u8}").unwrap().has_relative());
        assert!(!parse("relstr:u8(A=0)").unwrap().has_relative());
        for (bad, what) in [
            ("rel[rel[u8]]", "hold relative pointers"),
            ("rel[S{a@0:relstr}]", "hold relative pointers"),
            ("rel[u8", "expected ']'"),
            ("rel[]", "expected a name"),
            ("rel", "unknown type"),
            ("relstr[u8]", "unexpected text"),
        ] {
            let e = parse(bad).unwrap_err();
            assert!(e.contains(what), "{bad:?}: {e}");
        }
        let e = parse("rkyv:Telemetry").unwrap_err();
        assert!(e.contains("archived rkyv values"), "{e}");
    }
}
