//! The probe's generated Rust source (`src/cases.rs`): every struct and enum with the derive,
//! its `Dump` (the value as JSON, read through the derive's readers) and compile-time checks
//! of its layout, and for each case its value as a Rust expression and the statements that
//! point its relative pointers at their data through the derive's writer.

use crate::generate::Gen;
use crate::model::{Case, Prim, Repr, Ty, Val};
use std::collections::BTreeSet;
use std::fmt::Write as _;

impl Gen {
    /// A Rust expression of the value, with every relative pointer empty.
    fn rust_value(&self, ty: &Ty, val: &Val) -> String {
        match (ty, val) {
            (Ty::Prim(p), v) => prim_rust(*p, v),
            (Ty::Array(elem, _), Val::List(items)) => {
                let items: Vec<String> = items.iter().map(|v| self.rust_value(elem, v)).collect();
                format!("[{}]", items.join(", "))
            }
            (Ty::Struct(i), Val::List(items)) => {
                let s = &self.structs[*i];
                let fields: Vec<String> = s
                    .fields
                    .iter()
                    .zip(items)
                    .map(|(f, v)| format!("{}: {}", f.rust, self.rust_value(&f.ty, v)))
                    .collect();
                format!("{} {{ {} }}", s.rust, fields.join(", "))
            }
            (Ty::Enum(i), Val::Enum(v)) => {
                let e = &self.enums[*i];
                format!("{}::{}", e.rust, e.variants[*v].0)
            }
            (Ty::RelSlice(_), _) => "RelSlice::new()".to_owned(),
            (Ty::RelStr, _) => "RelStr::new()".to_owned(),
            _ => unreachable!("a value of another type: {ty:?} {val:?}"),
        }
    }

    /// Statements that point the relative pointers in `place` (an expression of a
    /// `Pin<&mut ty>`, evaluated once per use) at `val`'s data, in declaration order, depth
    /// first: the order in which `shmx pub` lays the tail out.
    fn fill(&self, ty: &Ty, val: &Val, place: &str, out: &mut String, depth: usize) {
        if !self.has_rel(ty) {
            return;
        }
        match (ty, val) {
            (Ty::Array(elem, _), Val::List(items)) => {
                for (i, v) in items.iter().enumerate() {
                    let at = format!("shmx::rel::pin_index({place}, {i}).expect(\"in range\")");
                    self.fill(elem, v, &at, out, depth);
                }
            }
            (Ty::Struct(i), Val::List(items)) => {
                let s = &self.structs[*i];
                let w = format!("w{depth}");
                let _ = writeln!(
                    out,
                    "{{ let mut {w} = <{} as Writable>::writer({place}, tail);",
                    s.rust
                );
                for (f, v) in s.fields.iter().zip(items) {
                    let at = format!("{w}.{}.as_mut()", f.rust);
                    self.fill(&f.ty, v, &at, out, depth + 1);
                }
                out.push_str("}\n");
            }
            (Ty::RelSlice(elem), Val::List(items)) => {
                let items: Vec<String> = items.iter().map(|v| self.rust_value(elem, v)).collect();
                let _ = writeln!(
                    out,
                    "RelSlice::<{}>::copy_from({place}, tail, &[{}])?;",
                    self.rust_ty(elem),
                    items.join(", ")
                );
            }
            (Ty::RelStr, Val::Str(s)) => {
                let _ = writeln!(out, "RelStr::set({place}, tail, {s:?})?;");
            }
            _ => unreachable!("a value of another type: {ty:?} {val:?}"),
        }
    }

    /// The definition of struct `i`: the type, its `Dump`, and compile-time checks that
    /// rustc lays it out as the generator did.
    fn struct_source(&self, i: usize) -> String {
        let s = &self.structs[i];
        let mut out = String::from("#[derive(ShmMessage)]\n");
        match s.repr {
            Repr::C => out.push_str("#[repr(C)]\n"),
            Repr::Align { n, split: false } => {
                let _ = writeln!(out, "#[repr(C, align({n}))]");
            }
            Repr::Align { n, split: true } => {
                let _ = writeln!(out, "#[repr(C)]\n#[repr(align({n}))]");
            }
            Repr::Transparent => out.push_str("#[repr(transparent)]\n"),
        }
        if s.name != s.rust {
            let _ = writeln!(out, "#[shm(name = {:?})]", s.name);
        }
        let _ = writeln!(out, "pub struct {} {{", s.rust);
        for f in &s.fields {
            let _ = writeln!(out, "    pub {}: {},", f.rust, self.rust_ty(&f.ty));
        }
        out.push_str("}\n");
        out
    }

    fn struct_checks(&self, i: usize) -> String {
        let s = &self.structs[i];
        let mut out = String::from("const _: () = {\n");
        let _ = writeln!(
            out,
            "    assert!(std::mem::size_of::<{0}>() == {1}, \"rustc's size of {0} is not the generator's {1}\");",
            s.rust, s.size
        );
        let _ = writeln!(
            out,
            "    assert!(std::mem::align_of::<{0}>() == {1}, \"rustc's alignment of {0} is not the generator's {1}\");",
            s.rust, s.align
        );
        for f in &s.fields {
            let _ = writeln!(
                out,
                "    assert!(std::mem::offset_of!({0}, {1}) == {2}, \"rustc's offset of {0}.{1} is not the generator's {2}\");",
                s.rust, f.rust, f.offset
            );
        }
        out.push_str("};\n");
        let _ = writeln!(out, "impl Dump for {} {{", s.rust);
        out.push_str("    fn dump(&self, out: &mut String) {\n        out.push('{');\n");
        for (k, f) in s.fields.iter().enumerate() {
            let mut key = String::new();
            if k > 0 {
                key.push(',');
            }
            key.push_str(&serde_json::to_string(&f.name).expect("a name"));
            key.push(':');
            let _ = writeln!(out, "        out.push_str({key:?});");
            // Relative pointers are read through the derive's readers (those in arrays, which
            // have none, through `as_slice`/`as_str`, which the readers call).
            let read = match &f.ty {
                Ty::RelSlice(_) | Ty::RelStr => format!("self.{}()", f.rust),
                _ => format!("&self.{}", f.rust),
            };
            let _ = writeln!(out, "        Dump::dump({read}, out);");
        }
        out.push_str("        out.push('}');\n    }\n}\n");
        out
    }

    fn enum_source(&self, i: usize) -> String {
        let e = &self.enums[i];
        let mut out = format!(
            "#[derive(ShmMessage, Clone, Copy)]\n#[repr({})]\n",
            e.repr.name()
        );
        if e.name != e.rust {
            let _ = writeln!(out, "#[shm(name = {:?})]", e.name);
        }
        let _ = writeln!(out, "pub enum {} {{", e.rust);
        for (rust, _, v) in &e.variants {
            let _ = writeln!(out, "    {rust} = {},", int_literal(e.repr, *v));
        }
        out.push_str("}\n");
        out
    }

    fn enum_checks(&self, i: usize) -> String {
        let e = &self.enums[i];
        let mut out = format!(
            "const _: () = assert!(std::mem::size_of::<{0}>() == {1} && std::mem::align_of::<{0}>() == {2});\n",
            e.rust,
            e.repr.size(),
            e.repr.align()
        );
        let _ = writeln!(out, "impl Dump for {} {{", e.rust);
        out.push_str("    fn dump(&self, out: &mut String) {\n        out.push_str(match self {\n");
        for (rust, name, _) in &e.variants {
            let _ = writeln!(
                out,
                "            {}::{rust} => {:?},",
                e.rust,
                serde_json::to_string(name).expect("a name")
            );
        }
        out.push_str("        });\n    }\n}\n");
        out
    }

    /// The Rust source of `ty` and of every type it uses, for failure messages.
    pub(crate) fn source_of(&self, ty: &Ty) -> String {
        let (mut structs, mut enums) = (BTreeSet::new(), BTreeSet::new());
        self.uses(ty, &mut structs, &mut enums);
        let mut out = String::new();
        for i in enums {
            out.push_str(&self.enum_source(i));
        }
        for i in structs {
            out.push_str(&self.struct_source(i));
        }
        out
    }

    fn uses(&self, ty: &Ty, structs: &mut BTreeSet<usize>, enums: &mut BTreeSet<usize>) {
        match ty {
            Ty::Prim(_) | Ty::RelStr => {}
            Ty::Array(elem, _) | Ty::RelSlice(elem) => self.uses(elem, structs, enums),
            Ty::Struct(i) => {
                if structs.insert(*i) {
                    for f in &self.structs[*i].fields {
                        self.uses(&f.ty, structs, enums);
                    }
                }
            }
            Ty::Enum(i) => {
                enums.insert(*i);
            }
        }
    }

    /// The probe's `cases.rs`: every type, and a `Case` impl and session for each case.
    pub(crate) fn cases_source(&self, seed: u64, cases: &[Case]) -> String {
        let mut out = format!(
            "// Generated by shmx-cli/tests/layout_vs_derive.rs, seed {seed}.\n\
             #![allow(unused_mut, unused_variables, unused_imports, unused_braces)]\n\
             use super::{{session, Case, Dump}};\n\
             use shmx::{{RelSlice, RelStr, ShmMessage, Tail, Writable}};\n\
             use std::pin::Pin;\n\n"
        );
        for i in 0..self.enums.len() {
            out.push_str(&self.enum_source(i));
            out.push_str(&self.enum_checks(i));
            out.push('\n');
        }
        for i in 0..self.structs.len() {
            out.push_str(&self.struct_source(i));
            out.push_str(&self.struct_checks(i));
            out.push('\n');
        }
        for case in cases {
            let name = self.rust_ty(&case.ty);
            let mut fill = String::new();
            self.fill(&case.ty, &case.value, "this", &mut fill, 0);
            let _ = write!(
                out,
                "impl Case for {name} {{\n\
                 fn value() -> Self {{ {} }}\n\
                 fn fill(this: Pin<&mut Self>, tail: Tail<'_>) -> shmx::Result<()> {{\n\
                 {fill}Ok(())\n}}\n}}\n\n",
                self.rust_value(&case.ty, &case.value)
            );
        }
        out.push_str(
            "pub fn run(i: usize, topic: &str, lines: &mut dyn Iterator<Item = String>) {\n    match i {\n",
        );
        for case in cases {
            let _ = writeln!(
                out,
                "        {} => session::<{}>(topic, lines),",
                case.index,
                self.rust_ty(&case.ty)
            );
        }
        out.push_str("        _ => panic!(\"no case {i}\"),\n    }\n}\n");
        out
    }
}

/// A Rust expression of an integer of type `p` (the type's `MIN` for its smallest value,
/// which has no literal).
fn int_literal(p: Prim, v: i128) -> String {
    if v == p.range().0 && v != 0 {
        format!("{}::MIN", p.name())
    } else {
        v.to_string()
    }
}

fn prim_rust(p: Prim, v: &Val) -> String {
    match (p, v) {
        (_, Val::U(v)) => format!("{v}{}", p.name()),
        (_, Val::I(v)) if *v == p.range().0 => format!("{}::MIN", p.name()),
        (_, Val::I(v)) => format!("({v}{})", p.name()),
        (_, Val::Bool(b)) => b.to_string(),
        (_, Val::F(x)) if x.is_nan() => format!("{}::NAN", p.name()),
        (_, Val::F(x)) if x.is_infinite() => {
            format!("{}{}::INFINITY", if *x < 0.0 { "-" } else { "" }, p.name())
        }
        (Prim::F32, Val::F(x)) => format!("{:?}f32", *x as f32),
        (_, Val::F(x)) => format!("{x:?}f64"),
        _ => unreachable!("a value of another type: {p:?} {v:?}"),
    }
}
