//! [`ThreadBound`]: a value that only the thread (and the process) that made it may use, as
//! Python objects that any thread may hold. shmx endpoints are `!Sync` (and their samples
//! borrow them): a Python thread other than the owner gets a `RuntimeError`, never a panic;
//! a value dropped on another thread is not dropped there (its owner parks it, see
//! `typed::Orphans`, or leaks it). A child made by `fork` is another process: everything it
//! inherited is foreign to it (it would otherwise give back the parent's chunks and remove
//! the parent's files), see [`forked`].

use pyo3::exceptions::PyRuntimeError;
use pyo3::PyResult;
use pyo3::Python;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::thread::ThreadId;

/// How many times this process is a `fork` child of the one that loaded the module.
static FORKS: AtomicU64 = AtomicU64::new(0);

/// Called in the child after `os.fork()` (registered with `os.register_at_fork`): every
/// value made before is foreign from now on.
#[pyo3::pyfunction]
pub(crate) fn forked() {
    FORKS.fetch_add(1, Ordering::Relaxed);
}

/// A value usable only on the thread, and in the process, that made it.
pub(crate) struct ThreadBound<T> {
    owner: ThreadId,
    fork: u64,
    /// `None` once dropped (see [`drop_here`](Self::drop_here)).
    value: Option<T>,
}

// SAFETY: the value is only ever reached through `get`/`into_inner`, which check that the
// calling thread (and process) is the one that made it, and dropped only there (`drop`
// leaks it otherwise) or by `drop_here`, whose caller vouches that nothing else can reach it:
// moving or sharing the wrapper between threads never lets another thread touch the value
// while the owner may.
unsafe impl<T> Send for ThreadBound<T> {}
// SAFETY: as for `Send`.
unsafe impl<T> Sync for ThreadBound<T> {}

impl<T> ThreadBound<T> {
    pub(crate) fn new(value: T) -> ThreadBound<T> {
        ThreadBound {
            owner: std::thread::current().id(),
            fork: FORKS.load(Ordering::Relaxed),
            value: Some(value),
        }
    }

    fn mine(&self) -> bool {
        std::thread::current().id() == self.owner && FORKS.load(Ordering::Relaxed) == self.fork
    }

    fn check(&self) -> PyResult<()> {
        if !self.mine() {
            return Err(PyRuntimeError::new_err(
                if FORKS.load(Ordering::Relaxed) != self.fork {
                    "this shmx endpoint, sample or loan belongs to the parent process: a forked \
                     child makes its own"
                } else {
                    "shmx endpoints, samples and loans belong to the thread that made them: use \
                     them there (or make one per thread)"
                },
            ));
        }
        if self.value.is_none() {
            return Err(PyRuntimeError::new_err("this shmx object is closed"));
        }
        Ok(())
    }

    /// The value, on the thread that made it.
    pub(crate) fn get(&self) -> PyResult<&T> {
        self.check()?;
        self.value
            .as_ref()
            .ok_or_else(|| PyRuntimeError::new_err("this shmx object is closed"))
    }

    /// The value, moved out, on the thread that made it; the wrapper back otherwise.
    pub(crate) fn into_inner(mut self) -> Result<T, (ThreadBound<T>, pyo3::PyErr)> {
        if let Err(e) = self.check() {
            return Err((self, e));
        }
        match self.value.take() {
            Some(v) => Ok(v),
            None => Err((self, PyRuntimeError::new_err("this shmx object is closed"))),
        }
    }

    /// Whether the calling thread is the owner, in the owner's process.
    pub(crate) fn is_mine(&self) -> bool {
        self.mine()
    }

    /// Drops the value on this thread, whichever it is (not in a forked child, where the
    /// value is the parent's: there it is leaked).
    ///
    /// # Safety
    /// Nothing else may reach the value now or later: the wrapper's owner is being freed and
    /// held the only reference (for an endpoint: no sample or loan borrows it any more).
    pub(crate) unsafe fn drop_here(&mut self) {
        if FORKS.load(Ordering::Relaxed) == self.fork {
            self.value = None;
        } else {
            std::mem::forget(self.value.take());
        }
    }
}

impl<T> Drop for ThreadBound<T> {
    fn drop(&mut self) {
        if !self.mine() {
            // Another thread or a forked child: never dropped here. (A sample's chunk stays
            // held until the process exits, where shmx's crash cleanup reclaims it; the
            // endpoints park their samples instead, see `typed::Orphans`.)
            std::mem::forget(self.value.take());
        }
    }
}

/// A core endpoint `E` that only its thread uses, with the samples or loans `B` that other
/// threads parked for it (see [`Orphans`]).
pub(crate) struct Endpoint<E, B> {
    /// Declared before `inner`: what is parked here borrows it.
    orphans: Orphans<B>,
    inner: ThreadBound<E>,
}

impl<E, B> Endpoint<E, B> {
    pub(crate) fn new(inner: E) -> Endpoint<E, B> {
        Endpoint {
            orphans: Orphans::new(),
            inner: ThreadBound::new(inner),
        }
    }

    /// The endpoint, on its thread (`RuntimeError` elsewhere), after giving back what
    /// other threads parked.
    pub(crate) fn get(&self) -> PyResult<&E> {
        let inner = self.inner.get()?;
        self.orphans.release();
        Ok(inner)
    }

    /// [`get`](Self::get), for a sample or loan that borrows the endpoint.
    ///
    /// # Safety
    /// `self` must stay at one address until it is dropped (it lives in a frozen pyclass:
    /// PyO3 never moves or mutably borrows those), and whatever holds the reference must
    /// hold a strong reference to that Python object and give the reference up (drop it, or
    /// [`park`](Self::park) it) before letting go of the object.
    pub(crate) unsafe fn get_static(&self) -> PyResult<&'static E> {
        let inner: *const E = self.get()?;
        // SAFETY: the caller's contract: the endpoint outlives every use of the reference.
        Ok(unsafe { &*inner })
    }

    /// Parks `value`, dropped on a thread other than its owner's.
    pub(crate) fn park(&self, value: ThreadBound<B>) {
        self.orphans.park(value);
    }
}

impl<E, B> Drop for Endpoint<E, B> {
    /// Drops the parked values and then the endpoint, on the thread that frees the Python
    /// object that holds them (whichever it is), with the GIL released: a core endpoint may
    /// wait for the root's lock as it leaves.
    fn drop(&mut self) {
        let parked = crate::wait::OnThisThread(self.orphans.take_all());
        let inner = crate::wait::OnThisThread(&mut self.inner);
        Python::with_gil(|py| {
            py.allow_threads(move || {
                let (parked, inner) = (parked, inner);
                for mut p in parked.0 {
                    // SAFETY: the Python object that owns this endpoint is being freed, and
                    // every sample or loan held a strong reference to it (`get_static`): none
                    // is left, nothing else reaches the parked values, and the endpoint they
                    // borrow is still alive (dropped next).
                    unsafe { p.drop_here() };
                }
                // SAFETY: as above; nothing borrows the endpoint any more.
                unsafe { inner.0.drop_here() };
            })
        });
    }
}

/// Samples or loans whose last reference went on another thread, waiting for the owner
/// thread to give them back (see `Endpoint`).
pub(crate) struct Orphans<T> {
    any: AtomicBool,
    parked: Mutex<Vec<ThreadBound<T>>>,
}

impl<T> Orphans<T> {
    pub(crate) fn new() -> Orphans<T> {
        Orphans {
            any: AtomicBool::new(false),
            parked: Mutex::new(Vec::new()),
        }
    }

    /// Parks `value` (from a thread other than its owner).
    pub(crate) fn park(&self, value: ThreadBound<T>) {
        let mut parked = self.parked.lock().unwrap_or_else(|e| e.into_inner());
        parked.push(value);
        self.any.store(true, Ordering::Release);
    }

    /// On the owner thread: drops what was parked.
    #[inline]
    pub(crate) fn release(&self) {
        if self.any.load(Ordering::Acquire) {
            self.release_slow();
        }
    }

    /// Everything parked, taken out (for the endpoint's own drop).
    pub(crate) fn take_all(&self) -> Vec<ThreadBound<T>> {
        let mut parked = self.parked.lock().unwrap_or_else(|e| e.into_inner());
        self.any.store(false, Ordering::Relaxed);
        std::mem::take(&mut *parked)
    }

    #[cold]
    fn release_slow(&self) {
        let taken = {
            let mut parked = self.parked.lock().unwrap_or_else(|e| e.into_inner());
            self.any.store(false, Ordering::Relaxed);
            std::mem::take(&mut *parked)
        };
        // Dropped on this (the owner) thread: each is given back.
        drop(taken);
    }
}
