//! Large samples go to Zenoh without a copy: their bytes in shared memory are lent to the
//! Zenoh message, and the sample is held (its chunk not reused by its publisher) until Zenoh
//! has let go of them.
//!
//! Zenoh copies a message's payload into its batches (or fragments) while `put` runs, and
//! drops the payload when it returns (the bridge's session has callback subscribers only,
//! which keep no sample). The egress still waits for the drop before it lets the sample go:
//! should Zenoh keep the bytes longer, the egress waits rather than let the publisher
//! overwrite bytes Zenoh reads, and stops lending.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use zenoh::bytes::ZBytes;

/// A sample's bytes lent to Zenoh; sets `back` when Zenoh drops the last reference.
struct Lent {
    ptr: *const u8,
    len: usize,
    back: Arc<AtomicBool>,
}

// SAFETY: `Lent` only reads, through a shared slice, bytes of a mapping that stays mapped
// while it lives (see `Loan::payload`); reading them from any thread is as sound as from
// the egress's.
unsafe impl Send for Lent {}

impl AsRef<[u8]> for Lent {
    fn as_ref(&self) -> &[u8] {
        // SAFETY: `ptr..ptr + len` is the bytes of a sample that `Loan::payload`'s caller
        // holds, in its subscriber's mapping, until `back` is set, which is after this
        // `Lent` is dropped (so after every use of the slice).
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }
}

impl Drop for Lent {
    fn drop(&mut self) {
        self.back.store(true, Ordering::Release);
    }
}

/// A loan of `bytes` to one Zenoh message: [`payload`](Self::payload) gives the message,
/// [`wait`](Self::wait) returns once Zenoh let go of the bytes.
pub(crate) struct Loan {
    back: Arc<AtomicBool>,
}

impl Loan {
    /// A payload of `head` (copied) followed by `bytes` (lent, not copied).
    ///
    /// # Safety
    /// `bytes` must stay valid and unchanged until [`wait`](Self::wait) returned: the caller
    /// holds the sample they belong to (and its subscriber) until then.
    pub(crate) unsafe fn payload(head: &[u8], bytes: &[u8]) -> (Loan, ZBytes) {
        let back = Arc::new(AtomicBool::new(false));
        let lent = Lent {
            ptr: bytes.as_ptr(),
            len: bytes.len(),
            back: back.clone(),
        };
        let mut writer = ZBytes::writer();
        writer.append(ZBytes::from(head.to_vec()));
        writer.append(ZBytes::from(bytes::Bytes::from_owner(lent)));
        (Loan { back }, writer.finish())
    }

    /// Waits until Zenoh let go of the bytes (at once, after `put` returned, unless Zenoh
    /// keeps payloads); `Err` if that took longer than [`HELD_TOO_LONG`] (it has returned
    /// anyway).
    pub(crate) fn wait(self) -> Result<(), Duration> {
        let start = Instant::now();
        self.until_back();
        let took = start.elapsed();
        if took > HELD_TOO_LONG {
            return Err(took);
        }
        Ok(())
    }

    /// Returns once Zenoh let go of the bytes, however long that takes: the sample must not
    /// go before (a publisher would write where Zenoh reads).
    fn until_back(&self) {
        let mut spins = 0u32;
        while !self.back.load(Ordering::Acquire) {
            if spins < 1000 {
                spins += 1;
                std::thread::yield_now();
            } else {
                std::thread::sleep(Duration::from_micros(100));
            }
        }
    }
}

impl Drop for Loan {
    /// A loan dropped without [`wait`](Loan::wait) (a `put` that unwound) waits all the
    /// same, so that the sample it covers is not let go early.
    fn drop(&mut self) {
        self.until_back();
    }
}

/// How long Zenoh may keep a lent payload after `put` before the bridge stops lending.
pub(crate) const HELD_TOO_LONG: Duration = Duration::from_millis(100);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_payload_is_the_head_then_the_bytes_and_the_loan_ends_when_it_drops() {
        let bytes: Vec<u8> = (0..100_000u32).map(|i| i as u8).collect();
        // SAFETY: `bytes` outlives the wait below.
        let (loan, payload) = unsafe { Loan::payload(b"head", &bytes) };
        let whole = payload.to_bytes();
        assert_eq!(&whole[..4], b"head");
        assert_eq!(&whole[4..], &bytes[..]);
        // The bytes were lent, not copied: the payload's second slice is them.
        let slices: Vec<&[u8]> = payload.slices().collect();
        assert_eq!(slices.len(), 2);
        assert_eq!(slices[1].as_ptr(), bytes.as_ptr());
        let clone = payload.clone();
        drop(payload);
        assert!(
            !loan.back.load(Ordering::Acquire),
            "a clone still holds them"
        );
        let holder = std::thread::spawn(move || drop(clone));
        holder.join().unwrap();
        assert_eq!(loan.wait(), Ok(()));
    }
}
