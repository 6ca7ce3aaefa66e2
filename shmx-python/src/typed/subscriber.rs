//! `RawSubscriber` and its `Sample`s.

use super::{array_interface, message_type, primitive, view, Endpoint, Shape};
use crate::errors;
use crate::fields::{self, Field};
use crate::thread::ThreadBound;
use crate::wait;
use numpy::PyArrayDescr;
use pyo3::exceptions::{PyAttributeError, PyKeyError, PyRuntimeError};
use pyo3::prelude::*;
use pyo3::sync::GILOnceCell;
use pyo3::types::{PyDict, PyString};
use shmx::inspect::{self, RawSample};
use shmx::message::Primitive;
use std::path::PathBuf;
use std::sync::Arc;

/// A subscriber of a topic of any message type (`shmx.Subscriber` builds on it).
#[pyclass(frozen, module = "shmx._shmx")]
pub(crate) struct RawSubscriber {
    inner: Endpoint<inspect::RawSubscriber, RawSample<'static>>,
    shape: Arc<Shape>,
    /// The Python message type, which reads the fields that are not primitives.
    pytype: GILOnceCell<PyObject>,
}

#[pymethods]
impl RawSubscriber {
    /// Subscribes to topic `name`: of the message type whose schema text is `schema`
    /// (created if it does not exist), or adopting the existing topic's type.
    #[new]
    #[pyo3(signature = (name, schema = None, buffer_num = None, *, root = None, copy = false))]
    fn new(
        name: &str,
        schema: Option<&str>,
        buffer_num: Option<usize>,
        root: Option<PathBuf>,
        copy: bool,
    ) -> PyResult<Self> {
        let ty = message_type(schema)?;
        let mut config = shmx::defaults::Defaults::get()
            .map_err(errors::to_py)?
            .subscriber();
        // Without `buffer_num`, the publishers' depths decide.
        config.queue_depth = buffer_num.unwrap_or(usize::MAX);
        let mut inner = inspect::RawSubscriber::open(root.as_deref(), name, ty.as_ref(), config)
            .map_err(errors::to_py)?;
        if copy {
            inner = inner.copy_on_take();
        }
        let shape = Arc::new(Shape::of(inner.schema(), inner.topic(), inner.size()));
        Ok(RawSubscriber {
            inner: Endpoint::new(inner),
            shape,
            pytype: GILOnceCell::new(),
        })
    }

    /// The topic's schema text.
    #[getter]
    fn schema(&self) -> &str {
        &self.shape.schema
    }

    /// The topic's name.
    #[getter]
    fn topic(&self) -> &str {
        &self.shape.topic
    }

    /// Bytes in a message (without its tail).
    #[getter]
    fn size(&self) -> usize {
        self.shape.size
    }

    /// Sets the Python message type that reads this topic's samples (once).
    fn _set_type(&self, py: Python<'_>, pytype: PyObject) -> PyResult<()> {
        self.pytype
            .set(py, pytype)
            .map_err(|_| PyRuntimeError::new_err("the message type is set already"))
    }

    /// The next sample if one waits, else `None`; never blocks.
    fn take(slf: &Bound<'_, Self>) -> PyResult<Option<Sample>> {
        let inner = Self::endpoint(slf)?;
        let sample = inner.take().map_err(errors::to_py)?;
        Ok(sample.map(|s| Sample::new(slf, s)))
    }

    /// Waits up to `timeout` seconds (`None`: forever) for the next sample; `None` if none
    /// came. The GIL is released while it waits; Ctrl-C interrupts it.
    #[pyo3(signature = (timeout = None))]
    fn recv(slf: &Bound<'_, Self>, timeout: Option<f64>) -> PyResult<Option<Sample>> {
        let timeout = wait::timeout(timeout)?;
        let inner = Self::endpoint(slf)?;
        if let Some(sample) = inner.take().map_err(errors::to_py)? {
            return Ok(Some(Sample::new(slf, sample)));
        }
        if timeout == Some(std::time::Duration::ZERO) {
            return Ok(None);
        }
        let sample = wait::blocking(slf.py(), timeout, |slice| {
            inner.recv_timeout(slice).map(|s| s.map(wait::OnThisThread))
        })?;
        Ok(sample.map(|s| Sample::new(slf, s.0)))
    }

    /// A file descriptor that polls readable while samples wait.
    fn fileno(&self) -> PyResult<i32> {
        use std::os::fd::AsRawFd;
        let fd = self.inner.get()?.fd().map_err(errors::to_py)?;
        Ok(fd.as_raw_fd())
    }

    /// Whether samples wait now (nothing is taken); when none does, clears a readiness of
    /// the descriptor that did not mean samples.
    fn samples_waiting(&self) -> PyResult<bool> {
        Ok(self.inner.get()?.samples_waiting())
    }

    /// Number of publishers connected.
    fn publisher_count(&self) -> PyResult<usize> {
        Ok(self.inner.get()?.publisher_count())
    }
}

impl RawSubscriber {
    /// The Rust endpoint (on its thread), borrowed for as long as its Python object lives;
    /// gives back first what other threads parked.
    fn endpoint(slf: &Bound<'_, Self>) -> PyResult<&'static inspect::RawSubscriber> {
        // SAFETY: the object is a frozen pyclass; every `Sample` holds a strong reference
        // to it and gives its borrow up first (drops it, or parks it).
        unsafe { slf.get().inner.get_static() }
    }
}

/// A received sample: its fields read in place, and its bytes as a read-only numpy array
/// through `__array_interface__` (no copy). The chunk goes back to the publisher when the
/// sample and every view of it are gone.
#[pyclass(frozen, module = "shmx._shmx")]
pub(crate) struct Sample {
    /// `None` only while dropped. Declared before `owner`: given back while it lives.
    held: Option<ThreadBound<RawSample<'static>>>,
    owner: Py<RawSubscriber>,
    shape: Arc<Shape>,
    addr: usize,
    len: usize,
    sequence: u64,
    publisher_id: u64,
}

impl Sample {
    fn new(owner: &Bound<'_, RawSubscriber>, sample: RawSample<'static>) -> Sample {
        let bytes = sample.bytes();
        let (addr, len) = (bytes.as_ptr() as usize, bytes.len());
        Sample {
            sequence: sample.sequence(),
            publisher_id: sample.publisher_id(),
            held: Some(ThreadBound::new(sample)),
            owner: owner.clone().unbind(),
            shape: owner.get().shape.clone(),
            addr,
            len,
        }
    }

    /// Primitive `p` at byte `offset` of the sample (bounds-checked).
    fn read_at(&self, py: Python<'_>, offset: usize, p: Primitive) -> PyResult<PyObject> {
        // SAFETY: `addr` is the sample's first byte, valid for `len` bytes while the sample
        // is held (it is: `self` holds it), aligned to 16.
        unsafe {
            fields::read(
                py,
                self.addr as *const u8,
                self.len,
                offset,
                p,
                &self.shape.topic,
                self.sequence,
            )
        }
    }

    fn field(slf: &Bound<'_, Self>, name: &str) -> PyResult<Option<PyObject>> {
        Self::read(slf, name, slf.get().shape.fields.lookup(name))
    }

    /// Field `name`: a primitive read in place, a slice of primitives as a numpy array, or
    /// what the Python part reads; `None` when the type is not set.
    fn read(slf: &Bound<'_, Self>, name: &str, field: Option<Field>) -> PyResult<Option<PyObject>> {
        let this = slf.get();
        match field {
            Some(Field::Primitive(offset, p)) => {
                return this.read_at(slf.py(), offset, p).map(Some)
            }
            Some(Field::RelSlice(at, p)) => {
                if let Some(dtype) = view::dtype_of(slf.py(), p) {
                    let (start, count) = this._rel_span(at, p.size(), p.align())?;
                    // SAFETY: `_rel_span` checked that `count` elements of `p` from `start`
                    // lie in the sample's `len` bytes, aligned; the array keeps the sample
                    // (which holds them) as its base.
                    return unsafe {
                        view::array_view(slf.as_any(), this.addr + start, &[count], dtype, false)
                    }
                    .map(Some);
                }
            }
            _ => {}
        }
        match this.owner.get().pytype.get(slf.py()) {
            Some(t) => Ok(Some(t.call_method1(slf.py(), "_get", (slf, name))?)),
            None => Ok(None),
        }
    }
}

impl Drop for Sample {
    fn drop(&mut self) {
        if let Some(held) = self.held.take() {
            if !held.is_mine() {
                // Another thread: the owner thread gives it back.
                self.owner.get().inner.park(held);
            }
        }
    }
}

#[pymethods]
impl Sample {
    /// Primitive fields first (`s.x`: read in place, without the failed lookup that
    /// `__getattr__` would come after), then the class's attributes, then `__getattr__`.
    fn __getattribute__(slf: &Bound<'_, Self>, name: &Bound<'_, PyString>) -> PyResult<PyObject> {
        let n = name.to_cow()?;
        if let Some(field) = slf.get().shape.fields.lookup(&n) {
            if let Some(v) = Self::read(slf, &n, Some(field))? {
                return Ok(v);
            }
        }
        super::generic_getattr(slf.as_any(), name)
    }

    fn __getattr__(slf: &Bound<'_, Self>, name: &str) -> PyResult<PyObject> {
        Self::field(slf, name)?
            .ok_or_else(|| PyAttributeError::new_err(format!("a sample has no field `{name}`")))
    }

    fn __getitem__(slf: &Bound<'_, Self>, name: &str) -> PyResult<PyObject> {
        Self::field(slf, name)?
            .ok_or_else(|| PyKeyError::new_err(format!("a sample has no field `{name}`")))
    }

    /// `(start, count)` of the relative pointer at byte `at`, whose elements have
    /// `elem_size` bytes aligned to `elem_align`: checked to lie in the sample's tail.
    fn _rel_span(
        &self,
        at: usize,
        elem_size: usize,
        elem_align: usize,
    ) -> PyResult<(usize, usize)> {
        // SAFETY: `addr` is the sample's first byte, valid for `len` bytes while the sample
        // is held (we hold it), aligned to 16; it holds the whole message.
        unsafe {
            fields::rel_span(
                self.addr as *const u8,
                self.len,
                self.shape.size,
                at,
                (elem_size, elem_align),
                &self.shape.topic,
                self.sequence,
            )
        }
    }

    /// `shape` elements of numpy dtype `dtype` from byte `start` of the sample, as a
    /// read-only numpy array over it (whose base is the sample): bounds-checked.
    fn _view(
        slf: &Bound<'_, Self>,
        start: usize,
        shape: Vec<usize>,
        dtype: Bound<'_, PyArrayDescr>,
    ) -> PyResult<PyObject> {
        let this = slf.get();
        view::check(&shape, &dtype, start, this.len, &this.shape.topic)?;
        // SAFETY: `check` found the array's bytes within the sample's `len` (held while the
        // sample, the array's base, lives) and the dtype free of Python objects.
        unsafe { view::array_view(slf.as_any(), this.addr + start, &shape, dtype, false) }
    }

    /// Reads primitive `prim` (its name: `"u32"`, …) at byte `offset` (for the fields of
    /// nested structs).
    fn _read(&self, py: Python<'_>, offset: usize, prim: &str) -> PyResult<PyObject> {
        self.read_at(py, offset, primitive(prim)?)
    }

    /// The sample's bytes (the message, then the used part of its tail) as a read-only
    /// array of `u8` over the shared chunk.
    #[getter]
    fn __array_interface__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        array_interface(py, self.addr, self.len, true)
    }

    /// The publisher's sequence number.
    #[getter]
    fn sequence(&self) -> u64 {
        self.sequence
    }

    /// The id of the publisher that sent it.
    #[getter]
    fn publisher_id(&self) -> u64 {
        self.publisher_id
    }

    /// Bytes in the sample (the message and the used part of its tail).
    #[getter]
    fn nbytes(&self) -> usize {
        self.len
    }

    /// Bytes in the message (without its tail).
    #[getter]
    fn message_size(&self) -> usize {
        self.shape.size
    }

    /// The address of its first byte (in the shared chunk, or in the private copy of a
    /// subscriber made with `copy=True`).
    #[getter]
    fn address(&self) -> usize {
        self.addr
    }

    /// The topic's name.
    #[getter]
    fn topic(&self) -> &str {
        &self.shape.topic
    }

    /// The Python message type of the topic.
    #[getter]
    fn r#type(&self, py: Python<'_>) -> Option<PyObject> {
        self.owner.get().pytype.get(py).map(|t| t.clone_ref(py))
    }

    fn __repr__(slf: &Bound<'_, Self>) -> PyResult<String> {
        let this = slf.get();
        match this.owner.get().pytype.get(slf.py()) {
            Some(t) => t.call_method1(slf.py(), "_repr", (slf,))?.extract(slf.py()),
            None => Ok(format!(
                "<shmx.Sample of {:?}, sequence {}>",
                this.shape.topic, this.sequence
            )),
        }
    }
}
