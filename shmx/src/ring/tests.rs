//! Unit tests and loom models of the rings (run the models with
//! `RUSTFLAGS="--cfg loom" cargo test -p shmx --release --lib ring`).

use super::*;

/// Heap storage for a ring, for unit and loom tests.
pub(crate) struct Storage {
    pub head: AtomicU64,
    pub tail: AtomicU64,
    pub seen: AtomicU64,
    pub slots: Box<[AtomicU64]>,
}

impl Storage {
    pub(crate) fn new(cap: usize) -> Self {
        Storage {
            head: AtomicU64::new(0),
            tail: AtomicU64::new(0),
            seen: AtomicU64::new(0),
            slots: (0..cap).map(|_| AtomicU64::new(0)).collect(),
        }
    }
    pub(crate) fn delivery(&self) -> DeliveryRing<'_> {
        DeliveryRing::new(&self.head, &self.tail, &self.seen, &self.slots)
    }
    pub(crate) fn returns(&self) -> ReturnRing<'_> {
        ReturnRing::new(&self.head, &self.tail, &self.slots)
    }
}

#[cfg(not(loom))]
mod unit {
    use super::*;

    #[test]
    fn delivery_ring_is_fifo_and_respects_depth() {
        let s = Storage::new(4);
        let r = s.delivery();
        let mut head = r.producer();
        assert_eq!(r.push(&mut head, 3, 10, false), Push::Pushed);
        assert_eq!(r.push(&mut head, 3, 11, false), Push::Pushed);
        assert_eq!(r.push(&mut head, 3, 12, false), Push::Pushed);
        assert_eq!(r.push(&mut head, 3, 13, false), Push::Full);
        assert_eq!(r.pop(), Some(10));
        assert_eq!(r.push(&mut head, 3, 13, false), Push::Pushed);
        assert_eq!(r.push(&mut head, 3, 14, true), Push::PushedAfterSteal(11));
        assert_eq!(
            (r.pop(), r.pop(), r.pop(), r.pop()),
            (Some(12), Some(13), Some(14), None)
        );
        assert!(r.is_empty());
    }

    #[test]
    fn delivery_ring_survives_index_wrap() {
        let s = Storage::new(2);
        s.head.store(u64::MAX - 1, Ordering::Relaxed);
        s.tail.store(u64::MAX - 1, Ordering::Relaxed);
        let r = s.delivery();
        let mut head = r.producer();
        for i in 0..10u64 {
            assert!(matches!(
                r.push(&mut head, 2, i, true),
                Push::Pushed | Push::PushedAfterSteal(_)
            ));
            assert_eq!(r.pop(), Some(i));
        }
    }

    #[test]
    fn return_ring_refuses_when_full_and_skips_corrupt_heads() {
        let s = Storage::new(2);
        let r = s.returns();
        let (mut head, mut tail) = (r.producer(), r.load_tail());
        assert!(r.push(&mut head, 1));
        assert!(r.push(&mut head, 2));
        assert!(!r.push(&mut head, 3));
        let mut got = vec![];
        assert!(r.drain(&mut tail, |e| got.push(e)));
        assert_eq!(got, vec![1, 2]);
        // A hostile producer claims 1000 entries in a ring of 2.
        s.head.store(tail + 1000, Ordering::Release);
        assert!(!r.drain(&mut tail, |_| panic!("corrupt entries must be skipped")));
        assert_eq!(tail, s.head.load(Ordering::Relaxed));
    }

    #[test]
    fn a_new_producer_starts_after_an_entry_its_dead_predecessor_left_unpublished() {
        let s = Storage::new(4);
        let r = s.delivery();
        let mut p = r.producer();
        assert_eq!(r.push(&mut p, 4, 1, false), Push::Pushed);
        // The producer dies after writing slot 1 but before publishing head = 2.
        s.slots[1].store(2 | r.lap(1), Ordering::Release);
        assert_eq!((r.pop(), r.pop(), r.pop()), (Some(1), Some(2), None));
        assert_eq!(s.head.load(Ordering::Relaxed), 1);
        let mut next = r.producer();
        assert_eq!(next.head, 2, "starts at the consumer's position");
        assert_eq!(r.push(&mut next, 4, 3, false), Push::Pushed);
        assert_eq!(r.pop(), Some(3), "the new producer's entries are seen");
    }

    #[test]
    fn consumers_never_take_an_entry_of_an_earlier_lap() {
        let s = Storage::new(4);
        let r = s.delivery();
        assert!(r.is_empty(), "a fresh (zeroed) ring is empty");
        let mut p = r.producer();
        for lap in 0..40u64 {
            for i in 0..4 {
                assert_eq!(r.push(&mut p, 4, lap * 4 + i, false), Push::Pushed);
            }
            for i in 0..4 {
                assert_eq!(r.pop(), Some(lap * 4 + i));
            }
            // Every slot still holds this lap's entry: none of them may be taken again.
            assert!(r.is_empty());
            assert_eq!(r.pop(), None);
        }
        assert_eq!(p.head, 160);
    }

    #[test]
    fn threads_never_lose_or_duplicate_entries() {
        use std::sync::Arc;
        let s = Arc::new(Storage::new(8));
        const N: u64 = 200_000;
        let consumer = {
            let s = Arc::clone(&s);
            std::thread::spawn(move || {
                let r = s.delivery();
                let mut got = Vec::new();
                loop {
                    match r.pop() {
                        Some(PAYLOAD_MASK) => return got,
                        Some(e) => got.push(e),
                        None => {
                            r.publish_seen();
                            std::hint::spin_loop();
                        }
                    }
                }
            })
        };
        let r = s.delivery();
        let mut head = r.producer();
        let mut stolen = Vec::new();
        for i in 0..N {
            if let Push::PushedAfterSteal(e) = r.push(&mut head, 8, i, true) {
                stolen.push(e);
            }
        }
        while r.push(&mut head, 8, PAYLOAD_MASK, false) == Push::Full {
            std::hint::spin_loop();
        }
        let got = consumer.join().unwrap();
        // Each entry is either taken or stolen, exactly once, and taken ones are in order.
        assert!(got.windows(2).all(|w| w[0] < w[1]));
        let mut all: Vec<u64> = got.iter().chain(stolen.iter()).copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..N).collect::<Vec<_>>());
    }
}

#[cfg(loom)]
mod model {
    use super::*;
    use loom::sync::Arc;

    /// A delivery ring of `cap` slots, and a consumer thread running `consume` on it.
    fn spawn_consumer<T: Send + 'static>(
        cap: usize,
        consume: fn(&DeliveryRing<'_>) -> T,
    ) -> (Arc<Storage>, loom::thread::JoinHandle<T>) {
        let s = Arc::new(Storage::new(cap));
        let c = {
            let s = Arc::clone(&s);
            loom::thread::spawn(move || consume(&s.delivery()))
        };
        (s, c)
    }

    /// Producer pushes 3 entries into a ring of 2 with drop-oldest while the consumer pops
    /// twice: every entry is taken or stolen exactly once, and taken ones are in order.
    #[test]
    fn drop_oldest_never_loses_or_duplicates() {
        loom::model(|| {
            let (s, c) = spawn_consumer(2, |r| {
                let mut got = vec![];
                for _ in 0..2 {
                    match r.pop() {
                        Some(e) => got.push(e),
                        None => r.publish_seen(),
                    }
                }
                r.publish_seen();
                got
            });
            let r = s.delivery();
            let mut head = r.producer();
            let mut stolen = vec![];
            for e in 0..3u64 {
                match r.push(&mut head, 2, e, true) {
                    Push::PushedAfterSteal(old) => stolen.push(old),
                    Push::Pushed => {}
                    Push::Full => unreachable!(),
                }
            }
            let mut got = c.join().unwrap();
            assert!(got.windows(2).all(|w| w[0] < w[1]), "{got:?}");
            while let Some(e) = r.pop() {
                got.push(e);
            }
            got.extend(stolen);
            got.sort_unstable();
            assert_eq!(got, vec![0, 1, 2]);
        });
    }

    /// Producer pushes 3 entries into a ring of 2 without stealing, finding room through
    /// `seen` or `tail`, while the consumer takes 3 and publishes `seen` whenever it finds
    /// the ring empty: it gets all three, in order, so a producer trusting `seen` never
    /// overwrites an entry not yet taken.
    #[test]
    fn room_from_seen_never_overwrites_an_entry() {
        loom::model(|| {
            let (s, c) = spawn_consumer(2, |r| {
                let mut got = vec![];
                while got.len() < 3 {
                    match r.pop_unshared() {
                        Some(e) => got.push(e),
                        None => {
                            r.publish_seen();
                            loom::thread::yield_now();
                        }
                    }
                }
                got
            });
            let r = s.delivery();
            let mut head = r.producer();
            for e in 0..3u64 {
                while r.push(&mut head, 2, e, false) == Push::Full {
                    loom::thread::yield_now();
                }
            }
            assert_eq!(c.join().unwrap(), vec![0, 1, 2]);
        });
    }

    /// Return ring: everything pushed is drained exactly once, in order.
    #[test]
    fn return_ring_is_exact() {
        loom::model(|| {
            let s = Arc::new(Storage::new(2));
            let p = {
                let s = Arc::clone(&s);
                loom::thread::spawn(move || {
                    let r = s.returns();
                    let mut head = r.producer();
                    let mut pushed = 0;
                    for e in 0..3u64 {
                        if r.push(&mut head, e) {
                            pushed += 1;
                        } else {
                            break;
                        }
                    }
                    pushed
                })
            };
            let r = s.returns();
            let mut tail = r.load_tail();
            let mut got = vec![];
            r.drain(&mut tail, |e| got.push(e));
            let pushed = p.join().unwrap();
            r.drain(&mut tail, |e| got.push(e));
            assert_eq!(got, (0..pushed).collect::<Vec<_>>());
        });
    }
}
