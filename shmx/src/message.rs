//! The [`ShmMessage`] trait: what may live in shared memory, its structural fingerprint and
//! its schema.
//!
//! A message type is fixed-layout plain data: `#[repr(C)]`, no pointers, no implicit padding,
//! every field itself a message. `#[derive(ShmMessage)]` proves this at compile time and
//! writes the impl; shmx implements the trait for the primitives, `bool` and arrays.
//!
//! Two processes agree on a topic's type by comparing [`ShmMessage::FINGERPRINT`], a
//! structural hash of the type's name (not its module path), size, alignment, and each field's
//! name, offset and type fingerprint. The [`Schema`] holds the same facts as data, so that
//! tools can decode a message without its Rust type; its text form (`Schema::describe`) follows
//! a small grammar that names every layout exactly once ([`crate::schema_text`]).

pub use crate::schema_text::{is_identifier, type_name_problem, MAX_TYPE_NAME_LEN};
pub use crate::validation::{ValidationContext, ValidationError};

/// A type whose values can be written into shared memory by one process and read in place by
/// another.
///
/// This is an `unsafe trait`. The supported way to implement it is `#[derive(ShmMessage)]`,
/// which proves the layout facts below at compile time and writes `validate`; shmx implements
/// it for the primitives, `bool`, arrays and the relative-pointer types. The trait has a hidden
/// method whose argument type lives in a hidden module: it keeps *accidental* impls out (an
/// impl that does not write it does not compile), but it is **not a seal**. Anyone can write
/// that method too (the compiler's own help text prints it), and a hand-written
/// `unsafe impl` is then the implementer's own unsafe promise, exactly as for any other
/// `unsafe trait`: shmx relies on it to hand out `&Self` into shared memory, and breaking it
/// is undefined behaviour. Use the derive unless you can prove every point below yourself.
///
/// # Safety
/// An implementation promises that:
/// - **layout**: the type has a fixed `#[repr(C)]` (or `#[repr(transparent)]`, or a primitive
///   integer `repr` for a fieldless enum) layout, is not `packed`, and holds no pointers or
///   references into process-local memory (relative pointers only), so its bytes mean the
///   same in every process;
/// - **no padding**: every byte of `size_of::<Self>()` belongs to a field (no implicit
///   padding between or after fields, recursively), so no uninitialised byte is ever sent;
/// - **schema and fingerprint are truthful**: [`SCHEMA`](Self::SCHEMA) describes the layout
///   exactly (name, size, alignment, each field's offset and schema), and
///   [`FINGERPRINT`](Self::FINGERPRINT) is its fingerprint: the check that two processes
///   agree on a topic's type rests on them;
/// - **validation is complete**: when [`ALWAYS_VALID`](Self::ALWAYS_VALID) is `true`, every
///   bit pattern of `size_of::<Self>()` bytes is a valid value; otherwise
///   [`validate`](Self::validate) returns `Ok` only for bytes that are a valid value, for
///   *every* invalid bit pattern (a `bool` that is not 0 or 1, an enum discriminant that names
///   no variant, a relative pointer that leaves the published tail or is misaligned, a string
///   that is not UTF-8), reading the bytes only as integers and nothing outside the value and
///   the tail that its `ValidationContext` describes;
/// - **zero**: when [`ZEROABLE`](Self::ZEROABLE) is `true`, all-zero bytes are a valid value.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot live in shared memory: it is not a `ShmMessage`",
    label = "not a shared-memory message type",
    note = "derive it with `#[derive(ShmMessage)]` and `#[repr(C)]`, or use a primitive, `bool`, an array `[T; N]` of messages, or a fieldless enum with an integer `repr`"
)]
pub unsafe trait ShmMessage: Sized + 'static {
    /// The name recorded in the schema: the type's identifier without its module path, or the
    /// value of `#[shm(name = "...")]`.
    const TYPE_NAME: &'static str;
    /// The layout description of this type.
    const SCHEMA: &'static Schema;
    /// The structural fingerprint; equal to `SCHEMA.fingerprint`.
    const FINGERPRINT: u64 = Self::SCHEMA.fingerprint;
    /// `true` when every bit pattern is a valid value, so receive-side validation is skipped.
    const ALWAYS_VALID: bool;
    /// `true` when all-zero bytes are a valid value (required by `Publisher::loan`).
    const ZEROABLE: bool;

    /// Checks that the bytes at `ptr` are a valid value of `Self`.
    ///
    /// # Safety
    /// `ptr` must be aligned for `Self` and point to `size_of::<Self>()` readable bytes inside
    /// the payload that `ctx` describes, and `ctx` must describe readable memory: its
    /// [`payload`](ValidationContext::payload) points to its published bytes, and `ptr` is
    /// derived from that pointer (validators read the tail through pointers derived from it).
    /// The bytes need not be a valid `Self`: this function only reads them as integers.
    unsafe fn validate(ptr: *const Self, ctx: &ValidationContext) -> Result<(), ValidationError>;

    /// Keeps accidental impls out: the derive writes it, a hand-written impl that forgets it
    /// does not compile. Not a seal (see the trait's documentation).
    #[doc(hidden)]
    fn __shmx_sealed(_: crate::__private::Sealed);
}

/// A primitive scalar type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum Primitive {
    U8,
    U16,
    U32,
    U64,
    U128,
    I8,
    I16,
    I32,
    I64,
    I128,
    F32,
    F64,
    Bool,
}

impl Primitive {
    /// The Rust name of the type (`"u8"`, `"f64"`, `"bool"`, …).
    pub const fn name(self) -> &'static str {
        match self {
            Self::U8 => "u8",
            Self::U16 => "u16",
            Self::U32 => "u32",
            Self::U64 => "u64",
            Self::U128 => "u128",
            Self::I8 => "i8",
            Self::I16 => "i16",
            Self::I32 => "i32",
            Self::I64 => "i64",
            Self::I128 => "i128",
            Self::F32 => "f32",
            Self::F64 => "f64",
            Self::Bool => "bool",
        }
    }

    /// Every primitive, in the order of the schema grammar.
    pub const ALL: [Primitive; 13] = [
        Self::U8,
        Self::U16,
        Self::U32,
        Self::U64,
        Self::U128,
        Self::I8,
        Self::I16,
        Self::I32,
        Self::I64,
        Self::I128,
        Self::F32,
        Self::F64,
        Self::Bool,
    ];

    /// The primitive named `name` (`"u8"`, `"f64"`, …), if any.
    ///
    /// ```
    /// use shmx::message::Primitive;
    /// assert_eq!(Primitive::from_name("f32"), Some(Primitive::F32));
    /// assert_eq!(Primitive::from_name("float"), None);
    /// ```
    pub fn from_name(name: &str) -> Option<Primitive> {
        Self::ALL.into_iter().find(|p| p.name() == name)
    }

    /// `size_of` the type.
    pub const fn size(self) -> usize {
        match self {
            Self::U8 | Self::I8 | Self::Bool => 1,
            Self::U16 | Self::I16 => 2,
            Self::U32 | Self::I32 | Self::F32 => 4,
            Self::U64 | Self::I64 | Self::F64 => 8,
            Self::U128 | Self::I128 => 16,
        }
    }

    /// `align_of` the type on this machine (the one the processes sharing memory use).
    pub const fn align(self) -> usize {
        use core::mem::align_of;
        match self {
            Self::U8 | Self::I8 | Self::Bool => 1,
            Self::U16 | Self::I16 => align_of::<u16>(),
            Self::U32 | Self::I32 => align_of::<u32>(),
            Self::F32 => align_of::<f32>(),
            Self::U64 | Self::I64 => align_of::<u64>(),
            Self::F64 => align_of::<f64>(),
            Self::U128 | Self::I128 => align_of::<u128>(),
        }
    }

    /// The smallest and largest value of an integer primitive; `None` for floats and `bool`.
    pub const fn int_range(self) -> Option<(i128, u128)> {
        Some(match self {
            Self::U8 => (0, u8::MAX as u128),
            Self::U16 => (0, u16::MAX as u128),
            Self::U32 => (0, u32::MAX as u128),
            Self::U64 => (0, u64::MAX as u128),
            Self::U128 => (0, u128::MAX),
            Self::I8 => (i8::MIN as i128, i8::MAX as u128),
            Self::I16 => (i16::MIN as i128, i16::MAX as u128),
            Self::I32 => (i32::MIN as i128, i32::MAX as u128),
            Self::I64 => (i64::MIN as i128, i64::MAX as u128),
            Self::I128 => (i128::MIN, i128::MAX as u128),
            Self::F32 | Self::F64 | Self::Bool => return None,
        })
    }
}

/// One named field of a struct message.
#[derive(Debug)]
pub struct Field {
    /// The field's name.
    pub name: &'static str,
    /// Byte offset from the start of the struct.
    pub offset: usize,
    /// The field type's schema.
    pub schema: &'static Schema,
}

/// One variant of a fieldless enum message.
#[derive(Debug)]
pub struct Variant {
    /// The variant's name.
    pub name: &'static str,
    /// Its discriminant.
    pub value: i128,
}

/// The shape of a message type.
#[derive(Debug)]
pub enum SchemaKind {
    /// A primitive scalar.
    Primitive(Primitive),
    /// A `#[repr(C)]` struct with named fields.
    Struct(&'static [Field]),
    /// An array `[elem; len]`.
    Array {
        /// Element schema.
        elem: &'static Schema,
        /// Number of elements.
        len: usize,
    },
    /// A fieldless enum stored as the integer `repr`.
    Enum {
        /// The integer representation.
        repr: Primitive,
        /// The variants.
        variants: &'static [Variant],
    },
    /// A [`RelSlice`](crate::RelSlice): `u32` offset from the field's own address, then
    /// `u32` element count; the elements lie in the chunk's tail.
    RelSlice {
        /// Element schema.
        elem: &'static Schema,
    },
    /// A [`RelStr`](crate::RelStr): laid out as a `RelSlice<u8>` holding UTF-8.
    RelStr,
}

/// The layout of a message type, as data: stored in each topic so tools can decode samples.
#[derive(Debug)]
pub struct Schema {
    /// Type name (no module path).
    pub name: &'static str,
    /// `size_of` the type.
    pub size: usize,
    /// `align_of` the type.
    pub align: usize,
    /// What it is made of.
    pub kind: SchemaKind,
    /// Structural fingerprint computed from all of the above.
    pub fingerprint: u64,
}

pub(crate) const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

pub(crate) const fn hash_bytes(mut h: u64, bytes: &[u8]) -> u64 {
    let mut i = 0;
    while i < bytes.len() {
        h ^= bytes[i] as u64;
        h = h.wrapping_mul(FNV_PRIME);
        i += 1;
    }
    h
}

pub(crate) const fn hash_u64(h: u64, v: u64) -> u64 {
    hash_bytes(h, &v.to_le_bytes())
}

pub(crate) const fn hash_str(h: u64, s: &str) -> u64 {
    // Length first, so that ("ab", "c") and ("a", "bc") differ.
    hash_bytes(hash_u64(h, s.len() as u64), s.as_bytes())
}

impl Schema {
    /// The schema of a primitive.
    pub const fn primitive(p: Primitive, size: usize, align: usize) -> Schema {
        let mut h = hash_str(FNV_OFFSET, "primitive");
        h = hash_str(h, p.name());
        h = hash_u64(h, size as u64);
        h = hash_u64(h, align as u64);
        Schema {
            name: p.name(),
            size,
            align,
            kind: SchemaKind::Primitive(p),
            fingerprint: h,
        }
    }

    /// The schema of a struct with the given fields (in declaration order).
    pub const fn structure(
        name: &'static str,
        size: usize,
        align: usize,
        fields: &'static [Field],
    ) -> Schema {
        let mut h = hash_str(FNV_OFFSET, "struct");
        h = hash_str(h, name);
        h = hash_u64(h, size as u64);
        h = hash_u64(h, align as u64);
        h = hash_u64(h, fields.len() as u64);
        let mut i = 0;
        while i < fields.len() {
            h = hash_str(h, fields[i].name);
            h = hash_u64(h, fields[i].offset as u64);
            h = hash_u64(h, fields[i].schema.fingerprint);
            i += 1;
        }
        Schema {
            name,
            size,
            align,
            kind: SchemaKind::Struct(fields),
            fingerprint: h,
        }
    }

    /// The schema of `[elem; len]`.
    pub const fn array(elem: &'static Schema, len: usize, size: usize, align: usize) -> Schema {
        let mut h = hash_str(FNV_OFFSET, "array");
        h = hash_u64(h, elem.fingerprint);
        h = hash_u64(h, len as u64);
        h = hash_u64(h, size as u64);
        h = hash_u64(h, align as u64);
        Schema {
            name: "array",
            size,
            align,
            kind: SchemaKind::Array { elem, len },
            fingerprint: h,
        }
    }

    /// The schema of a fieldless enum.
    pub const fn enumeration(
        name: &'static str,
        repr: Primitive,
        size: usize,
        align: usize,
        variants: &'static [Variant],
    ) -> Schema {
        let mut h = hash_str(FNV_OFFSET, "enum");
        h = hash_str(h, name);
        h = hash_str(h, repr.name());
        h = hash_u64(h, size as u64);
        h = hash_u64(h, align as u64);
        h = hash_u64(h, variants.len() as u64);
        let mut i = 0;
        while i < variants.len() {
            h = hash_str(h, variants[i].name);
            h = hash_bytes(h, &variants[i].value.to_le_bytes());
            i += 1;
        }
        Schema {
            name,
            size,
            align,
            kind: SchemaKind::Enum { repr, variants },
            fingerprint: h,
        }
    }

    /// The schema of a relative slice of `elem` (8 bytes, aligned to 4).
    pub const fn rel_slice(elem: &'static Schema) -> Schema {
        let mut h = hash_str(FNV_OFFSET, "rel_slice");
        h = hash_u64(h, elem.fingerprint);
        Schema {
            name: "RelSlice",
            size: 8,
            align: 4,
            kind: SchemaKind::RelSlice { elem },
            fingerprint: h,
        }
    }

    /// The schema of a relative string (8 bytes, aligned to 4).
    pub const fn rel_str() -> Schema {
        Schema {
            name: "RelStr",
            size: 8,
            align: 4,
            kind: SchemaKind::RelStr,
            fingerprint: hash_str(FNV_OFFSET, "rel_str"),
        }
    }

    /// Whether the type holds relative pointers anywhere (and so has a tail).
    pub const fn has_relative(&self) -> bool {
        match &self.kind {
            SchemaKind::RelSlice { .. } | SchemaKind::RelStr => true,
            SchemaKind::Array { elem, .. } => elem.has_relative(),
            SchemaKind::Struct(fields) => {
                let mut i = 0;
                while i < fields.len() {
                    if fields[i].schema.has_relative() {
                        return true;
                    }
                    i += 1;
                }
                false
            }
            SchemaKind::Primitive(_) | SchemaKind::Enum { .. } => false,
        }
    }
}

macro_rules! impl_primitive {
    ($($t:ty => $p:ident),* $(,)?) => {$(
        // SAFETY: a primitive integer or float has a fixed layout, no padding, no pointers,
        // and every bit pattern (so also all-zero) is a valid value.
        unsafe impl ShmMessage for $t {
            const TYPE_NAME: &'static str = Primitive::$p.name();
            const SCHEMA: &'static Schema = &Schema::primitive(
                Primitive::$p,
                core::mem::size_of::<$t>(),
                core::mem::align_of::<$t>(),
            );
            const ALWAYS_VALID: bool = true;
            const ZEROABLE: bool = true;
            #[inline(always)]
            unsafe fn validate(
                _ptr: *const Self,
                _ctx: &ValidationContext,
            ) -> Result<(), ValidationError> {
                Ok(())
            }
            fn __shmx_sealed(_: crate::__private::Sealed) {}
        }
    )*};
}

impl_primitive!(
    u8 => U8, u16 => U16, u32 => U32, u64 => U64, u128 => U128,
    i8 => I8, i16 => I16, i32 => I32, i64 => I64, i128 => I128,
    f32 => F32, f64 => F64,
);

// SAFETY: `bool` is one byte with no padding and no pointers; 0 (false) is valid; `validate`
// accepts only the bytes 0 and 1, the only valid `bool` values.
unsafe impl ShmMessage for bool {
    const TYPE_NAME: &'static str = "bool";
    const SCHEMA: &'static Schema = &Schema::primitive(Primitive::Bool, 1, 1);
    const ALWAYS_VALID: bool = false;
    const ZEROABLE: bool = true;
    #[inline]
    unsafe fn validate(ptr: *const Self, _ctx: &ValidationContext) -> Result<(), ValidationError> {
        // SAFETY: the caller guarantees one readable byte at `ptr`; it is read as `u8`, for
        // which every bit pattern is valid.
        let value = unsafe { ptr.cast::<u8>().read() };
        if value <= 1 {
            Ok(())
        } else {
            Err(ValidationError::InvalidBool { offset: 0, value })
        }
    }
    fn __shmx_sealed(_: crate::__private::Sealed) {}
}

// SAFETY: an array of `N` messages has the element's layout repeated with no padding between
// elements (size is a multiple of alignment), no pointers, and is valid exactly when every
// element is, which `validate` checks element by element.
unsafe impl<T: ShmMessage, const N: usize> ShmMessage for [T; N] {
    const TYPE_NAME: &'static str = "array";
    const SCHEMA: &'static Schema = &Schema::array(
        T::SCHEMA,
        N,
        core::mem::size_of::<[T; N]>(),
        core::mem::align_of::<[T; N]>(),
    );
    const ALWAYS_VALID: bool = T::ALWAYS_VALID;
    const ZEROABLE: bool = T::ZEROABLE;
    #[inline]
    unsafe fn validate(ptr: *const Self, ctx: &ValidationContext) -> Result<(), ValidationError> {
        if T::ALWAYS_VALID {
            return Ok(());
        }
        let first = ptr.cast::<T>();
        for i in 0..N {
            // SAFETY: element `i < N` lies inside the array the caller vouched for, and is
            // aligned because the array is.
            unsafe { T::validate(first.add(i), ctx) }
                .map_err(|e| e.at(i * core::mem::size_of::<T>()))?;
        }
        Ok(())
    }
    fn __shmx_sealed(_: crate::__private::Sealed) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_differ_by_type_and_length() {
        assert_ne!(u32::FINGERPRINT, i32::FINGERPRINT);
        assert_ne!(<[u8; 3]>::FINGERPRINT, <[u8; 4]>::FINGERPRINT);
        assert_ne!(<[u16; 2]>::FINGERPRINT, <[u8; 4]>::FINGERPRINT);
        assert_eq!(<[u8; 4]>::FINGERPRINT, <[u8; 4]>::SCHEMA.fingerprint);
    }

    #[test]
    fn bool_validation_rejects_other_bytes() {
        let ctx = ValidationContext::new(core::ptr::null(), 0, 0);
        for byte in 0u8..=255 {
            let ptr = (&byte as *const u8).cast::<bool>();
            // SAFETY: `ptr` points to one readable byte; validate reads it as u8.
            let r = unsafe { bool::validate(ptr, &ctx) };
            assert_eq!(r.is_ok(), byte <= 1, "byte {byte}");
        }
        let arr = [0u8, 1, 7];
        // SAFETY: three readable bytes, align 1.
        let r = unsafe { <[bool; 3]>::validate(arr.as_ptr().cast(), &ctx) };
        assert_eq!(
            r,
            Err(ValidationError::InvalidBool {
                offset: 2,
                value: 7
            })
        );
    }
}
