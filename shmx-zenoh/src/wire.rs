//! What a bridge puts on Zenoh: a payload of records, one per sample, all of one topic. A
//! record is a fixed header of little-endian words (what a receiving bridge needs to
//! publish the sample again) followed by the sample's bytes. Samples that wait together go
//! in one payload (up to [`BATCH_BYTES`]), so that small ones cost Zenoh one message per
//! batch rather than one each.

use std::ops::Range;

/// The first bytes of every header: "SHMX" and the format's version.
const MAGIC: [u8; 4] = *b"SHMX";
const VERSION: u8 = 2;
/// Bytes of a header.
pub const HEADER_LEN: usize = 64;
/// Records are added to a payload while it stays within this many bytes (a sample larger
/// goes alone): Zenoh's default batch.
pub const BATCH_BYTES: usize = 64 * 1024;

/// A sample's facts, beside its bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// The message type's fingerprint.
    pub fingerprint: u64,
    /// `size_of` the message type.
    pub size: u64,
    /// The publisher's sequence number.
    pub sequence: u64,
    /// The publisher's id.
    pub publisher_id: u64,
    /// The bridge that sent it (a random id per bridge run).
    pub origin: u64,
    /// When it was published there (ns since the Unix epoch; 0 if not known).
    pub publish_time: u64,
    /// Bytes of the sample, which follow the header.
    pub len: u64,
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
            self.len,
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
            len: word(6),
        })
    }
}

/// Appends a record of `bytes` to `payload`.
pub fn append(payload: &mut Vec<u8>, header: &Header, bytes: &[u8]) {
    payload.extend_from_slice(&header.encode());
    payload.extend_from_slice(bytes);
}

/// Calls `each` with every slice of `payload` within `range` (Zenoh may hold a payload in
/// several pieces), in order.
fn each_slice(payload: &zenoh::bytes::ZBytes, range: Range<usize>, mut each: impl FnMut(&[u8])) {
    let mut at = 0;
    for slice in payload.slices() {
        let (start, end) = (at, at + slice.len());
        at = end;
        if end <= range.start {
            continue;
        }
        if start >= range.end {
            break;
        }
        let from = range.start.saturating_sub(start);
        let to = range.end.min(end) - start;
        each(&slice[from..to]);
    }
}

/// The records of `payload`: each header and where its sample's bytes are; `None` (and no
/// more) at the first that is not whole.
pub fn records(
    payload: &zenoh::bytes::ZBytes,
) -> impl Iterator<Item = Option<(Header, Range<usize>)>> + '_ {
    let total = payload.len();
    let mut at = 0;
    let mut failed = false;
    std::iter::from_fn(move || {
        if failed || at >= total {
            return None;
        }
        let record = (|| {
            let end = at.checked_add(HEADER_LEN).filter(|&e| e <= total)?;
            let mut head = [0u8; HEADER_LEN];
            let mut k = 0;
            each_slice(payload, at..end, |s| {
                head[k..k + s.len()].copy_from_slice(s);
                k += s.len();
            });
            let header = Header::decode(&head)?;
            let len = usize::try_from(header.len).ok()?;
            let body_end = end.checked_add(len).filter(|&e| e <= total)?;
            Some((header, end..body_end))
        })();
        match &record {
            Some((_, body)) => at = body.end,
            None => failed = true,
        }
        Some(record)
    })
}

/// Copies `payload[range]` into `loan` from its start.
///
/// # Errors
/// As [`RawLoan::copy_from`](shmx::inspect::RawLoan::copy_from): the range is longer than
/// the loan.
pub fn copy_range(
    payload: &zenoh::bytes::ZBytes,
    range: Range<usize>,
    loan: &mut shmx::inspect::RawLoan<'_>,
) -> shmx::Result<()> {
    let mut at = 0;
    let mut result = Ok(());
    each_slice(payload, range, |s| {
        if result.is_ok() {
            result = loan.copy_from(at, s);
            at += s.len();
        }
    });
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(len: u64) -> Header {
        Header {
            fingerprint: 0x0123_4567_89ab_cdef,
            size: 40,
            sequence: u64::MAX,
            publisher_id: 3,
            origin: 77,
            publish_time: 1_700_000_000_000_000_000,
            len,
        }
    }

    #[test]
    fn headers_read_back_and_others_are_refused() {
        let h = header(9);
        let bytes = h.encode();
        assert_eq!(Header::decode(&bytes), Some(h));
        assert_eq!(Header::decode(&bytes[..HEADER_LEN - 1]), None);
        let mut other = bytes;
        other[4] = VERSION + 1;
        assert_eq!(Header::decode(&other), None);
        other = bytes;
        other[0] = b'X';
        assert_eq!(Header::decode(&other), None);
    }

    /// `bytes` as a Zenoh payload in pieces cut at `cuts`.
    fn pieces(bytes: &[u8], cuts: &[usize]) -> zenoh::bytes::ZBytes {
        let mut w = zenoh::bytes::ZBytes::writer();
        let mut from = 0;
        for &c in cuts.iter().chain(std::iter::once(&bytes.len())) {
            w.append(zenoh::bytes::ZBytes::from(bytes[from..c].to_vec()));
            from = c;
        }
        w.finish()
    }

    #[test]
    fn records_read_back_across_pieces_and_a_cut_one_ends_them() {
        let mut payload = Vec::new();
        append(&mut payload, &header(3), b"abc");
        append(&mut payload, &header(0), b"");
        append(&mut payload, &header(5), b"defgh");
        for cuts in [vec![], vec![1, 70, 71, 140], vec![64, 67, 131]] {
            let z = pieces(&payload, &cuts);
            let got: Vec<_> = records(&z).collect();
            assert_eq!(got.len(), 3, "{cuts:?}");
            let bodies: Vec<Vec<u8>> = got
                .iter()
                .map(|r| {
                    let (_, body) = r.clone().unwrap();
                    let mut v = Vec::new();
                    each_slice(&z, body, |s| v.extend_from_slice(s));
                    v
                })
                .collect();
            assert_eq!(
                bodies,
                [b"abc".to_vec(), vec![], b"defgh".to_vec()],
                "{cuts:?}"
            );
        }
        // A record whose length passes the payload's end, and a header cut short.
        let z = pieces(&payload[..payload.len() - 1], &[]);
        let got: Vec<_> = records(&z).collect();
        assert_eq!((got.len(), got[2].is_none()), (3, true));
        let z = pieces(&payload[..HEADER_LEN + 3 + 10], &[]);
        let got: Vec<_> = records(&z).collect();
        assert_eq!((got.len(), got[1].is_none()), (2, true));
        // A length near u64::MAX does not wrap.
        let mut bad = Vec::new();
        append(&mut bad, &header(u64::MAX - 10), b"");
        let z = pieces(&bad, &[]);
        assert_eq!(records(&z).collect::<Vec<_>>(), [None]);
    }
}
