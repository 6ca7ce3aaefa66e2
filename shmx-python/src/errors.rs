//! `shmx.Error` and one subclass per variant of `shmx::Error`, with the same message.

use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;

create_exception!(shmx, Error, PyException, "Every error of shmx.");

macro_rules! variants {
    ($($name:ident: $doc:literal),* $(,)?) => {
        $(create_exception!(shmx, $name, Error, $doc);)*

        /// The Python exception of `e`, with its message.
        pub fn to_py(e: shmx::Error) -> PyErr {
            let message = e.to_string();
            match e {
                $(shmx::Error::$name { .. } => $name::new_err(message),)*
                _ => Error::new_err(message),
            }
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
}
