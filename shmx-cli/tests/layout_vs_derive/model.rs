//! The model: message types (primitives, arrays, structs, fieldless enums, relative pointers)
//! and their values, and the layout the generator computes for a type by the `repr(C)` rules:
//! size, alignment, `Schema::sample_align`, and the schema text `Schema::describe` writes.

use crate::generate::Gen;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Prim {
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

pub(crate) const PRIMS: [Prim; 13] = [
    Prim::U8,
    Prim::U16,
    Prim::U32,
    Prim::U64,
    Prim::U128,
    Prim::I8,
    Prim::I16,
    Prim::I32,
    Prim::I64,
    Prim::I128,
    Prim::F32,
    Prim::F64,
    Prim::Bool,
];

/// The integer reprs a message enum may have.
pub(crate) const ENUM_REPRS: [Prim; 8] = [
    Prim::U8,
    Prim::U16,
    Prim::U32,
    Prim::U64,
    Prim::I8,
    Prim::I16,
    Prim::I32,
    Prim::I64,
];

impl Prim {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Prim::U8 => "u8",
            Prim::U16 => "u16",
            Prim::U32 => "u32",
            Prim::U64 => "u64",
            Prim::U128 => "u128",
            Prim::I8 => "i8",
            Prim::I16 => "i16",
            Prim::I32 => "i32",
            Prim::I64 => "i64",
            Prim::I128 => "i128",
            Prim::F32 => "f32",
            Prim::F64 => "f64",
            Prim::Bool => "bool",
        }
    }

    pub(crate) fn size(self) -> usize {
        use std::mem::size_of;
        match self {
            Prim::U8 | Prim::I8 | Prim::Bool => 1,
            Prim::U16 | Prim::I16 => size_of::<u16>(),
            Prim::U32 | Prim::I32 | Prim::F32 => size_of::<u32>(),
            Prim::U64 | Prim::I64 | Prim::F64 => size_of::<u64>(),
            Prim::U128 | Prim::I128 => size_of::<u128>(),
        }
    }

    /// This machine's alignment, which the probe (built for it) has too.
    pub(crate) fn align(self) -> usize {
        use std::mem::align_of;
        match self {
            Prim::U8 | Prim::I8 | Prim::Bool => 1,
            Prim::U16 | Prim::I16 => align_of::<u16>(),
            Prim::U32 | Prim::I32 => align_of::<u32>(),
            Prim::F32 => align_of::<f32>(),
            Prim::U64 | Prim::I64 => align_of::<u64>(),
            Prim::F64 => align_of::<f64>(),
            Prim::U128 | Prim::I128 => align_of::<u128>(),
        }
    }

    /// The range of an integer primitive.
    pub(crate) fn range(self) -> (i128, u128) {
        match self {
            Prim::U8 => (0, u8::MAX.into()),
            Prim::U16 => (0, u16::MAX.into()),
            Prim::U32 => (0, u32::MAX.into()),
            Prim::U64 => (0, u64::MAX.into()),
            Prim::U128 => (0, u128::MAX),
            Prim::I8 => (i8::MIN.into(), i8::MAX as u128),
            Prim::I16 => (i16::MIN.into(), i16::MAX as u128),
            Prim::I32 => (i32::MIN.into(), i32::MAX as u128),
            Prim::I64 => (i64::MIN.into(), i64::MAX as u128),
            Prim::I128 => (i128::MIN, i128::MAX as u128),
            Prim::F32 | Prim::F64 | Prim::Bool => (0, 1),
        }
    }

    pub(crate) fn signed(self) -> bool {
        matches!(
            self,
            Prim::I8 | Prim::I16 | Prim::I32 | Prim::I64 | Prim::I128
        )
    }
}

/// A message type.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Ty {
    Prim(Prim),
    Array(Box<Ty>, usize),
    /// A struct: an index into [`Gen::structs`].
    Struct(usize),
    /// A fieldless enum: an index into [`Gen::enums`].
    Enum(usize),
    RelSlice(Box<Ty>),
    RelStr,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Repr {
    C,
    /// `repr(C, align(N))`; `split` writes it as two attributes.
    Align {
        n: usize,
        split: bool,
    },
    Transparent,
}

#[derive(Debug)]
pub(crate) struct Field {
    /// The identifier as written in Rust (`r#type` for a keyword).
    pub(crate) rust: String,
    /// The name in the schema (and in JSON).
    pub(crate) name: String,
    pub(crate) ty: Ty,
    pub(crate) offset: usize,
    pub(crate) padding: bool,
}

#[derive(Debug)]
pub(crate) struct StructDef {
    pub(crate) rust: String,
    /// The schema's name: `#[shm(name = ...)]` when it differs from `rust`.
    pub(crate) name: String,
    pub(crate) repr: Repr,
    pub(crate) fields: Vec<Field>,
    pub(crate) size: usize,
    pub(crate) align: usize,
}

#[derive(Debug)]
pub(crate) struct EnumDef {
    pub(crate) rust: String,
    pub(crate) name: String,
    pub(crate) repr: Prim,
    /// (Rust identifier, schema name, discriminant).
    pub(crate) variants: Vec<(String, String, i128)>,
}

/// A value of a [`Ty`].
#[derive(Clone, Debug)]
pub(crate) enum Val {
    U(u128),
    I(i128),
    /// A float, kept as an `f64` (an `f32`'s value is exact in it).
    F(f64),
    Bool(bool),
    /// A variant, by index.
    Enum(usize),
    /// An array's elements, a relative slice's elements, a struct's fields.
    List(Vec<Val>),
    Str(String),
}

/// One top-level message type and the value the test sends of it.
pub(crate) struct Case {
    pub(crate) index: usize,
    pub(crate) ty: Ty,
    pub(crate) value: Val,
}

pub(crate) fn align_up(n: usize, align: usize) -> usize {
    n.next_multiple_of(align)
}

impl Gen {
    pub(crate) fn size(&self, ty: &Ty) -> usize {
        match ty {
            Ty::Prim(p) => p.size(),
            Ty::Array(elem, len) => self.size(elem) * len,
            Ty::Struct(i) => self.structs[*i].size,
            Ty::Enum(i) => self.enums[*i].repr.size(),
            Ty::RelSlice(_) | Ty::RelStr => 8,
        }
    }

    pub(crate) fn align(&self, ty: &Ty) -> usize {
        match ty {
            Ty::Prim(p) => p.align(),
            Ty::Array(elem, _) => self.align(elem),
            Ty::Struct(i) => self.structs[*i].align,
            Ty::Enum(i) => self.enums[*i].repr.align(),
            Ty::RelSlice(_) | Ty::RelStr => 4,
        }
    }

    pub(crate) fn has_rel(&self, ty: &Ty) -> bool {
        match ty {
            Ty::Prim(_) | Ty::Enum(_) => false,
            Ty::Array(elem, _) => self.has_rel(elem),
            Ty::Struct(i) => self.structs[*i].fields.iter().any(|f| self.has_rel(&f.ty)),
            Ty::RelSlice(_) | Ty::RelStr => true,
        }
    }

    /// `Schema::sample_align`: the type's alignment, or its relative slices' elements'.
    pub(crate) fn sample_align(&self, ty: &Ty) -> usize {
        let inner = match ty {
            Ty::Prim(_) | Ty::Enum(_) | Ty::RelStr => 1,
            Ty::Array(elem, _) | Ty::RelSlice(elem) => self.sample_align(elem),
            Ty::Struct(i) => self.structs[*i]
                .fields
                .iter()
                .map(|f| self.sample_align(&f.ty))
                .max()
                .unwrap_or(1),
        };
        inner.max(self.align(ty))
    }

    /// The schema text `Schema::describe` writes for `ty`.
    pub(crate) fn text(&self, ty: &Ty) -> String {
        match ty {
            Ty::Prim(p) => prim_text(*p),
            Ty::Array(elem, len) => format!("[{};{len}]", self.text(elem)),
            Ty::Struct(i) => {
                let s = &self.structs[*i];
                let fields: Vec<String> = s
                    .fields
                    .iter()
                    .map(|f| format!("{}@{}:{}", f.name, f.offset, self.text(&f.ty)))
                    .collect();
                format!("{}({},{}){{{}}}", s.name, s.size, s.align, fields.join(","))
            }
            Ty::Enum(i) => {
                let e = &self.enums[*i];
                let variants: Vec<String> = e
                    .variants
                    .iter()
                    .map(|(_, name, value)| format!("{name}={value}"))
                    .collect();
                format!("{}:{}{{{}}}", e.name, prim_text(e.repr), variants.join(","))
            }
            Ty::RelSlice(elem) => format!("rel[{}]", self.text(elem)),
            Ty::RelStr => "relstr".to_owned(),
        }
    }

    /// The Rust type.
    pub(crate) fn rust_ty(&self, ty: &Ty) -> String {
        match ty {
            Ty::Prim(p) => p.name().to_owned(),
            Ty::Array(elem, len) => format!("[{}; {len}]", self.rust_ty(elem)),
            Ty::Struct(i) => self.structs[*i].rust.clone(),
            Ty::Enum(i) => self.enums[*i].rust.clone(),
            Ty::RelSlice(elem) => format!("RelSlice<{}>", self.rust_ty(elem)),
            Ty::RelStr => "RelStr".to_owned(),
        }
    }

    /// What the cases cover, for the log.
    pub(crate) fn summary(&self, cases: &[Case]) -> String {
        let with_tail = cases
            .iter()
            .filter(|c| self.tail_need(&c.ty, &c.value) > 0)
            .count();
        let over = cases
            .iter()
            .filter(|c| self.sample_align(&c.ty) > self.align(&c.ty))
            .count();
        let nested = cases
            .iter()
            .filter(|c| match &c.ty {
                Ty::Struct(i) => self.structs[*i]
                    .fields
                    .iter()
                    .any(|f| !matches!(f.ty, Ty::RelSlice(_) | Ty::RelStr) && self.has_rel(&f.ty)),
                _ => false,
            })
            .count();
        let transparent = self
            .structs
            .iter()
            .filter(|s| s.repr == Repr::Transparent)
            .count();
        let aligned = self
            .structs
            .iter()
            .filter(|s| matches!(s.repr, Repr::Align { .. }))
            .count();
        format!(
            "{with_tail} with data in the tail, {over} with tail elements aligned more than the \
             message, {nested} with relative pointers nested in structs or arrays; {} structs \
             ({aligned} repr(C, align), {transparent} transparent), {} enums",
            self.structs.len(),
            self.enums.len()
        )
    }
}

fn prim_text(p: Prim) -> String {
    if p.size() == p.align() {
        p.name().to_owned()
    } else {
        format!("{}({},{})", p.name(), p.size(), p.align())
    }
}
