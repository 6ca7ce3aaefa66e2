//! The publish/take hot path allocates nothing: a counting global allocator watches a
//! steady stream of loan / publish / take / drop after warm-up.

use shmx::{Overflow, Publisher, ShmMessage, Subscriber};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
}

// SAFETY: forwards to the system allocator unchanged; only counts calls made while the
// current thread has counting switched on.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.with(Cell::get) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.with(Cell::get) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn counted<R>(f: impl FnOnce() -> R) -> (R, u64) {
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    COUNTING.with(|c| c.set(true));
    let r = f();
    COUNTING.with(|c| c.set(false));
    (r, ALLOCATIONS.load(Ordering::Relaxed) - before)
}

#[derive(ShmMessage, Clone, Copy)]
#[repr(C)]
struct Tick {
    seq: u64,
    price: f64,
    flags: [u8; 8],
    valid: bool,
    _pad: [u8; 7],
}

#[test]
fn publish_take_send_many_and_drain_allocate_nothing_after_warm_up() {
    // The counter itself sees allocations.
    let (boxed, n) = counted(|| Box::new(7u64));
    assert!(n >= 1 && *boxed == 7);
    let dir = tempfile::tempdir().unwrap();
    // The last pool starts with one chunk and grows to the traffic during the warm-up.
    for (overflow, reserve) in [
        (Overflow::DropOldest, None),
        (Overflow::Block, None),
        (Overflow::Fail, None),
        (Overflow::DropOldest, Some(1)),
    ] {
        let topic = format!("{overflow:?}-{reserve:?}");
        let subs: Vec<_> = (0..2)
            .map(|_| {
                Subscriber::<Tick>::builder(&topic)
                    .root(dir.path())
                    .create()
                    .unwrap()
            })
            .collect();
        let builder = Publisher::<Tick>::builder(&topic)
            .overflow(overflow)
            .history(2)
            .root(dir.path());
        let publisher = match reserve {
            Some(n) => builder.reserve_chunks(n),
            None => builder,
        }
        .create()
        .unwrap();
        let round = |i: u64| {
            let mut s = publisher.loan().unwrap();
            s.seq = i;
            s.valid = true;
            s.publish().unwrap();
            publisher
                .loan_uninit()
                .unwrap()
                .write(Tick {
                    seq: i,
                    price: 1.0,
                    flags: [1; 8],
                    valid: false,
                    _pad: [0; 7],
                })
                .publish()
                .unwrap();
            for sub in &subs {
                let a = sub.take().unwrap().expect("first sample");
                let b = sub
                    .recv_timeout(Duration::from_secs(5))
                    .unwrap()
                    .expect("second");
                assert_eq!((a.seq, b.seq), (i, i));
            }
            // The batch calls too.
            let ticks = (0..4).map(|k| Tick {
                seq: i * 4 + k,
                price: 2.0,
                flags: [0; 8],
                valid: true,
                _pad: [0; 7],
            });
            assert_eq!(publisher.send_many(ticks).unwrap(), 4);
            for sub in &subs {
                let mut next = i * 4;
                let n = sub
                    .drain(usize::MAX, |t| {
                        assert_eq!(t.seq, next);
                        next += 1;
                    })
                    .unwrap();
                assert_eq!(n, 4);
            }
        };
        for i in 0..1_000 {
            round(i);
        }
        let ((), allocations) = counted(|| {
            for i in 1_000..21_000 {
                round(i);
            }
        });
        assert_eq!(allocations, 0, "{topic}: the hot path allocated");
        if reserve.is_some() {
            assert!(publisher.pool_classes()[0].segments > 1, "the pool grew");
        }
    }
}
