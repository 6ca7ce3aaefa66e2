//! The names and records a shmx recording uses inside MCAP.

use std::collections::BTreeMap;

/// The schema encoding of a channel recorded as raw samples: the schema's data is the topic's
/// schema text (`shmx::schema_text`).
pub const SCHEMA_ENCODING: &str = "shmx";
/// The message encoding of a channel recorded as raw samples: each message is a sample's
/// bytes, as published (native byte order, see [`META_ENDIAN`]).
pub const MESSAGE_ENCODING: &str = "shmx";
/// The MCAP header's profile.
pub const PROFILE: &str = "shmx";

/// Channel metadata: the message type's structural fingerprint, `0x` and 16 hex digits.
pub const META_FINGERPRINT: &str = "shmx.fingerprint";
/// Channel metadata: `size_of` the message type, in bytes (decimal).
pub const META_SIZE: &str = "shmx.size";
/// Channel metadata: the topic's schema text (also with other encodings).
pub const META_SCHEMA: &str = "shmx.schema";
/// Channel metadata: the recording machine's byte order, `little` or `big`.
pub const META_ENDIAN: &str = "shmx.endian";

/// Opcode of the private record that says which publisher sent the messages of a channel
/// that follow it, up to the next such record for that channel: 2 bytes of channel id and 8
/// of publisher id (`Sample::publisher_id`), little-endian.
pub const PUBLISHER_OP: u8 = 0x80;

/// This machine's byte order, as [`META_ENDIAN`] names it.
pub fn native_endian() -> &'static str {
    if cfg!(target_endian = "little") {
        "little"
    } else {
        "big"
    }
}

/// The metadata of a channel for a topic of this type.
pub(crate) fn channel_metadata(
    fingerprint: u64,
    size: usize,
    schema: &str,
) -> BTreeMap<String, String> {
    BTreeMap::from([
        (META_FINGERPRINT.to_owned(), format!("{fingerprint:#018x}")),
        (META_SIZE.to_owned(), size.to_string()),
        (META_SCHEMA.to_owned(), schema.to_owned()),
        (META_ENDIAN.to_owned(), native_endian().to_owned()),
    ])
}

/// The body of a [`PUBLISHER_OP`] record.
pub(crate) fn publisher_record(channel: u16, publisher: u64) -> [u8; 10] {
    let mut body = [0; 10];
    body[..2].copy_from_slice(&channel.to_le_bytes());
    body[2..].copy_from_slice(&publisher.to_le_bytes());
    body
}

/// The channel and publisher a [`PUBLISHER_OP`] record names; `None` if it is malformed.
pub(crate) fn parse_publisher_record(body: &[u8]) -> Option<(u16, u64)> {
    let body: &[u8; 10] = body.try_into().ok()?;
    let channel = u16::from_le_bytes([body[0], body[1]]);
    let publisher = u64::from_le_bytes(body[2..].try_into().ok()?);
    Some((channel, publisher))
}

/// A fingerprint as [`META_FINGERPRINT`] writes it, read back.
pub(crate) fn parse_fingerprint(text: &str) -> Option<u64> {
    let hex = text.strip_prefix("0x")?;
    (hex.len() == 16).then_some(())?;
    u64::from_str_radix(hex, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publisher_records_and_fingerprints_read_back() {
        let body = publisher_record(7, u64::MAX - 3);
        assert_eq!(parse_publisher_record(&body), Some((7, u64::MAX - 3)));
        assert_eq!(parse_publisher_record(&body[..9]), None);
        let meta = channel_metadata(0xbcec24b4daf73fe6, 12, "X(12,4){}");
        assert_eq!(
            parse_fingerprint(&meta[META_FINGERPRINT]),
            Some(0xbcec24b4daf73fe6)
        );
        assert_eq!(parse_fingerprint("0x12"), None);
        assert_eq!(parse_fingerprint("bcec24b4daf73fe6"), None);
        assert_eq!(parse_fingerprint("0xbcec24b4daf73fg6"), None);
    }
}
