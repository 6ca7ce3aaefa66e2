"""The message of the cross-language tests, declared in Python: the same fields as
`Robot` in `examples/struct_peer.rs`, so the same schema and fingerprint."""

import numpy as np

import shmx

Mode = shmx.enum("Mode", {"Idle": 0, "Drive": 7}, repr=shmx.u8)
Inner = shmx.struct("Inner", [("a", shmx.i16), ("b", shmx.Array(shmx.u8, 2))])


class Robot(shmx.Struct):
    seq: shmx.u64
    xy: shmx.Array(shmx.Array(shmx.f32, 2), 3)
    inner: Inner
    mode: Mode
    on: shmx.bool_
    _pad0: shmx.Array(shmx.u8, 2)
    label: shmx.RelStr
    values: shmx.RelSlice(shmx.f32)


def expected(i):
    """Sample `i` as `struct_peer` writes it (see its documentation), as a dict of plain
    Python values."""
    f = float(i)
    return {
        "seq": i,
        "xy": [[f, f + 0.5], [2 * f, 2 * f + 0.5], [3 * f, 3 * f + 0.5]],
        "a": -i,
        "b": [i % 256, 2],
        "mode": "Drive" if i % 2 == 1 else "Idle",
        "on": i % 2 == 0,
        "label": f"robot-{i}",
        "values": [0.5 * k for k in range(i % 5)],
    }


def fill(m, i):
    """Writes sample `i` into loan `m`, field by field."""
    e = expected(i)
    m.seq = i
    m.xy = e["xy"]
    m.inner = {"a": e["a"], "b": e["b"]}
    m.mode = Mode[e["mode"]]
    m.on = e["on"]
    m.label = e["label"]
    v = m.alloc_values(len(e["values"]))
    v[:] = np.asarray(e["values"], dtype=np.float32)


def as_dict(s):
    """A received sample as `expected` spells it."""
    return {
        "seq": int(s.seq),
        "xy": s.xy.tolist(),
        "a": int(s.inner.a),
        "b": s.inner.b.tolist(),
        "mode": Mode(s.mode).name,
        "on": bool(s.on),
        "label": s.label,
        "values": s.values.tolist(),
    }
