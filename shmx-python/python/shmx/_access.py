"""Reading and writing the fields of samples and loans in place: nested structs as views,
arrays and relative slices as numpy arrays over the chunk (read-only for samples), strings,
enums, and the relative pointers a loan's fields get in its tail. The compiled part reads and
writes top-level primitive fields itself; it asks these functions for the rest.
"""

import numpy as np

from . import _shmx
from ._types import (Array, EnumType, Primitive, RelSlice, RelStr, StructType, _RelStr,
                     u8)

def _invalid(obj, why):
    return _shmx.InvalidSample(f"topic {obj.topic!r}: invalid sample "
                               f"{getattr(obj, 'sequence', 0)}: {why}")


class StructView:
    """A struct inside a sample or loan: fields by name (``v.x``, ``v["x"]``) in place."""

    __slots__ = ("_obj", "_t", "_at")

    def __init__(self, obj, t, at):
        object.__setattr__(self, "_obj", obj)
        object.__setattr__(self, "_t", t)
        object.__setattr__(self, "_at", at)

    def __getattr__(self, name):
        return _get_field(self._obj, self._t, self._at, name)

    __getitem__ = __getattr__

    def __setattr__(self, name, value):
        _set_field(self._obj, self._t, self._at, name, value)

    __setitem__ = __setattr__

    def __repr__(self):
        return _repr_struct(self._obj, self._t, self._at)


def _elem_view(obj, start, count, elem):
    """``count`` elements of type ``elem`` from byte ``start`` of sample or loan ``obj``, as
    a numpy array over the chunk (read-only for a sample; its base is ``obj``): one call into
    numpy's C API, bounds-checked by the compiled part, no copy."""
    shape = [count]
    base = elem
    while isinstance(base, Array):
        shape.append(base.len)
        base = base.elem
    if elem.size == 0:
        # Elements of no bytes (`[T; 0]`, empty structs): nothing to view.
        empty = np.zeros(shape, dtype=base.dtype)
        empty.flags.writeable = False
        return empty
    return obj._view(start, shape, base.dtype)


def _get_field(obj, t, base, name):
    if not isinstance(t, StructType):
        if name == "value":
            return _get_value(obj, t, base, "value")
        raise AttributeError(f"a sample of {t.schema} has only `value`")
    f = t.by_name.get(name)
    if f is None:
        if name == "value" and base == 0:
            return _elem_view(obj, 0, 1, t).reshape(())
        if name.startswith("alloc_") and name[6:] in t.by_name:
            return lambda n: _alloc(obj, t, base, name[6:], n)
        if name == "alloc":
            return lambda field, n: _alloc(obj, t, base, field, n)
        if name == "to_dict":
            return lambda: _to_dict(obj, t, base)
        raise AttributeError(f"{t.name} has no field `{name}`")
    at, ft = f
    return _get_value(obj, ft, base + at, name)


def _get_value(obj, ft, at, name):
    if isinstance(ft, Primitive):
        return obj._read(at, ft.name)
    if isinstance(ft, StructType):
        return StructView(obj, ft, at)
    if isinstance(ft, EnumType):
        v = obj._read(at, ft.repr.name)
        if v not in ft.values:
            raise _invalid(obj, f"{v} at byte {at} is no variant of {ft.name}")
        try:
            return ft.cls(v)
        except Exception:
            return v
    if isinstance(ft, Array):
        return _elem_view(obj, at, 1, ft)[0]
    if isinstance(ft, RelSlice):
        # Read once and checked in the compiled part (the words come from shared memory).
        start, count = obj._rel_span(at, ft.elem.size, ft.elem.align)
        return _elem_view(obj, start, count, ft.elem)
    if ft is RelStr:
        start, count = obj._rel_span(at, 1, 1)
        try:
            return _elem_view(obj, start, count, u8).tobytes().decode("utf-8")
        except UnicodeDecodeError as e:
            raise _invalid(obj, f"field `{name}` is not UTF-8: {e}") from None
    raise AttributeError(name)


def _alloc(obj, t, base, name, n):
    """Gives field ``name`` (a RelSlice or RelStr) ``n`` elements (bytes for a RelStr) of
    the loan's tail and returns them as a writable numpy array."""
    f = t.by_name.get(name)
    if f is None or not isinstance(f[1], (RelSlice, _RelStr)):
        raise AttributeError(f"{t.name} has no RelSlice or RelStr field `{name}`")
    at, ft = f
    at += base
    elem = ft.elem if isinstance(ft, RelSlice) else u8
    if not isinstance(n, int) or n < 0 or n >= 1 << 32:
        raise TypeError(f"field `{name}`: a count is an int in 0..2**32, not {n!r}")
    return _alloc_at(obj, at, elem, n, name)


def _set_field(obj, t, base, name, value):
    if not isinstance(t, StructType):
        if name == "value":
            _set_value(obj, t, base, "value", value)
            return
        raise AttributeError(f"a message of {t.schema} has only `value`")
    f = t.by_name.get(name)
    if f is None:
        raise AttributeError(f"{t.name} has no field `{name}`")
    at, ft = f
    _set_value(obj, ft, base + at, name, value)


def _set_value(obj, ft, at, name, value):
    if isinstance(ft, Primitive):
        obj._write(at, ft.name, value, name)
    elif isinstance(ft, EnumType):
        if isinstance(value, str):
            try:
                value = ft.cls[value]
            except KeyError:
                raise TypeError(f"field `{name}`: {ft.name} has no variant {value!r}") from None
        elif isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"field `{name}` is a {ft.name}, not {type(value).__name__}")
        if int(value) not in {v for _, v in ft.variants}:
            raise TypeError(f"field `{name}`: {value!r} is no variant of {ft.name}")
        obj._write(at, ft.repr.name, int(value), name)
    elif isinstance(ft, StructType):
        view = StructView(obj, ft, at)
        if isinstance(value, dict):
            for k, v in value.items():
                view[k] = v
        elif isinstance(value, (tuple, list)):
            if len(value) != len(ft.fields):
                raise TypeError(f"field `{name}`: {ft.name} has {len(ft.fields)} fields, "
                                f"not {len(value)}")
            for (k, _, _), v in zip(ft.fields, value):
                view[k] = v
        else:
            raise TypeError(f"field `{name}` is a {ft.name}: give a dict or a tuple, not "
                            f"{type(value).__name__}")
    elif isinstance(ft, Array):
        target = _elem_view(obj, at, 1, ft)[0]
        try:
            src = np.asarray(value)
            if src.dtype.kind in "OUS":
                raise TypeError(f"an array of {src.dtype}")
            target[...] = src
        except (TypeError, ValueError) as e:
            raise TypeError(f"field `{name}` is {ft.schema}: {e}") from None
    elif isinstance(ft, RelSlice):
        try:
            src = np.asarray(value)
            if src.dtype.kind in "OUS":
                raise TypeError(f"an array of {src.dtype}")
            n = src.shape[0] if src.ndim else 1
        except (TypeError, ValueError, IndexError) as e:
            raise TypeError(f"field `{name}` is {ft.schema}: {e}") from None
        view = _alloc_at(obj, at, ft.elem, n, name)
        try:
            view[...] = src.reshape(view.shape)
        except (TypeError, ValueError) as e:
            raise TypeError(f"field `{name}` is {ft.schema}: {e}") from None
    elif ft is RelStr:
        if not isinstance(value, str):
            raise TypeError(f"field `{name}` is a RelStr, not {type(value).__name__}")
        data = value.encode("utf-8")
        view = _alloc_at(obj, at, u8, len(data), name)
        view[:] = np.frombuffer(data, dtype=np.uint8)
    else:
        raise TypeError(f"field `{name}` cannot be set")


def _alloc_at(obj, at, elem, n, name):
    """``n`` elements of ``elem`` in the loan's tail for the relative pointer at byte ``at``
    (set to them), as a writable numpy array."""
    start = obj._alloc_rel(at, n, elem.size, elem.align)
    return _elem_view(obj, start, n, elem)


def _to_dict(obj, t, base):
    out = {}
    for name, at, ft in t.fields:
        v = _get_value(obj, ft, base + at, name)
        if isinstance(v, StructView):
            v = _to_dict(obj, ft, base + at)
        out[name] = v
    return out


def _repr_struct(obj, t, base):
    parts = []
    for name, at, ft in t.fields:
        try:
            v = _get_value(obj, ft, base + at, name)
            if isinstance(v, np.ndarray) and v.size > 8:
                v = f"array(shape={v.shape}, dtype={v.dtype})"
            parts.append(f"{name}={v!r}" if not isinstance(v, str) or
                         not v.startswith("array(") else f"{name}={v}")
        except Exception as e:  # a corrupt field shows its error, not the whole repr's
            parts.append(f"{name}=<{type(e).__name__}: {e}>")
    return f"{t.name}({', '.join(parts)})"


def _repr(obj, t):
    kind = "Loan" if hasattr(obj, "capacity") else "Sample"
    inner = _repr_struct(obj, t, 0) if isinstance(t, StructType) else t.schema
    seq = "" if kind == "Loan" else f" #{obj.sequence}"
    return f"<shmx.{kind}{seq} {inner}>"
