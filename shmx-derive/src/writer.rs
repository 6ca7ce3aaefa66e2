//! What the derive generates for relative pointers: readers on the message type, a writer
//! type with pinned field references and `set_`/`alloc_` methods, the `Writable` impl, and a
//! guard that keeps a hand-written `impl Unpin` from undoing the pinning.

use proc_macro2::TokenStream as TokenStream2;
use quote::{format_ident, quote, quote_spanned};
use syn::{GenericArgument, Ident, PathArguments, Type, Visibility};

/// What a field is, as far as its syntax tells.
pub(crate) enum RelKind<'a> {
    /// `RelSlice<Elem>`
    Slice(&'a Type),
    /// `RelStr`
    Str,
}

/// Recognises `RelSlice<E>` and `RelStr` (by the last path segment, with or without a path).
pub(crate) fn rel_kind(ty: &Type) -> Option<RelKind<'_>> {
    let Type::Path(path) = ty else { return None };
    if path.qself.is_some() {
        return None;
    }
    let last = path.path.segments.last()?;
    match (last.ident.to_string().as_str(), &last.arguments) {
        ("RelStr", PathArguments::None) => Some(RelKind::Str),
        ("RelSlice", PathArguments::AngleBracketed(args)) if args.args.len() == 1 => {
            match args.args.first()? {
                GenericArgument::Type(elem) => Some(RelKind::Slice(elem)),
                _ => None,
            }
        }
        _ => None,
    }
}

/// One field of the struct, as the writer sees it.
pub(crate) struct WriterField<'a> {
    pub ident: &'a Ident,
    pub ty: &'a Type,
    pub vis: &'a Visibility,
}

/// Readers, writer type, `Writable` impl and `Unpin` guard for struct `name`.
pub(crate) fn expand(name: &Ident, vis: &Visibility, fields: &[WriterField<'_>]) -> TokenStream2 {
    let shmx = quote!(::shmx);
    let core = quote!(::shmx::__private::core);
    let writer = format_ident!("{}Writer", name);
    let idents: Vec<&Ident> = fields.iter().map(|f| f.ident).collect();
    let tys: Vec<&Type> = fields.iter().map(|f| f.ty).collect();
    let vises: Vec<&Visibility> = fields.iter().map(|f| f.vis).collect();

    let mut readers = TokenStream2::new();
    let mut methods = TokenStream2::new();
    for f in fields {
        let (ident, fvis) = (f.ident, f.vis);
        match rel_kind(f.ty) {
            Some(RelKind::Slice(elem)) => {
                let set = format_ident!("set_{}", ident);
                let alloc = format_ident!("alloc_{}", ident);
                let doc_read = format!("The elements of `{ident}` (in the chunk's tail).");
                let doc_set = format!(
                    "Copies `src` into the chunk's tail and points `{ident}` at it.\n\n\
                     # Errors\n`shmx::Error::TailFull` when the tail has no room."
                );
                let doc_alloc = format!(
                    "Allocates `len` elements for `{ident}` in the chunk's tail and returns them \
                     to be filled in place. Element types in which every bit pattern is valid \
                     keep whatever the chunk held (nothing is zeroed); others are zeroed.\n\n\
                     # Errors\n`shmx::Error::TailFull` when the tail has no room."
                );
                readers.extend(quote_spanned! {ident.span()=>
                    #[doc = #doc_read]
                    #[inline]
                    #[allow(dead_code)]
                    #fvis fn #ident(&self) -> &[#elem] {
                        self.#ident.as_slice()
                    }
                });
                methods.extend(quote_spanned! {ident.span()=>
                    #[doc = #doc_set]
                    #[inline]
                    #[allow(dead_code)]
                    #fvis fn #set(&mut self, src: &[#elem]) -> #shmx::Result<&mut [#elem]> {
                        #shmx::RelSlice::copy_from(self.#ident.as_mut(), self.__shmx_tail, src)
                    }
                    #[doc = #doc_alloc]
                    #[inline]
                    #[allow(dead_code)]
                    #fvis fn #alloc(&mut self, len: usize) -> #shmx::Result<&mut [#elem]> {
                        #shmx::RelSlice::alloc(self.#ident.as_mut(), self.__shmx_tail, len)
                    }
                });
            }
            Some(RelKind::Str) => {
                let set = format_ident!("set_{}", ident);
                let doc_read = format!("The string `{ident}` (in the chunk's tail).");
                let doc_set = format!(
                    "Copies `s` into the chunk's tail and points `{ident}` at it.\n\n\
                     # Errors\n`shmx::Error::TailFull` when the tail has no room."
                );
                readers.extend(quote_spanned! {ident.span()=>
                    #[doc = #doc_read]
                    #[inline]
                    #[allow(dead_code)]
                    #fvis fn #ident(&self) -> &str {
                        self.#ident.as_str()
                    }
                });
                methods.extend(quote_spanned! {ident.span()=>
                    #[doc = #doc_set]
                    #[inline]
                    #[allow(dead_code)]
                    #fvis fn #set(&mut self, s: &str) -> #shmx::Result<&str> {
                        #shmx::RelStr::set(self.#ident.as_mut(), self.__shmx_tail, s)
                    }
                });
            }
            None => {}
        }
    }

    let writer_doc = format!(
        "Writes a loaned `{name}` in place: a pinned reference to each field (plain fields \
         deref mutably, `*w.field = value`) and, for each relative pointer, methods that place \
         its data in the chunk's tail. Made by `SampleMut::writer`."
    );
    quote! {
        #[automatically_derived]
        impl #name {
            #readers
        }

        #[doc = #writer_doc]
        #[allow(missing_debug_implementations)]
        #vis struct #writer<'__shmx> {
            #(
                #[allow(missing_docs)]
                #vises #idents: #core::pin::Pin<&'__shmx mut #tys>,
            )*
            __shmx_tail: #shmx::Tail<'__shmx>,
        }

        #[automatically_derived]
        impl<'__shmx> #writer<'__shmx> {
            /// The free tail of the sample's chunk, for writing relative pointers of nested
            /// structs (`let tail = w.tail(); Inner::writer(w.inner.as_mut(), tail)`).
            #[inline]
            #[allow(dead_code)]
            #vis fn tail(&self) -> #shmx::Tail<'__shmx> {
                self.__shmx_tail
            }
            #methods
        }

        #[automatically_derived]
        impl #shmx::Writable for #name {
            type Writer<'__shmx> = #writer<'__shmx>;
            #[inline]
            fn writer<'__shmx>(
                this: #core::pin::Pin<&'__shmx mut Self>,
                tail: #shmx::Tail<'__shmx>,
            ) -> #writer<'__shmx> {
                // SAFETY: structural pinning: every field is pinned exactly when the struct
                // is, and nothing here moves out of `this`. The derive implements `Unpin` for
                // the struct only when every field is `Unpin` (the guard below), and forbids
                // `impl Drop` for it (the other guard below), so `Pin::set` on a field runs
                // no code that could move a relative pointer out of its chunk.
                let this = unsafe { this.get_unchecked_mut() };
                #writer {
                    #(
                        // SAFETY: a field of the pinned struct, projected structurally.
                        #idents: unsafe { #core::pin::Pin::new_unchecked(&mut this.#idents) },
                    )*
                    __shmx_tail: tail,
                }
            }
        }

        // A message type must not implement `Drop`: `Pin::set` on a pinned field drops the
        // old value in place, and a `Drop` impl could move its relative pointers out of the
        // chunk. Any `impl Drop for #name` conflicts with the blanket impl here.
        const _: () = {
            trait ShmMessageMustNotImplementDrop {}
            #[allow(drop_bounds)]
            impl<T: #core::ops::Drop> ShmMessageMustNotImplementDrop for T {}
            impl ShmMessageMustNotImplementDrop for #name {}
        };

        // The struct is `Unpin` exactly when all its fields are, and a hand-written
        // `impl Unpin` conflicts with this one: relative pointers stay pinned.
        #[automatically_derived]
        impl<'__shmx> #core::marker::Unpin for #name
        where
            #shmx::__private::PinGuard<'__shmx, (#(#tys,)*)>: #core::marker::Unpin
        {
        }
    }
}
