//! `#[derive(ShmMessage)]`: implements `shmx::ShmMessage` for `#[repr(C)]` structs and for
//! fieldless enums with an integer `repr`, after proving at compile time that the type can
//! live in shared memory.
//!
//! Use it through the `shmx` crate (`use shmx::ShmMessage;`); the generated code refers to the
//! runtime only by absolute paths (`::shmx::...`).
//!
//! # What is accepted
//! - structs with named fields and `#[repr(C)]` (optionally with `align(N)`) or
//!   `#[repr(transparent)]`, every field of which is a `ShmMessage`, and which have no implicit
//!   padding (add explicit `_pad: [u8; N]` fields);
//! - fieldless enums with at least one variant and `#[repr(u8 | u16 | u32 | u64 | i8 | i16 |
//!   i32 | i64)]`; received values are validated (an unknown discriminant is rejected).
//!
//! # What is generated for structs
//! Besides the `ShmMessage` impl:
//! - for each `RelSlice<E>` field `f`, a reader `fn f(&self) -> &[E]`, and for each `RelStr`
//!   field a reader `fn f(&self) -> &str` (so the struct must not define methods of those
//!   names itself);
//! - a writer type `<Name>Writer<'a>` (an impl of `shmx::Writable`, made by
//!   `SampleMut::writer`) with a public `Pin<&'a mut FieldTy>` per field (plain fields deref
//!   mutably: `*w.seq = 1`), and for each `RelSlice` field `set_f(&[E])` and `alloc_f(len)`,
//!   for each `RelStr` field `set_f(&str)`, and `tail()` for the writers of nested structs;
//! - `impl Unpin` exactly when every field is `Unpin`, written so that a hand-written
//!   `impl Unpin` conflicts with it: a type with relative pointers stays pinned in its chunk;
//! - a blanket impl that conflicts with any `impl Drop` for the struct (E0119 on a trait named
//!   `ShmMessageMustNotImplementDrop`): `Pin::set` on a field runs the old value's destructor
//!   in place, and a destructor could move a relative pointer out of its chunk.
//!
//! `#[shm(name = "Name")]` on the type sets the name recorded in the schema and hashed into the
//! fingerprint (default: the type's identifier, without its module path). Names are those of
//! the schema grammar (`shmx::schema_text`): the type's, ASCII identifiers joined by `::`
//! (`"geo::Pose"`) and not a primitive's name, `rel`, `relstr` or `rkyv`; fields' and
//! variants', ASCII identifiers.
//!
//! # What is refused
//! Each with a compile error at the offending item: a struct without `#[repr(C)]` or
//! `#[repr(transparent)]`; `#[repr(packed)]`; generic parameters; unions; tuple and unit
//! structs; enums with fields, without an integer `repr` or without variants; fields whose
//! type is not a `ShmMessage` (references, raw pointers, `Box`, `Vec`, `String`, `Rc`, `Arc`,
//! `Option`, ... get a targeted hint); implicit padding; names outside the schema grammar
//! (above); a field whose type is a relative pointer under another name (`type Bytes =
//! RelSlice<u8>`, or a renamed import), which would get no accessors.

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as TokenStream2};
use quote::{quote, quote_spanned, ToTokens};
use syn::ext::IdentExt;
use syn::{Data, DataEnum, DataStruct, DeriveInput, Fields, Ident, LitStr};

mod attrs;
mod names;
mod offenders;
mod writer;

use attrs::{refuse_shm_attr, Repr, ShmOptions};

/// Derives `shmx::ShmMessage`; see the crate documentation for what is accepted.
#[proc_macro_derive(ShmMessage, attributes(shm))]
pub fn derive_shm_message(input: TokenStream) -> TokenStream {
    let input = syn::parse_macro_input!(input as DeriveInput);
    match expand(&input) {
        Ok(tokens) => tokens.into(),
        Err(errors) => errors.to_compile_error().into(),
    }
}

/// Folds a list of errors into one `syn::Error` (which reports each of them).
fn combine(errors: Vec<syn::Error>) -> syn::Result<()> {
    let mut iter = errors.into_iter();
    match iter.next() {
        None => Ok(()),
        Some(mut first) => {
            for e in iter {
                first.combine(e);
            }
            Err(first)
        }
    }
}

fn expand(input: &DeriveInput) -> syn::Result<TokenStream2> {
    let mut errors = Vec::new();
    let repr = Repr::parse(&input.attrs);
    let opts = ShmOptions::parse(&input.attrs);
    let (repr, opts) = match (repr, opts) {
        (Ok(r), Ok(o)) => (r, o),
        (r, o) => {
            errors.extend(r.err());
            errors.extend(o.err());
            return combine(errors).map(|()| TokenStream2::new());
        }
    };

    if !input.generics.params.is_empty() {
        errors.push(syn::Error::new_spanned(
            &input.generics,
            "generic parameters are not supported in this version of `#[derive(ShmMessage)]`; \
             declare a concrete type for each instance (the fingerprint must not depend on a \
             parameter)",
        ));
    } else if let Some(w) = &input.generics.where_clause {
        errors.push(syn::Error::new_spanned(
            w,
            "`where` clauses are not supported by `#[derive(ShmMessage)]`",
        ));
    }
    if let Some(span) = repr.packed {
        errors.push(syn::Error::new(
            span,
            "`#[repr(packed)]` is not supported: references to its fields would be unaligned; \
             remove `packed` and add explicit `_pad: [u8; N]` fields instead",
        ));
    }

    let name = &input.ident;
    let type_name = opts
        .name
        .unwrap_or_else(|| LitStr::new(&name.unraw().to_string(), name.span()));
    if let Some(problem) = names::type_name_problem(&type_name.value()) {
        errors.push(syn::Error::new(type_name.span(), problem));
    }

    let expanded = match &input.data {
        Data::Struct(data) => expand_struct(input, data, &repr, &type_name, &mut errors),
        Data::Enum(data) => expand_enum(input, data, &repr, &type_name, &mut errors),
        Data::Union(data) => {
            errors.push(syn::Error::new_spanned(
                data.union_token,
                "unions are not supported by `#[derive(ShmMessage)]`: a subscriber could not \
                 tell which field holds a valid value; use a fieldless enum tag next to a struct \
                 per case, or a byte array `[u8; N]`",
            ));
            TokenStream2::new()
        }
    };
    combine(errors)?;
    Ok(expanded)
}

fn expand_struct(
    input: &DeriveInput,
    data: &DataStruct,
    repr: &Repr,
    type_name: &LitStr,
    errors: &mut Vec<syn::Error>,
) -> TokenStream2 {
    let name = &input.ident;
    let fields = match &data.fields {
        Fields::Named(named) => &named.named,
        Fields::Unnamed(unnamed) => {
            let suggestion = unnamed
                .unnamed
                .iter()
                .enumerate()
                .map(|(i, f)| {
                    let ty = offenders::pretty(&f.ty.to_token_stream());
                    if unnamed.unnamed.len() == 1 {
                        format!("value: {ty}")
                    } else {
                        format!("f{i}: {ty}")
                    }
                })
                .collect::<Vec<_>>()
                .join(", ");
            errors.push(syn::Error::new_spanned(
                unnamed,
                format!(
                    "tuple structs are not supported by `#[derive(ShmMessage)]`: the schema \
                     records field names; name the fields, e.g. `struct {name} {{ {suggestion} }}`"
                ),
            ));
            return TokenStream2::new();
        }
        Fields::Unit => {
            errors.push(syn::Error::new_spanned(
                name,
                format!(
                    "unit structs are not supported by `#[derive(ShmMessage)]`: declare the \
                     fields to send as named fields (`struct {name} {{ ... }}`), or write \
                     `struct {name} {{}}` for a message without data"
                ),
            ));
            return TokenStream2::new();
        }
    };
    if repr.c.is_none() && repr.transparent.is_none() {
        errors.push(syn::Error::new_spanned(
            name,
            format!(
                "`{name}` needs `#[repr(C)]` to be a `ShmMessage`: Rust's default layout may \
                 differ between binaries; add #[repr(C)] above the struct"
            ),
        ));
    }

    let shmx = quote!(::shmx);
    let private = quote!(::shmx::__private);
    let core = quote!(::shmx::__private::core);

    let mut field_schemas = Vec::new();
    let mut validations = Vec::new();
    let mut tys = Vec::new();
    let mut idents = Vec::new();
    let mut writer_fields = Vec::new();
    for field in fields {
        refuse_shm_attr(&field.attrs, errors);
        let Some(ident) = field.ident.as_ref() else {
            continue;
        };
        let ty = &field.ty;
        let field_name = ident.unraw().to_string();
        if !names::is_identifier(&field_name) {
            errors.push(syn::Error::new_spanned(
                ident,
                format!(
                    "field name `{field_name}` is not an ASCII identifier (letters, digits and \
                     `_`): tools and other languages read it from the topic's schema; rename \
                     the field"
                ),
            ));
        }
        if let Some(message) = offenders::check(&field_name, ty) {
            errors.push(syn::Error::new_spanned(ty, message));
            continue;
        }
        let lit = LitStr::new(&field_name, ident.span());
        // `<#ty as ShmMessage>` is also the check that the field's type is a message: the
        // tokens of `#ty` keep their spans, so "`X` cannot live in shared memory: it is not a
        // `ShmMessage`" (the trait's `on_unimplemented`) points at the field's type, once.
        field_schemas.push(quote! {
            #shmx::message::Field {
                name: #lit,
                offset: #core::mem::offset_of!(#name, #ident),
                schema: <#ty as #shmx::ShmMessage>::SCHEMA,
            }
        });
        validations.push(quote! {
            if !<#ty as #shmx::ShmMessage>::ALWAYS_VALID {
                let offset = #core::mem::offset_of!(#name, #ident);
                // SAFETY: the caller guarantees that `ptr` is aligned for `Self` and points to
                // `size_of::<Self>()` readable bytes of the payload `ctx` describes, derived
                // from its pointer. The field lies at `offset` inside those bytes (`offset_of!`),
                // so the pointer stays in bounds and, made with `add` (never from an integer),
                // keeps that provenance; it is aligned for the field's type because `Self` is
                // `repr(C)` or `repr(transparent)` (never packed) and `ptr` is aligned. `validate`
                // only reads the field's bytes as integers, so they need not be a valid value;
                // the tail it reads only through `ctx`.
                unsafe {
                    <#ty as #shmx::ShmMessage>::validate(
                        ptr.cast::<u8>().add(offset).cast::<#ty>(),
                        ctx,
                    )
                }
                .map_err(|e| e.at(offset))?;
            }
        });
        tys.push(ty);
        idents.push(ident);
        writer_fields.push(writer::WriterField {
            ident,
            ty,
            vis: &field.vis,
        });
    }
    if !errors.is_empty() {
        return TokenStream2::new();
    }

    let padding_checks = padding_checks(name, &idents, &tys, repr.c.is_some());
    let alias_checks = alias_checks(name, &idents, &tys);
    let writer = writer::expand(name, &input.vis, &writer_fields);

    quote! {
        // SAFETY: `#name` is `repr(C)` or `repr(transparent)` and not packed, with no generic
        // parameters (checked by the derive); every field is a `ShmMessage` (this impl does not
        // compile otherwise, as it names `<FieldTy as ShmMessage>`), so no field holds a pointer
        // or padding of its own; the `const _` below proves that the struct adds no padding
        // between or after its fields. The schema lists every field with its `offset_of!`. The
        // struct is valid exactly when every field is: `ALWAYS_VALID` and `ZEROABLE` are the
        // conjunction of the fields' flags, and `validate` validates every field that needs it
        // at its offset.
        #[automatically_derived]
        unsafe impl #shmx::ShmMessage for #name {
            const TYPE_NAME: &'static str = #type_name;
            const SCHEMA: &'static #shmx::message::Schema = &#shmx::message::Schema::structure(
                #type_name,
                #core::mem::size_of::<#name>(),
                #core::mem::align_of::<#name>(),
                &[#(#field_schemas),*],
            );
            const ALWAYS_VALID: bool = true #(&& <#tys as #shmx::ShmMessage>::ALWAYS_VALID)*;
            const ZEROABLE: bool = true #(&& <#tys as #shmx::ShmMessage>::ZEROABLE)*;

            #[inline]
            unsafe fn validate(
                ptr: *const Self,
                ctx: &#shmx::message::ValidationContext,
            ) -> #core::result::Result<(), #shmx::message::ValidationError> {
                let _ = (ptr, ctx);
                if <Self as #shmx::ShmMessage>::ALWAYS_VALID {
                    return #core::result::Result::Ok(());
                }
                #(#validations)*
                #core::result::Result::Ok(())
            }

            fn __shmx_sealed(_: #private::Sealed) {}
        }

        const _: () = {
            #padding_checks
            #alias_checks
        };

        #writer
    }
}

/// Compile-time checks that a struct has no implicit padding, each spanned where the padding
/// is: before a field (at the field's name) or at the end (at the struct's name).
///
/// For `repr(C)`, fields are laid out in declaration order, so the gap before field `i` is
/// `offset(i) - (offset(i - 1) + size(i - 1))` and the tail is `size - (offset(last) +
/// size(last))`; neither can underflow. A `repr(transparent)` struct may place zero-sized fields
/// anywhere, so it gets a single check that the field sizes add up to its size.
fn padding_checks(name: &Ident, idents: &[&Ident], tys: &[&syn::Type], c: bool) -> TokenStream2 {
    let private = quote!(::shmx::__private);
    let core = quote!(::shmx::__private::core);
    if !c {
        return quote_spanned! {name.span()=>
            #private::assert_no_padding::<
                #name,
                { #core::mem::size_of::<#name>() - (0 #(+ #core::mem::size_of::<#tys>())*) },
            >();
        };
    }
    let mut checks = TokenStream2::new();
    let mut end_of_previous = quote!(0);
    for (ident, ty) in idents.iter().zip(tys) {
        // The error points at the type argument, so name the type with the field's span.
        let mut at_field = name.clone();
        at_field.set_span(ident.span());
        checks.extend(quote_spanned! {ident.span()=>
            #private::assert_no_padding_before_field::<
                #at_field,
                { #core::mem::offset_of!(#name, #ident) - (#end_of_previous) },
            >();
        });
        end_of_previous =
            quote!(#core::mem::offset_of!(#name, #ident) + #core::mem::size_of::<#ty>());
    }
    checks.extend(quote_spanned! {name.span()=>
        #private::assert_no_padding_at_end::<
            #name,
            { #core::mem::size_of::<#name>() - (#end_of_previous) },
        >();
    });
    checks
}

/// Compile-time checks that no field is a relative pointer the derive did not recognise by
/// its syntax (`type Bytes = RelSlice<u8>`), which would get no accessors; each spanned at the
/// field's type.
fn alias_checks(name: &Ident, idents: &[&Ident], tys: &[&syn::Type]) -> TokenStream2 {
    let shmx = quote!(::shmx);
    let private = quote!(::shmx::__private);
    let mut checks = TokenStream2::new();
    for (ident, ty) in idents.iter().zip(tys) {
        if writer::rel_kind(ty).is_some() {
            continue;
        }
        let mut at_field = name.clone();
        at_field.set_span(ident.span());
        let span = syn::spanned::Spanned::span(ty);
        checks.extend(quote_spanned! {span=>
            #private::assert_relative_pointer_named_directly::<
                #at_field,
                { #private::is_relative_pointer(<#ty as #shmx::ShmMessage>::SCHEMA) },
            >();
        });
    }
    checks
}

/// The integer reprs an enum message may use, with their `Primitive` variant.
const ENUM_REPRS: &[(&str, &str)] = &[
    ("u8", "U8"),
    ("u16", "U16"),
    ("u32", "U32"),
    ("u64", "U64"),
    ("i8", "I8"),
    ("i16", "I16"),
    ("i32", "I32"),
    ("i64", "I64"),
];

fn expand_enum(
    input: &DeriveInput,
    data: &DataEnum,
    repr: &Repr,
    type_name: &LitStr,
    errors: &mut Vec<syn::Error>,
) -> TokenStream2 {
    let name = &input.ident;
    let primitive = match &repr.int {
        None => {
            errors.push(syn::Error::new_spanned(
                name,
                format!(
                    "enum `{name}` needs an integer representation to be a `ShmMessage`, so that \
                     its discriminant has the same size and values in every binary; add \
                     `#[repr(u8)]` (or u16, u32, u64, i8, i16, i32, i64)"
                ),
            ));
            None
        }
        Some(int) => match ENUM_REPRS.iter().find(|(r, _)| int == r) {
            Some((_, p)) => Some((int.clone(), Ident::new(p, Span::call_site()))),
            None => {
                errors.push(syn::Error::new_spanned(
                    int,
                    format!(
                        "`#[repr({int})]` is not supported for a `ShmMessage` enum; use one of \
                         u8, u16, u32, u64, i8, i16, i32, i64 (`usize`/`isize` differ between \
                         32- and 64-bit processes)"
                    ),
                ));
                None
            }
        },
    };
    if let Some(span) = repr.align {
        errors.push(syn::Error::new(
            span,
            "`#[repr(align(N))]` on an enum would add implicit padding after the discriminant; \
             use a wider integer `repr` instead",
        ));
    }
    if let Some(span) = repr.transparent {
        errors.push(syn::Error::new(
            span,
            "`#[repr(transparent)]` is not supported on enums; use an integer `repr` such as \
             `#[repr(u8)]`",
        ));
    }
    if data.variants.is_empty() {
        errors.push(syn::Error::new_spanned(
            name,
            format!(
                "enum `{name}` has no variants, so it has no value that could be sent; add at \
                 least one variant"
            ),
        ));
    }
    for variant in &data.variants {
        refuse_shm_attr(&variant.attrs, errors);
        let variant_name = variant.ident.unraw().to_string();
        if !names::is_identifier(&variant_name) {
            errors.push(syn::Error::new_spanned(
                &variant.ident,
                format!(
                    "variant name `{variant_name}` is not an ASCII identifier (letters, digits \
                     and `_`): tools and other languages read it from the topic's schema; \
                     rename the variant"
                ),
            ));
        }
        if !matches!(variant.fields, Fields::Unit) {
            errors.push(syn::Error::new_spanned(
                &variant.fields,
                format!(
                    "variant `{}` has fields; `#[derive(ShmMessage)]` supports only fieldless \
                     enums. Use a fieldless enum as a tag next to a `#[repr(C)]` struct holding \
                     the data",
                    variant.ident
                ),
            ));
        }
    }
    let Some((int, primitive)) = primitive else {
        return TokenStream2::new();
    };
    if !errors.is_empty() {
        return TokenStream2::new();
    }

    let shmx = quote!(::shmx);
    let core = quote!(::shmx::__private::core);
    let private = quote!(::shmx::__private);
    let idents: Vec<&Ident> = data.variants.iter().map(|v| &v.ident).collect();
    let names: Vec<LitStr> = idents
        .iter()
        .map(|i| LitStr::new(&i.unraw().to_string(), i.span()))
        .collect();
    let count = idents.len();
    // Discriminants are distinct, so 256 variants of an 8-bit repr cover every byte.
    let always_valid = (int == "u8" || int == "i8") && count == 256;

    quote! {
        // SAFETY: `#name` is a fieldless enum with the integer representation `#int` (checked by
        // the derive), so it is exactly one `#int` with no padding and no pointers. Its valid
        // values are its variants' discriminants: `validate` reads the discriminant as `#int`
        // (never as `#name`) and accepts only those values; `ZEROABLE` holds exactly when some
        // discriminant is 0; `ALWAYS_VALID` only when the variants cover every 8-bit value.
        #[automatically_derived]
        unsafe impl #shmx::ShmMessage for #name {
            const TYPE_NAME: &'static str = #type_name;
            const SCHEMA: &'static #shmx::message::Schema = &#shmx::message::Schema::enumeration(
                #type_name,
                #shmx::message::Primitive::#primitive,
                #core::mem::size_of::<#name>(),
                #core::mem::align_of::<#name>(),
                &[#(
                    #shmx::message::Variant { name: #names, value: #name::#idents as i128 }
                ),*],
            );
            const ALWAYS_VALID: bool = #always_valid;
            const ZEROABLE: bool = false #(|| (#name::#idents as #int) == 0)*;

            #[inline]
            unsafe fn validate(
                ptr: *const Self,
                _ctx: &#shmx::message::ValidationContext,
            ) -> #core::result::Result<(), #shmx::message::ValidationError> {
                // SAFETY: the caller guarantees that `ptr` is aligned for `Self` and points to
                // `size_of::<Self>()` readable bytes; `Self` has the size and alignment of
                // `#int`, and every bit pattern is a valid `#int`. No `&Self` is created.
                let value: #int = unsafe { ptr.cast::<#int>().read() };
                let known: [#int; #count] = [#(#name::#idents as #int),*];
                if known.contains(&value) {
                    #core::result::Result::Ok(())
                } else {
                    #core::result::Result::Err(#shmx::message::ValidationError::InvalidDiscriminant {
                        type_name: #type_name,
                        offset: 0,
                        value: value as i128,
                    })
                }
            }

            fn __shmx_sealed(_: #private::Sealed) {}
        }
    }
}
