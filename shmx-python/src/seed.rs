//! The seed's API: `Publisher(name, default_value, buffer_num)`, `publish(value)`,
//! `Subscriber(name, default_value)`, `subscribe() -> (value, ok)` and `recv(timeout)`, for
//! `bool`, `int` and `float` topics: the same topics as Rust's `Publisher<bool>`,
//! `Publisher<i64>` and `Publisher<f64>`.

use crate::errors;
use crate::thread::Endpoint;
use crate::wait;
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyFloat, PyInt};
use std::path::PathBuf;

/// The value type of a seed topic, told by its default value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Bool,
    Int,
    Float,
}

impl Kind {
    /// The kind of `value` (`bool` before `int`: a Python `bool` is an `int` too).
    fn of(value: &Bound<'_, PyAny>) -> PyResult<Kind> {
        if value.is_instance_of::<PyBool>() {
            Ok(Kind::Bool)
        } else if value.is_instance_of::<PyInt>() {
            Ok(Kind::Int)
        } else if value.is_instance_of::<PyFloat>() {
            Ok(Kind::Float)
        } else {
            Err(PyTypeError::new_err(format!(
                "a topic's default value is a bool, an int or a float, not {}",
                value.get_type().name()?
            )))
        }
    }

    fn name(self) -> &'static str {
        match self {
            Kind::Bool => "bool",
            Kind::Int => "int",
            Kind::Float => "float",
        }
    }
}

/// A value converted for a seed publisher.
#[derive(Clone, Copy)]
enum Scalar {
    Bool(bool),
    Int(i64),
    Float(f64),
}

pub(crate) enum AnyPublisher {
    Bool(shmx::Publisher<bool>),
    Int(shmx::Publisher<i64>),
    Float(shmx::Publisher<f64>),
}

pub(crate) enum AnySubscriber {
    Bool(shmx::Subscriber<bool>),
    Int(shmx::Subscriber<i64>),
    Float(shmx::Subscriber<f64>),
}

/// Publishes values of one type (that of `default_value`: `bool`, `int` as a 64-bit
/// integer, or `float` as a 64-bit float) on topic `name`.
///
/// `buffer_num` is the queue depth: how many values each subscriber may have waiting before
/// the oldest is dropped. The publisher also keeps its last value as history, so a
/// subscriber that starts later receives it first.
#[pyclass(module = "shmx._shmx", name = "SeedPublisher")]
pub(crate) struct Publisher {
    inner: Endpoint<AnyPublisher, ()>,
    kind: Kind,
    /// Whether a publish may wait (`Overflow::Block`): it lets go of the GIL then.
    blocks: bool,
}

#[pymethods]
impl Publisher {
    #[new]
    #[pyo3(signature = (name, default_value, buffer_num = 16, *, root = None))]
    fn new(
        name: &str,
        default_value: &Bound<'_, PyAny>,
        buffer_num: usize,
        root: Option<PathBuf>,
    ) -> PyResult<Self> {
        let kind = Kind::of(default_value)?;
        macro_rules! make {
            ($t:ty) => {{
                let mut builder = shmx::Publisher::<$t>::builder(name)
                    .queue_depth(buffer_num)
                    .history(1);
                if let Some(root) = &root {
                    builder = builder.root(root);
                }
                builder.create().map_err(errors::to_py)?
            }};
        }
        let inner = match kind {
            Kind::Bool => AnyPublisher::Bool(make!(bool)),
            Kind::Int => AnyPublisher::Int(make!(i64)),
            Kind::Float => AnyPublisher::Float(make!(f64)),
        };
        let blocks = shmx::defaults::Defaults::get()
            .map_err(errors::to_py)?
            .publisher()
            .overflow
            == shmx::Overflow::Block;
        Ok(Publisher {
            inner: Endpoint::new(inner),
            kind,
            blocks,
        })
    }

    /// Publishes `value` (of the topic's type; an `int` for a `float` topic is converted).
    fn publish(&self, value: &Bound<'_, PyAny>) -> PyResult<()> {
        let wrong = || {
            PyTypeError::new_err(format!(
                "this topic carries {} values, not {}",
                self.kind.name(),
                value
                    .get_type()
                    .name()
                    .map_or_else(|_| "?".into(), |n| n.to_string())
            ))
        };
        let inner = self.inner.get()?;
        // Converted first (with the GIL), then sent.
        let v = match inner {
            AnyPublisher::Bool(_) => {
                Scalar::Bool(value.downcast::<PyBool>().map_err(|_| wrong())?.is_true())
            }
            AnyPublisher::Int(_) => {
                if value.is_instance_of::<PyBool>() || !value.is_instance_of::<PyInt>() {
                    return Err(wrong());
                }
                Scalar::Int(value.extract::<i64>()?)
            }
            AnyPublisher::Float(_) => {
                if value.is_instance_of::<PyBool>() {
                    return Err(wrong());
                }
                Scalar::Float(value.extract::<f64>().map_err(|_| wrong())?)
            }
        };
        let send = move || match (inner, v) {
            (AnyPublisher::Bool(p), Scalar::Bool(v)) => p.send(v),
            (AnyPublisher::Int(p), Scalar::Int(v)) => p.send(v),
            (AnyPublisher::Float(p), Scalar::Float(v)) => p.send(v),
            // Not reached: `v` was made for `inner`'s kind above.
            _ => Ok(()),
        };
        let sent = if self.blocks {
            // `Overflow::Block` (from the defaults file): it may wait for a subscriber of
            // this process, which needs the GIL to make room.
            let send = wait::OnThisThread(send);
            value
                .py()
                .allow_threads(move || {
                    let send = send;
                    wait::OnThisThread((send.0)())
                })
                .0
        } else {
            send()
        };
        sent.map_err(errors::to_py)
    }

    /// The topic's name.
    #[getter]
    fn topic(&self) -> PyResult<String> {
        Ok(match self.inner.get()? {
            AnyPublisher::Bool(p) => p.topic().to_owned(),
            AnyPublisher::Int(p) => p.topic().to_owned(),
            AnyPublisher::Float(p) => p.topic().to_owned(),
        })
    }
}

/// Receives the values of topic `name` (of the type of `default_value`).
///
/// `subscribe()` returns `(value, True)` for the next value published (in order, each
/// once), or `(last, False)` when none is waiting: `last` is the last value received, or
/// `default_value` before the first.
#[pyclass(module = "shmx._shmx", name = "SeedSubscriber")]
pub(crate) struct Subscriber {
    inner: Endpoint<AnySubscriber, ()>,
    last: PyObject,
}

#[pymethods]
impl Subscriber {
    #[new]
    #[pyo3(signature = (name, default_value, buffer_num = None, *, root = None))]
    fn new(
        name: &str,
        default_value: &Bound<'_, PyAny>,
        buffer_num: Option<usize>,
        root: Option<PathBuf>,
    ) -> PyResult<Self> {
        let kind = Kind::of(default_value)?;
        macro_rules! make {
            ($t:ty) => {{
                // Without `buffer_num`, the publishers' depths decide (theirs is the seed's
                // `buffer_num`).
                let mut builder = shmx::Subscriber::<$t>::builder(name)
                    .queue_depth(buffer_num.unwrap_or(usize::MAX));
                if let Some(root) = &root {
                    builder = builder.root(root);
                }
                builder.create().map_err(errors::to_py)?
            }};
        }
        let inner = match kind {
            Kind::Bool => AnySubscriber::Bool(make!(bool)),
            Kind::Int => AnySubscriber::Int(make!(i64)),
            Kind::Float => AnySubscriber::Float(make!(f64)),
        };
        Ok(Subscriber {
            inner: Endpoint::new(inner),
            last: default_value.clone().unbind(),
        })
    }

    /// `(value, True)` for the next value, or `(last, False)` if none is waiting.
    fn subscribe(&mut self, py: Python<'_>) -> PyResult<(PyObject, bool)> {
        let taken: Option<PyObject> = match self.inner.get()? {
            AnySubscriber::Bool(s) => s
                .take()
                .map_err(errors::to_py)?
                .map(|v| {
                    (*v).into_pyobject(py)
                        .map(|b| b.to_owned().into_any().unbind())
                })
                .transpose()?,
            AnySubscriber::Int(s) => s
                .take()
                .map_err(errors::to_py)?
                .map(|v| (*v).into_pyobject(py).map(|b| b.into_any().unbind()))
                .transpose()?,
            AnySubscriber::Float(s) => s
                .take()
                .map_err(errors::to_py)?
                .map(|v| (*v).into_pyobject(py).map(|b| b.into_any().unbind()))
                .transpose()?,
        };
        Ok(match taken {
            Some(value) => {
                self.last = value.clone_ref(py);
                (value, true)
            }
            None => (self.last.clone_ref(py), false),
        })
    }

    /// Waits up to `timeout` seconds (`None`: forever) for the next value and returns it, or
    /// `None` if none came. The GIL is released while it waits; Ctrl-C interrupts it.
    #[pyo3(signature = (timeout = None))]
    fn recv(&mut self, py: Python<'_>, timeout: Option<f64>) -> PyResult<Option<PyObject>> {
        let timeout = wait::timeout(timeout)?;
        macro_rules! recv {
            ($s:expr) => {{
                let s = $s;
                // A value waiting now is taken without letting go of the GIL.
                match s.take().map_err(errors::to_py)? {
                    Some(v) => Some(*v),
                    None if timeout == Some(std::time::Duration::ZERO) => None,
                    None => wait::blocking(py, timeout, |slice| {
                        s.recv_timeout(slice).map(|v| v.map(|v| *v))
                    })?,
                }
                .map(|v| {
                    v.into_pyobject(py)
                        .map(|o| o.to_owned().into_any().unbind())
                })
                .transpose()?
            }};
        }
        let value = match self.inner.get()? {
            AnySubscriber::Bool(s) => recv!(s),
            AnySubscriber::Int(s) => recv!(s),
            AnySubscriber::Float(s) => recv!(s),
        };
        if let Some(value) = &value {
            self.last = value.clone_ref(py);
        }
        Ok(value)
    }

    /// A file descriptor that polls readable while values wait (for `select`, asyncio's
    /// `add_reader` and `shmx.WaitSet`).
    fn fileno(&self) -> PyResult<i32> {
        use std::os::fd::AsRawFd;
        let fd = match self.inner.get()? {
            AnySubscriber::Bool(s) => s.fd(),
            AnySubscriber::Int(s) => s.fd(),
            AnySubscriber::Float(s) => s.fd(),
        };
        Ok(fd.map_err(errors::to_py)?.as_raw_fd())
    }

    /// Whether values wait now (nothing is taken); when none does, clears a readiness of
    /// the descriptor that did not mean values.
    fn samples_waiting(&self) -> PyResult<bool> {
        Ok(match self.inner.get()? {
            AnySubscriber::Bool(s) => s.samples_waiting(),
            AnySubscriber::Int(s) => s.samples_waiting(),
            AnySubscriber::Float(s) => s.samples_waiting(),
        })
    }

    /// The topic's name.
    #[getter]
    fn topic(&self) -> PyResult<String> {
        Ok(match self.inner.get()? {
            AnySubscriber::Bool(s) => s.topic().to_owned(),
            AnySubscriber::Int(s) => s.topic().to_owned(),
            AnySubscriber::Float(s) => s.topic().to_owned(),
        })
    }
}
