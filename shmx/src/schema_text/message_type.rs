//! [`MessageType`]: a message type known at run time by its schema text, for endpoints
//! without a Rust type (tools, other languages) that create topics or check them.

use super::{parse, Ty};
use crate::error::{Error, Result};
use crate::message::ShmMessage;
use crate::service::TypeFacts;

/// A message type known by its schema text at run time: what a topic records of a Rust
/// type (fingerprint, size, alignment, schema), computed from the text alone, so that an
/// endpoint without the Rust type (another language's) creates or joins the very topic the
/// Rust type would.
///
/// ```
/// use shmx::schema_text::MessageType;
/// use shmx::ShmMessage;
/// #[derive(ShmMessage)]
/// #[repr(C)]
/// struct Pose { seq: u64, x: f64, heading: f32, mode: u32 }
/// let t = MessageType::parse("Pose(24,8){seq@0:u64,x@8:f64,heading@16:f32,mode@20:u32}")?;
/// assert_eq!(t.fingerprint(), Pose::FINGERPRINT);
/// assert_eq!(t, MessageType::of::<Pose>());
/// assert!(MessageType::parse("Pose(24,8){seq@0:u64}").is_err()); // 16 bytes of padding
/// # Ok::<(), shmx::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageType {
    ty: Ty,
    schema: String,
    fingerprint: u64,
}

impl MessageType {
    /// The type that schema text `schema` describes.
    ///
    /// # Errors
    /// [`Error::InvalidSchema`] unless `schema` is the canonical text of a layout that
    /// `#[derive(ShmMessage)]` could make on this machine (see [`parse`]); archived rkyv
    /// topics' texts (`rkyv:Name`) describe no layout.
    pub fn parse(schema: &str) -> Result<MessageType> {
        let ty = parse(schema).map_err(|reason| Error::InvalidSchema { reason })?;
        let fingerprint = ty.fingerprint();
        Ok(MessageType {
            ty,
            schema: schema.to_owned(),
            fingerprint,
        })
    }

    /// The type of Rust message type `T`.
    ///
    /// # Panics
    /// Never for a derived type (whose schema text always parses); a hand-written
    /// `ShmMessage` impl whose schema is not one layout panics.
    pub fn of<T: ShmMessage>() -> MessageType {
        match Self::parse(&T::SCHEMA.describe()) {
            Ok(t) => t,
            Err(e) => panic!("the schema of {} does not parse: {e}", T::TYPE_NAME),
        }
    }

    /// The parsed type.
    pub fn ty(&self) -> &Ty {
        &self.ty
    }

    /// The canonical schema text.
    pub fn schema(&self) -> &str {
        &self.schema
    }

    /// The structural fingerprint (the Rust type's `FINGERPRINT`).
    pub fn fingerprint(&self) -> u64 {
        self.fingerprint
    }

    /// Bytes in a message (without a tail).
    pub fn size(&self) -> usize {
        self.ty.size()
    }

    /// The message's alignment.
    pub fn align(&self) -> usize {
        self.ty.align()
    }

    /// Whether samples carry a tail (the type holds relative pointers).
    pub fn has_tail(&self) -> bool {
        self.ty.has_relative()
    }

    /// What a topic records of this type.
    pub(crate) fn facts(&self) -> TypeFacts {
        TypeFacts {
            name: self.ty.type_name().to_owned(),
            fingerprint: self.fingerprint,
            size: self.ty.size(),
            align: self.ty.align(),
            sample_align: self.ty.sample_align(),
            has_tail: self.ty.has_relative(),
            schema: self.schema.clone(),
        }
    }
}
