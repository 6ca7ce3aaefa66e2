//! `#[derive(ShmMessage)]`.
use proc_macro::TokenStream;

/// Derives `shmx::ShmMessage`.
#[proc_macro_derive(ShmMessage, attributes(shm))]
pub fn derive_shm_message(input: TokenStream) -> TokenStream {
    let _ = input;
    TokenStream::new()
}
