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
//! endpoint (see [`Endpoint`]) and given back by the owner thread's next call.

mod loan;
mod publisher;
mod subscriber;
mod view;

pub(crate) use loan::Loan;
pub(crate) use publisher::RawPublisher;
pub(crate) use subscriber::{RawSubscriber, Sample};

use crate::fields::Fields;
pub(crate) use crate::thread::Endpoint;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use shmx::message::Primitive;
use shmx::schema_text::{MessageType, Ty};

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

/// `object.__getattribute__(obj, name)`: the class's attributes (raising `AttributeError`
/// for the others, after which PyO3 calls `__getattr__`).
pub(crate) fn generic_getattr(
    obj: &Bound<'_, PyAny>,
    name: &Bound<'_, pyo3::types::PyString>,
) -> PyResult<PyObject> {
    // SAFETY: both pointers are live objects we hold; `PyObject_GenericGetAttr` returns a
    // new reference or NULL with an exception set, which `from_owned_ptr_or_err` takes.
    unsafe {
        Bound::from_owned_ptr_or_err(
            obj.py(),
            pyo3::ffi::PyObject_GenericGetAttr(obj.as_ptr(), name.as_ptr()),
        )
    }
    .map(Bound::unbind)
}

/// The primitive named `name`.
pub(crate) fn primitive(name: &str) -> PyResult<Primitive> {
    Primitive::from_name(name)
        .ok_or_else(|| pyo3::exceptions::PyValueError::new_err(format!("no primitive {name:?}")))
}
