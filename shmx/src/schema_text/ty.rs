//! [`Ty`]: a message type as its schema text describes it, for programs without the Rust
//! type (tools, other languages).

use crate::message::{hash_bytes, hash_str, hash_u64, Primitive, FNV_OFFSET};

/// Bytes in a relative pointer (`rel[..]`, `relstr`): a `u32` offset and a `u32` length.
pub const REL_SIZE: usize = 8;

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
        /// `size_of` the struct, as the schema states it.
        size: usize,
        /// `align_of` the struct, as the schema states it (at least each field's).
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
    /// A relative slice `rel[elem]`: the elements lie in the sample's tail.
    RelSlice {
        /// The element type (holds no relative pointers).
        elem: Box<Ty>,
    },
    /// A relative string `relstr`: UTF-8 bytes in the sample's tail.
    RelStr,
}

impl Ty {
    /// `size_of` the type, in bytes.
    pub fn size(&self) -> usize {
        match self {
            Ty::Primitive(p) | Ty::Enum { repr: p, .. } => p.size(),
            Ty::Struct { size, .. } => *size,
            Ty::Array { elem, len } => elem.size().saturating_mul(*len),
            Ty::RelSlice { .. } | Ty::RelStr => REL_SIZE,
        }
    }

    /// `align_of` the type, in bytes.
    pub fn align(&self) -> usize {
        match self {
            Ty::Primitive(p) | Ty::Enum { repr: p, .. } => p.align(),
            Ty::Struct { align, .. } => *align,
            Ty::Array { elem, .. } => elem.align(),
            Ty::RelSlice { .. } | Ty::RelStr => std::mem::align_of::<u32>(),
        }
    }

    /// How many values decoding the fixed part of a sample materialises (saturating): one
    /// per primitive, enum, struct, array and relative pointer, and `len` times the element's
    /// for an array's elements. (A relative slice's elements lie in the tail, are shown up to
    /// `--max-elements`, and each is bounded like a type of its own.) Elements of no bytes
    /// make this unbounded by the sample's length, so [`parse()`](super::parse) bounds it.
    pub fn values(&self) -> usize {
        match self {
            Ty::Primitive(_) | Ty::Enum { .. } | Ty::RelStr => 1,
            Ty::Struct { fields, .. } => fields
                .iter()
                .fold(1usize, |n, (_, _, ty)| n.saturating_add(ty.values())),
            Ty::Array { elem, len } => elem.values().saturating_mul(*len).saturating_add(1),
            Ty::RelSlice { .. } => 1,
        }
    }

    /// Whether the type holds relative pointers anywhere (so its samples have a tail).
    pub fn has_relative(&self) -> bool {
        match self {
            Ty::RelSlice { .. } | Ty::RelStr => true,
            Ty::Struct { fields, .. } => fields.iter().any(|(_, _, ty)| ty.has_relative()),
            Ty::Array { elem, .. } => elem.has_relative(),
            Ty::Primitive(_) | Ty::Enum { .. } => false,
        }
    }
}

/// The canonical schema text of the type, as [`Schema::describe`](crate::message::Schema::describe) writes it.
impl std::fmt::Display for Ty {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let primitive = |f: &mut std::fmt::Formatter<'_>, p: Primitive| {
            f.write_str(p.name())?;
            if p.size() != p.align() {
                write!(f, "({},{})", p.size(), p.align())?;
            }
            Ok(())
        };
        match self {
            Ty::Primitive(p) => primitive(f, *p),
            Ty::Struct {
                name,
                fields,
                size,
                align,
            } => {
                write!(f, "{name}({size},{align}){{")?;
                for (i, (field, offset, ty)) in fields.iter().enumerate() {
                    let sep = if i == 0 { "" } else { "," };
                    write!(f, "{sep}{field}@{offset}:{ty}")?;
                }
                f.write_str("}")
            }
            Ty::Array { elem, len } => write!(f, "[{elem};{len}]"),
            Ty::Enum {
                name,
                repr,
                variants,
            } => {
                write!(f, "{name}:")?;
                primitive(f, *repr)?;
                f.write_str("{")?;
                for (i, (variant, value)) in variants.iter().enumerate() {
                    let sep = if i == 0 { "" } else { "," };
                    write!(f, "{sep}{variant}={value}")?;
                }
                f.write_str("}")
            }
            Ty::RelSlice { elem } => write!(f, "rel[{elem}]"),
            Ty::RelStr => f.write_str("relstr"),
        }
    }
}

impl Ty {
    /// The type's structural fingerprint: the one [`Schema`](crate::message::Schema) gives
    /// the Rust type with this layout (`T::FINGERPRINT`), so a topic made from this text and
    /// one made by the Rust type are the same topic.
    ///
    /// ```
    /// use shmx::schema_text::parse;
    /// use shmx::ShmMessage;
    /// #[derive(ShmMessage)]
    /// #[repr(C)]
    /// struct Pose { seq: u64, x: f64 }
    /// let ty = parse(&Pose::SCHEMA.describe()).unwrap();
    /// assert_eq!(ty.fingerprint(), Pose::FINGERPRINT);
    /// ```
    pub fn fingerprint(&self) -> u64 {
        match self {
            Ty::Primitive(p) => {
                let mut h = hash_str(FNV_OFFSET, "primitive");
                h = hash_str(h, p.name());
                h = hash_u64(h, p.size() as u64);
                hash_u64(h, p.align() as u64)
            }
            Ty::Struct {
                name,
                fields,
                size,
                align,
            } => {
                let mut h = hash_str(FNV_OFFSET, "struct");
                h = hash_str(h, name);
                h = hash_u64(h, *size as u64);
                h = hash_u64(h, *align as u64);
                h = hash_u64(h, fields.len() as u64);
                for (field, offset, ty) in fields {
                    h = hash_str(h, field);
                    h = hash_u64(h, *offset as u64);
                    h = hash_u64(h, ty.fingerprint());
                }
                h
            }
            Ty::Array { elem, len } => {
                let mut h = hash_str(FNV_OFFSET, "array");
                h = hash_u64(h, elem.fingerprint());
                h = hash_u64(h, *len as u64);
                h = hash_u64(h, self.size() as u64);
                hash_u64(h, self.align() as u64)
            }
            Ty::Enum {
                name,
                repr,
                variants,
            } => {
                let mut h = hash_str(FNV_OFFSET, "enum");
                h = hash_str(h, name);
                h = hash_str(h, repr.name());
                h = hash_u64(h, repr.size() as u64);
                h = hash_u64(h, repr.align() as u64);
                h = hash_u64(h, variants.len() as u64);
                for (variant, value) in variants {
                    h = hash_str(h, variant);
                    h = hash_bytes(h, &value.to_le_bytes());
                }
                h
            }
            Ty::RelSlice { elem } => {
                hash_u64(hash_str(FNV_OFFSET, "rel_slice"), elem.fingerprint())
            }
            Ty::RelStr => hash_str(FNV_OFFSET, "rel_str"),
        }
    }

    /// The alignment a sample of this type needs in memory (as
    /// [`Schema::sample_align`](crate::message::Schema::sample_align)): the type's own, or
    /// more when the elements of a relative slice are aligned more strictly.
    pub fn sample_align(&self) -> usize {
        let inner = match self {
            Ty::Primitive(_) | Ty::Enum { .. } | Ty::RelStr => 1,
            Ty::Array { elem, .. } | Ty::RelSlice { elem } => elem.sample_align(),
            Ty::Struct { fields, .. } => fields
                .iter()
                .map(|(_, _, ty)| ty.sample_align())
                .max()
                .unwrap_or(1),
        };
        inner.max(self.align())
    }

    /// The name a topic of this type records: a struct's or an enum's own name, `"array"`,
    /// `"RelSlice"`, `"RelStr"` or the primitive's, as the Rust type's `TYPE_NAME`.
    pub fn type_name(&self) -> &str {
        match self {
            Ty::Primitive(p) => p.name(),
            Ty::Struct { name, .. } | Ty::Enum { name, .. } => name,
            Ty::Array { .. } => "array",
            Ty::RelSlice { .. } => "RelSlice",
            Ty::RelStr => "RelStr",
        }
    }
}
