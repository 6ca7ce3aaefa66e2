//! numpy arrays over the bytes of a sample or loan, made through numpy's C API in one call
//! (no `__array_interface__` dictionary for numpy to parse): the array's base is the sample
//! or loan, which keeps the chunk for as long as the array lives.

use numpy::npyffi::{self, npy_intp, NPY_ARRAY_WRITEABLE, PY_ARRAY_API};
use numpy::{PyArrayDescr, PyArrayDescrMethods};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use shmx::message::Primitive;

/// The most dimensions an array view has (numpy's own limit is 64).
const MAX_DIMS: usize = 32;

/// The numpy dtype of primitive `p`, if numpy has one (it has no 128-bit integers).
pub(crate) fn dtype_of(py: Python<'_>, p: Primitive) -> Option<Bound<'_, PyArrayDescr>> {
    use numpy::dtype;
    Some(match p {
        Primitive::U8 => dtype::<u8>(py),
        Primitive::U16 => dtype::<u16>(py),
        Primitive::U32 => dtype::<u32>(py),
        Primitive::U64 => dtype::<u64>(py),
        Primitive::I8 => dtype::<i8>(py),
        Primitive::I16 => dtype::<i16>(py),
        Primitive::I32 => dtype::<i32>(py),
        Primitive::I64 => dtype::<i64>(py),
        Primitive::F32 => dtype::<f32>(py),
        Primitive::F64 => dtype::<f64>(py),
        Primitive::Bool => dtype::<bool>(py),
        _ => return None,
    })
}

/// Bytes that an array of `shape` elements of `dtype` spans, if it fits a `usize`.
pub(crate) fn span(shape: &[usize], dtype: &Bound<'_, PyArrayDescr>) -> Option<usize> {
    shape
        .iter()
        .try_fold(dtype.itemsize(), |n, &d| n.checked_mul(d))
}

/// A C-contiguous numpy array of `shape` elements of `dtype` at `addr`, whose base is
/// `owner`; writable only if `writable`.
///
/// # Safety
/// `addr` must be valid (for writes, if `writable`) for `span(shape, dtype)` bytes, aligned
/// to the dtype's alignment, for as long as `owner` lives.
pub(crate) unsafe fn array_view(
    owner: &Bound<'_, PyAny>,
    addr: usize,
    shape: &[usize],
    dtype: Bound<'_, PyArrayDescr>,
    writable: bool,
) -> PyResult<PyObject> {
    let py = owner.py();
    if shape.len() > MAX_DIMS {
        return Err(PyValueError::new_err(format!(
            "an array of {} dimensions: over {MAX_DIMS}",
            shape.len()
        )));
    }
    let mut dims = [0 as npy_intp; MAX_DIMS];
    for (d, &n) in dims.iter_mut().zip(shape) {
        *d = npy_intp::try_from(n)
            .map_err(|_| PyValueError::new_err(format!("a dimension of {n}: too long")))?;
    }
    let flags = if writable { NPY_ARRAY_WRITEABLE } else { 0 };
    // SAFETY: numpy's C API (loaded by `PY_ARRAY_API` under the GIL, which `py` proves).
    // `PyArray_NewFromDescr` steals the descriptor's reference (`into_dtype_ptr` hands one
    // over) and, given `data`, makes an array that points into it without owning it: valid
    // for its span while `owner` lives (the caller's contract), which `PyArray_SetBaseObject`
    // makes the array keep alive (it steals the reference `into_ptr` hands over). NULL
    // strides: C order.
    unsafe {
        let array = PY_ARRAY_API.PyArray_NewFromDescr(
            py,
            PY_ARRAY_API.get_type_object(py, npyffi::NpyTypes::PyArray_Type),
            dtype.into_dtype_ptr(),
            shape.len() as std::os::raw::c_int,
            dims.as_mut_ptr(),
            std::ptr::null_mut(),
            addr as *mut std::os::raw::c_void,
            flags,
            std::ptr::null_mut(),
        );
        let array = Bound::from_owned_ptr_or_err(py, array)?;
        let base = owner.clone().into_ptr();
        if PY_ARRAY_API.PyArray_SetBaseObject(py, array.as_ptr().cast(), base) < 0 {
            // It took the reference even so (numpy releases it on failure).
            return Err(PyErr::fetch(py));
        }
        Ok(array.unbind())
    }
}

/// Checks that an array of `shape` elements of `dtype` from byte `start` lies within `len`
/// bytes and holds no Python objects (whose pointers the bytes would be taken for).
pub(crate) fn check(
    shape: &[usize],
    dtype: &Bound<'_, PyArrayDescr>,
    start: usize,
    len: usize,
    topic: &str,
) -> PyResult<()> {
    if dtype.has_object() {
        return Err(PyValueError::new_err(
            "a view of shared memory holds no Python objects",
        ));
    }
    let end = span(shape, dtype).and_then(|n| start.checked_add(n));
    match end {
        Some(end) if end <= len => Ok(()),
        _ => Err(PyValueError::new_err(format!(
            "topic {topic:?}: an array of {shape:?} {} from byte {start} does not lie in the \
             {len} bytes",
            dtype
                .repr()
                .map_or_else(|_| "?".to_owned(), |r| r.to_string())
        ))),
    }
}
