//! `RawPublisher` and its `Loan`s.

use super::loan::Loan;
use super::{message_type, Endpoint, Shape};
use crate::errors;
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::sync::GILOnceCell;
use pyo3::types::PyDict;
use shmx::inspect::{self, RawLoan};
use shmx::PublisherConfig;
use std::path::PathBuf;
use std::sync::Arc;

/// A publisher on a topic of any message type (`shmx.Publisher` builds on it).
#[pyclass(frozen, module = "shmx._shmx")]
pub(crate) struct RawPublisher {
    pub(super) inner: Endpoint<inspect::RawPublisher, RawLoan<'static>>,
    pub(super) shape: Arc<Shape>,
    pub(super) pytype: GILOnceCell<PyObject>,
    /// Whether a publish may wait (`Overflow::Block`): it lets go of the GIL then.
    pub(super) blocks: bool,
}

#[pymethods]
impl RawPublisher {
    /// Publishes on topic `name`: of the message type whose schema text is `schema`
    /// (created if it does not exist), or adopting the existing topic's type.
    #[new]
    #[pyo3(signature = (name, schema = None, buffer_num = None, *, root = None, history = None, max_tail_bytes = None, max_loans = None, overflow = None, block_timeout = None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        name: &str,
        schema: Option<&str>,
        buffer_num: Option<usize>,
        root: Option<PathBuf>,
        history: Option<usize>,
        max_tail_bytes: Option<usize>,
        max_loans: Option<usize>,
        overflow: Option<&str>,
        block_timeout: Option<f64>,
    ) -> PyResult<Self> {
        let ty = message_type(schema)?;
        let mut config: PublisherConfig = shmx::defaults::Defaults::get()
            .map_err(errors::to_py)?
            .publisher();
        if let Some(depth) = buffer_num {
            config.queue_depth = depth;
        }
        if let Some(h) = history {
            config.history = h;
        }
        if let Some(t) = max_tail_bytes {
            config.max_tail_bytes = t;
        }
        if let Some(n) = max_loans {
            config.max_loans = n;
        }
        if let Some(o) = overflow {
            config.overflow = overflow_policy(o)?;
        }
        if let Some(t) = block_timeout {
            config.block_timeout = crate::wait::timeout(Some(t))?;
        }
        let blocks = config.overflow == shmx::Overflow::Block;
        let inner = inspect::RawPublisher::open(root.as_deref(), name, ty.as_ref(), config)
            .map_err(errors::to_py)?;
        let shape = Arc::new(Shape::of(inner.schema(), inner.topic(), inner.size()));
        Ok(RawPublisher {
            inner: Endpoint::new(inner),
            shape,
            pytype: GILOnceCell::new(),
            blocks,
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

    /// The most bytes a sample may have (the message and its whole tail).
    #[getter]
    fn capacity(&self) -> PyResult<usize> {
        Ok(self.inner.get()?.capacity())
    }

    /// Sets the Python message type that writes this topic's loans (once).
    fn _set_type(&self, py: Python<'_>, pytype: PyObject) -> PyResult<()> {
        self.pytype
            .set(py, pytype)
            .map_err(|_| PyRuntimeError::new_err("the message type is set already"))
    }

    /// Loans a chunk for a message and `tail_bytes` of tail (`None`: the largest the
    /// publisher allows); the message's bytes are zeros.
    #[pyo3(signature = (tail_bytes = None))]
    fn loan(slf: &Bound<'_, Self>, tail_bytes: Option<usize>) -> PyResult<Loan> {
        let inner = Self::endpoint(slf)?;
        let (size, capacity) = (inner.size(), inner.capacity());
        let bytes = match tail_bytes {
            Some(t) => size.saturating_add(t).min(capacity.max(size)),
            None => capacity,
        };
        let loan = inner.loan(bytes).map_err(errors::to_py)?;
        Ok(Loan::new(slf, loan, size))
    }

    /// Publishes `data` (bytes-like: the message, then the used part of its tail) as one
    /// sample, copying it.
    fn send_bytes(&self, py: Python<'_>, data: &[u8]) -> PyResult<()> {
        let inner = self.inner.get()?;
        if !self.blocks {
            return inner.send(data).map_err(errors::to_py);
        }
        // `Overflow::Block`: as `Loan::_publish`.
        let call = crate::wait::OnThisThread((inner, data));
        py.allow_threads(move || {
            let call = call;
            crate::wait::OnThisThread(call.0 .0.send(call.0 .1))
        })
        .0
        .map_err(errors::to_py)
    }

    /// Publishes loan `loan` of this publisher: zero-copy (`send` copies a dict or tuple).
    fn publish(slf: &Bound<'_, Self>, loan: &Bound<'_, PyAny>) -> PyResult<()> {
        match loan.downcast::<Loan>() {
            Ok(loan) => loan.get()._publish(slf),
            Err(_) => Err(pyo3::exceptions::PyTypeError::new_err(format!(
                "publish takes a loan of this publisher (`loan()`), not {}: `send` copies a \
                 dict or tuple",
                loan.get_type()
                    .name()
                    .map_or_else(|_| "?".to_owned(), |n| n.to_string())
            ))),
        }
    }

    /// Number of subscribers connected.
    fn subscriber_count(&self) -> PyResult<usize> {
        Ok(self.inner.get()?.subscriber_count())
    }

    /// The pool's chunks by state (after taking back what subscribers returned): a dict of
    /// `total`, `free`, `loaned`, `history`, `delivered` and `pinned`.
    fn pool_stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let s = self.inner.get()?.pool_stats();
        let d = PyDict::new(py);
        d.set_item("total", s.total)?;
        d.set_item("free", s.free)?;
        d.set_item("loaned", s.loaned)?;
        d.set_item("history", s.history)?;
        d.set_item("delivered", s.delivered)?;
        d.set_item("pinned", s.pinned)?;
        Ok(d)
    }
}

/// The overflow policy named `name`.
pub(crate) fn overflow_policy(name: &str) -> PyResult<shmx::Overflow> {
    match name {
        "drop_oldest" => Ok(shmx::Overflow::DropOldest),
        "block" => Ok(shmx::Overflow::Block),
        "fail" => Ok(shmx::Overflow::Fail),
        _ => Err(pyo3::exceptions::PyValueError::new_err(format!(
            "overflow is \"drop_oldest\", \"block\" or \"fail\", not {name:?}"
        ))),
    }
}

impl RawPublisher {
    /// The Rust endpoint (on its thread), borrowed for as long as its Python object lives;
    /// gives back first what other threads parked.
    fn endpoint(slf: &Bound<'_, Self>) -> PyResult<&'static inspect::RawPublisher> {
        // SAFETY: the object is a frozen pyclass; every `Loan` holds a strong reference
        // to it and gives its borrow up first (drops it, or parks it).
        unsafe { slf.get().inner.get_static() }
    }
}
