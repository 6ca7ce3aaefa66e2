//! The schema text: one canonical line per layout, stored in each topic so that tools (and
//! other languages) can read and write its samples without the Rust type.
//!
//! ```text
//! type     = prim | struct | enum | array | rel | relstr
//! prim     = "u8" | "u16" | "u32" | "u64" | "u128" | "i8" | … | "i128" | "f32" | "f64" | "bool"
//!            [ "(" size "," align ")" ]          only when the alignment is not the size
//! struct   = name "(" size "," align ")" "{" [ field { "," field } ] "}"
//! field    = ident "@" offset ":" type
//! enum     = name ":" prim "{" variant { "," variant } "}"
//! variant  = ident "=" integer
//! array    = "[" type ";" len "]"
//! rel      = "rel[" type "]"                     a RelSlice: 8 bytes, aligned to 4
//! relstr   = "relstr"                            a RelStr: 8 bytes, aligned to 4
//! ident    = [A-Za-z_][A-Za-z0-9_]*
//! name     = ident { "::" ident }                not a primitive's name, `rel`, `relstr`
//!                                                or `rkyv`; at most MAX_TYPE_NAME_LEN bytes
//! ```
//!
//! Every number is decimal without leading zeros; there is no white space. Every type's size
//! and alignment are in the text: a struct states both, a primitive states them when its
//! alignment is not its size (a `u64` of a 32-bit target is `u64(8,4)`), an enum has its
//! representation's, an array `[T;N]` is `N` times `T`'s size with `T`'s alignment, and a
//! relative pointer is two `u32`s. Names cannot hold the grammar's punctuation, control
//! characters or anything a terminal interprets, so two types with different layouts never
//! print the same text, and any text names one layout.
//!
//! For example `Pose(32,8){seq@0:u64,x@8:f64,y@16:f64,heading@24:f32,mode@28:Mode:u32{Idle=0,
//! Drive=1}}`, `[u8;16]`, or `Frame(24,8){seq@0:u64,label@8:relstr,pixels@16:rel[u8]}`.
//!
//! Topics of archived rkyv values store `rkyv:` and the type's name (as `std::any::type_name`
//! spells it, without module paths) instead: such a name is not an `ident`, and `rkyv:` is
//! followed by one `:` only, so no schema text of the grammar above starts that way.

#[cfg(not(loom))]
mod message_type;
mod parse;
mod ty;

#[cfg(not(loom))]
pub use message_type::MessageType;
pub use parse::parse;
pub use ty::{Ty, REL_SIZE};

use crate::message::{Primitive, Schema, SchemaKind};
use core::fmt::Write as _;

/// The longest type name a topic stores (the whole name is stored, never cut).
pub const MAX_TYPE_NAME_LEN: usize = 1024;

/// How the schema text of a topic of archived rkyv values starts (`rkyv:Telemetry`).
pub const ARCHIVED_PREFIX: &str = "rkyv:";

/// Whether `schema` is that of a topic of archived rkyv values (`rkyv:` then a name), whose
/// samples are whole archives rather than a layout this grammar describes.
///
/// ```
/// use shmx::schema_text::is_archived;
/// assert!(is_archived("rkyv:Telemetry"));
/// assert!(!is_archived("rkyv::Mode:u8{A=0}") && !is_archived("Pose(8,8){x@0:f64}"));
/// ```
pub fn is_archived(schema: &str) -> bool {
    schema
        .strip_prefix(ARCHIVED_PREFIX)
        .is_some_and(|rest| !rest.starts_with(':'))
}

/// Names a message type may not have: the grammar's own words.
const RESERVED: [&str; 16] = [
    "u8", "u16", "u32", "u64", "u128", "i8", "i16", "i32", "i64", "i128", "f32", "f64", "bool",
    "rel", "relstr", "rkyv",
];

/// Whether `s` is an identifier of the schema grammar: an ASCII letter or `_`, then ASCII
/// letters, digits and `_`. Field and variant names must be one.
///
/// ```
/// use shmx::message::is_identifier;
/// assert!(is_identifier("heading_deg") && is_identifier("_pad0"));
/// assert!(!is_identifier("größe") && !is_identifier("a,b") && !is_identifier("1x"));
/// ```
pub const fn is_identifier(s: &str) -> bool {
    let b = s.as_bytes();
    if b.is_empty() || !(b[0].is_ascii_alphabetic() || b[0] == b'_') {
        return false;
    }
    let mut i = 1;
    while i < b.len() {
        if !(b[i].is_ascii_alphanumeric() || b[i] == b'_') {
            return false;
        }
        i += 1;
    }
    true
}

/// Why `name` cannot be a message type's name in a schema, or `None` if it can: identifiers
/// joined by `::` (`Pose`, `geo::Pose`), not one of the grammar's words (`u8`, `rel`, …), at
/// most [`MAX_TYPE_NAME_LEN`] bytes.
///
/// ```
/// use shmx::message::type_name_problem;
/// assert_eq!(type_name_problem("geo::Pose"), None);
/// assert!(type_name_problem("u8,b@1:u8").is_some());
/// assert!(type_name_problem("u8").is_some());
/// ```
pub fn type_name_problem(name: &str) -> Option<String> {
    if name.len() > MAX_TYPE_NAME_LEN {
        return Some(format!(
            "is {} bytes long, over the limit of {MAX_TYPE_NAME_LEN}",
            name.len()
        ));
    }
    if RESERVED.contains(&name) {
        return Some(format!(
            "`{name}` is a word of the schema grammar (a primitive, `rel`, `relstr` or `rkyv`)"
        ));
    }
    if !name.split("::").all(is_identifier) {
        return Some(format!(
            "{name:?} is not ASCII identifiers joined by `::` (letters, digits and `_`, not \
             starting with a digit)"
        ));
    }
    None
}

impl Schema {
    /// The schema text of this type (see the grammar in this module's documentation), e.g.
    /// `Pose(16,8){seq@0:u64,x@8:f64}` or `[u8;16]`; stored in each topic's service segment.
    ///
    /// ```
    /// use shmx::ShmMessage;
    /// #[derive(ShmMessage)]
    /// #[repr(C, align(8))]
    /// struct Pair { a: u32, b: u32 }
    /// assert_eq!(Pair::SCHEMA.describe(), "Pair(8,8){a@0:u32,b@4:u32}");
    /// assert_eq!(<[[u8; 2]; 3]>::SCHEMA.describe(), "[[u8;2];3]");
    /// ```
    pub fn describe(&self) -> String {
        let mut out = String::new();
        self.describe_into(&mut out);
        out
    }

    fn describe_into(&self, out: &mut String) {
        match &self.kind {
            SchemaKind::Primitive(p) => primitive(out, *p, self.size, self.align),
            SchemaKind::Array { elem, len } => {
                out.push('[');
                elem.describe_into(out);
                let _ = write!(out, ";{len}]");
            }
            SchemaKind::Struct(fields) => {
                let _ = write!(out, "{}({},{}){{", self.name, self.size, self.align);
                for (i, f) in fields.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    let _ = write!(out, "{}@{}:", f.name, f.offset);
                    f.schema.describe_into(out);
                }
                out.push('}');
            }
            SchemaKind::Enum { repr, variants } => {
                let _ = write!(out, "{}:", self.name);
                primitive(out, *repr, self.size, self.align);
                out.push('{');
                for (i, v) in variants.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    let _ = write!(out, "{}={}", v.name, v.value);
                }
                out.push('}');
            }
            SchemaKind::RelSlice { elem } => {
                out.push_str("rel[");
                elem.describe_into(out);
                out.push(']');
            }
            SchemaKind::RelStr => out.push_str("relstr"),
        }
    }

    /// Why this schema cannot be written as schema text, or `None`: a type, field or variant
    /// name outside the grammar's (see [`type_name_problem`] and [`is_identifier`]). The
    /// derive refuses such names at compile time; this catches hand-written impls when a
    /// topic is created.
    pub fn name_problem(&self) -> Option<String> {
        match &self.kind {
            SchemaKind::Primitive(_) | SchemaKind::RelStr => None,
            SchemaKind::Array { elem, .. } | SchemaKind::RelSlice { elem } => elem.name_problem(),
            SchemaKind::Struct(fields) => {
                if let Some(p) = type_name_problem(self.name) {
                    return Some(format!("type name {p}"));
                }
                fields.iter().find_map(|f| {
                    if is_identifier(f.name) {
                        f.schema.name_problem()
                    } else {
                        Some(format!(
                            "field {:?} of `{}` is not an ASCII identifier",
                            f.name, self.name
                        ))
                    }
                })
            }
            SchemaKind::Enum { variants, .. } => {
                if let Some(p) = type_name_problem(self.name) {
                    return Some(format!("type name {p}"));
                }
                variants.iter().find(|v| !is_identifier(v.name)).map(|v| {
                    format!(
                        "variant {:?} of `{}` is not an ASCII identifier",
                        v.name, self.name
                    )
                })
            }
        }
    }

    /// The alignment a sample of this type needs in memory: the type's own, or more when the
    /// elements of one of its relative slices are aligned more strictly (they lie in the
    /// sample's tail, at offsets from the sample's start that are multiples of their
    /// alignment, so the sample's first byte must be aligned for them too).
    pub const fn sample_align(&self) -> usize {
        let own = self.align;
        let inner = match &self.kind {
            SchemaKind::Primitive(_) | SchemaKind::Enum { .. } | SchemaKind::RelStr => 1,
            SchemaKind::Array { elem, .. } => elem.sample_align(),
            SchemaKind::RelSlice { elem } => elem.sample_align(),
            SchemaKind::Struct(fields) => {
                let mut max = 1;
                let mut i = 0;
                while i < fields.len() {
                    let a = fields[i].schema.sample_align();
                    if a > max {
                        max = a;
                    }
                    i += 1;
                }
                max
            }
        };
        if inner > own {
            inner
        } else {
            own
        }
    }
}

/// A primitive, with its size and alignment when they differ.
fn primitive(out: &mut String, p: Primitive, size: usize, align: usize) {
    out.push_str(p.name());
    if size != align {
        let _ = write!(out, "({size},{align})");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ShmMessage;

    #[test]
    fn describe_shows_nesting() {
        assert_eq!(<[[u8; 2]; 3]>::SCHEMA.describe(), "[[u8;2];3]");
        assert_eq!(u64::SCHEMA.describe(), "u64");
    }

    #[test]
    fn an_unnatural_primitive_alignment_is_spelled_out() {
        let mut s = String::new();
        primitive(&mut s, Primitive::U64, 8, 4);
        assert_eq!(s, "u64(8,4)");
    }

    #[test]
    fn names_outside_the_grammar_are_refused() {
        for bad in [
            "",
            "1a",
            "a b",
            "a,b",
            "a::",
            "::a",
            "a:::b",
            "a\u{1b}]0;x",
            "Grüße",
        ] {
            assert!(type_name_problem(bad).is_some(), "{bad:?}");
        }
        for word in RESERVED {
            assert!(type_name_problem(word).is_some(), "{word}");
        }
        assert!(type_name_problem(&"a".repeat(MAX_TYPE_NAME_LEN)).is_none());
        assert!(type_name_problem(&"a".repeat(MAX_TYPE_NAME_LEN + 1)).is_some());
        for good in ["Pose", "_P", "geo::Pose", "a::b::c9", "rkyvish", "u8x"] {
            assert_eq!(type_name_problem(good), None, "{good}");
        }
    }
}
