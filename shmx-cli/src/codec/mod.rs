//! Messages as JSON, without their Rust type: a parser of the schema text each topic stores
//! ([`shmx::message::Schema::describe`]), and a decoder and encoder between a message's bytes
//! and JSON.
//!
//! The schema text follows the grammar of [`shmx::schema_text`] and looks like
//! `Pose(24,8){seq@0:u64,x@8:f64,heading@16:f32,flags@20:u32}`: structs are
//! `Name(size,align){field@offset:type,...}`, arrays `[type;len]`, fieldless enums
//! `Name:repr{Variant=value,...}`, primitives `u8`..`u128`, `i8`..`i128`, `f32`, `f64` and
//! `bool`, and relative pointers `rel[type]` (a `RelSlice`) and `relstr` (a `RelStr`). Every
//! size and alignment is in the text, and padding is always explicit (`_pad` fields of
//! `[u8;N]`), so every byte of a message belongs to some field. [`parse()`] accepts only the
//! canonical text of a layout the derive can make, and lays values out exactly as written.
//!
//! A relative pointer is 8 bytes in the message: a `u32` offset counted from the pointer's
//! own first byte, then a `u32` element count. Its elements lie in the sample's *tail*, after
//! the fixed-size message, aligned for the element type (see `shmx::rel`); a sample of such a
//! type is the message followed by the used part of its tail. Elements never hold relative
//! pointers themselves (`rel[rel[u8]]` is refused, as the library refuses it).
//!
//! Topics of archived rkyv values have schema text starting with `rkyv:`
//! (`rkyv:Name`): their samples are whole archives this codec cannot decode.
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
//!   `"inf"` and `"-inf"`;
//! - a `rel[T]` is a JSON array of its elements; decoding shows at most a given number of
//!   them, followed by a marker object `{"...": N}` counting the `N` left out;
//! - a `relstr` is a JSON string.
//!
//! Decoding checks every relative pointer (the offset and length come from shared memory
//! and are not trusted): its elements must lie whole, aligned, inside the tail of the bytes
//! given, and a string's bytes must be UTF-8; otherwise decoding fails with an error that
//! names the field.
//!
//! Bytes are in the machine's native byte order, as the processes sharing the memory use them.
//!
//! The parts: [`parse()`] (schema text to [`Ty`]), [`decode()`] (bytes to JSON) and
//! [`encode()`] (JSON to bytes).

mod decode;
mod encode;
#[cfg(test)]
mod fuzz;
mod parse;
#[cfg(test)]
mod tests;

pub use decode::decode;
pub use encode::encode;
pub use parse::parse;

use shmx::message::Primitive;

pub use shmx::schema_text::is_archived;

/// Bytes in a relative pointer (`rel[..]`, `relstr`): a `u32` offset and a `u32` length.
const REL_SIZE: usize = 8;

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
            Ty::Primitive(p) | Ty::Enum { repr: p, .. } => prim_size(*p),
            Ty::Struct { size, .. } => *size,
            Ty::Array { elem, len } => elem.size().saturating_mul(*len),
            Ty::RelSlice { .. } | Ty::RelStr => REL_SIZE,
        }
    }

    /// `align_of` the type, in bytes.
    pub fn align(&self) -> usize {
        match self {
            Ty::Primitive(p) | Ty::Enum { repr: p, .. } => prim_align(*p),
            Ty::Struct { align, .. } => *align,
            Ty::Array { elem, .. } => elem.align(),
            Ty::RelSlice { .. } | Ty::RelStr => std::mem::align_of::<u32>(),
        }
    }

    /// How many values decoding the fixed part of a sample materialises (saturating): one
    /// per primitive, enum, struct, array and relative pointer, and `len` times the element's
    /// for an array's elements. (A relative slice's elements lie in the tail, are shown up to
    /// `--max-elements`, and each is bounded like a type of its own.) Elements of no bytes
    /// make this unbounded by the sample's length, so [`parse()`] bounds it.
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

/// The canonical schema text of the type, as [`shmx::message::Schema::describe`] writes it.
impl std::fmt::Display for Ty {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let primitive = |f: &mut std::fmt::Formatter<'_>, p: Primitive| {
            f.write_str(p.name())?;
            if prim_size(p) != prim_align(p) {
                write!(f, "({},{})", prim_size(p), prim_align(p))?;
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
