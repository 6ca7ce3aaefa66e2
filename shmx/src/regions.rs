//! The address ranges of the data segments this process has mapped.
//!
//! A relative pointer is checked when its sample is taken, but its bytes stay in memory that
//! the publisher can still write: a hostile publisher could rewrite an offset after the
//! check. So each read of a relative pointer also checks that its elements lie, aligned,
//! inside one mapped data segment; one that does not reads as empty. Whatever a peer writes,
//! no address computed from shared memory leaves memory that is mapped.

use std::sync::RwLock;

static REGIONS: RwLock<Vec<(usize, usize)>> = RwLock::new(Vec::new());

/// A registered range; unregistered when dropped (before its mapping goes).
#[derive(Debug)]
pub(crate) struct Region {
    start: usize,
    end: usize,
}

impl Region {
    /// Registers the `len` bytes at `ptr`, which stay mapped while the region lives.
    pub(crate) fn register(ptr: *const u8, len: usize) -> Region {
        let start = ptr as usize;
        let end = start.saturating_add(len);
        REGIONS
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push((start, end));
        Region { start, end }
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        let mut regions = REGIONS.write().unwrap_or_else(|e| e.into_inner());
        if let Some(i) = regions.iter().position(|&r| r == (self.start, self.end)) {
            regions.swap_remove(i);
        }
    }
}

/// Whether `[start, end)` lies inside one registered region.
#[inline]
pub(crate) fn contains(start: usize, end: usize) -> bool {
    REGIONS
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .any(|&(s, e)| s <= start && end <= e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_count_while_registered() {
        let buf = [0u8; 64];
        let base = buf.as_ptr() as usize;
        assert!(!contains(base, base + 8));
        let region = Region::register(buf.as_ptr(), 64);
        assert!(contains(base, base + 64));
        assert!(contains(base + 8, base + 16));
        assert!(!contains(base + 8, base + 65));
        drop(region);
        assert!(!contains(base, base + 8));
    }
}
