"""Message types: declared in Python with the layout Rust's ``#[repr(C)]`` gives the same
fields (so the schema text and fingerprint equal the Rust type's), or adopted from a topic's
stored schema text; and numpy dtypes for them. (Reading and writing fields in place is in
``_access``.)

A type is described by its schema text (see the Rust crate's ``shmx::schema_text``), which
the compiled part parses and fingerprints exactly as Rust does.
"""

import enum as _enum

import numpy as np

from . import _shmx

__all__ = [
    "Type", "Primitive", "Array", "RelSlice", "RelStr", "Struct", "StructView", "struct",
    "enum",
    "u8", "u16", "u32", "u64", "u128", "i8", "i16", "i32", "i64", "i128",
    "f32", "f64", "bool_",
]


def _native(code):
    return np.dtype(code).newbyteorder("=")


class Type:
    """A message type or the type of a field: its schema text, size, alignment and numpy
    dtype."""

    schema = ""
    size = 0
    align = 1
    dtype = None

    def __repr__(self):
        return f"shmx.{type(self).__name__}({self.schema})"


class Primitive(Type):
    """A primitive: ``shmx.u8`` … ``shmx.i128``, ``shmx.f32``, ``shmx.f64``, ``shmx.bool_``."""

    def __init__(self, name, size, align, dtype):
        self.name = name
        self.schema = name if size == align else f"{name}({size},{align})"
        self.size = size
        self.align = align
        self.dtype = dtype

    def __repr__(self):
        return f"shmx.{self.name if self.name != 'bool' else 'bool_'}"


def _prim(name, size, dtype):
    return Primitive(name, size, dtype.alignment if dtype.kind != "V" else 16, dtype)


u8 = _prim("u8", 1, _native("u1"))
u16 = _prim("u16", 2, _native("u2"))
u32 = _prim("u32", 4, _native("u4"))
u64 = _prim("u64", 8, _native("u8"))
i8 = _prim("i8", 1, _native("i1"))
i16 = _prim("i16", 2, _native("i2"))
i32 = _prim("i32", 4, _native("i4"))
i64 = _prim("i64", 8, _native("i8"))
f32 = _prim("f32", 4, _native("f4"))
f64 = _prim("f64", 8, _native("f8"))
bool_ = _prim("bool", 1, np.dtype("?"))
# numpy has no 128-bit integers: 16 raw bytes (fields read as Python ints).
u128 = Primitive("u128", 16, 16, np.dtype("V16"))
i128 = Primitive("i128", 16, 16, np.dtype("V16"))

_PRIMITIVES = {p.name: p for p in (u8, u16, u32, u64, u128, i8, i16, i32, i64, i128, f32, f64,
                                    bool_)}


def _align_of_u128():
    # Rust's u128 is aligned to 16 on x86_64 and aarch64 since Rust 1.77; the compiled part
    # knows this machine's value (the text of the other alignment does not parse).
    for text in ("u128", "u128(16,8)"):
        try:
            return _shmx.parse_schema(text)[3]
        except _shmx.InvalidSchema:
            pass
    return 16


u128.align = i128.align = _align_of_u128()
for _p in (u128, i128):
    _p.schema = _p.name if _p.size == _p.align else f"{_p.name}({_p.size},{_p.align})"


class Array(Type):
    """``[elem; len]``: ``shmx.Array(shmx.f32, 3)``."""

    def __init__(self, elem, len):
        self.elem = _type(elem)
        if not isinstance(len, int) or len < 0:
            raise TypeError(f"an array's length is an int >= 0, not {len!r}")
        self.len = len
        self.schema = f"[{self.elem.schema};{len}]"
        self.size = self.elem.size * len
        self.align = self.elem.align
        self.dtype = np.dtype((self.elem.dtype, (len,)))


class RelSlice(Type):
    """A relative slice of ``elem`` (Rust's ``RelSlice<T>``): 8 bytes in the message, the
    elements in the sample's tail. Reads as a numpy array view; written with ``alloc``."""

    def __init__(self, elem):
        self.elem = _type(elem)
        self.schema = f"rel[{self.elem.schema}]"
        self.size = 8
        self.align = 4
        self.dtype = _REL_DTYPE


class _RelStr(Type):
    """A relative string (Rust's ``RelStr``): UTF-8 in the sample's tail; reads as ``str``."""

    schema = "relstr"
    size = 8
    align = 4

    def __repr__(self):
        return "shmx.RelStr"


_REL_DTYPE = np.dtype({"names": ["offset", "len"], "formats": [_native("u4"), _native("u4")],
                       "offsets": [0, 4], "itemsize": 8})
_RelStr.dtype = _REL_DTYPE
RelStr = _RelStr()


class EnumType(Type):
    """The layout of a fieldless enum: an integer ``repr`` and named values."""

    def __init__(self, name, repr, variants, cls):
        self.name = name
        self.repr = _type(repr)
        if not isinstance(self.repr, Primitive) or self.repr.name in ("f32", "f64", "bool"):
            raise TypeError(f"an enum's repr is an integer type, not {repr!r}")
        self.variants = list(variants)
        self.values = {v for _, v in self.variants}
        self.cls = cls
        body = ",".join(f"{k}={v}" for k, v in self.variants)
        self.schema = f"{name}:{self.repr.schema}{{{body}}}"
        self.size = self.repr.size
        self.align = self.repr.align
        self.dtype = self.repr.dtype


def enum(name, variants, repr="u32"):
    """A fieldless enum with integer representation ``repr`` (Rust's ``#[repr(u32)]``), as
    an ``IntEnum`` class usable as a field type::

        Mode = shmx.enum("Mode", {"Idle": 0, "Drive": 1}, repr=shmx.u8)
    """
    items = list(variants.items()) if isinstance(variants, dict) else list(variants)
    if not items:
        raise TypeError("an enum needs at least one variant")
    t = EnumType(name, repr, items, None)
    _shmx.parse_schema(t.schema)
    try:
        cls = _enum.IntEnum(name.split("::")[-1], items)
        if [(m.name, m.value) for m in cls] != items:
            raise ValueError("aliases")
    except Exception:
        # Names Python's enum reserves (`mro`, `_ignore_`, dunders) or equal values: the
        # type works, its values read as plain ints.
        cls = _PlainEnum(name, items)
    t.cls = cls
    cls._shmx_type = t
    return cls


class _PlainEnum:
    """An enum whose variants cannot be an ``IntEnum`` (see ``enum``): values are ints;
    ``Mode["name"]`` gives a variant's value."""

    def __init__(self, name, items):
        self.__name__ = name
        self._items = dict(items)

    def __getitem__(self, variant):
        return self._items[variant]

    def __call__(self, value):
        return value

    def __iter__(self):
        return iter(self._items.items())

    def __repr__(self):
        return f"<shmx enum {self.__name__}>"


def _type(t):
    """The shmx type that ``t`` names: a type, a primitive's name, schema text, a Struct
    class or an enum made by ``shmx.enum``."""
    if isinstance(t, Type):
        return t
    if isinstance(t, str):
        p = _PRIMITIVES.get(t)
        if p is not None:
            return p
        # Schema text, as `shmx info` shows it (shmx.InvalidSchema if it is not).
        adopted = adopt(t)
        return adopted._shmx_type if isinstance(adopted, type) else adopted
    st = getattr(t, "_shmx_type", None)
    if isinstance(st, Type):
        return st
    raise TypeError(f"{t!r} is not a shmx type (shmx.u8 … shmx.f64, shmx.Array, "
                    "shmx.RelSlice, shmx.RelStr, a shmx.Struct or a shmx.enum)")


class StructType(Type):
    """The layout of a struct: fields at the offsets ``#[repr(C)]`` gives them."""

    def __init__(self, name, fields, align=None, cls=None, offsets=None, size=None):
        self.name = name
        self.cls = cls
        self.fields = []
        self.by_name = {}
        offset = 0
        max_align = 1
        for i, (fname, ftype) in enumerate(fields):
            ft = _type(ftype)
            if offsets is not None:
                at = offsets[i]
            else:
                at = -(-offset // ft.align) * ft.align
                if at != offset and ft.size:
                    raise _shmx.InvalidSchema(
                        f"invalid schema: field `{fname}` of {name} would start at byte {at} "
                        f"after {at - offset} bytes of padding; message types have no "
                        f"implicit padding: add a field `_pad{i}: shmx.Array(shmx.u8, "
                        f"{at - offset})` before it (as the Rust type must)")
            self.fields.append((fname, at, ft))
            self.by_name[fname] = (at, ft)
            offset = at + ft.size
            max_align = max(max_align, ft.align)
        self.align = align or max_align
        if size is None:
            size = -(-offset // self.align) * self.align
            if size != offset:
                raise _shmx.InvalidSchema(
                    f"invalid schema: {name} would end with {size - offset} bytes of padding; "
                    f"add a field `_pad: shmx.Array(shmx.u8, {size - offset})` at its end "
                    "(as the Rust type must)")
        self.size = size
        body = ",".join(f"{f}@{o}:{t.schema}" for f, o, t in self.fields)
        self.schema = f"{name}({self.size},{self.align}){{{body}}}"
        self.dtype = np.dtype({
            "names": [f for f, _, _ in self.fields],
            "formats": [t.dtype for _, _, t in self.fields],
            "offsets": [o for _, o, _ in self.fields],
            "itemsize": self.size,
        })


class _Message:
    """What the compiled part asks of a topic's Python message type: a field that is not a
    primitive (`_get`, `_set`) and a sample's repr."""

    def __init__(self, t):
        self.t = t

    def _get(self, obj, name):
        return _get_field(obj, self.t, 0, name)

    def _set(self, obj, name, value):
        _set_field(obj, self.t, 0, name, value)

    def _repr(self, obj):
        return _repr(obj, self.t)

    def _alloc(self, obj, name, n):
        if not isinstance(self.t, StructType):
            raise AttributeError(f"a message of {self.t.schema} has no fields to allocate")
        return _alloc(obj, self.t, 0, name, n)


class _StructMeta(type):
    """Struct classes describe their layout (``Pose.schema``, ``Pose.dtype``, …)."""

    @property
    def schema(cls):
        return cls._shmx_type.schema

    @property
    def fingerprint(cls):
        return cls._shmx_fingerprint

    @property
    def size(cls):
        return cls._shmx_type.size

    @property
    def align(cls):
        return cls._shmx_type.align

    @property
    def dtype(cls):
        return cls._shmx_type.dtype

    @property
    def fields(cls):
        """``[(name, offset, type), ...]`` in declaration order."""
        return list(cls._shmx_type.fields)

    def __repr__(cls):
        t = cls.__dict__.get("_shmx_type")
        return f"<shmx.Struct {t.schema}>" if t is not None else f"<shmx.Struct {cls.__name__}>"


class Struct(metaclass=_StructMeta):
    """Base of message types declared in Python; fields in declaration order, as a Rust
    ``#[derive(ShmMessage)] #[repr(C)]`` struct with the same fields::

        class Pose(shmx.Struct):
            seq: shmx.u64
            x: shmx.f64
            heading: shmx.f32
            mode: shmx.u32

    The type's name is the class's (or ``class Pose(shmx.Struct, name="geo::Pose")``), its
    alignment the largest of its fields' (or ``align=16``, as ``#[repr(C, align(16))]``).
    Padding is never implicit: a field that would need some is an error that says which
    ``_pad`` field to add, as the Rust derive demands.
    """

    def __init_subclass__(cls, name=None, align=None, _adopted=None, **kw):
        super().__init_subclass__(**kw)
        if _adopted is not None:
            t = _adopted
        else:
            ann = cls.__dict__.get("__annotations__", {})
            t = StructType(name or cls.__name__, list(ann.items()), align=align, cls=cls)
        canonical, fingerprint, size, _, _, _ = _shmx.parse_schema(t.schema)
        cls._shmx_type = t
        cls._shmx_fingerprint = fingerprint
        t.cls = cls
        cls._shmx_message = _Message(t)

    # What the compiled part asks of a topic's message type (see `_Message`).
    @classmethod
    def _get(cls, obj, name):
        return _get_field(obj, cls._shmx_type, 0, name)

    @classmethod
    def _set(cls, obj, name, value):
        _set_field(obj, cls._shmx_type, 0, name, value)

    @classmethod
    def _repr(cls, obj):
        return _repr(obj, cls._shmx_type)

    @classmethod
    def _alloc(cls, obj, name, n):
        return _alloc(obj, cls._shmx_type, 0, name, n)

    def __init__(self):
        raise TypeError("a shmx.Struct describes a message type: loan one from a Publisher "
                        "(pub.loan()) or send a dict or tuple (pub.send(...))")


def struct(name, fields, align=None):
    """A ``shmx.Struct`` class named ``name`` with ``fields``: a list of ``(name, type)``, or
    a numpy structured dtype (its fields in order, at the offsets ``#[repr(C)]`` gives them;
    nested structs need a name, so declare those with ``shmx.struct``)::

        KiB = shmx.struct("KiB", [("seq", shmx.u64), ("data", shmx.Array(shmx.u8, 1016))])
        Pose = shmx.struct("Pose", np.dtype([("seq", "u8"), ("x", "f8"), ("y", "f8")]))
    """
    if isinstance(fields, np.dtype):
        fields = _from_dtype(name, fields)
    return type(name.split("::")[-1], (Struct,),
                {"__annotations__": dict(fields), "__module__": __name__},
                name=name, align=align)


_BY_DTYPE = {(p.dtype.kind, p.dtype.itemsize): p for p in
             (u8, u16, u32, u64, i8, i16, i32, i64, f32, f64, bool_)}


def _from_dtype(name, dtype):
    """``[(field, type)]`` of a numpy structured dtype, checked to lie as ``#[repr(C)]``
    lays the same fields out."""
    if dtype.names is None:
        raise TypeError(f"{name}: a numpy dtype for a struct has named fields, not {dtype}")
    fields = []
    for field in dtype.names:
        fd, offset = dtype.fields[field][:2]
        shape = ()
        if fd.subdtype is not None:
            fd, shape = fd.subdtype
        if fd.names is not None:
            raise TypeError(f"{name}: field `{field}` is a nested struct; declare it with "
                            "shmx.struct (its type needs a name)")
        if not fd.isnative:
            raise TypeError(f"{name}: field `{field}` is not in native byte order")
        t = _BY_DTYPE.get((fd.kind, fd.itemsize))
        if t is None:
            raise TypeError(f"{name}: field `{field}` has dtype {fd}, which no shmx "
                            "primitive matches")
        for n in reversed(shape):
            t = Array(t, n)
        fields.append((field, t, offset))
    laid = StructType(name, [(f, t) for f, t, _ in fields])
    for (f, t, offset), (_, at, _) in zip(fields, laid.fields):
        if offset != at:
            raise _shmx.InvalidSchema(
                f"invalid schema: field `{f}` of {name} is at byte {offset} of the dtype, "
                f"but #[repr(C)] puts it at byte {at} (declare padding as fields)")
    if dtype.itemsize != laid.size:
        raise _shmx.InvalidSchema(
            f"invalid schema: the dtype of {name} has {dtype.itemsize} bytes, the struct "
            f"{laid.size} (declare padding as fields)")
    return [(f, t) for f, t, _ in fields]


def _from_tree(tree):
    """The Python type of a parsed schema tree (see ``_shmx.parse_schema``)."""
    kind = tree[0]
    if kind == "prim":
        return _PRIMITIVES[tree[1]]
    if kind == "array":
        return Array(_from_tree(tree[1]), tree[2])
    if kind == "rel":
        return RelSlice(_from_tree(tree[1]))
    if kind == "relstr":
        return RelStr
    if kind == "enum":
        return enum(tree[1], [(k, v) for k, v in tree[4]], repr=tree[2])._shmx_type
    if kind == "struct":
        _, name, size, align, fields = tree
        t = StructType(name, [(f, _from_tree(sub)) for f, _, sub in fields], align=align,
                       offsets=[o for _, o, _ in fields], size=size)
        type(name.split("::")[-1], (Struct,), {"__module__": __name__}, _adopted=t)
        return t
    raise ValueError(f"unknown schema tree {tree!r}")


def adopt(schema):
    """The Python type of schema text ``schema`` (a topic's): a Struct class for a struct,
    else the type itself."""
    tree = _shmx.parse_schema(schema)[5]
    try:
        t = _from_tree(tree)
    except _shmx.Error:
        raise
    except (TypeError, ValueError, KeyError) as e:
        raise _shmx.InvalidSchema(f"invalid schema: {schema[:120]!r} cannot be read from "
                                  f"Python: {e}") from None
    return t.cls if isinstance(t, StructType) else t


def message_type(t):
    """``(type, handler)`` of a message type given to an endpoint: the handler reads and
    writes the fields the compiled part does not (a Struct class, or a ``_Message``)."""
    st = _type(t)
    handler = st.cls if isinstance(st, StructType) else _Message(st)
    return st, handler


# The functions that read and write fields in place (they use the types above).
from ._access import StructView, _alloc, _get_field, _repr, _set_field  # noqa: E402,F401
