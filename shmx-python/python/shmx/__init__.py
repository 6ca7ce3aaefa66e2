"""shmx: zero-copy shared-memory publish/subscribe, the same topics as Rust's.

The seed's API, for ``bool``, ``int`` (64-bit) and ``float`` (64-bit) topics::

    import shmx
    pub = shmx.Publisher("temperature", 0.0, 5)   # name, default value (its type), queue depth
    pub.publish(21.5)
    sub = shmx.Subscriber("temperature", 0.0)
    data, ok = sub.subscribe()                    # (21.5, True), or (last value, False)

Typed topics, read and written in place (numpy views of the shared chunks)::

    class Pose(shmx.Struct):                      # the Rust #[repr(C)] struct's fields
        seq: shmx.u64
        x: shmx.f64
        y: shmx.f64

    pub = shmx.Publisher("robot/pose", Pose)
    m = pub.loan(); m.seq = 1; m.x = 0.5; pub.publish(m)
    sub = shmx.Subscriber("robot/pose")           # adopts the topic's stored type
    s = sub.recv(timeout=1.0); print(s.seq, s.x, s.value)

Errors are ``shmx.Error`` subclasses, one per kind (``shmx.TypeMismatch``,
``shmx.PoolExhausted``, ``shmx.InvalidName``, …).
"""

from . import _shmx
from ._shmx import *  # noqa: F401,F403  (the error classes)
from ._shmx import Error, Loan, Sample, parse_schema  # noqa: F401
from ._types import (  # noqa: F401
    Type, Primitive, Array, RelSlice, RelStr, Struct, StructView, struct, enum, adopt,
    u8, u16, u32, u64, u128, i8, i16, i32, i64, i128, f32, f64, bool_,
)
from ._endpoints import Publisher, Subscriber, WaitSet  # noqa: F401

import os as _os

# A forked child is another process: what it inherited belongs to the parent (using or
# dropping it there would give back the parent's chunks and remove its files).
_os.register_at_fork(after_in_child=_shmx.forked)


