//! The bytes of a service segment: header, slots, connections, and the arithmetic that places
//! them. See the module doc of `service` for the picture.

use crate::message::MAX_TYPE_NAME_LEN;
use crate::segment;
use crate::sync::{AtomicU32, AtomicU64};

pub(crate) const SERVICE_MAGIC: u64 = u64::from_le_bytes(*b"SHMXSVC\0");
/// Layout version of every segment this library writes.
pub const LAYOUT_VERSION: u32 = 8;
pub(crate) const SHARED_OFF: usize = 512;
pub(crate) const LINE: usize = 64;
/// `ServiceParams::flags`: samples carry a tail after the message.
pub(crate) const HAS_TAIL: u64 = 1;

/// Longest schema text a topic may store (and a reader will look at): far more than any
/// message type needs, and little enough that a tool reading a hostile header stays small.
pub(crate) const MAX_SCHEMA_LEN: usize = 64 * 1024;

/// Slot states (low two bits of a slot's state word).
pub(crate) const FREE: u64 = 0;
pub(crate) const CLAIMING: u64 = 1;
pub(crate) const ACTIVE: u64 = 2;
pub(crate) const DRAINING: u64 = 3;

pub(crate) fn state_of(word: u64) -> u64 {
    word & 3
}
pub(crate) fn incarnation_of(word: u64) -> u64 {
    word >> 2
}
pub(crate) fn state_word(incarnation: u64, state: u64) -> u64 {
    (incarnation << 2) | state
}

/// Immutable facts about a topic, at offset 0.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub(crate) struct ServiceParams {
    pub magic: u64,
    pub version: u32,
    pub mode: u32,
    pub total_len: u64,
    pub fingerprint: u64,
    pub type_size: u64,
    pub type_align: u64,
    /// The alignment of a sample's first byte in every data segment: `type_align`, or more
    /// when tail elements need it (`Schema::sample_align`).
    pub sample_align: u64,
    /// [`HAS_TAIL`] when samples carry a tail after the message (relative pointers, or an
    /// rkyv archive); no other bit is used.
    pub flags: u64,
    /// The schema text lies at `schema_off`, the type's whole name right after it.
    pub schema_off: u64,
    pub schema_len: u64,
    pub type_name_len: u64,
    pub max_publishers: u32,
    pub max_subscribers: u32,
    pub ring_capacity: u32,
    pub return_capacity: u32,
    pub max_held: u32,
    pub max_history: u32,
    pub pub_off: u64,
    pub pub_stride: u64,
    pub sub_off: u64,
    pub sub_stride: u64,
    pub conn_off: u64,
    pub conn_stride: u64,
}

static_assertions::const_assert!(core::mem::size_of::<ServiceParams>() <= SHARED_OFF);

/// Words every participant updates, at offset 512.
#[repr(C)]
pub(crate) struct ServiceShared {
    /// Bumped on every change of any slot.
    pub generation: AtomicU64,
    /// Source of incarnation numbers.
    pub next_incarnation: AtomicU64,
    /// Moved (and woken, as a futex word) after every bump of `generation`: what
    /// `Publisher::wait_for_subscribers` sleeps on.
    pub changed: AtomicU32,
}

/// A publisher's slot.
#[repr(C, align(64))]
pub(crate) struct PubSlot {
    pub state: AtomicU64,
    /// Node (see `node`) of the owning process.
    pub node: AtomicU64,
    pub pid: AtomicU64,
    pub chunk_count: AtomicU64,
    pub history_depth: AtomicU64,
    pub queue_depth: AtomicU64,
    pub overflow: AtomicU64,
    /// Subscribers (bit per slot) that must drain this publisher's queue before its data
    /// segment may go, while DRAINING.
    pub drain_mask: AtomicU64,
    /// Samples published so far (for tools).
    pub published: AtomicU64,
    /// Chunks not free (loaned, queued, held, history), as of the last publish (for tools).
    pub chunks_in_use: AtomicU64,
    /// Number of history entries ever written; entry `i` is at `history[i % max_history]`.
    pub hist_head: AtomicU64,
    /// The id its samples carry (`Sample::publisher_id`), written before the slot turns
    /// ACTIVE: random for a publisher of this machine, another machine's publisher's id for
    /// a bridge's relay (`RawPublisher::open_relay`). 0 in a slot written by a version
    /// before it: subscribers then use the incarnation.
    pub id: AtomicU64,
    // followed by max_history × [chunk index, sequence] pairs of AtomicU64
}

// The id took a word of the padding: slots and strides are as they were.
static_assertions::const_assert_eq!(core::mem::size_of::<PubSlot>(), 128);

/// A subscriber's slot.
#[repr(C, align(64))]
pub(crate) struct SubSlot {
    pub state: AtomicU64,
    /// Node (see `node`) of the owning process.
    pub node: AtomicU64,
    pub pid: AtomicU64,
    pub queue_depth: AtomicU64,
    /// 1 if this subscriber forces a barrier on publishers' cores before it sleeps.
    pub forces_barrier: AtomicU64,
    /// 1 if this subscriber asks publishers to stamp each sample with its publish time
    /// (the chunk's tag word, see `data::ChunkHeader::tag`); set at any time, followed by a
    /// bump of the generation. A slot of a subscriber that never asks keeps the 0 of a
    /// freshly claimed slot. Only a hint: a publisher that stamps costs one clock read.
    pub wants_stamps: AtomicU64,
    /// The futex word publishers bump to wake this subscriber.
    pub wake: AtomicU32,
    /// 1 while the subscriber sleeps (or is about to) on `wake`.
    pub sleeping: AtomicU32,
}

/// Everything about a topic's layout that a participant needs, derived from `ServiceParams`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Layout {
    pub max_publishers: usize,
    pub max_subscribers: usize,
    pub ring_capacity: usize,
    pub return_capacity: usize,
    pub max_held: usize,
    pub max_history: usize,
    pub pub_off: usize,
    pub pub_stride: usize,
    pub sub_off: usize,
    pub sub_stride: usize,
    pub conn_off: usize,
    pub conn_stride: usize,
    pub total_len: usize,
}

/// Bytes of a return ring: a line for `head`, one for `tail`, then the slots.
fn ring_bytes(capacity: usize) -> Option<usize> {
    capacity.checked_mul(8)?.checked_add(2 * LINE)
}

/// Bytes of a delivery ring, a whole number of lines: `head`, `tail` and `seen` each on a
/// line of their own, then the slots.
pub(crate) fn delivery_ring_bytes(capacity: usize) -> Option<usize> {
    segment::round_up(capacity.checked_mul(8)?.checked_add(3 * LINE)?, LINE)
}

impl Layout {
    /// Computes a layout; `None` on arithmetic overflow.
    pub(crate) fn compute(
        max_publishers: usize,
        max_subscribers: usize,
        ring_capacity: usize,
        return_capacity: usize,
        max_held: usize,
        max_history: usize,
        schema_end: usize,
    ) -> Option<Layout> {
        let pub_stride = segment::round_up(
            core::mem::size_of::<PubSlot>().checked_add(max_history.checked_mul(16)?)?,
            LINE,
        )?;
        let sub_stride = segment::round_up(core::mem::size_of::<SubSlot>(), LINE)?;
        let conn_stride = segment::round_up(
            delivery_ring_bytes(ring_capacity)?
                .checked_add(segment::round_up(ring_bytes(return_capacity)?, LINE)?)?,
            LINE,
        )?;
        let pub_off = segment::round_up(schema_end, LINE)?;
        let sub_off = pub_off.checked_add(pub_stride.checked_mul(max_publishers)?)?;
        let conn_off = sub_off.checked_add(sub_stride.checked_mul(max_subscribers)?)?;
        let conns = max_publishers.checked_mul(max_subscribers)?;
        let total_len = conn_off.checked_add(conn_stride.checked_mul(conns)?)?;
        Some(Layout {
            max_publishers,
            max_subscribers,
            ring_capacity,
            return_capacity,
            max_held,
            max_history,
            pub_off,
            pub_stride,
            sub_off,
            sub_stride,
            conn_off,
            conn_stride,
            total_len,
        })
    }
}

impl ServiceParams {
    /// Checks every number in the header against each other and the file length, and
    /// returns the layout they describe.
    pub(crate) fn layout(&self, file_len: u64) -> std::result::Result<Layout, String> {
        let p = self;
        let pow2 = |v: u32, what: &str| {
            if v == 0 || !v.is_power_of_two() || v > 1 << 20 {
                Err(format!("{what} {v} is not a power of two in 1..=2^20"))
            } else {
                Ok(v as usize)
            }
        };
        let ring_capacity = pow2(p.ring_capacity, "ring capacity")?;
        let return_capacity = pow2(p.return_capacity, "return ring capacity")?;
        if !(1..=64).contains(&p.max_publishers) || !(1..=64).contains(&p.max_subscribers) {
            return Err("publisher or subscriber table size out of range".into());
        }
        if p.max_held == 0 || p.max_held > 4096 || p.max_history > 4096 {
            return Err("held or history limit out of range".into());
        }
        if p.schema_len > MAX_SCHEMA_LEN as u64 {
            return Err(format!(
                "schema text of {} bytes, over the limit of {MAX_SCHEMA_LEN}",
                p.schema_len
            ));
        }
        if p.flags & !HAS_TAIL != 0 {
            return Err(format!("unknown flags {:#x}", p.flags));
        }
        if p.type_name_len > MAX_TYPE_NAME_LEN as u64 {
            return Err(format!(
                "type name of {} bytes, over the limit of {MAX_TYPE_NAME_LEN}",
                p.type_name_len
            ));
        }
        let align_ok = |a: u64| a.is_power_of_two() && a <= segment::page_size() as u64;
        if !align_ok(p.type_align) || !align_ok(p.sample_align) || p.sample_align < p.type_align {
            return Err(format!(
                "alignments {} (type) and {} (sample) are not powers of two up to a page, the \
                 sample's at least the type's",
                p.type_align, p.sample_align
            ));
        }
        let schema_end = p
            .schema_off
            .checked_add(p.schema_len)
            .and_then(|e| e.checked_add(p.type_name_len))
            .filter(|&e| p.schema_off >= SHARED_OFF as u64 && e <= file_len)
            .ok_or("schema text or type name lies outside the file")?;
        let layout = Layout::compute(
            p.max_publishers as usize,
            p.max_subscribers as usize,
            ring_capacity,
            return_capacity,
            p.max_held as usize,
            p.max_history as usize,
            schema_end as usize,
        )
        .ok_or("layout overflows")?;
        let same = layout.pub_off as u64 == p.pub_off
            && layout.pub_stride as u64 == p.pub_stride
            && layout.sub_off as u64 == p.sub_off
            && layout.sub_stride as u64 == p.sub_stride
            && layout.conn_off as u64 == p.conn_off
            && layout.conn_stride as u64 == p.conn_stride
            && layout.total_len as u64 == p.total_len;
        if !same {
            return Err("the offsets in the header do not match its limits".into());
        }
        if p.total_len != file_len {
            return Err(format!(
                "file is {file_len} bytes, its header says {}",
                p.total_len
            ));
        }
        Ok(layout)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slot_words_pack_state_and_incarnation() {
        let w = state_word(12345, DRAINING);
        assert_eq!((incarnation_of(w), state_of(w)), (12345, DRAINING));
        assert_eq!(state_word(0, FREE), FREE);
    }

    /// A header whose numbers agree with each other, for a schema of `schema_len` bytes.
    fn params_with_schema(schema_len: usize) -> ServiceParams {
        let schema_off = SHARED_OFF + core::mem::size_of::<ServiceShared>();
        let l = Layout::compute(8, 8, 256, 512, 8, 64, schema_off + schema_len).unwrap();
        ServiceParams {
            magic: SERVICE_MAGIC,
            version: LAYOUT_VERSION,
            mode: 0o600,
            total_len: l.total_len as u64,
            fingerprint: 1,
            type_size: 8,
            type_align: 8,
            sample_align: 8,
            flags: 0,
            schema_off: schema_off as u64,
            schema_len: schema_len as u64,
            type_name_len: 0,
            max_publishers: 8,
            max_subscribers: 8,
            ring_capacity: 256,
            return_capacity: 512,
            max_held: 8,
            max_history: 64,
            pub_off: l.pub_off as u64,
            pub_stride: l.pub_stride as u64,
            sub_off: l.sub_off as u64,
            sub_stride: l.sub_stride as u64,
            conn_off: l.conn_off as u64,
            conn_stride: l.conn_stride as u64,
        }
    }

    #[test]
    fn a_schema_longer_than_the_limit_is_refused_however_consistent_the_header() {
        let ok = params_with_schema(MAX_SCHEMA_LEN);
        assert!(ok.layout(ok.total_len).is_ok());
        // A sparse 500 MB file whose header agrees with itself: refused before anything
        // reads the text.
        let huge = params_with_schema(500 << 20);
        let e = huge.layout(huge.total_len).unwrap_err();
        assert!(e.contains("schema text of 524288000 bytes"), "{e}");
    }

    #[test]
    fn layouts_keep_rings_aligned_and_inside() {
        let l = Layout::compute(8, 8, 256, 512, 8, 64, 700).unwrap();
        assert_eq!(l.pub_off % 64, 0);
        assert_eq!(l.conn_stride % 64, 0);
        assert!(l.conn_off + 64 * l.conn_stride == l.total_len);
    }
}
