//! [`Transcode`]: recording topics in an encoding other than their own bytes.

/// What a recording knows of a topic's message type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicType {
    /// The topic's name.
    pub topic: String,
    /// The message type's name.
    pub type_name: String,
    /// Its structural fingerprint.
    pub fingerprint: u64,
    /// `size_of` the type.
    pub size: usize,
    /// The topic's schema text (`shmx::schema_text`; `rkyv:...` for archived values).
    pub schema: String,
}

impl TopicType {
    /// The type of the topic a raw subscriber receives.
    pub(crate) fn of(sub: &shmx::inspect::RawSubscriber, fingerprint: u64) -> TopicType {
        let schema = sub.schema().to_owned();
        TopicType {
            topic: sub.topic().to_owned(),
            type_name: type_name(&schema),
            fingerprint,
            size: sub.size(),
            schema,
        }
    }
}

/// The type name a schema text begins with (`Pose(16,8){...}` is `Pose`; `[u16;2]` and
/// other unnamed types are their text).
pub(crate) fn type_name(schema: &str) -> String {
    if let Some(rest) = schema.strip_prefix("rkyv:") {
        return rest.to_owned();
    }
    match schema.find('(') {
        Some(end) if end > 0 && !schema.starts_with('[') => schema[..end].to_owned(),
        _ => schema.to_owned(),
    }
}

/// How a channel's schema and messages are written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoding {
    /// The schema record's name.
    pub schema_name: String,
    /// The schema's encoding, e.g. `jsonschema`.
    pub schema_encoding: String,
    /// The schema's data.
    pub schema_data: Vec<u8>,
    /// The channel's message encoding, e.g. `json`.
    pub message_encoding: String,
}

/// Writes samples in an encoding of its own (for example JSON, which tools such as Foxglove
/// show with field names) instead of as their bytes.
pub trait Transcode: Send {
    /// The schema and message encoding of a channel for topic `ty`; an `Err` (a reason)
    /// leaves the topic out of the recording.
    fn encoding(&mut self, ty: &TopicType) -> Result<Encoding, String>;

    /// Appends sample `bytes` of topic `ty` to `out`, encoded; an `Err` (a reason) leaves
    /// the sample out (counted in [`TopicStats::unencodable`](crate::TopicStats)).
    fn message(&mut self, ty: &TopicType, bytes: &[u8], out: &mut Vec<u8>) -> Result<(), String>;
}

#[cfg(test)]
mod tests {
    #[test]
    fn type_names_come_from_the_schema_text() {
        assert_eq!(super::type_name("Pose(16,8){seq@0:u64,x@8:f64}"), "Pose");
        assert_eq!(super::type_name("[u16;2]"), "[u16;2]");
        assert_eq!(super::type_name("u64"), "u64");
        assert_eq!(super::type_name("rkyv:Telemetry"), "Telemetry");
    }
}
