//! Size classes: the chunk sizes of a publisher's pool.
//!
//! A message type without relative pointers has one class: its size. A type with a tail of
//! up to `max_tail_bytes` has several, so that a small sample does not take a chunk sized for
//! the largest: by default powers of two of the payload from 64 bytes (or the message's size)
//! up to the message plus its whole tail; or the tails the user lists
//! ([`PoolClasses`](crate::PoolClasses)), each under `max_tail_bytes`, plus the whole tail.
//! A loan takes the smallest class that holds what it asks for.

use crate::config::PoolClasses;
use crate::data::{Geometry, MAX_CLASSES};

/// The payload capacity of each class, smallest first: at least `size`, the last exactly
/// what `size + max_tail` rounds up to. `None` if a class cannot be laid out (too large).
pub(crate) fn capacities(
    size: usize,
    align: usize,
    max_tail: usize,
    classes: &PoolClasses,
) -> Option<Vec<usize>> {
    let top = size.checked_add(max_tail)?;
    let mut wanted = Vec::new();
    if max_tail > 0 {
        match classes.tails() {
            Some(tails) => wanted.extend(tails.iter().filter(|&&t| t < max_tail).map(|t| size + t)),
            None => {
                let mut c = size.max(64).checked_next_power_of_two()?;
                while c < top {
                    wanted.push(c);
                    c = c.checked_mul(2)?;
                }
            }
        }
    }
    wanted.sort_unstable();
    wanted.push(top);
    // What a chunk of each really holds (its stride rounds it up), in order, without repeats.
    let mut caps = Vec::with_capacity(wanted.len());
    for w in wanted {
        let cap = Geometry::new(1, w, align)?.payload_capacity;
        if caps.last().is_none_or(|&last| cap > last) {
            caps.push(cap);
        }
    }
    // Too many: keep the largest ones (the top class must stay).
    if caps.len() > MAX_CLASSES {
        caps.drain(..caps.len() - MAX_CLASSES);
    }
    Some(caps)
}

/// The smallest class of `caps` that holds `bytes` of payload.
#[inline]
pub(crate) fn class_for(caps: &[usize], bytes: usize) -> Option<usize> {
    caps.iter().position(|&c| c >= bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_types_have_one_class() {
        let caps = capacities(8, 8, 0, &PoolClasses::powers_of_two()).unwrap();
        assert_eq!(caps.len(), 1);
        assert!(caps[0] >= 8);
    }

    #[test]
    fn powers_of_two_reach_the_whole_tail() {
        let frame = 1920 * 1080 * 3;
        let caps = capacities(16, 8, frame, &PoolClasses::powers_of_two()).unwrap();
        assert!(caps.windows(2).all(|w| w[0] < w[1]));
        assert!(caps[0] >= 64 && caps[0] < 128);
        assert!(*caps.last().unwrap() >= 16 + frame);
        assert!(caps[caps.len() - 2] < 16 + frame);
        assert_eq!(class_for(&caps, 100), Some(1));
        assert_eq!(class_for(&caps, 16 + frame), Some(caps.len() - 1));
        assert_eq!(class_for(&caps, 17 + frame + 4096), None);
    }

    #[test]
    fn listed_tails_are_kept_below_the_whole_tail() {
        let classes = PoolClasses::list(&[1 << 20, 1000, 64 << 20]).unwrap();
        let caps = capacities(24, 8, 4 << 20, &classes).unwrap();
        assert_eq!(caps.len(), 3, "{caps:?}");
        assert!(caps[0] >= 1024 && caps[1] >= (1 << 20) + 24 && caps[2] >= (4 << 20) + 24);
    }

    #[test]
    fn huge_tails_keep_the_largest_classes() {
        let caps = capacities(8, 8, 1 << 60, &PoolClasses::powers_of_two());
        // Too large to lay out at all: refused, not wrapped.
        assert!(caps.is_none() || caps.unwrap().len() <= MAX_CLASSES);
    }
}
