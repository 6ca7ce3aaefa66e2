//! `shmx.Error` and one subclass per variant of `shmx::Error`, with the same message.

use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;

create_exception!(shmx, Error, PyException, "Every error of shmx.");

macro_rules! variants {
    ($($name:ident: $doc:literal),* $(,)?) => {
        $(create_exception!(shmx, $name, Error, $doc);)*

        /// The Python exception of `e`: its message, and its context as attributes (see
        /// [`context`]).
        pub fn to_py(e: shmx::Error) -> PyErr {
            let message = e.to_string();
            let err = match &e {
                $(shmx::Error::$name { .. } => $name::new_err(message),)*
                _ => Error::new_err(message),
            };
            Python::with_gil(|py| {
                let value = err.value(py);
                for (key, v) in context(py, &e) {
                    // An attribute that cannot be set leaves the message, which says it all.
                    let _ = value.setattr(key, v);
                }
            });
            err
        }

        /// Adds `Error` and its subclasses to module `m`.
        pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
            let py = m.py();
            m.add("Error", py.get_type::<Error>())?;
            $(m.add(stringify!($name), py.get_type::<$name>())?;)*
            Ok(())
        }
    };
}

variants! {
    InvalidName: "The topic name cannot be used.",
    TypeMismatch: "The topic exists with another message type.",
    QueueFull: "A subscriber's queue was full (Overflow.FAIL).",
    PoolExhausted: "Every chunk of the publisher's pool is in use.",
    BudgetExceeded: "The pool may not grow past a memory budget.",
    LoanLimit: "The publisher lends out as many samples as max_loans allows.",
    HeldLimit: "The subscriber holds as many samples as max_held allows.",
    Timeout: "A wait ended before what it waited for.",
    Corrupt: "A shared-memory file is not what shmx wrote.",
    Version: "A shared-memory file of another layout version.",
    PermissionDenied: "A file or directory that this process may not use or trust.",
    OutOfSpace: "Shared memory is full.",
    TooManyParticipants: "All publisher or subscriber slots of the topic are taken.",
    InvalidConfig: "A configuration the topic or the endpoint refuses.",
    InvalidSchema: "Schema text that describes no message type.",
    InvalidSample: "A sample that is not a valid value of its type.",
    TailFull: "The tail of a sample is full.",
    ForeignTail: "A relative pointer given the tail of another sample.",
    Archive: "An archive that could not be written or read.",
    Config: "The defaults file cannot be used.",
    Io: "An operating-system error.",
    PeerGone: "The other side of a request is gone (its server or its client).",
    InFlightLimit: "A client has as many requests in flight as max_in_flight allows.",
}

/// The fields of `e` as `(name, value)` pairs: the same context the Rust error carries
/// (`e.topic`, `e.path`, `e.existing_fingerprint`, …, and `e.errno` for `Io`).
fn context<'py>(py: Python<'py>, e: &shmx::Error) -> Vec<(&'static str, Bound<'py, PyAny>)> {
    use pyo3::IntoPyObjectExt;
    use shmx::Error as E;
    let mut out: Vec<(&'static str, Bound<'py, PyAny>)> = Vec::new();
    let mut put = |k: &'static str, v: PyResult<Bound<'py, PyAny>>| {
        if let Ok(v) = v {
            out.push((k, v));
        }
    };
    let s = |v: &str| v.into_bound_py_any(py);
    let path = |v: &std::path::Path| v.to_string_lossy().into_owned().into_bound_py_any(py);
    match e {
        E::InvalidName { name, reason } => {
            put("name", s(name));
            put("reason", s(reason));
        }
        E::TypeMismatch {
            topic,
            existing_type,
            existing_fingerprint,
            existing_size,
            requested_type,
            requested_fingerprint,
            requested_size,
            difference,
        } => {
            put("topic", s(topic));
            put("existing_type", s(existing_type));
            put(
                "existing_fingerprint",
                existing_fingerprint.into_bound_py_any(py),
            );
            put("existing_size", existing_size.into_bound_py_any(py));
            put("requested_type", s(requested_type));
            put(
                "requested_fingerprint",
                requested_fingerprint.into_bound_py_any(py),
            );
            put("requested_size", requested_size.into_bound_py_any(py));
            put("difference", s(difference));
        }
        E::QueueFull { topic, depth } => {
            put("topic", s(topic));
            put("depth", depth.into_bound_py_any(py));
        }
        E::PoolExhausted { topic, chunks } => {
            put("topic", s(topic));
            put("chunks", chunks.into_bound_py_any(py));
        }
        E::BudgetExceeded {
            topic,
            budget,
            limit,
            reserved,
            wanted,
        } => {
            put("topic", s(topic));
            put("budget", s(budget));
            put("limit", limit.into_bound_py_any(py));
            put("reserved", reserved.into_bound_py_any(py));
            put("wanted", wanted.into_bound_py_any(py));
        }
        E::LoanLimit { topic, max_loans } => {
            put("topic", s(topic));
            put("max_loans", max_loans.into_bound_py_any(py));
        }
        E::HeldLimit { topic, max_held } => {
            put("topic", s(topic));
            put("max_held", max_held.into_bound_py_any(py));
        }
        E::PeerGone { service, reason } => {
            put("service", s(service));
            put("reason", s(reason));
        }
        E::InFlightLimit {
            service,
            max_in_flight,
        } => {
            put("service", s(service));
            put("max_in_flight", max_in_flight.into_bound_py_any(py));
        }
        E::Timeout { topic, operation } => {
            put("topic", s(topic));
            put("operation", s(operation));
        }
        E::Corrupt { path: p, reason } | E::PermissionDenied { path: p, reason } => {
            put("path", path(p));
            put("reason", s(reason));
        }
        E::Version {
            path: p,
            found,
            expected,
        } => {
            put("path", path(p));
            put("found", found.into_bound_py_any(py));
            put("expected", expected.into_bound_py_any(py));
        }
        E::OutOfSpace { path: p, bytes } => {
            put("path", path(p));
            put("bytes", bytes.into_bound_py_any(py));
        }
        E::TooManyParticipants { topic, role, max } => {
            put("topic", s(topic));
            put("role", s(role));
            put("max", max.into_bound_py_any(py));
        }
        E::InvalidConfig { topic, reason } | E::Archive { topic, reason } => {
            put("topic", s(topic));
            put("reason", s(reason));
        }
        E::InvalidSchema { reason } => put("reason", s(reason)),
        E::InvalidSample {
            topic,
            sequence,
            reason,
        } => {
            put("topic", s(topic));
            put("sequence", sequence.into_bound_py_any(py));
            put("reason", s(reason));
        }
        E::TailFull {
            topic,
            requested,
            available,
        } => {
            put("topic", s(topic));
            put("requested", requested.into_bound_py_any(py));
            put("available", available.into_bound_py_any(py));
        }
        E::ForeignTail { topic } => put("topic", s(topic)),
        E::Config {
            path: p,
            line,
            column,
            reason,
        } => {
            put("path", path(p));
            put("line", line.into_bound_py_any(py));
            put("column", column.into_bound_py_any(py));
            put("reason", s(reason));
        }
        E::Io { path: p, source } => {
            put("path", path(p));
            put("errno", source.raw_os_error().into_bound_py_any(py));
            put("strerror", s(&source.to_string()));
        }
        _ => {}
    }
    out
}
