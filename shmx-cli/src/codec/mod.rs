//! Messages as JSON, without their Rust type: a parser of the schema text each topic stores
//! ([`shmx::message::Schema::describe`]), and a decoder and encoder between a message's bytes
//! and JSON.
//!
//! The schema text follows the grammar of [`shmx::schema_text`] and looks like
//! `Pose(24,8){seq@0:u64,x@8:f64,heading@16:f32,flags@20:u32}`: structs are
//! `Name(size,align){field@offset:type,...}`, arrays `[type;len]`, fieldless enums
//! `Name:repr{Variant=value,...}`, primitives `u8`..`u128`, `i8`..`i128`, `f32`, `f64` and
//! `bool`, and relative pointers `rel[type]` (a `RelSlice`) and `relstr` (a `RelStr`). Every
//! size and alignment is in the text, and padding is always explicit (`_pad` fields of
//! `[u8;N]`), so every byte of a message belongs to some field. [`parse()`] accepts only the
//! canonical text of a layout the derive can make, and lays values out exactly as written.
//!
//! A relative pointer is 8 bytes in the message: a `u32` offset counted from the pointer's
//! own first byte, then a `u32` element count. Its elements lie in the sample's *tail*, after
//! the fixed-size message, aligned for the element type (see `shmx::rel`); a sample of such a
//! type is the message followed by the used part of its tail. Elements never hold relative
//! pointers themselves (`rel[rel[u8]]` is refused, as the library refuses it).
//!
//! Topics of archived rkyv values have schema text starting with `rkyv:`
//! (`rkyv:Name`): their samples are whole archives this codec cannot decode.
//!
//! The JSON form of a value:
//! - a struct is an object with its fields in declaration order (padding fields included when
//!   decoding; they may be left out when encoding, and are then zeros);
//! - an array is a JSON array (also `[u8;N]`);
//! - an enum is its variant's name, or its number when the bytes name no variant; encoding
//!   accepts a variant's name or its number;
//! - a `bool` is `true`/`false`, or its number when the byte is neither 0 nor 1;
//! - integers up to 64 bits are numbers; `u128`/`i128` are decimal strings (encoding also
//!   accepts numbers);
//! - floats are numbers, except NaN and the infinities, which are the strings `"NaN"`,
//!   `"inf"` and `"-inf"`;
//! - a `rel[T]` is a JSON array of its elements; decoding shows at most a given number of
//!   them, followed by a marker object `{"...": N}` counting the `N` left out;
//! - a `relstr` is a JSON string.
//!
//! Decoding checks every relative pointer (the offset and length come from shared memory
//! and are not trusted): its elements must lie whole, aligned, inside the tail of the bytes
//! given, and a string's bytes must be UTF-8; otherwise decoding fails with an error that
//! names the field.
//!
//! Bytes are in the machine's native byte order, as the processes sharing the memory use them.
//!
//! The parts: [`parse()`] (schema text to [`Ty`]), [`decode()`] (bytes to JSON) and
//! [`encode()`] (JSON to bytes).

mod decode;
mod encode;
#[cfg(test)]
mod fuzz;
#[cfg(test)]
mod tests;

pub use decode::decode;
pub use encode::encode;

pub use shmx::schema_text::{is_archived, parse, Ty, REL_SIZE};
