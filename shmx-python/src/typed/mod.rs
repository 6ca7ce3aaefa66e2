//! Endpoints of any message type, by its schema text: `RawSubscriber` (a topic's type
//! adopted, or given as schema text) whose `Sample`s Python reads in place, and
//! `RawPublisher` whose `Loan`s Python writes in place. The Python part of the package
//! (`shmx/_endpoints.py`, `shmx/_types.py`) gives them their Python shape.
//!
//! Lifetimes: a `Sample` or `Loan` holds a strong reference to its endpoint's Python object,
//! so the endpoint (and the memory it maps) lives while any sample, loan or numpy view of one
//! does (numpy arrays made through `__array_interface__` keep the sample as their base).
//!
//! Threads: the Rust endpoints are `!Sync`, so they sit in a [`ThreadBound`]: only the
//! thread that made an endpoint uses it; others get a `RuntimeError`. A sample or loan whose
//! last reference goes on another thread (a numpy view handed to a worker) is parked in its
//! endpoint's [`Orphans`] and given back by the owner thread's next call.

mod publisher;
mod subscriber;

pub(crate) use publisher::{Loan, RawPublisher};
pub(crate) use subscriber::{RawSubscriber, Sample};

use crate::fields::Fields;
use crate::thread::ThreadBound;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use shmx::message::Primitive;
use shmx::schema_text::{MessageType, Ty};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

/// The message type of a topic, as an endpoint and its samples need it.
pub(crate) struct Shape {
    pub fields: Fields,
    /// Bytes in a message (without its tail).
    pub size: usize,
    pub schema: String,
    pub topic: String,
}

impl Shape {
    pub(crate) fn of(schema: &str, topic: &str, size: usize) -> Shape {
        let fields = match MessageType::parse(schema) {
            Ok(t) => Fields::of(t.ty()),
            // Archived rkyv topics: bytes only.
            Err(_) => Fields::of(&Ty::Array {
                elem: Box::new(Ty::Primitive(Primitive::U8)),
                len: 0,
            }),
        };
        Shape {
            fields,
            size,
            schema: schema.to_owned(),
            topic: topic.to_owned(),
        }
    }
}

/// The type that schema text `schema` names, if given.
pub(crate) fn message_type(schema: Option<&str>) -> PyResult<Option<MessageType>> {
    schema
        .map(MessageType::parse)
        .transpose()
        .map_err(crate::errors::to_py)
}

/// `__array_interface__` of `len` bytes at `addr`.
pub(crate) fn array_interface(
    py: Python<'_>,
    addr: usize,
    len: usize,
    readonly: bool,
) -> PyResult<Bound<'_, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("version", 3)?;
    d.set_item("shape", (len,))?;
    d.set_item("typestr", "|u1")?;
    d.set_item("data", (addr, readonly))?;
    Ok(d)
}

/// Drops an endpoint's parked samples or loans and then the endpoint itself, on the thread
/// that frees its Python object (whichever it is), with the GIL released: a core endpoint
/// may wait for the root's lock as it leaves.
///
/// # Safety
/// The endpoint's Python object is being freed: no sample or loan holds it any more (each
/// holds a strong reference), so nothing but `orphans` borrows `inner`, and nothing else
/// reaches either.
pub(crate) unsafe fn drop_endpoint<E, B>(orphans: &Orphans<B>, inner: &mut ThreadBound<E>) {
    let parked = crate::wait::OnThisThread(orphans.take_all());
    let inner = crate::wait::OnThisThread(inner);
    Python::with_gil(|py| {
        py.allow_threads(move || {
            let (parked, inner) = (parked, inner);
            for mut p in parked.0 {
                // SAFETY: the caller's contract: nothing else reaches the parked values,
                // and the endpoint they borrow is still alive (dropped next).
                unsafe { p.drop_here() };
            }
            // SAFETY: the caller's contract; nothing borrows the endpoint any more.
            unsafe { inner.0.drop_here() };
        })
    });
}

/// The primitive named `name`.
pub(crate) fn primitive(name: &str) -> PyResult<Primitive> {
    Primitive::from_name(name)
        .ok_or_else(|| pyo3::exceptions::PyValueError::new_err(format!("no primitive {name:?}")))
}

/// Samples or loans whose last reference went on another thread, waiting for the owner
/// thread to give them back (see the module's documentation).
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
