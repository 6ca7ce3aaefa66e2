//! Parsing of the `#[repr(...)]` and `#[shm(...)]` attributes.

use proc_macro2::Span;
use syn::{Attribute, Ident, LitInt, LitStr};

/// What the `#[repr(...)]` attributes of an item ask for (several attributes accumulate).
#[derive(Default)]
pub struct Repr {
    /// `C`.
    pub c: Option<Span>,
    /// `transparent`.
    pub transparent: Option<Span>,
    /// `packed` or `packed(N)`: the span covers the whole item.
    pub packed: Option<Span>,
    /// `align(N)`.
    pub align: Option<Span>,
    /// An integer representation (`u8`, `i32`, `usize`, ...).
    pub int: Option<Ident>,
}

const INTS: &[&str] = &[
    "u8", "u16", "u32", "u64", "u128", "usize", "i8", "i16", "i32", "i64", "i128", "isize",
];

impl Repr {
    /// Reads every `#[repr(...)]` among `attrs`.
    pub fn parse(attrs: &[Attribute]) -> syn::Result<Repr> {
        let mut repr = Repr::default();
        for attr in attrs {
            if !attr.path().is_ident("repr") {
                continue;
            }
            attr.parse_nested_meta(|meta| {
                let path = &meta.path;
                let span = path.get_ident().map_or_else(Span::call_site, Ident::span);
                if path.is_ident("C") {
                    repr.c = Some(span);
                } else if path.is_ident("transparent") {
                    repr.transparent = Some(span);
                } else if path.is_ident("packed") {
                    if meta.input.peek(syn::token::Paren) {
                        let content;
                        syn::parenthesized!(content in meta.input);
                        let _: LitInt = content.parse()?;
                    }
                    repr.packed = Some(span);
                } else if path.is_ident("align") {
                    let content;
                    syn::parenthesized!(content in meta.input);
                    let _: LitInt = content.parse()?;
                    repr.align = Some(span);
                } else if let Some(ident) = path.get_ident() {
                    if INTS.iter().any(|i| ident == i) {
                        repr.int = Some(ident.clone());
                    }
                    // Anything else (`Rust`, or a typo) is left for rustc to judge; without
                    // `C` or `transparent` the derive refuses the type anyway.
                }
                Ok(())
            })?;
        }
        Ok(repr)
    }
}

/// The options of `#[shm(...)]` on the type.
#[derive(Default)]
pub struct ShmOptions {
    /// `name = "..."`: the name recorded in the schema and hashed into the fingerprint.
    pub name: Option<LitStr>,
}

impl ShmOptions {
    /// Reads every `#[shm(...)]` among the type's `attrs`.
    pub fn parse(attrs: &[Attribute]) -> syn::Result<ShmOptions> {
        let mut opts = ShmOptions::default();
        for attr in attrs {
            if !attr.path().is_ident("shm") {
                continue;
            }
            attr.parse_nested_meta(|meta| {
                if meta.path.is_ident("name") {
                    let lit: LitStr = meta.value()?.parse()?;
                    if lit.value().is_empty() {
                        return Err(syn::Error::new(
                            lit.span(),
                            "the schema name must not be empty",
                        ));
                    }
                    if opts.name.is_some() {
                        return Err(meta.error("`name` is given twice"));
                    }
                    opts.name = Some(lit);
                    Ok(())
                } else {
                    Err(meta.error(
                        "unknown `shm` option; the supported one is `#[shm(name = \"TypeName\")]`",
                    ))
                }
            })?;
        }
        Ok(opts)
    }
}

/// Refuses `#[shm(...)]` where it means nothing (on fields and variants).
pub fn refuse_shm_attr(attrs: &[Attribute], errors: &mut Vec<syn::Error>) {
    for attr in attrs {
        if attr.path().is_ident("shm") {
            errors.push(syn::Error::new_spanned(
                attr,
                "`#[shm(...)]` is only allowed on the type itself, not on fields or variants",
            ));
        }
    }
}
