//! `Loan`: a chunk a `RawPublisher` loaned, written in place from Python (fields, numpy
//! views) and then published.

use super::publisher::RawPublisher;
use super::{array_interface, primitive, view, Shape};
use crate::errors;
use crate::fields::{self, Field};
use crate::thread::ThreadBound;
use numpy::PyArrayDescr;
use pyo3::exceptions::{PyAttributeError, PyKeyError, PyRuntimeError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};
use shmx::inspect::RawLoan;
use shmx::message::Primitive;
use std::sync::{Arc, Mutex, MutexGuard};

/// A loaned chunk, written in place (fields, and numpy views through its
/// `__array_interface__`) and then published.
#[pyclass(frozen, module = "shmx._shmx")]
pub(crate) struct Loan {
    /// `None` once published. Declared before `owner`: given back while it lives.
    loan: Mutex<Option<ThreadBound<RawLoan<'static>>>>,
    owner: Py<RawPublisher>,
    shape: Arc<Shape>,
    addr: usize,
    capacity: usize,
    /// Bytes in use: the message, then the tail given out so far.
    used: std::sync::atomic::AtomicUsize,
}

impl Loan {
    /// The Python object of `loan`, a chunk `owner` loaned for a message of `size` bytes.
    pub(super) fn new(
        owner: &Bound<'_, RawPublisher>,
        mut loan: RawLoan<'static>,
        size: usize,
    ) -> Loan {
        let (addr, capacity) = (loan.as_mut_ptr() as usize, loan.capacity());
        Loan {
            loan: Mutex::new(Some(ThreadBound::new(loan))),
            owner: owner.clone().unbind(),
            shape: owner.get().shape.clone(),
            addr,
            capacity,
            used: std::sync::atomic::AtomicUsize::new(size),
        }
    }

    /// `Ok` while the loan may be written: not published, and on its thread.
    fn live(&self) -> PyResult<()> {
        match &*self.slot() {
            Some(loan) => loan.get().map(drop),
            None => Err(PyRuntimeError::new_err(
                "this loan was published: loan another sample to write",
            )),
        }
    }

    fn slot(&self) -> MutexGuard<'_, Option<ThreadBound<RawLoan<'static>>>> {
        self.loan.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Field `name`: a primitive read in place, or what the Python part reads; `None` when
    /// the loan's type is not set.
    /// Primitive `p` at byte `offset` of the chunk (bounds-checked; the loan must be live).
    fn read_at(&self, py: Python<'_>, offset: usize, p: Primitive) -> PyResult<PyObject> {
        self.live()?;
        // SAFETY: `addr` is the loaned chunk's first byte, valid for `capacity` bytes while
        // the loan is held (it is: `live`), aligned to 16.
        unsafe {
            fields::read(
                py,
                self.addr as *const u8,
                self.capacity,
                offset,
                p,
                &self.shape.topic,
                0,
            )
        }
    }

    fn field(slf: &Bound<'_, Self>, name: &str) -> PyResult<Option<PyObject>> {
        Self::read(slf, name, slf.get().shape.fields.lookup(name))
    }

    /// Field `name`: a primitive read in place, a slice of primitives as a writable numpy
    /// array, or what the Python part reads; `None` when the type is not set.
    fn read(slf: &Bound<'_, Self>, name: &str, field: Option<Field>) -> PyResult<Option<PyObject>> {
        let this = slf.get();
        match field {
            Some(Field::Primitive(offset, p)) => {
                return this.read_at(slf.py(), offset, p).map(Some)
            }
            Some(Field::RelSlice(at, p)) => {
                if let Some(dtype) = view::dtype_of(slf.py(), p) {
                    let (start, count) = this._rel_span(at, p.size(), p.align())?;
                    // SAFETY: `_rel_span` found the loan live and `count` elements of `p`
                    // from `start` within its `capacity` bytes, aligned; the array keeps the
                    // loan (which holds them) as its base.
                    return unsafe {
                        view::array_view(slf.as_any(), this.addr + start, &[count], dtype, true)
                    }
                    .map(Some);
                }
            }
            _ => {}
        }
        this.live()?;
        match this.owner.get().pytype.get(slf.py()) {
            Some(t) => Ok(Some(t.call_method1(slf.py(), "_get", (slf, name))?)),
            None => Ok(None),
        }
    }

    fn used(&self) -> usize {
        self.used.load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl Drop for Loan {
    fn drop(&mut self) {
        let loan = self
            .loan
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(loan) = loan {
            if !loan.is_mine() {
                // Another thread: the owner thread gives it back.
                self.owner.get().inner.park(loan);
            }
        }
    }
}

#[pymethods]
impl Loan {
    /// Fields first (`m.x`: a primitive read in place, without the failed lookup that
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
            .ok_or_else(|| PyAttributeError::new_err(format!("a loan has no field `{name}`")))
    }

    fn __getitem__(slf: &Bound<'_, Self>, name: &str) -> PyResult<PyObject> {
        Self::field(slf, name)?
            .ok_or_else(|| PyKeyError::new_err(format!("a loan has no field `{name}`")))
    }

    fn __setattr__(slf: &Bound<'_, Self>, name: &str, value: &Bound<'_, PyAny>) -> PyResult<()> {
        let this = slf.get();
        this.live()?;
        if let Some((offset, p)) = this.shape.fields.get(name) {
            let names = (this.shape.fields.type_name.as_str(), name);
            // Converted first: it may run Python code, which may publish the loan.
            let bytes = fields::convert(value, p, names)?;
            this.live()?;
            // SAFETY: the chunk is loaned to us alone (`live`, and no Python code ran since),
            // `capacity` bytes from `addr`.
            return unsafe {
                fields::store(
                    this.addr as *mut u8,
                    this.capacity,
                    offset,
                    p,
                    &bytes,
                    names,
                )
            };
        }
        match this.owner.get().pytype.get(slf.py()) {
            Some(t) => t
                .call_method1(slf.py(), "_set", (slf, name, value))
                .map(drop),
            None => Err(PyAttributeError::new_err(format!(
                "a loan has no field `{name}`"
            ))),
        }
    }

    fn __setitem__(slf: &Bound<'_, Self>, name: &str, value: &Bound<'_, PyAny>) -> PyResult<()> {
        Self::__setattr__(slf, name, value)
    }

    /// `(start, count)` of the relative pointer at byte `at`, whose elements have
    /// `elem_size` bytes aligned to `elem_align`: checked to lie in the chunk's tail.
    fn _rel_span(
        &self,
        at: usize,
        elem_size: usize,
        elem_align: usize,
    ) -> PyResult<(usize, usize)> {
        self.live()?;
        // SAFETY: `addr` is the loaned chunk's first byte, valid for `capacity` bytes while
        // the loan is held (it is: `live`), aligned to 16; it holds the whole message.
        unsafe {
            fields::rel_span(
                self.addr as *const u8,
                self.capacity,
                self.shape.size,
                at,
                (elem_size, elem_align),
                &self.shape.topic,
                0,
            )
        }
    }

    /// Reads primitive `prim` (its name: `"u32"`, …) at byte `offset`.
    fn _read(&self, py: Python<'_>, offset: usize, prim: &str) -> PyResult<PyObject> {
        self.read_at(py, offset, primitive(prim)?)
    }

    /// Writes `value` as primitive `prim` at byte `offset`; `field` names it in errors.
    fn _write(
        &self,
        offset: usize,
        prim: &str,
        value: &Bound<'_, PyAny>,
        field: &str,
    ) -> PyResult<()> {
        let p = primitive(prim)?;
        let names = (self.shape.fields.type_name.as_str(), field);
        // Converted first: it may run Python code, which may publish the loan.
        let bytes = fields::convert(value, p, names)?;
        self.live()?;
        // SAFETY: the chunk is loaned to us alone (`live`, and no Python code ran since),
        // `capacity` bytes from `addr`.
        unsafe {
            fields::store(
                self.addr as *mut u8,
                self.capacity,
                offset,
                p,
                &bytes,
                names,
            )
        }
    }

    /// The chunk's bytes as a writable array of `u8` (its whole capacity).
    #[getter]
    fn __array_interface__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        self.live()?;
        array_interface(py, self.addr, self.capacity, false)
    }

    /// Reserves `nbytes` of the tail aligned to `align` and returns their offset from the
    /// chunk's start (`shmx.TailFull` when the tail has no room).
    fn _reserve(&self, nbytes: usize, align: usize) -> PyResult<usize> {
        self.live()?;
        let align = align.max(1);
        let used = self.used();
        let start = used.div_ceil(align).saturating_mul(align);
        match start
            .checked_add(nbytes)
            .filter(|&end| end <= self.capacity)
        {
            Some(end) => {
                self.used.store(end, std::sync::atomic::Ordering::Relaxed);
                Ok(start)
            }
            None => Err(errors::to_py(shmx::Error::TailFull {
                topic: self.shape.topic.clone(),
                requested: start.saturating_sub(used).saturating_add(nbytes),
                available: self.capacity.saturating_sub(used),
            })),
        }
    }

    /// Gives field `field` (a `RelSlice` or `RelStr`) `count` elements (bytes for a
    /// `RelStr`) in the tail and returns them as a writable numpy array (`alloc_<field>(n)`
    /// too).
    fn alloc(slf: &Bound<'_, Self>, field: &str, count: usize) -> PyResult<PyObject> {
        let this = slf.get();
        this.live()?;
        if let Some(Field::RelSlice(at, p)) = this.shape.fields.lookup(field) {
            if let Some(dtype) = view::dtype_of(slf.py(), p) {
                let start = this._alloc_rel(at, count, p.size(), p.align())?;
                // SAFETY: `_alloc_rel` reserved `count` elements of `p` from `start` within
                // the live loan's `capacity` bytes, aligned; the array keeps the loan (which
                // holds them) as its base.
                return unsafe {
                    view::array_view(slf.as_any(), this.addr + start, &[count], dtype, true)
                };
            }
        }
        match this.owner.get().pytype.get(slf.py()) {
            Some(t) => t.call_method1(slf.py(), "_alloc", (slf, field, count)),
            None => Err(PyAttributeError::new_err("the loan's type is not set")),
        }
    }

    /// `shape` elements of numpy dtype `dtype` from byte `start` of the chunk, as a
    /// writable numpy array over it (whose base is the loan): bounds-checked.
    fn _view(
        slf: &Bound<'_, Self>,
        start: usize,
        shape: Vec<usize>,
        dtype: Bound<'_, PyArrayDescr>,
    ) -> PyResult<PyObject> {
        let this = slf.get();
        this.live()?;
        view::check(&shape, &dtype, start, this.capacity, &this.shape.topic)?;
        // SAFETY: `check` found the array's bytes within the live loan's `capacity` (held
        // while the loan, the array's base, lives) and the dtype free of Python objects.
        unsafe { view::array_view(slf.as_any(), this.addr + start, &shape, dtype, true) }
    }

    /// Gives the relative pointer at byte `at` `count` elements of `elem_size` bytes aligned
    /// to `elem_align` in the tail (`shmx.TailFull` when it has no room), sets the pointer to
    /// them, and returns their offset from the chunk's start (`at` for none).
    fn _alloc_rel(
        &self,
        at: usize,
        count: usize,
        elem_size: usize,
        elem_align: usize,
    ) -> PyResult<usize> {
        self.live()?;
        let size = self.shape.size;
        if at.checked_add(8).is_none_or(|end| end > size) || at % 4 != 0 {
            return Err(pyo3::exceptions::PyValueError::new_err(format!(
                "no relative pointer at byte {at} of the {size}-byte message"
            )));
        }
        let count32 = u32::try_from(count).map_err(|_| {
            pyo3::exceptions::PyOverflowError::new_err(format!("{count} elements: over 2**32"))
        })?;
        let start = if count == 0 {
            at
        } else {
            let bytes = count.checked_mul(elem_size).ok_or_else(|| {
                pyo3::exceptions::PyOverflowError::new_err(format!("{count} elements: too many"))
            })?;
            self._reserve(bytes, elem_align)?
        };
        // `start ≥ at` (the tail lies after the message) and below the capacity (< 2^32
        // bytes in practice; checked).
        let offset = u32::try_from(start - at).map_err(|_| {
            pyo3::exceptions::PyOverflowError::new_err("a relative offset over 2**32")
        })?;
        let names = (self.shape.fields.type_name.as_str(), "relative pointer");
        for (i, value) in [offset, count32].into_iter().enumerate() {
            let mut word = [0u8; 16];
            word[..4].copy_from_slice(&value.to_ne_bytes());
            // SAFETY: the chunk is loaned to us alone (`live`, and no Python code ran since),
            // `capacity ≥ size` bytes from `addr`; `store` checks the bounds.
            unsafe {
                fields::store(
                    self.addr as *mut u8,
                    self.capacity,
                    at + 4 * i,
                    Primitive::U32,
                    &word,
                    names,
                )
            }?;
        }
        Ok(start)
    }

    /// Bytes the chunk holds.
    #[getter]
    fn capacity(&self) -> usize {
        self.capacity
    }

    /// Bytes in the message (without its tail).
    #[getter]
    fn message_size(&self) -> usize {
        self.shape.size
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

    /// Bytes in use: the message, then the tail given out so far (what `publish` sends).
    #[getter]
    fn nbytes(&self) -> usize {
        self.used()
    }

    /// Whether it was published.
    #[getter]
    fn published(&self) -> bool {
        self.slot().is_none()
    }

    /// The address of its first byte.
    #[getter]
    fn address(&self) -> usize {
        self.addr
    }

    /// Publishes the chunk (the message and the tail given out): zero-copy.
    pub(super) fn _publish(&self, publisher: &Bound<'_, RawPublisher>) -> PyResult<()> {
        if !self.owner.bind(publisher.py()).is(publisher) {
            return Err(PyRuntimeError::new_err(
                "this loan belongs to another publisher",
            ));
        }
        self.live()?;
        let Some(loan) = self.slot().take() else {
            return Err(PyRuntimeError::new_err("this loan was published already"));
        };
        let owner = self.owner.get();
        match loan.into_inner() {
            Ok(loan) => {
                let used = self.used();
                if owner.blocks {
                    // `Overflow::Block`: it may wait for a subscriber of this process, which
                    // needs the GIL to make room.
                    let loan = crate::wait::OnThisThread(loan);
                    publisher
                        .py()
                        .allow_threads(move || {
                            let loan = loan;
                            crate::wait::OnThisThread(loan.0.publish(used))
                        })
                        .0
                        .map_err(errors::to_py)
                } else {
                    loan.publish(used).map_err(errors::to_py)
                }
            }
            // Not reached: `live` checked the thread.
            Err((loan, e)) => {
                *self.slot() = Some(loan);
                Err(e)
            }
        }
    }

    fn __repr__(&self) -> String {
        format!(
            "<shmx.Loan on {:?}, {} of {} bytes{}>",
            self.shape.topic,
            self.used(),
            self.capacity,
            if self.published() { ", published" } else { "" }
        )
    }
}
