//! Waiting without the GIL: a blocked receive lets other Python threads run, and wakes at
//! least every [`SLICE`] to run Python's signal handlers, so Ctrl-C interrupts it.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use std::time::{Duration, Instant};

/// The longest a wait goes without looking at Python's signals.
const SLICE: Duration = Duration::from_millis(50);

/// A value carried into [`Python::allow_threads`] and back, on one thread.
pub(crate) struct OnThisThread<T>(pub T);

// SAFETY: `allow_threads` runs its closure synchronously on the calling thread and hands its
// result back on that thread: an `OnThisThread` is made, used and dropped on the thread that
// made it, so what it wraps (a `!Sync` endpoint borrowed by the closure, a sample borrowed
// from it) is never touched by another thread. The endpoints themselves are `unsendable`
// Python classes, which PyO3 lets no other thread use meanwhile.
unsafe impl<T> Send for OnThisThread<T> {}

/// A timeout in seconds from Python (`None`: wait forever).
pub(crate) fn timeout(seconds: Option<f64>) -> PyResult<Option<Duration>> {
    match seconds {
        None => Ok(None),
        Some(s) if s.is_nan() || s < 0.0 => Err(PyValueError::new_err(format!(
            "timeout must be None or a number of seconds >= 0, not {s}"
        ))),
        // Past what a Duration holds: forever.
        Some(s) => Ok(Duration::try_from_secs_f64(s).ok().or(Some(Duration::MAX))),
    }
}

/// Calls `wait(slice)` with the GIL released until it gives a value or `timeout` (`None`:
/// forever) has passed, in slices of at most [`SLICE`] between which Python's signal
/// handlers run (a `KeyboardInterrupt` they raise ends the wait with that error).
pub(crate) fn blocking<T>(
    py: Python<'_>,
    timeout: Option<Duration>,
    mut wait: impl FnMut(Duration) -> shmx::Result<Option<T>>,
) -> PyResult<Option<T>> {
    let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
    loop {
        let slice = match deadline {
            Some(d) => d.saturating_duration_since(Instant::now()).min(SLICE),
            None => SLICE,
        };
        let f = OnThisThread(&mut wait);
        // `let f = f`: the closure captures the whole wrapper (which is `Send`), not its field.
        let got = py
            .allow_threads(move || {
                let f = f;
                OnThisThread((f.0)(slice))
            })
            .0;
        if let Some(value) = got.map_err(crate::errors::to_py)? {
            return Ok(Some(value));
        }
        py.check_signals()?;
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Ok(None);
        }
    }
}
