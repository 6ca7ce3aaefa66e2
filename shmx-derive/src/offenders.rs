//! Field types that are syntactically certain not to be messages, with a targeted hint.
//!
//! Everything else is checked by the type system (a generated `assert_field_is_message`
//! call); this only gives better advice for the usual suspects. To avoid refusing a user's
//! own message type that happens to share a name (a `struct Arc` in a geometry crate), generic
//! containers only match when written with generic arguments (`Arc<T>`) or through `std`,
//! `alloc` or `core`.

use quote::ToTokens;
use syn::{GenericArgument, PathArguments, Type, TypePath};

const POINTS_AWAY: &str = "which points into process-local memory";
const USE_REL_SLICE: &str = "use RelSlice or a fixed array `[T; N]`";
const USE_REL_STR: &str = "use RelStr or a fixed byte array `[u8; N]`";

/// Returns the hint for `ty` (the type of field `field`) if it is an obvious offender.
pub fn check(field: &str, ty: &Type) -> Option<String> {
    let why = reason(ty)?;
    Some(format!(
        "field `{field}` has type `{}`, {why}",
        pretty(&ty.to_token_stream())
    ))
}

/// Why `ty` cannot live in shared memory, and what to do instead.
fn reason(ty: &Type) -> Option<String> {
    match ty {
        Type::Paren(t) => reason(&t.elem),
        Type::Group(t) => reason(&t.elem),
        Type::Array(a) => contains(&a.elem),
        Type::Reference(r) => {
            if is_str(&r.elem) {
                Some(format!(
                    "a reference to a string, {POINTS_AWAY}; {USE_REL_STR}"
                ))
            } else {
                Some(format!(
                    "a reference, {POINTS_AWAY}; store the value itself, or {USE_REL_SLICE}"
                ))
            }
        }
        Type::Ptr(_) => Some(format!("a raw pointer, {POINTS_AWAY}; {USE_REL_SLICE}")),
        Type::BareFn(_) => Some(
            "a function pointer, an address that means nothing in another process; store an \
             integer code (or a fieldless enum with an integer repr) instead"
                .to_string(),
        ),
        Type::Slice(_) => Some(format!(
            "which is dynamically sized; a message has a fixed size: {USE_REL_SLICE}"
        )),
        Type::TraitObject(_) => Some(
            "a trait object, which is dynamically sized and carries a vtable pointer; use a \
             concrete message type"
                .to_string(),
        ),
        Type::Tuple(t) if !t.elems.is_empty() => Some(
            "a tuple, whose layout Rust may choose differently in different binaries; use a \
             `#[repr(C)]` struct with `#[derive(ShmMessage)]`"
                .to_string(),
        ),
        Type::Tuple(_) => Some("which has no bytes to share; remove the field".to_string()),
        Type::Path(p) => reason_path(p),
        _ => None,
    }
}

/// The reason for a type that holds `inner`, if `inner` is an offender.
fn contains(inner: &Type) -> Option<String> {
    let why = reason(inner)?;
    Some(format!(
        "which contains `{}`, {why}",
        pretty(&inner.to_token_stream())
    ))
}

fn is_str(ty: &Type) -> bool {
    matches!(ty, Type::Path(p) if p.qself.is_none() && p.path.is_ident("str"))
}

fn reason_path(p: &TypePath) -> Option<String> {
    if p.qself.is_some() {
        return None;
    }
    let segments = &p.path.segments;
    let last = segments.last()?;
    let name = last.ident.to_string();
    let from_std = segments.len() > 1
        && matches!(
            segments.first().map(|s| s.ident.to_string()).as_deref(),
            Some("std" | "alloc" | "core")
        );
    let bare = segments.len() == 1 && p.path.leading_colon.is_none();
    let generic = matches!(last.arguments, PathArguments::AngleBracketed(_));
    let std_like = from_std || generic;
    let std_named = from_std || bare;

    match name.as_str() {
        "Box" | "Vec" | "Rc" | "Arc" | "Weak" | "VecDeque" | "LinkedList" | "BinaryHeap"
        | "HashMap" | "HashSet" | "BTreeMap" | "BTreeSet" | "Cow"
            if std_like =>
        {
            Some(format!(
                "{POINTS_AWAY} (the heap of the process that wrote it); {USE_REL_SLICE}"
            ))
        }
        "String" | "OsString" | "CString" | "PathBuf" if std_named && !generic => Some(format!(
            "{POINTS_AWAY} (the heap of the process that wrote it); {USE_REL_STR}"
        )),
        "Option" if std_like => {
            // `Option<Box<T>>`, `Option<&T>`: the pointer is the real problem.
            if let PathArguments::AngleBracketed(args) = &last.arguments {
                for arg in &args.args {
                    if let GenericArgument::Type(inner) = arg {
                        if let Some(why) = contains(inner) {
                            return Some(why);
                        }
                    }
                }
            }
            Some(
                "an `Option`, whose layout Rust may choose differently in different binaries; \
                 store the value with a `bool` flag (e.g. `has_value: bool`) next to it instead"
                    .to_string(),
            )
        }
        "Cell" | "RefCell" | "UnsafeCell" | "Mutex" | "RwLock" if std_like => Some(
            "which allows writing through a shared reference; subscribers map messages \
             read-only, so store the plain value"
                .to_string(),
        ),
        "AtomicBool" | "AtomicU8" | "AtomicU16" | "AtomicU32" | "AtomicU64" | "AtomicUsize"
        | "AtomicI8" | "AtomicI16" | "AtomicI32" | "AtomicI64" | "AtomicIsize"
            if std_named =>
        {
            Some(
                "an atomic, which is written through a shared reference; subscribers map \
                 messages read-only, so store the plain integer"
                    .to_string(),
            )
        }
        "usize" | "isize" if bare => Some(format!(
            "whose size depends on the target (32- or 64-bit process); use `{}64` or `{}32`",
            &name[..1],
            &name[..1]
        )),
        "str" if bare => Some(format!("which is dynamically sized; {USE_REL_STR}")),
        "char" if bare => Some(
            "which is not a message type (not every `u32` is a valid `char`); store a `u32` \
             code point and convert with `char::from_u32`"
                .to_string(),
        ),
        _ => None,
    }
}

/// Renders type tokens the way people write them (`Vec<u8>`, not `Vec < u8 >`).
pub fn pretty(tokens: &proc_macro2::TokenStream) -> String {
    let mut s = tokens.to_string();
    for (from, to) in [
        (" <", "<"),
        ("< ", "<"),
        (" >", ">"),
        (" ,", ","),
        (" ::", "::"),
        (":: ", "::"),
        ("& ", "&"),
        ("* const", "*const"),
        ("* mut", "*mut"),
        ("[ ", "["),
        (" ]", "]"),
        (" ;", ";"),
        ("( ", "("),
        (" )", ")"),
        ("fn (", "fn("),
        ("- >", "->"),
    ] {
        while s.contains(from) {
            s = s.replace(from, to);
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hint(ty: &str) -> Option<String> {
        check("x", &syn::parse_str::<Type>(ty).unwrap())
    }

    #[test]
    fn obvious_offenders_get_a_hint() {
        for ty in [
            "&u8",
            "&'static mut u8",
            "*const u8",
            "*mut u8",
            "Box<u8>",
            "Vec<u8>",
            "String",
            "std::string::String",
            "Rc<u8>",
            "Arc<[u8]>",
            "Option<u8>",
            "&str",
            "fn(u8) -> u8",
            "[Box<u8>; 3]",
            "(u8, u16)",
            "usize",
            "Cell<u8>",
            "std::sync::atomic::AtomicU32",
        ] {
            assert!(hint(ty).is_some(), "{ty}");
        }
    }

    #[test]
    fn message_types_and_lookalikes_pass() {
        for ty in [
            "u8",
            "[u8; 4]",
            "Pose",
            "geo::Arc",
            "Arc",
            "my::String<u8>",
            "Cell",
        ] {
            assert_eq!(hint(ty), None, "{ty}");
        }
    }

    #[test]
    fn names_the_field_and_type_readably() {
        assert_eq!(
            hint("Vec<u8>").unwrap(),
            "field `x` has type `Vec<u8>`, which points into process-local memory (the heap of \
             the process that wrote it); use RelSlice or a fixed array `[T; N]`"
        );
        assert!(hint("Option<Box<u8>>").unwrap().starts_with(
            "field `x` has type `Option<Box<u8>>`, which contains `Box<u8>`, which points"
        ));
        assert!(hint("&'a mut [u8]")
            .unwrap()
            .contains("`&'a mut [u8]`, a reference"));
        assert!(hint("*const u8")
            .unwrap()
            .contains("`*const u8`, a raw pointer"));
        assert!(hint("fn(u8) -> u8").unwrap().contains("`fn(u8) -> u8`"));
    }
}
