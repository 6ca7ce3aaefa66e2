//! Python bindings of shmx (`import shmx`): the seed's simple API for `bool`, `int` and
//! `float` topics, the same topics as Rust's `Publisher<bool>`, `Publisher<i64>` and
//! `Publisher<f64>`.
//!
//! Built with maturin (`shmx-python/pyproject.toml`); the Rust core stays free of Python.

mod errors;

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyFloat, PyInt};

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

enum AnyPublisher {
    Bool(shmx::Publisher<bool>),
    Int(shmx::Publisher<i64>),
    Float(shmx::Publisher<f64>),
}

enum AnySubscriber {
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
#[pyclass(unsendable, module = "shmx")]
struct Publisher {
    inner: AnyPublisher,
    kind: Kind,
}

#[pymethods]
impl Publisher {
    #[new]
    #[pyo3(signature = (name, default_value, buffer_num = 16))]
    fn new(name: &str, default_value: &Bound<'_, PyAny>, buffer_num: usize) -> PyResult<Self> {
        let kind = Kind::of(default_value)?;
        macro_rules! make {
            ($t:ty) => {
                shmx::Publisher::<$t>::builder(name)
                    .queue_depth(buffer_num)
                    .history(1)
                    .create()
                    .map_err(errors::to_py)?
            };
        }
        let inner = match kind {
            Kind::Bool => AnyPublisher::Bool(make!(bool)),
            Kind::Int => AnyPublisher::Int(make!(i64)),
            Kind::Float => AnyPublisher::Float(make!(f64)),
        };
        Ok(Publisher { inner, kind })
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
        let sent = match &self.inner {
            AnyPublisher::Bool(p) => {
                let v: bool = value.downcast::<PyBool>().map_err(|_| wrong())?.is_true();
                p.send(v)
            }
            AnyPublisher::Int(p) => {
                if value.is_instance_of::<PyBool>() || !value.is_instance_of::<PyInt>() {
                    return Err(wrong());
                }
                p.send(value.extract::<i64>()?)
            }
            AnyPublisher::Float(p) => {
                if value.is_instance_of::<PyBool>() {
                    return Err(wrong());
                }
                p.send(value.extract::<f64>().map_err(|_| wrong())?)
            }
        };
        sent.map_err(errors::to_py)
    }

    /// The topic's name.
    #[getter]
    fn topic(&self) -> String {
        match &self.inner {
            AnyPublisher::Bool(p) => p.topic().to_owned(),
            AnyPublisher::Int(p) => p.topic().to_owned(),
            AnyPublisher::Float(p) => p.topic().to_owned(),
        }
    }
}

/// Receives the values of topic `name` (of the type of `default_value`).
///
/// `subscribe()` returns `(value, True)` for the next value published (in order, each
/// once), or `(last, False)` when none is waiting: `last` is the last value received, or
/// `default_value` before the first.
#[pyclass(unsendable, module = "shmx")]
struct Subscriber {
    inner: AnySubscriber,
    last: PyObject,
}

#[pymethods]
impl Subscriber {
    #[new]
    #[pyo3(signature = (name, default_value))]
    fn new(name: &str, default_value: &Bound<'_, PyAny>) -> PyResult<Self> {
        let kind = Kind::of(default_value)?;
        macro_rules! make {
            ($t:ty) => {
                shmx::Subscriber::<$t>::new(name).map_err(errors::to_py)?
            };
        }
        let inner = match kind {
            Kind::Bool => AnySubscriber::Bool(make!(bool)),
            Kind::Int => AnySubscriber::Int(make!(i64)),
            Kind::Float => AnySubscriber::Float(make!(f64)),
        };
        Ok(Subscriber {
            inner,
            last: default_value.clone().unbind(),
        })
    }

    /// `(value, True)` for the next value, or `(last, False)` if none is waiting.
    fn subscribe(&mut self, py: Python<'_>) -> PyResult<(PyObject, bool)> {
        let taken: Option<PyObject> = match &self.inner {
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
}

/// `shmx._shmx`: the compiled part of the `shmx` package.
#[pymodule]
fn _shmx(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Publisher>()?;
    m.add_class::<Subscriber>()?;
    errors::register(m)?;
    Ok(())
}
