//! What a bridge puts on Zenoh: a sample's bytes as the payload, and what a receiving bridge
//! needs to publish it again as the attachment, a fixed header of little-endian words.

/// The first bytes of every header: "SHMX" and the format's version.
const MAGIC: [u8; 4] = *b"SHMX";
const VERSION: u8 = 1;
/// Bytes of a header.
pub const HEADER_LEN: usize = 56;

/// A sample's facts, beside its bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// The message type's fingerprint.
    pub fingerprint: u64,
    /// `size_of` the message type.
    pub size: u64,
    /// The publisher's sequence number.
    pub sequence: u64,
    /// The publisher's id within its topic, on its machine.
    pub publisher_id: u64,
    /// The bridge that sent it (a random id per bridge run).
    pub origin: u64,
    /// When it was published there (ns since the Unix epoch; 0 if not known).
    pub publish_time: u64,
}

impl Header {
    /// The header as bytes.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        out[..4].copy_from_slice(&MAGIC);
        out[4] = VERSION;
        let words = [
            self.fingerprint,
            self.size,
            self.sequence,
            self.publisher_id,
            self.origin,
            self.publish_time,
        ];
        for (i, w) in words.iter().enumerate() {
            out[8 + 8 * i..16 + 8 * i].copy_from_slice(&w.to_le_bytes());
        }
        out
    }

    /// A header read from `bytes`; `None` unless they are exactly one of this version.
    pub fn decode(bytes: &[u8]) -> Option<Header> {
        let bytes: &[u8; HEADER_LEN] = bytes.try_into().ok()?;
        if bytes[..4] != MAGIC || bytes[4] != VERSION {
            return None;
        }
        let word = |i: usize| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&bytes[8 + 8 * i..16 + 8 * i]);
            u64::from_le_bytes(w)
        };
        Some(Header {
            fingerprint: word(0),
            size: word(1),
            sequence: word(2),
            publisher_id: word(3),
            origin: word(4),
            publish_time: word(5),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_read_back_and_others_are_refused() {
        let h = Header {
            fingerprint: 0x0123_4567_89ab_cdef,
            size: 40,
            sequence: u64::MAX,
            publisher_id: 3,
            origin: 77,
            publish_time: 1_700_000_000_000_000_000,
        };
        let bytes = h.encode();
        assert_eq!(Header::decode(&bytes), Some(h));
        assert_eq!(Header::decode(&bytes[..HEADER_LEN - 1]), None);
        let mut other = bytes;
        other[4] = 2;
        assert_eq!(Header::decode(&other), None);
        other = bytes;
        other[0] = b'X';
        assert_eq!(Header::decode(&other), None);
    }
}
