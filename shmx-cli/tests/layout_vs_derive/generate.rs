//! The seeded generator: [`Gen`] makes random message types (registering each struct and enum
//! it lays out) and random values of them; the same seed makes the same types and values.

use crate::model::{
    align_up, Case, EnumDef, Field, Prim, Repr, StructDef, Ty, Val, ENUM_REPRS, PRIMS,
};
use std::collections::{BTreeSet, HashSet};

/// A small, seeded generator (splitmix64): the same seed makes the same types and values.
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n > 0`).
    pub(crate) fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// True with probability `percent`/100.
    pub(crate) fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    pub(crate) fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    pub(crate) fn wide(&mut self) -> u128 {
        (u128::from(self.next()) << 64) | u128::from(self.next())
    }
}

/// Names for fields: ordinary ones, the grammar's words, and keywords (raw identifiers).
const FIELD_NAMES: [&str; 20] = [
    "a", "b", "x", "y", "seq", "heading", "mode", "flags", "data", "id", "rel", "relstr", "u8",
    "value", "inner", "items", "label", "tail", "r#type", "r#match",
];

/// Schema names for `#[shm(name = ...)]` (one of over 200 bytes, stored whole).
const TYPE_NAMES: [&str; 11] = [
    "a_rather_long_module_name::another_rather_long_module_name::yet_another_module::\
     and_one_more_module_for_good_measure::still_more_modules_here::the_last_module_of_them::\
     AVeryLongTypeNameIndeed",
    "geo::Pose",
    "a::b::Name",
    "robot::arm::Joint",
    "rel::Thing",
    "u8::P",
    "rkyv::Mode",
    "Frame",
    "_Hidden",
    "x9::y_8::Z7",
    "a::relstr",
];

/// The types of one run (structs and enums, which a [`Ty`] names by their index here) and the
/// random source that makes them and their values. Its methods are grouped by concern:
/// making types and values here, layout in `model`, JSON in `values`, Rust source in
/// `source`.
pub(crate) struct Gen {
    pub(crate) seed: u64,
    rng: Rng,
    pub(crate) structs: Vec<StructDef>,
    pub(crate) enums: Vec<EnumDef>,
}

impl Gen {
    pub(crate) fn new(seed: u64) -> Gen {
        Gen {
            seed,
            rng: Rng(seed),
            structs: Vec::new(),
            enums: Vec::new(),
        }
    }

    // --- types ----------------------------------------------------------------------

    /// Top-level case `index`: a struct, sometimes one made to hold a relative slice of
    /// elements aligned more strictly than itself, after a string that leaves the tail
    /// unaligned.
    pub(crate) fn case(&mut self, index: usize) -> Case {
        let ty = if self.rng.chance(25) {
            self.over_aligned_elements()
        } else if self.rng.chance(4) {
            // A message of no bytes (but perhaps aligned).
            let fields = (0..self.rng.below(3)).map(|_| self.zero_sized()).collect();
            let repr = if self.rng.chance(50) {
                Repr::C
            } else {
                Repr::Align {
                    n: *self.rng.pick(&[2, 8, 64]),
                    split: false,
                }
            };
            Ty::Struct(self.lay_out(repr, fields))
        } else {
            let n = 1 + self.rng.below(6);
            Ty::Struct(self.structure(0, true, n))
        };
        let value = self.value(&ty);
        Case { index, ty, value }
    }

    /// `{ small fields, [a string,] rel[elements aligned to 8, 16, 32 or 64] }`.
    fn over_aligned_elements(&mut self) -> Ty {
        let n = *self.rng.pick(&[8, 16, 32, 64]);
        // Sometimes none: zero-sized elements, which take no bytes but alignment.
        let inner_fields = self.rng.below(4);
        let elem = self.struct_with(Repr::Align { n, split: false }, 3, false, inner_fields);
        let mut fields = Vec::new();
        fields.push(Ty::Prim(*self.rng.pick(&[Prim::U8, Prim::U16, Prim::U32])));
        if self.rng.chance(70) {
            fields.push(Ty::RelStr);
        }
        fields.push(Ty::RelSlice(Box::new(Ty::Struct(elem))));
        if self.rng.chance(50) {
            fields.push(Ty::Prim(Prim::U8));
        }
        Ty::Struct(self.lay_out(Repr::C, fields))
    }

    /// A new struct at nesting `depth`, with relative pointers allowed or not, of about
    /// `n` fields.
    fn structure(&mut self, depth: usize, rel: bool, n: usize) -> usize {
        let repr = match self.rng.below(100) {
            0..=59 => Repr::C,
            60..=84 => Repr::Align {
                n: *self.rng.pick(&[2, 4, 8, 16, 32, 64]),
                split: self.rng.chance(30),
            },
            _ => Repr::Transparent,
        };
        self.struct_with(repr, depth, rel, n)
    }

    fn struct_with(&mut self, repr: Repr, depth: usize, rel: bool, n: usize) -> usize {
        if repr == Repr::Transparent {
            // One field that is not zero-sized (rustc refuses `repr(C)` types among the
            // zero-sized fields of a transparent struct), and zero-sized arrays aligned to 1
            // around it.
            let main = loop {
                let ty = self.field_ty(depth + 1, rel);
                if self.size(&ty) > 0 {
                    break ty;
                }
            };
            // Where rustc puts them is not specified: it sorts fields by alignment, largest
            // first, so today they follow the main field, wherever they are declared, if it is
            // aligned to more than 1 byte (and follow it in declaration order otherwise; how
            // rustc orders fields of equal alignment has changed, so those stay after it).
            let before = self.align(&main) > 1;
            let mut fields = vec![main];
            for _ in 0..self.rng.below(3) {
                let elem = *self.rng.pick(&[Prim::U8, Prim::I8, Prim::Bool]);
                let at = if before {
                    self.rng.below(fields.len() + 1)
                } else {
                    fields.len()
                };
                fields.insert(at, Ty::Array(Box::new(Ty::Prim(elem)), 0));
            }
            return self.lay_out(Repr::Transparent, fields);
        }
        let fields = (0..n).map(|_| self.field_ty(depth + 1, rel)).collect();
        self.lay_out(repr, fields)
    }

    /// Lays out a struct of fields of `tys` by the rules of `repr`, with explicit padding
    /// wherever `repr(C)` leaves a gap, and registers it.
    fn lay_out(&mut self, repr: Repr, tys: Vec<Ty>) -> usize {
        let mut names = HashSet::new();
        let mut fields = Vec::new();
        let (mut end, mut align, mut pads) = (0usize, 1usize, 0usize);
        let transparent_end = tys.iter().map(|ty| self.size(ty)).sum::<usize>();
        for ty in tys {
            let (rust, name) = self.field_name(&mut names);
            let (a, size) = (self.align(&ty), self.size(&ty));
            let offset = match repr {
                // rustc places the one field that has bytes at 0 and the zero-sized ones after
                // it (see `struct_with`; the compile-time checks say so if that changes).
                Repr::Transparent if size > 0 => 0,
                Repr::Transparent => transparent_end,
                _ => align_up(end, a),
            };
            if offset > end && repr != Repr::Transparent {
                fields.push(padding(&mut pads, end, offset - end));
            }
            align = align.max(a);
            end = end.max(offset + size);
            fields.push(Field {
                rust,
                name,
                ty,
                offset,
                padding: false,
            });
        }
        if let Repr::Align { n, .. } = repr {
            align = align.max(n);
        }
        let size = align_up(end, align);
        if size > end {
            fields.push(padding(&mut pads, end, size - end));
        }
        let id = self.structs.len();
        let rust = format!("S{id}");
        let name = if self.rng.chance(20) {
            self.rng.pick(&TYPE_NAMES).to_string()
        } else {
            rust.clone()
        };
        self.structs.push(StructDef {
            rust,
            name,
            repr,
            fields,
            size,
            align,
        });
        id
    }

    /// A fresh field name (Rust identifier, schema name) among `taken`.
    fn field_name(&mut self, taken: &mut HashSet<String>) -> (String, String) {
        loop {
            let base = *self.rng.pick(&FIELD_NAMES);
            let rust = if taken.contains(base) || self.rng.chance(30) {
                // Raw identifiers stay as they are; others get a number.
                if base.starts_with("r#") {
                    continue;
                }
                format!("{base}{}", self.rng.below(100))
            } else {
                base.to_owned()
            };
            let name = rust.trim_start_matches("r#").to_owned();
            if taken.insert(name.clone()) {
                return (rust, name);
            }
        }
    }

    /// The type of a field at nesting `depth`.
    fn field_ty(&mut self, depth: usize, rel: bool) -> Ty {
        let deep = depth >= 4;
        loop {
            return match self.rng.below(100) {
                0..=34 => Ty::Prim(*self.rng.pick(&PRIMS)),
                35..=49 if !deep => {
                    let len = self.rng.below(5);
                    Ty::Array(Box::new(self.field_ty(depth + 1, rel)), len)
                }
                50..=61 if !deep => {
                    let n = self.rng.below(5);
                    Ty::Struct(self.structure(depth, rel, n))
                }
                62..=73 => Ty::Enum(self.enumeration()),
                74..=77 => self.zero_sized(),
                78..=89 if rel => Ty::RelSlice(Box::new(self.element_ty(depth))),
                90..=99 if rel => Ty::RelStr,
                _ => continue,
            };
        }
    }

    /// A type of no bytes: an empty struct, sometimes aligned, or an empty array.
    pub(crate) fn zero_sized(&mut self) -> Ty {
        if self.rng.chance(25) {
            let elem = *self.rng.pick(&PRIMS);
            return Ty::Array(Box::new(Ty::Prim(elem)), 0);
        }
        let repr = if self.rng.chance(50) {
            Repr::C
        } else {
            Repr::Align {
                n: *self.rng.pick(&[2, 8, 16, 64]),
                split: false,
            }
        };
        Ty::Struct(self.lay_out(repr, Vec::new()))
    }

    /// The element type of a relative slice: no relative pointers; often a struct aligned
    /// more strictly than its fields.
    fn element_ty(&mut self, depth: usize) -> Ty {
        match self.rng.below(100) {
            0..=29 => Ty::Prim(*self.rng.pick(&PRIMS)),
            30..=39 => Ty::Enum(self.enumeration()),
            40..=54 => {
                let len = 1 + self.rng.below(4);
                Ty::Array(Box::new(self.field_ty(depth + 2, false)), len)
            }
            55..=74 => {
                let n = *self.rng.pick(&[8, 16, 64]);
                let fields = self.rng.below(4);
                Ty::Struct(self.struct_with(
                    Repr::Align { n, split: false },
                    depth + 1,
                    false,
                    fields,
                ))
            }
            _ => {
                let n = 1 + self.rng.below(4);
                Ty::Struct(self.structure(depth + 1, false, n))
            }
        }
    }

    /// A new fieldless enum: any integer repr, distinct discriminants, some negative or at
    /// the ends of the range.
    fn enumeration(&mut self) -> usize {
        let repr = *self.rng.pick(&ENUM_REPRS);
        let (min, max) = repr.range();
        let count = 1 + self.rng.below(5);
        let mut values = BTreeSet::new();
        let mut order = Vec::new();
        while order.len() < count {
            let v: i128 = match self.rng.below(8) {
                0 => 0,
                1 => 1,
                2 => min,
                3 => max as i128,
                4 if repr.signed() => -1,
                5 => self.rng.below(10) as i128,
                _ => {
                    let span = max as i128 - min + 1;
                    min + (self.rng.wide() % span as u128) as i128
                }
            };
            if values.insert(v) {
                order.push(v);
            }
        }
        let mut names = HashSet::new();
        let variants = order
            .into_iter()
            .enumerate()
            .map(|(i, v)| {
                let rust = match self.rng.below(10) {
                    0 if names.insert("type") => "r#type".to_owned(),
                    1 if names.insert("Self_") => "Self_".to_owned(),
                    _ => format!("V{i}"),
                };
                let name = rust.trim_start_matches("r#").to_owned();
                (rust, name, v)
            })
            .collect();
        let id = self.enums.len();
        let rust = format!("E{id}");
        let name = if self.rng.chance(25) {
            self.rng.pick(&TYPE_NAMES).to_string()
        } else {
            rust.clone()
        };
        self.enums.push(EnumDef {
            rust,
            name,
            repr,
            variants,
        });
        id
    }

    // --- values ---------------------------------------------------------------------

    pub(crate) fn value(&mut self, ty: &Ty) -> Val {
        match ty {
            Ty::Prim(p) => self.prim_value(*p),
            Ty::Array(elem, len) => Val::List((0..*len).map(|_| self.value(elem)).collect()),
            Ty::Struct(i) => {
                let tys: Vec<(Ty, bool)> = self.structs[*i]
                    .fields
                    .iter()
                    .map(|f| (f.ty.clone(), f.padding))
                    .collect();
                Val::List(
                    tys.iter()
                        .map(|(ty, padding)| {
                            if *padding {
                                Val::List(vec![Val::U(0); self.size(ty)])
                            } else {
                                self.value(ty)
                            }
                        })
                        .collect(),
                )
            }
            Ty::Enum(i) => Val::Enum(self.rng.below(self.enums[*i].variants.len())),
            Ty::RelSlice(elem) => {
                let n = self.rng.below(6);
                Val::List((0..n).map(|_| self.value(elem)).collect())
            }
            Ty::RelStr => Val::Str(self.string()),
        }
    }

    fn prim_value(&mut self, p: Prim) -> Val {
        match p {
            Prim::Bool => Val::Bool(self.rng.chance(50)),
            Prim::F32 | Prim::F64 => Val::F(self.float(p)),
            _ => {
                let (min, max) = p.range();
                let pick = self.rng.below(6);
                if p.signed() {
                    let v = match pick {
                        0 => min,
                        1 => max as i128,
                        2 => -1,
                        3 => 0,
                        _ => {
                            let bits = p.size() * 8;
                            let raw = self.rng.wide() as i128;
                            // Sign-extend the low `bits` bits.
                            (raw << (128 - bits)) >> (128 - bits)
                        }
                    };
                    Val::I(v)
                } else {
                    let v = match pick {
                        0 => 0,
                        1 => max,
                        2 => 1,
                        _ => self.rng.wide() & max,
                    };
                    Val::U(v)
                }
            }
        }
    }

    /// A float: quarters mostly (short and exact in decimal), sometimes any finite value
    /// (random bits, subnormals included: texts of up to 17 digits), the extremes of the
    /// type, -0.0, infinities or NaN.
    pub(crate) fn float(&mut self, p: Prim) -> f64 {
        let single = p == Prim::F32;
        match self.rng.below(40) {
            0 => -0.0,
            1 => f64::INFINITY,
            2 => f64::NEG_INFINITY,
            3 => f64::NAN,
            4 if single => f64::from(f32::MAX),
            4 => f64::MAX,
            5 if single => f64::from(f32::MIN_POSITIVE),
            5 => f64::MIN_POSITIVE,
            6..=11 => loop {
                let x = if single {
                    f64::from(f32::from_bits(self.rng.next() as u32))
                } else {
                    f64::from_bits(self.rng.next())
                };
                if x.is_finite() {
                    break x;
                }
            },
            _ => (self.rng.below(40_001) as f64 - 20_000.0) / 4.0,
        }
    }

    fn string(&mut self) -> String {
        const PIECES: [&str; 16] = [
            "a", "Z", "0", " ", "-", "_", "é", "ü", "ß", "日本", "🚀", "\"", "\\", "/", "x", "Ω",
        ];
        let n = self.rng.below(10);
        (0..n).map(|_| *self.rng.pick(&PIECES)).collect()
    }
}

/// An explicit padding field `_padN: [u8; len]` at `offset`.
fn padding(pads: &mut usize, offset: usize, len: usize) -> Field {
    let name = format!("_pad{pads}");
    *pads += 1;
    Field {
        rust: name.clone(),
        name,
        ty: Ty::Array(Box::new(Ty::Prim(Prim::U8)), len),
        offset,
        padding: true,
    }
}
