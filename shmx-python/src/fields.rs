//! Message layouts for Python: schema text parsed into nested tuples (from which the Python
//! part builds numpy dtypes), and the primitive fields of a struct read and written in
//! place without numpy, bounds-checked against the bytes of the sample.

use crate::errors;
use pyo3::exceptions::{PyOverflowError, PyTypeError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyFloat, PyList, PyTuple};
use pyo3::IntoPyObjectExt;
use shmx::message::Primitive;
use shmx::schema_text::{MessageType, Ty};
use std::collections::HashMap;

/// `parse_schema(text)`: `(canonical_text, fingerprint, size, align, sample_align, tree)`
/// for the schema text of a message type, or `shmx.InvalidSchema`. The tree is nested tuples:
/// `("prim", name, size, align)`, `("struct", name, size, align, [(field, offset, tree), ...])`,
/// `("array", tree, len, size, align)`, `("enum", name, repr, size, [(variant, value), ...])`,
/// `("rel", tree)` and `("relstr",)`.
#[pyfunction]
pub(crate) fn parse_schema(
    py: Python<'_>,
    text: &str,
) -> PyResult<(String, u64, usize, usize, usize, PyObject)> {
    let ty = MessageType::parse(text).map_err(errors::to_py)?;
    let tree = tree(py, ty.ty())?;
    Ok((
        ty.schema().to_owned(),
        ty.fingerprint(),
        ty.size(),
        ty.align(),
        ty.ty().sample_align(),
        tree,
    ))
}

fn tree(py: Python<'_>, ty: &Ty) -> PyResult<PyObject> {
    let t = match ty {
        Ty::Primitive(p) => ("prim", p.name(), p.size(), p.align()).into_py_any(py)?,
        Ty::Struct {
            name,
            fields,
            size,
            align,
        } => {
            let list = PyList::empty(py);
            for (field, offset, ty) in fields {
                list.append((field.as_str(), *offset, tree(py, ty)?))?;
            }
            ("struct", name.as_str(), *size, *align, list).into_py_any(py)?
        }
        Ty::Array { elem, len } => {
            ("array", tree(py, elem)?, *len, ty.size(), ty.align()).into_py_any(py)?
        }
        Ty::Enum {
            name,
            repr,
            variants,
        } => {
            let list = PyList::empty(py);
            for (variant, value) in variants {
                list.append((variant.as_str(), *value))?;
            }
            ("enum", name.as_str(), repr.name(), repr.size(), list).into_py_any(py)?
        }
        Ty::RelSlice { elem } => ("rel", tree(py, elem)?).into_py_any(py)?,
        Ty::RelStr => PyTuple::new(py, ["relstr"])?.into_any().unbind(),
    };
    Ok(t)
}

/// The attributes of samples and loans, which a field of the same name does not hide.
const RESERVED: [&str; 13] = [
    "sequence",
    "publisher_id",
    "nbytes",
    "message_size",
    "address",
    "topic",
    "type",
    "capacity",
    "published",
    "value",
    "to_dict",
    "alloc",
    "mro",
];

/// What samples and loans know of a field of their message struct.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Field {
    /// A primitive at this byte: read and written without numpy.
    Primitive(usize, Primitive),
    /// A `RelSlice` of primitives whose relative pointer lies at this byte: a numpy array
    /// made without the Python part.
    RelSlice(usize, Primitive),
    /// Another field (arrays, structs, enums, strings, other slices): the Python part's.
    Other,
}

/// The fields of a message struct, by name: the primitives, which Python reads and writes
/// without numpy, the slices of primitives, and the others (which go through the Python
/// part's numpy views).
pub(crate) struct Fields {
    /// The message type's name, for errors.
    pub type_name: String,
    by_name: HashMap<String, Field>,
}

impl Fields {
    /// The fields of `ty` if it is a struct (none otherwise), but those whose names samples
    /// and loans use themselves ([`RESERVED`], and names that start with `_`): those read
    /// through the Python part (`s["sequence"]`).
    pub(crate) fn of(ty: &Ty) -> Fields {
        let mut by_name = HashMap::new();
        if let Ty::Struct { fields, .. } = ty {
            for (name, offset, field) in fields {
                if name.starts_with('_') || RESERVED.contains(&name.as_str()) {
                    continue;
                }
                let f = match field {
                    Ty::Primitive(p) => Field::Primitive(*offset, *p),
                    Ty::RelSlice { elem } => match **elem {
                        Ty::Primitive(p) => Field::RelSlice(*offset, p),
                        _ => Field::Other,
                    },
                    _ => Field::Other,
                };
                by_name.insert(name.clone(), f);
            }
        }
        Fields {
            type_name: ty.type_name().to_owned(),
            by_name,
        }
    }

    /// Field `name` if samples and loans look it up before their own attributes (not one of
    /// [`RESERVED`], nor starting with `_`).
    pub(crate) fn lookup(&self, name: &str) -> Option<Field> {
        self.by_name.get(name).copied()
    }

    /// Where primitive field `name` lies, and its type.
    pub(crate) fn get(&self, name: &str) -> Option<(usize, Primitive)> {
        match self.by_name.get(name) {
            Some(&Field::Primitive(at, p)) => Some((at, p)),
            _ => None,
        }
    }
}

/// Reads primitive `p` at byte `offset` of the `len` bytes at `base`.
///
/// # Safety
/// `base` must be valid for reads of `len` bytes and aligned to at least 16 (a payload's
/// alignment; the schema aligns `offset` for `p`).
pub(crate) unsafe fn read(
    py: Python<'_>,
    base: *const u8,
    len: usize,
    offset: usize,
    p: Primitive,
    topic: &str,
    sequence: u64,
) -> PyResult<PyObject> {
    if offset.checked_add(p.size()).is_none_or(|end| end > len) || offset % p.align() != 0 {
        // The field tables come from the topic's parsed schema: never for a sample that
        // holds the whole message.
        return Err(errors::to_py(shmx::Error::InvalidSample {
            topic: topic.to_owned(),
            sequence,
            reason: format!("no aligned {} at byte {offset} of {len}", p.name()),
        }));
    }
    // SAFETY: `offset + size ≤ len` (checked above) and the caller's `base` is valid for
    // `len` bytes; `base` is 16-aligned and `offset` a multiple of the primitive's
    // alignment (checked), so the pointer is aligned. Volatile: another process may write
    // the bytes (a value read is then whatever they held, never undefined behaviour of
    // ours: every bit pattern is a valid integer or float, and `bool` is read as a byte).
    let at = unsafe { base.add(offset) };
    macro_rules! get {
        ($t:ty) => {
            // SAFETY: see above.
            unsafe { at.cast::<$t>().read_volatile() }.into_py_any(py)
        };
    }
    match p {
        Primitive::U8 => get!(u8),
        Primitive::U16 => get!(u16),
        Primitive::U32 => get!(u32),
        Primitive::U64 => get!(u64),
        Primitive::U128 => get!(u128),
        Primitive::I8 => get!(i8),
        Primitive::I16 => get!(i16),
        Primitive::I32 => get!(i32),
        Primitive::I64 => get!(i64),
        Primitive::I128 => get!(i128),
        Primitive::F32 => get!(f32),
        Primitive::F64 => get!(f64),
        Primitive::Bool => {
            // SAFETY: see above; read as a byte, whatever it holds.
            match unsafe { at.read_volatile() } {
                0 => false.into_py_any(py),
                1 => true.into_py_any(py),
                b => Err(errors::to_py(shmx::Error::InvalidSample {
                    topic: topic.to_owned(),
                    sequence,
                    reason: format!("byte {b} at byte {offset} is not a bool"),
                })),
            }
        }
    }
}

/// The relative pointer at byte `at` of the `len` bytes at `base` (a message of `size` bytes
/// and its tail): `(start, count)` of its `count` elements of `elem_size` bytes aligned to
/// `elem_align`, checked to lie whole and aligned in the tail (`(0, 0)` when empty). The
/// offset and the count come from shared memory: each is read once, and what is returned
/// is what was checked.
///
/// # Safety
/// As [`read`].
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn rel_span(
    base: *const u8,
    len: usize,
    size: usize,
    at: usize,
    (elem_size, elem_align): (usize, usize),
    topic: &str,
    sequence: u64,
) -> PyResult<(usize, usize)> {
    let invalid = |reason: String| {
        errors::to_py(shmx::Error::InvalidSample {
            topic: topic.to_owned(),
            sequence,
            reason,
        })
    };
    if at.checked_add(8).is_none_or(|end| end > size) || at % 4 != 0 {
        return Err(invalid(format!(
            "no relative pointer at byte {at} of {size}"
        )));
    }
    // SAFETY: `at + 8 ≤ size ≤ len` (checked; a sample holds its whole message) and `at` is
    // 4-aligned in a 16-aligned payload; volatile, as in `read`.
    let (off, count) = unsafe {
        let p = base.add(at).cast::<u32>();
        (
            p.read_volatile() as usize,
            p.add(1).read_volatile() as usize,
        )
    };
    if count == 0 {
        return Ok((0, 0));
    }
    let start = at + off;
    let end = count
        .checked_mul(elem_size)
        .and_then(|n| n.checked_add(start));
    if start < size || end.is_none_or(|e| e > len) || start % elem_align.max(1) != 0 {
        return Err(invalid(format!(
            "relative pointer at byte {at} ({off}, {count}) does not lie aligned in the tail \
             (bytes {size}..{len})"
        )));
    }
    Ok((start, count))
}

/// `value` as primitive `p`, in native byte order (the first `p.size()` bytes), for field
/// `field` of type `type_name` (`TypeError` for a value of the wrong type, `OverflowError`
/// for one out of range). Converting may run Python code (`__index__`, `__float__`): a loan
/// is checked after it, just before [`store`].
pub(crate) fn convert(
    value: &Bound<'_, PyAny>,
    p: Primitive,
    (type_name, field): (&str, &str),
) -> PyResult<[u8; 16]> {
    let wrong = || {
        let got = value
            .get_type()
            .name()
            .map_or_else(|_| "?".to_owned(), |n| n.to_string());
        PyTypeError::new_err(format!(
            "field `{field}` of {type_name} is a {}, not {got}",
            p.name()
        ))
    };
    let mut out = [0u8; 16];
    macro_rules! int {
        ($t:ty) => {{
            if value.is_instance_of::<PyBool>() || value.is_instance_of::<PyFloat>() {
                return Err(wrong());
            }
            // Any int-like (`__index__`: Python and numpy integers), in range.
            let v: $t = match value.extract::<$t>() {
                Ok(v) => v,
                Err(e) if e.is_instance_of::<PyOverflowError>(value.py()) => {
                    return Err(PyOverflowError::new_err(format!(
                        "field `{field}` of {type_name} is a {}: {} is out of range",
                        p.name(),
                        value
                            .repr()
                            .map_or_else(|_| "?".to_owned(), |r| r.to_string())
                    )))
                }
                Err(_) => return Err(wrong()),
            };
            let b = v.to_ne_bytes();
            out[..b.len()].copy_from_slice(&b);
        }};
    }
    macro_rules! float {
        ($t:ty) => {{
            if value.is_instance_of::<PyBool>() {
                return Err(wrong());
            }
            let v: f64 = value.extract().map_err(|_| wrong())?;
            let b = (v as $t).to_ne_bytes();
            out[..b.len()].copy_from_slice(&b);
        }};
    }
    match p {
        Primitive::U8 => int!(u8),
        Primitive::U16 => int!(u16),
        Primitive::U32 => int!(u32),
        Primitive::U64 => int!(u64),
        Primitive::U128 => int!(u128),
        Primitive::I8 => int!(i8),
        Primitive::I16 => int!(i16),
        Primitive::I32 => int!(i32),
        Primitive::I64 => int!(i64),
        Primitive::I128 => int!(i128),
        Primitive::F32 => float!(f32),
        Primitive::F64 => float!(f64),
        Primitive::Bool => {
            // `bool` and numpy's `bool_` only.
            let numpy_bool = || {
                value
                    .get_type()
                    .name()
                    .is_ok_and(|n| n == "bool" || n == "bool_")
            };
            if !(value.is_instance_of::<PyBool>() || numpy_bool()) {
                return Err(wrong());
            }
            out[0] = u8::from(value.is_truthy()?);
        }
    }
    Ok(out)
}

/// Stores `bytes` (from [`convert`]) as primitive `p` at byte `offset` of the `len` bytes at
/// `base`; field `field` of type `type_name` names it in errors.
///
/// # Safety
/// `base` must be valid for writes of `len` bytes and written by no one else meanwhile (a
/// loaned chunk), and no Python code may run between the check that vouches for this and
/// this call.
pub(crate) unsafe fn store(
    base: *mut u8,
    len: usize,
    offset: usize,
    p: Primitive,
    bytes: &[u8; 16],
    (type_name, field): (&str, &str),
) -> PyResult<()> {
    if offset.checked_add(p.size()).is_none_or(|end| end > len) || offset % p.align() != 0 {
        return Err(PyTypeError::new_err(format!(
            "field `{field}` of {type_name} does not lie aligned in the loaned chunk"
        )));
    }
    // SAFETY: `offset + size ≤ len` (checked above), within the caller's `len` writable
    // bytes, ours alone (the caller vouches); `bytes` is our own array of 16 ≥ size bytes.
    unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), base.add(offset), p.size()) };
    Ok(())
}
