//! Loans: taking a chunk of a size class from the pool, and what a loan needs to know of
//! its chunk.

use super::{PubCore, PubState};
use crate::error::{Error, Result};
use crate::pool::classes;
use crate::service::Service;

impl PubCore {
    fn topic_err_pool_in(&self, st: &PubState) -> Error {
        Error::PoolExhausted {
            topic: self.service.topic().to_owned(),
            chunks: st.pool.total(),
        }
    }

    /// Takes a chunk of class `class` for a new sample: its index and first payload byte.
    #[inline(always)]
    pub(crate) fn loan(&self, class: usize) -> Result<(u32, *mut u8)> {
        let mut st = self.state.borrow_mut();
        let chunk = self.loan_in(&mut st, class)?;
        Ok((chunk, st.segs.payload(chunk)))
    }

    /// Takes a chunk of class `class` from its free list for a loan: the common case, inline.
    #[inline(always)]
    pub(super) fn loan_in(&self, st: &mut PubState, class: usize) -> Result<u32> {
        if st.loans < self.config.max_loans {
            if let Some(chunk) = st.pool.alloc(class, &st.segs) {
                st.loans += 1;
                st.class = class;
                return Ok(chunk);
            }
        }
        self.loan_slow(st, class)
    }

    /// `loan_in` when the loan limit is reached or the class's free list is empty.
    #[cold]
    #[inline(never)]
    fn loan_slow(&self, st: &mut PubState, class: usize) -> Result<u32> {
        if st.loans >= self.config.max_loans {
            return Err(Error::LoanLimit {
                topic: self.service.topic().to_owned(),
                max_loans: self.config.max_loans,
            });
        }
        // Returned chunks are taken back lazily: every so often after a publish (see
        // `publish`), so that return rings never fill up, and here when the free list runs
        // dry. A loan reads no peer's cache line.
        let chunk = match st.pool.alloc(class, &st.segs) {
            Some(c) => c,
            None => {
                self.refresh(st);
                self.collect(st);
                match st.pool.alloc(class, &st.segs) {
                    Some(c) => {
                        self.keep_headroom(st, class);
                        c
                    }
                    None => {
                        // Maybe a dead subscriber holds chunks: reclaim, then look again.
                        self.service.sweep_now(&self.last_sweep);
                        self.refresh(st);
                        match st.pool.alloc(class, &st.segs) {
                            Some(c) => c,
                            None => {
                                // The traffic needs more chunks of this class than it has.
                                match self.grow(st, class) {
                                    Ok(()) => st
                                        .pool
                                        .alloc(class, &st.segs)
                                        .ok_or_else(|| self.topic_err_pool_in(st))?,
                                    // At a limit: a free chunk of a larger class will do.
                                    Err(e) => (class + 1..st.segs.classes.len())
                                        .find_map(|c| st.pool.alloc(c, &st.segs))
                                        .ok_or(e)?,
                                }
                            }
                        }
                    }
                }
            }
        };
        st.loans += 1;
        st.class = class;
        Ok(chunk)
    }

    /// The class a chunk for `bytes` of payload comes from, or `Error::TailFull` (naming the
    /// tail past `size`) when no class holds that many.
    pub(crate) fn class_for(&self, bytes: usize, size: usize) -> Result<usize> {
        classes::class_for(&self.limits.caps, bytes).ok_or_else(|| Error::TailFull {
            topic: self.service.topic().to_owned(),
            requested: bytes.saturating_sub(size),
            available: self.payload_capacity().saturating_sub(size),
        })
    }

    /// The largest class (the one of `loan`: the whole tail).
    #[inline(always)]
    pub(crate) fn top_class(&self) -> usize {
        self.limits.caps.len() - 1
    }

    /// Number of subscribers currently connected (after reclaiming dead ones).
    pub(crate) fn subscriber_count(&self) -> usize {
        self.service.sweep_now(&self.last_sweep);
        let mut st = self.state.borrow_mut();
        self.refresh(&mut st);
        st.conns.len()
    }

    /// Number of subscribers connected, as the topic's slots say (no sweep for dead ones:
    /// cheap enough for every publish).
    pub(crate) fn connected(&self) -> usize {
        let mut st = self.state.borrow_mut();
        self.refresh(&mut st);
        st.conns.len()
    }

    /// The topic's service segment.
    pub(crate) fn service(&self) -> &Service {
        &self.service
    }

    /// The payload of loaned chunk `chunk`, and how many bytes it holds (the message and
    /// its tail).
    #[inline]
    pub(crate) fn payload(&self, chunk: u32) -> (*mut u8, usize) {
        let st = self.state.borrow();
        (st.segs.payload(chunk), st.segs.capacity(chunk))
    }

    /// Payload bytes of a chunk of the largest class (the message and its whole tail).
    pub(crate) fn payload_capacity(&self) -> usize {
        self.state.borrow().segs.classes[self.top_class()].capacity
    }

    /// The pool's chunks by state, after taking back what subscribers returned.
    pub(crate) fn pool_stats(&self) -> crate::PoolStats {
        let mut st = self.state.borrow_mut();
        self.refresh(&mut st);
        self.collect(&mut st);
        st.pool.stats()
    }

    /// A loaned sample is dropped without being published.
    pub(crate) fn cancel(&self, chunk: u32) {
        let mut st = self.state.borrow_mut();
        st.loans -= 1;
        st.pool.end_loan(chunk);
    }
}
