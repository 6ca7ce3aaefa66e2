//! A topic's message type: what the topic records of it ([`TypeFacts`]), and the check that
//! the type of an endpoint joining the topic passes.

use super::{mismatch, Service};
use crate::error::{Error, Result};
use crate::message::ShmMessage;

/// What a topic records about its message type.
#[derive(Debug, Clone)]
pub(crate) struct TypeFacts {
    pub name: String,
    pub fingerprint: u64,
    pub size: usize,
    pub align: usize,
    /// `Schema::sample_align` of the type (or the alignment archives need).
    pub sample_align: usize,
    /// Whether samples carry a tail after the message (relative pointers, or an archive).
    pub has_tail: bool,
    /// `Schema::describe` of the type (or another text tools recognise).
    pub schema: String,
}

impl TypeFacts {
    /// The facts of message type `T`.
    pub(crate) fn of<T: ShmMessage>() -> TypeFacts {
        TypeFacts {
            name: T::TYPE_NAME.to_owned(),
            fingerprint: T::FINGERPRINT,
            size: core::mem::size_of::<T>(),
            align: core::mem::align_of::<T>(),
            sample_align: T::SCHEMA.sample_align(),
            has_tail: T::SCHEMA.has_relative(),
            schema: T::SCHEMA.describe(),
        }
    }
}

impl Service {
    /// `Error::TypeMismatch` unless the topic carries the type `facts` describes.
    pub(super) fn check_type(&self, facts: &TypeFacts) -> Result<()> {
        let params = &self.params;
        if params.fingerprint == facts.fingerprint
            && params.type_size == facts.size as u64
            && params.type_align == facts.align as u64
        {
            return Ok(());
        }
        let existing_type = self.type_name();
        let existing_schema = self.schema_text();
        let difference = mismatch::difference(
            &mismatch::Described {
                name: &existing_type,
                schema: &existing_schema,
                size: params.type_size,
                align: params.type_align,
            },
            &mismatch::Described {
                name: &facts.name,
                schema: &facts.schema,
                size: facts.size as u64,
                align: facts.align as u64,
            },
        );
        Err(Error::TypeMismatch {
            topic: self.name.as_str().to_owned(),
            existing_type,
            existing_fingerprint: params.fingerprint,
            existing_size: params.type_size,
            requested_type: facts.name.clone(),
            requested_fingerprint: facts.fingerprint,
            requested_size: facts.size as u64,
            difference: difference.into_boxed_str(),
        })
    }
}
