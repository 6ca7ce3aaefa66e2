//! Items used by code that `#[derive(ShmMessage)]` generates. Not public API.
//!
//! Everything here exists so that generated code can refer to it by an absolute path
//! (`::shmx::__private::...`); nothing here is covered by semver.

/// The argument of `ShmMessage`'s hidden method: it keeps accidental impls out, but anyone
/// can name it, so it is not a seal; a hand-written impl is the writer's own unsafe promise
/// (see `ShmMessage`'s `# Safety`).
pub struct Sealed(());

pub use core;

/// Implemented for every type, but only with `BYTES == 0`: the derive asks for
/// `Message: NoPaddingBeforeField<{ gap before the field }>` for each field of a `repr(C)`
/// message, spanned at the field, so a gap is reported where it is.
#[diagnostic::on_unimplemented(
    message = "`{Self}` has {BYTES} byte(s) of implicit padding before this field",
    label = "add `_pad: [u8; {BYTES}]` before this field",
    note = "padding bytes are uninitialised: sending them would leak the publisher's memory to every subscriber, so a message type declares every byte"
)]
pub trait NoPaddingBeforeField<const BYTES: usize> {}

impl<T: ?Sized> NoPaddingBeforeField<0> for T {}

/// Implemented for every type, but only with `BYTES == 0`: the derive asks for
/// `Message: NoPaddingAtEnd<{ size - end of the last field }>`, spanned at the type's name.
#[diagnostic::on_unimplemented(
    message = "`{Self}` has {BYTES} byte(s) of implicit padding after its last field",
    label = "add `_pad: [u8; {BYTES}]` as the last field of this type",
    note = "the size of a type is rounded up to a multiple of its alignment; the bytes added are uninitialised padding, and sending them would leak the publisher's memory to every subscriber, so a message type declares every byte"
)]
pub trait NoPaddingAtEnd<const BYTES: usize> {}

impl<T: ?Sized> NoPaddingAtEnd<0> for T {}

/// Implemented for every type, but only with `BYTES == 0`: the derive asks for
/// `Message: NoImplicitPadding<{ size - sum of the field sizes }>` for `repr(transparent)`
/// messages.
#[diagnostic::on_unimplemented(
    message = "`{Self}` has {BYTES} byte(s) of implicit padding",
    label = "{BYTES} byte(s) of implicit padding in this message type",
    note = "padding bytes are uninitialised: sending them would leak the publisher's memory to every subscriber",
    note = "add explicit padding fields such as `_pad: [u8; {BYTES}]` where the compiler inserts padding"
)]
pub trait NoImplicitPadding<const BYTES: usize> {}

impl<T: ?Sized> NoImplicitPadding<0> for T {}

/// Compiles only when `BYTES == 0`; see [`NoPaddingBeforeField`].
#[inline(always)]
pub const fn assert_no_padding_before_field<
    T: ?Sized + NoPaddingBeforeField<BYTES>,
    const BYTES: usize,
>() {
}

/// Compiles only when `BYTES == 0`; see [`NoPaddingAtEnd`].
#[inline(always)]
pub const fn assert_no_padding_at_end<T: ?Sized + NoPaddingAtEnd<BYTES>, const BYTES: usize>() {}

/// Compiles only when `BYTES == 0`; see [`NoImplicitPadding`].
#[inline(always)]
pub const fn assert_no_padding<T: ?Sized + NoImplicitPadding<BYTES>, const BYTES: usize>() {}

/// Implemented for every type, but only with `RELATIVE == false`: the derive asks for
/// `Message: RelativePointerNamedDirectly<{ the field's schema is a RelSlice or RelStr }>` for
/// each field whose type it does not recognise as `RelSlice<..>` or `RelStr` by its syntax,
/// spanned at the field: such a field (through a type alias or a renamed import) would get
/// no accessors.
#[diagnostic::on_unimplemented(
    message = "this field of `{Self}` is a relative pointer under another name",
    label = "write `RelSlice<..>` or `RelStr` here, not an alias or a renamed import",
    note = "`#[derive(ShmMessage)]` recognises relative pointers by their names to generate their readers and `set_`/`alloc_` writers; through an alias the field would silently have none"
)]
pub trait RelativePointerNamedDirectly<const RELATIVE: bool> {}

impl<T: ?Sized> RelativePointerNamedDirectly<false> for T {}

/// Compiles only when `RELATIVE` is false; see [`RelativePointerNamedDirectly`].
#[inline(always)]
pub const fn assert_relative_pointer_named_directly<
    T: ?Sized + RelativePointerNamedDirectly<RELATIVE>,
    const RELATIVE: bool,
>() {
}

/// Whether `schema` is that of a `RelSlice` or `RelStr` itself.
pub const fn is_relative_pointer(schema: &crate::message::Schema) -> bool {
    matches!(
        schema.kind,
        crate::message::SchemaKind::RelSlice { .. } | crate::message::SchemaKind::RelStr
    )
}

/// `Unpin` exactly when `T` is: the derive implements `Unpin` for a message type under the
/// bound `PinGuard<'_, (field types...)>: Unpin`, which equals the automatic impl but makes a
/// hand-written `impl Unpin` a conflict (the same trick as the `pin-project` crate).
pub struct PinGuard<'a, T>(
    core::marker::PhantomData<&'a ()>,
    core::marker::PhantomData<T>,
);
