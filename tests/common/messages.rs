//! Message types that both test binaries publish: [`Counted`] (with a checksum) and an
//! unrelated second type, [`Alpha`], for topics of the same name in other roots.

use shmx::ShmMessage;

/// A message the tests can build from a counter and check for integrity.
pub trait TestMsg: ShmMessage + Copy + Unpin + std::fmt::Debug + PartialEq {
    fn make(counter: u64) -> Self;
    fn counter(&self) -> u64;
    /// Whether every field is what `make(self.counter())` writes.
    fn intact(&self) -> bool {
        *self == Self::make(self.counter())
    }
}

/// A counter, fields derived from it, and a checksum over all of them.
#[derive(ShmMessage, Clone, Copy, Debug, PartialEq)]
#[repr(C)]
pub struct Counted {
    pub counter: u64,
    a: u64,
    b: [u32; 4],
    c: f64,
    d: [u8; 8],
    checksum: u64,
}

impl Counted {
    /// FNV-1a over every field but `checksum`.
    fn compute_checksum(&self) -> u64 {
        let mut h = 0xcbf2_9ce4_8422_2325u64;
        let mut eat = |bytes: &[u8]| {
            for &b in bytes {
                h ^= u64::from(b);
                h = h.wrapping_mul(0x0100_0000_01b3);
            }
        };
        eat(&self.counter.to_le_bytes());
        eat(&self.a.to_le_bytes());
        for x in self.b {
            eat(&x.to_le_bytes());
        }
        eat(&self.c.to_bits().to_le_bytes());
        eat(&self.d);
        h
    }
}

impl TestMsg for Counted {
    fn make(counter: u64) -> Self {
        let a = counter.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let mut m = Counted {
            counter,
            a,
            b: [0, 1, 2, 3].map(|i: u32| (a >> (8 * i)) as u32 ^ i),
            c: counter as f64 / 3.0,
            d: counter.swap_bytes().to_le_bytes(),
            checksum: 0,
        };
        m.checksum = m.compute_checksum();
        m
    }
    fn counter(&self) -> u64 {
        self.counter
    }
    fn intact(&self) -> bool {
        self.checksum == self.compute_checksum() && *self == Self::make(self.counter)
    }
}

/// A second, unrelated message type (for topics of the same name in other roots).
#[derive(ShmMessage, Clone, Copy, Debug, PartialEq)]
#[repr(C)]
pub struct Alpha {
    value: u32,
    flags: u16,
    _pad: [u8; 2],
    square: u64,
}

impl TestMsg for Alpha {
    fn make(counter: u64) -> Self {
        Alpha {
            value: counter as u32,
            flags: 0xa5a5,
            _pad: [0; 2],
            square: counter * counter,
        }
    }
    fn counter(&self) -> u64 {
        u64::from(self.value)
    }
}
