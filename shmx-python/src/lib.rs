//! Python bindings of shmx (`import shmx`): the seed's simple API for `bool`, `int` and
//! `float` topics ([`seed`]), and endpoints of any message type by its schema text
//! ([`typed`]), whose samples Python sees as numpy views of the shared chunks.
//!
//! Built with maturin (`shmx-python/pyproject.toml`); the Rust core stays free of Python.
//! The pure-Python part of the package (`python/shmx/`) declares message types, builds
//! numpy dtypes and views, and gives the endpoints their Python shape.

mod errors;
mod fields;
mod seed;
mod thread;
mod typed;
mod wait;

use pyo3::prelude::*;

/// `shmx._shmx`: the compiled part of the `shmx` package.
#[pymodule]
fn _shmx(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<seed::Publisher>()?;
    m.add_class::<seed::Subscriber>()?;
    m.add_class::<typed::RawPublisher>()?;
    m.add_class::<typed::RawSubscriber>()?;
    m.add_class::<typed::Sample>()?;
    m.add_class::<typed::Loan>()?;
    m.add_function(wrap_pyfunction!(fields::parse_schema, m)?)?;
    m.add_function(wrap_pyfunction!(thread::forked, m)?)?;
    errors::register(m)?;
    Ok(())
}
