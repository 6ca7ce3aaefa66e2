//! Parsing: schema text (the grammar of [the module](super), as
//! [`Schema::describe`](crate::message::Schema::describe) writes it) into a [`Ty`], checked to be one layout the
//! derive could have made, and written in its one canonical form.

use super::{is_identifier, type_name_problem, Ty};
use crate::message::Primitive;
use std::collections::HashSet;

/// Parses schema text (as [`Schema::describe`](crate::message::Schema::describe) writes it) into a type.
///
/// Beyond the grammar, the layout must be one a `#[derive(ShmMessage)]` type has: alignments
/// are powers of two, a struct's fields are aligned, in order, do not overlap and cover every
/// byte of its size (no padding), a struct's size is a multiple of its alignment and that
/// alignment at least each field's, primitives have this machine's size and alignment. The
/// text must be canonical (written exactly as `describe` writes that layout), so one layout
/// has one text. Archived rkyv topics ([`super::is_archived`]) have no such text: an error says
/// so.
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
    let canonical = ty.to_string();
    if canonical != schema {
        let mut p = Parser {
            text: schema,
            pos: 0,
        };
        let at = schema
            .bytes()
            .zip(canonical.bytes())
            .position(|(a, b)| a != b)
            .unwrap_or(schema.len().min(canonical.len()));
        let expected: String = canonical[at..].chars().take(20).collect();
        return Err(p.error_at(
            at,
            &format!("not the canonical text of its layout (which has {expected:?} here)"),
        ));
    }
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

/// How much of a schema text an error shows.
const SHOWN_CHARS: usize = 120;

/// The largest alignment Rust allows (`#[repr(align(N))]` takes up to 2^29).
const MAX_ALIGN: usize = 1 << 29;

struct Parser<'a> {
    text: &'a str,
    pos: usize,
}

impl Parser<'_> {
    fn error(&self, what: &str) -> String {
        let rest: String = self.text[self.pos..].chars().take(20).collect();
        // The text may be 64 KiB: errors show its start.
        let shown: String = self.text.chars().take(SHOWN_CHARS).collect();
        let more = if shown.len() < self.text.len() {
            format!(" (and {} more bytes)", self.text.len() - shown.len())
        } else {
            String::new()
        };
        if rest.is_empty() {
            format!("bad schema {shown:?}{more}: {what} at its end")
        } else {
            format!(
                "bad schema {shown:?}{more}: {what} at byte {} ({rest:?})",
                self.pos
            )
        }
    }

    /// An error about the text from byte `at` on.
    fn error_at(&mut self, at: usize, what: &str) -> String {
        self.pos = at;
        self.error(what)
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

    /// An identifier: an ASCII letter or `_`, then ASCII letters, digits and `_`.
    fn identifier(&mut self) -> Result<&str, String> {
        let start = self.pos;
        let rest = &self.text[start..];
        let len = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        if len == 0 || !is_identifier(&rest[..len]) {
            return Err(self.error("expected a name (an ASCII identifier)"));
        }
        self.pos += len;
        Ok(&self.text[start..start + len])
    }

    /// A type's name: identifiers joined by `::`.
    fn name(&mut self) -> Result<&str, String> {
        let start = self.pos;
        self.identifier()?;
        while self.text[self.pos..].starts_with("::") {
            self.pos += 2;
            self.identifier()?;
        }
        Ok(&self.text[start..self.pos])
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
        usize::try_from(n).map_err(|_| self.error_at(at, "expected a size or an offset"))
    }

    /// `(size,align)`, after the `(`.
    fn size_and_align(&mut self) -> Result<(usize, usize), String> {
        let size = self.count()?;
        self.expect(',')?;
        let at = self.pos;
        let align = self.count()?;
        if !align.is_power_of_two() || align > MAX_ALIGN {
            return Err(self.error_at(at, "the alignment is not a power of two up to 2^29"));
        }
        self.expect(')')?;
        Ok((size, align))
    }

    /// A primitive named `name` (just read), with its optional `(size,align)`.
    fn primitive(&mut self, p: Primitive, at: usize) -> Result<Primitive, String> {
        if self.eat('(') {
            let layout = self.size_and_align()?;
            if layout != (p.size(), p.align()) {
                return Err(self.error_at(
                    at,
                    &format!(
                        "{} is {} bytes aligned to {} on this machine: the topic was made by a \
                         program for another target",
                        p.name(),
                        p.size(),
                        p.align()
                    ),
                ));
            }
        }
        Ok(p)
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
        let at = self.pos;
        let name = self.name()?.to_owned();
        if let Some(p) = primitive(&name) {
            return self.primitive(p, at).map(Ty::Primitive);
        }
        if name == "rel" && self.eat('[') {
            let at = self.pos;
            let elem = self.ty(depth + 1)?;
            if elem.has_relative() {
                return Err(self.error_at(at, "the elements of rel[...] hold relative pointers"));
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
        if let Some(problem) = type_name_problem(&name) {
            return Err(self.error_at(at, &format!("bad type name: {problem}")));
        }
        if self.eat('(') {
            return self.structure(name, depth);
        }
        if self.eat(':') {
            return self.enumeration(name);
        }
        Err(self.error_at(
            at,
            &format!(
                "unknown type `{name}` (a struct's name is followed by `(size,align){{`, an \
                 enum's by `:repr{{`)"
            ),
        ))
    }

    /// The rest of `Name(size,align){field@offset:type,...}`, after the `(`.
    fn structure(&mut self, name: String, depth: usize) -> Result<Ty, String> {
        let layout_at = self.pos;
        let (size, align) = self.size_and_align()?;
        if size % align != 0 {
            return Err(self.error_at(layout_at, "the size is not a multiple of the alignment"));
        }
        self.expect('{')?;
        let mut fields: Vec<(String, usize, Ty)> = Vec::new();
        // Names seen, for the duplicate check in constant time per field (linear parsing).
        let mut names = HashSet::new();
        // Where the previous field ends, and how many bytes the fields cover.
        let (mut end, mut covered) = (0usize, 0usize);
        if !self.eat('}') {
            loop {
                let at = self.pos;
                let field = self.identifier()?.to_owned();
                if !names.insert(field.clone()) {
                    return Err(self.error_at(at, "duplicate field"));
                }
                self.expect('@')?;
                let offset = self.count()?;
                self.expect(':')?;
                let ty = self.ty(depth + 1)?;
                let problem = if offset % ty.align() != 0 {
                    Some("is not aligned for its type")
                } else if ty.align() > align {
                    Some("is aligned more strictly than its struct")
                } else if ty.size() > 0 && offset < end {
                    Some("overlaps the field before it")
                } else if offset.checked_add(ty.size()).is_none_or(|e| e > size) {
                    Some("lies outside its struct")
                } else {
                    None
                };
                if let Some(problem) = problem {
                    return Err(self.error_at(at, &format!("field `{field}` {problem}")));
                }
                if ty.size() > 0 {
                    end = offset + ty.size();
                    covered += ty.size();
                }
                fields.push((field, offset, ty));
                if self.eat('}') {
                    break;
                }
                if !self.eat(',') {
                    return Err(self.error("expected ',' or '}'"));
                }
            }
        }
        if covered != size {
            return Err(self.error_at(
                layout_at,
                &format!(
                    "the fields cover {covered} of the struct's {size} bytes (a message type \
                     has no padding)"
                ),
            ));
        }
        Ok(Ty::Struct {
            name,
            fields,
            size,
            align,
        })
    }

    /// The rest of `Name:repr{Variant=value,...}`, after the `:`.
    fn enumeration(&mut self, name: String) -> Result<Ty, String> {
        let repr_at = self.pos;
        let repr = self.identifier()?;
        let Some((repr, (min, max))) = primitive(repr).and_then(|p| Some((p, p.int_range()?)))
        else {
            return Err(self.error_at(repr_at, "expected an integer type"));
        };
        let repr = self.primitive(repr, repr_at)?;
        self.expect('{')?;
        let mut variants: Vec<(String, i128)> = Vec::new();
        let mut names = HashSet::new();
        loop {
            let at = self.pos;
            let variant = self.identifier()?.to_owned();
            if !names.insert(variant.clone()) {
                return Err(self.error_at(at, "duplicate variant"));
            }
            self.expect('=')?;
            let at = self.pos;
            let value = self.integer()?;
            if value < min || (value >= 0 && value as u128 > max) {
                return Err(self.error_at(
                    at,
                    &format!("discriminant out of range for {}", repr.name()),
                ));
            }
            variants.push((variant, value));
            if self.eat('}') {
                break;
            }
            if !self.eat(',') {
                return Err(self.error("expected ',' or '}'"));
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
    Primitive::from_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    const POSE: &str = "Pose(32,8){seq@0:u64,x@8:f64,y@16:f64,heading@24:f32,flags@28:u32}";

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
        let outer = parse("Outer(16,8){inner@0:Inner(8,4){a@0:u32,b@4:u32},c@8:u64}").unwrap();
        assert_eq!(outer.size(), 16);
        let mode = parse("Mode:u8{Idle=0,Drive=1,Stop=2}").unwrap();
        assert_eq!(
            mode,
            Ty::Enum {
                name: "Mode".into(),
                repr: Primitive::U8,
                variants: vec![("Idle".into(), 0), ("Drive".into(), 1), ("Stop".into(), 2)],
            }
        );
        assert_eq!(mode.size(), 1);
        assert_eq!(parse("Neg:i16{Down=-1,Up=1}").unwrap().size(), 2);
        for p in Primitive::ALL {
            assert_eq!(parse(p.name()).unwrap(), Ty::Primitive(p));
        }
        assert_eq!(parse("u128").unwrap().size(), 16);
        // Size and alignment are as written, the alignment at least each field's.
        let t = parse("T(16,16){a@0:u64,b@8:u64}").unwrap();
        assert_eq!((t.size(), t.align()), (16, 16));
        assert_eq!(parse("Empty(0,1){}").unwrap().size(), 0);
        assert_eq!(parse("Empty(0,8){}").unwrap().align(), 8);
        assert_eq!(parse("geo::Pose(8,8){x@0:f64}").unwrap().size(), 8);
        assert_eq!(parse("a::b::M:u8{A=0}").unwrap().size(), 1);
        // Only whole names are reserved: a path may start with one.
        assert_eq!(parse("u8::P(1,1){a@0:u8}").unwrap().size(), 1);
        assert_eq!(parse("rkyv::M:u8{A=0}").unwrap().size(), 1);
    }

    #[test]
    fn parse_errors_say_where() {
        for (bad, what) in [
            ("", "expected a name"),
            ("u7", "unknown type `u7`"),
            ("Pose{x@0:f64}", "unknown type `Pose`"),
            ("[u8;16", "expected ']'"),
            ("[u8;-1]", "expected a size"),
            ("P(2,1){a@0:u8,a@1:u8}", "duplicate field"),
            ("P(1,1){a@0:u8", "expected ',' or '}'"),
            ("P(1,1){a:u8}", "expected '@'"),
            ("P(1,1){a@0:u8,}", "expected a name"),
            ("M:u8{}", "expected a name"),
            ("M:u8{A=0,A=1}", "duplicate variant"),
            ("M:f32{A=0}", "expected an integer type"),
            ("M:u8{A=256}", "out of range for u8"),
            ("u8,", "unexpected text"),
            ("[u8;99999999999999999999999]", "expected a size"),
            ("[[u64;4294967296];4294967296]", "array too large"),
            ("[E(0,1){};1000000000000]", "zero-sized elements too long"),
            // Each level is short, but together 2^48 values of no bytes.
            (
                "S(8,8){a@0:u64,z@8:[[[E(0,1){};65536];65536];65536]}",
                "values, over the limit",
            ),
        ] {
            let e = parse(bad).unwrap_err();
            assert!(e.contains(what), "{bad:?}: {e}");
        }
        let deep = "[".repeat(1000) + "u8" + &";1]".repeat(1000);
        let e = parse(&deep).unwrap_err();
        assert!(
            e.contains("too deeply") && e.contains("(and 3882 more bytes)"),
            "{e}"
        );
        let deep = "rel[".repeat(1000) + "u8" + &"]".repeat(1000);
        assert!(parse(&deep).unwrap_err().contains("too deeply"));
    }

    #[test]
    fn only_layouts_the_derive_can_make_are_accepted() {
        for (bad, what) in [
            ("P(8,3){a@0:u64}", "not a power of two"),
            ("P(8,0){a@0:u64}", "not a power of two"),
            ("P(6,4){a@0:u32,b@4:u16}", "not a multiple of the alignment"),
            ("P(8,4){a@0:u64}", "aligned more strictly than its struct"),
            (
                "P(16,8){a@0:u32,b@4:u64,c@12:u32}",
                "field `b` is not aligned",
            ),
            ("P(8,4){a@0:u32,b@2:u16,c@4:u16}", "field `b` overlaps"),
            ("P(8,4){b@4:u32,a@0:u32}", "field `a` overlaps"),
            ("P(4,4){a@0:u32,b@4:u32}", "field `b` lies outside"),
            (
                "P(16,8){a@0:u64,b@8:u8}",
                "cover 9 of the struct's 16 bytes",
            ),
            ("P(8,8){a@0:u32}", "cover 4 of the struct's 8 bytes"),
            // One layout, one text.
            ("u64(8,8)", "not the canonical text"),
            (
                "u64(8,4)",
                "the topic was made by a program for another target",
            ),
            ("P(08,8){a@0:u64}", "not the canonical text"),
            ("P(8,8){a@00:u64}", "not the canonical text"),
            ("M:u8{A=-0}", "not the canonical text"),
            ("M:u8{A=01}", "not the canonical text"),
            ("[u8;04]", "not the canonical text"),
            // Names are the grammar's identifiers.
            ("Grüße(1,1){a@0:u8}", "unknown type `Gr`"),
            ("P(1,1){größe@0:u8}", "expected '@'"),
            ("geo:::P(1,1){a@0:u8}", "expected a name"),
            ("P(1,1){1a@0:u8}", "expected a name"),
            ("P(1,1){a b@0:u8}", "expected '@'"),
        ] {
            let e = parse(bad).unwrap_err();
            assert!(e.contains(what), "{bad:?}: {e}");
        }
    }

    #[test]
    fn natural_and_raised_alignment_are_two_texts_and_two_layouts() {
        let natural = parse("rel[P(8,4){a@0:u32,b@4:u32}]").unwrap();
        let raised = parse("rel[P(8,8){a@0:u32,b@4:u32}]").unwrap();
        assert_ne!(natural, raised);
        let (Ty::RelSlice { elem: n }, Ty::RelSlice { elem: r }) = (&natural, &raised) else {
            panic!("relative slices")
        };
        assert_eq!((n.align(), r.align()), (4, 8));
    }

    #[test]
    fn parses_relative_pointers() {
        let ty = parse("Frame(24,8){seq@0:u64,label@8:relstr,pixels@16:rel[u8]}").unwrap();
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
        let points = parse("rel[P(8,4){x@0:f32,y@4:f32}]").unwrap();
        assert_eq!((points.size(), points.align()), (8, 4));
        assert_eq!(parse("[relstr;2]").unwrap().size(), 16);
        assert!(!parse(POSE).unwrap().has_relative());
        // A field may be called `rel` or `relstr`; a type may not.
        assert!(!parse("R(1,1){relstr@0:u8}").unwrap().has_relative());
        for (bad, what) in [
            ("rel(1,1){a@0:u8}", "`rel` is a word of the schema grammar"),
            ("relstr:u8{A=0}", "unexpected text"),
            ("rel[rel[u8]]", "hold relative pointers"),
            ("rel[S(8,4){a@0:relstr}]", "hold relative pointers"),
            ("rel[u8", "expected ']'"),
            ("rel[]", "expected a name"),
            ("rel", "`rel` is a word of the schema grammar"),
            ("relstr[u8]", "unexpected text"),
        ] {
            let e = parse(bad).unwrap_err();
            assert!(e.contains(what), "{bad:?}: {e}");
        }
        let e = parse("rkyv:Telemetry").unwrap_err();
        assert!(e.contains("archived rkyv values"), "{e}");
    }
}
