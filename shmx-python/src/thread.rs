//! [`ThreadBound`]: a value that only the thread that made it may use, as Python objects
//! that any thread may hold. shmx endpoints are `!Sync` (and their samples borrow them): a
//! Python thread other than the owner gets a `RuntimeError`, never a panic; a value dropped
//! on another thread is leaked rather than dropped there.

use pyo3::exceptions::PyRuntimeError;
use pyo3::PyResult;
use std::mem::ManuallyDrop;
use std::thread::ThreadId;

/// A value usable only on the thread that made it.
pub(crate) struct ThreadBound<T> {
    owner: ThreadId,
    value: ManuallyDrop<T>,
}

// SAFETY: the value is only ever reached through `get`/`get_mut`, which check that the
// calling thread is the one that made it, and dropped only on that thread (`drop` leaks it
// otherwise): moving or sharing the wrapper between threads never lets another thread touch
// the value.
unsafe impl<T> Send for ThreadBound<T> {}
// SAFETY: as for `Send`.
unsafe impl<T> Sync for ThreadBound<T> {}

impl<T> ThreadBound<T> {
    pub(crate) fn new(value: T) -> ThreadBound<T> {
        ThreadBound {
            owner: std::thread::current().id(),
            value: ManuallyDrop::new(value),
        }
    }

    fn check(&self) -> PyResult<()> {
        if std::thread::current().id() == self.owner {
            Ok(())
        } else {
            Err(PyRuntimeError::new_err(
                "shmx endpoints, samples and loans belong to the thread that made them: use \
                 them there (or make one per thread)",
            ))
        }
    }

    /// The value, on the thread that made it.
    pub(crate) fn get(&self) -> PyResult<&T> {
        self.check()?;
        Ok(&self.value)
    }
}

impl<T> ThreadBound<T> {
    /// The value, moved out, on the thread that made it; the wrapper back otherwise.
    pub(crate) fn into_inner(self) -> Result<T, (ThreadBound<T>, pyo3::PyErr)> {
        if let Err(e) = self.check() {
            return Err((self, e));
        }
        let mut this = ManuallyDrop::new(self);
        // SAFETY: on the owner thread (checked); `this` is never dropped, so the value is
        // taken out exactly once.
        Ok(unsafe { ManuallyDrop::take(&mut this.value) })
    }
}

impl<T> Drop for ThreadBound<T> {
    fn drop(&mut self) {
        if std::thread::current().id() == self.owner {
            // SAFETY: dropped once, here, on the thread that owns the value.
            unsafe { ManuallyDrop::drop(&mut self.value) };
        }
        // On another thread the value is leaked: a sample's chunk stays held (and a
        // subscriber's slot taken) until the process exits, where shmx's crash cleanup
        // reclaims them, instead of racing with the owner thread.
    }
}
