"""Typed topics within one Python process: declaring types, reading and writing fields in
place, the zero-copy proof, chunks that go back when the last view goes, waiting (GIL,
asyncio, WaitSet, iteration), threads, and every error the binding raises."""

import asyncio
import gc
import os
import threading
import time

import numpy as np
import pytest

import shmx

DEADLINE = 10.0


class Pose(shmx.Struct):
    seq: shmx.u64
    x: shmx.f64
    y: shmx.f64
    heading: shmx.f32
    mode: shmx.u32


Image = shmx.struct("Image", [("seq", shmx.u64), ("width", shmx.u32), ("height", shmx.u32),
                              ("label", shmx.RelStr), ("pixels", shmx.RelSlice(shmx.u8))])
FRAME = (1080, 1920, 3)


def mapping_of(address):
    """`(path, permissions)` of the mapping that holds `address` in this process (from
    /proc/self/maps), or None."""
    with open("/proc/self/maps") as maps:
        for line in maps:
            parts = line.split()
            lo, hi = (int(x, 16) for x in parts[0].split("-"))
            if lo <= address < hi:
                return (parts[5] if len(parts) > 5 else ""), parts[1]
    return None


def test_declared_types_have_the_rust_layout():
    assert Pose.schema == "Pose(32,8){seq@0:u64,x@8:f64,y@16:f64,heading@24:f32,mode@28:u32}"
    assert Pose.size == 32 and Pose.align == 8
    assert Pose.dtype.itemsize == 32 and Pose.dtype.names == ("seq", "x", "y", "heading",
                                                              "mode")
    text, fingerprint, size, align, _, _ = shmx.parse_schema(Pose.schema)
    assert (text, fingerprint, size, align) == (Pose.schema, Pose.fingerprint, 32, 8)
    Named = shmx.struct("geo::Pose", [("x", shmx.f64), ("_pad", shmx.Array(shmx.u8, 8))],
                        align=16)
    assert Named.schema == "geo::Pose(16,16){x@0:f64,_pad@8:[u8;8]}"
    with pytest.raises(shmx.InvalidSchema, match="_pad"):
        shmx.struct("Gap", [("a", shmx.u8), ("b", shmx.u64)])
    with pytest.raises(shmx.InvalidSchema, match="padding"):
        shmx.struct("Tail", [("a", shmx.u64), ("b", shmx.u8)])
    with pytest.raises(shmx.InvalidSchema):
        shmx.struct("bad name", [("a", shmx.u8)])
    # A numpy dtype declares the same type.
    from_dtype = shmx.struct("Pose", np.dtype([("seq", "u8"), ("x", "f8"), ("y", "f8"),
                                               ("heading", "f4"), ("mode", "u4")]))
    assert from_dtype.fingerprint == Pose.fingerprint and from_dtype.schema == Pose.schema
    grid = shmx.struct("Grid", np.dtype([("cells", "i2", (2, 3))]))
    assert grid.schema == "Grid(12,2){cells@0:[[i16;3];2]}"
    with pytest.raises(shmx.InvalidSchema, match="padding"):
        shmx.struct("Padded", np.dtype([("a", "u1"), ("b", "f4")], align=True))
    with pytest.raises(TypeError, match="byte order"):
        shmx.struct("Big", np.dtype([("a", ">u4")]))
    with pytest.raises(shmx.InvalidSchema, match="unknown type `float`"):
        shmx.struct("T", [("a", "float")])
    with pytest.raises(TypeError, match="not a shmx type"):
        shmx.struct("T", [("a", float)])


def test_fields_are_read_and_written_in_place(root):
    sub = shmx.Subscriber("pose", Pose)
    pub = shmx.Publisher("pose", Pose)
    m = pub.loan()
    assert (m.seq, m.x, m.mode) == (0, 0.0, 0), "a loan's message starts zeroed"
    m.seq = 7
    m["x"] = 1.5
    m.y = -2
    m.heading = 0.25
    m.mode = np.uint32(3)
    pub.publish(m)
    s = sub.recv(DEADLINE)
    assert (s.seq, s.x, s["y"], s.heading, s.mode) == (7, 1.5, -2.0, 0.25, 3)
    assert s.sequence == 1 and s.topic == "pose" and s.type is Pose
    v = s.value
    assert v.shape == () and v.dtype == Pose.dtype and v["x"] == 1.5
    assert not v.flags.writeable
    with pytest.raises(ValueError):
        v["x"] = 2.0
    pub.send({"seq": 8, "x": 2.5})
    pub.send((9, 0.0, 0.0, 0.0, 1))
    assert [(s.seq, s.x) for s in (sub.recv(DEADLINE), sub.recv(DEADLINE))] == [(8, 2.5),
                                                                               (9, 0.0)]
    assert sub.take() is None
    del s, v, m


def test_a_sample_is_a_view_of_the_shared_chunk_not_a_copy(root):
    sub = shmx.Subscriber("camera", Image)
    pub = shmx.Publisher("camera", Image, max_tail_bytes=1920 * 1080 * 3 + 64)
    m = pub.loan()
    m.seq, m.width, m.height = 1, 1920, 1080
    m.label = "cam0"
    px = m.alloc_pixels(1920 * 1080 * 3)
    written = px.reshape(FRAME)
    written[:, :, 0] = np.arange(1920, dtype=np.uint8)
    written[7, 9] = (1, 2, 3)
    # The loan's view is the chunk itself, in the publisher's data segment.
    assert np.shares_memory(written, np.asarray(m))
    # (The publisher made the segment under a temporary name and linked it as `data.*`.)
    path, perms = mapping_of(px.__array_interface__["data"][0])
    assert path.startswith(str(root / "camera")) and perms == "rw-s", (path, perms)
    del written, px
    pub.publish(m)

    s = sub.recv(DEADLINE)
    frame = s.pixels.reshape(FRAME)  # a reshape, no copy
    assert frame.shape == FRAME and frame.dtype == np.uint8 and not frame.flags.writeable
    assert tuple(frame[7, 9]) == (1, 2, 3) and frame[0, 1000, 0] == 1000 % 256
    address = frame.__array_interface__["data"][0]
    # Two views of one sample share memory, and both lie in the shared chunk: the data
    # segment file the publisher made, mapped here.
    assert np.shares_memory(frame, np.asarray(s))
    assert np.shares_memory(s.pixels, s.pixels)
    path, perms = mapping_of(address)
    assert path.startswith(str(root / "camera")), path
    assert os.path.basename(path).startswith("data.") and perms == "r--s", (path, perms)
    assert s.address <= address < s.address + s.nbytes
    assert s.label == "cam0" and (s.width, s.height) == (1920, 1080)
    del frame, s, m


def test_the_chunk_goes_back_when_the_last_view_goes(root):
    pub = shmx.Publisher("views", Image, 4, max_tail_bytes=64, history=0)
    sub = shmx.Subscriber("views", Image)
    pub.send({"seq": 1, "pixels": np.arange(16, dtype=np.uint8)})
    s = sub.recv(DEADLINE)
    view = s.pixels[4:8]
    del s
    gc.collect()
    assert pub.pool_stats()["delivered"] == 1, "a view keeps its sample's chunk"
    assert view.tolist() == [4, 5, 6, 7]
    del view
    assert pub.pool_stats()["delivered"] == 0
    # Many samples, each dropped: the pool serves them all.
    for i in range(200):
        pub.send({"seq": i})
        assert sub.recv(DEADLINE).seq == i
    stats = pub.pool_stats()
    assert stats["delivered"] == 0 and stats["loaned"] == 0, stats


def test_nested_structs_arrays_enums_and_128_bit_integers(root):
    Mode = shmx.enum("Mode", {"Idle": 0, "Drive": 7}, repr=shmx.i16)
    Inner = shmx.struct("Inner", [("a", shmx.i16), ("mode", Mode)])

    class Big(shmx.Struct, align=16):
        big: shmx.u128
        small: shmx.i128
        grid: shmx.Array(shmx.Array(shmx.f32, 2), 3)
        inners: shmx.Array(Inner, 2)
        inner: Inner
        on: shmx.bool_
        _pad: shmx.Array(shmx.u8, 11)

    sub = shmx.Subscriber("big", Big)
    pub = shmx.Publisher("big", Big)
    m = pub.loan()
    m.big = 2**128 - 1
    m.small = -(2**127)
    m.grid = [[1, 2], [3, 4], [5, 6]]
    m.inner = {"a": -1, "mode": "Drive"}
    m.inners[1] = (5, 7)  # a structured array element, through numpy
    m.on = True
    with pytest.raises(OverflowError, match="big"):
        m.big = 2**128
    with pytest.raises(TypeError, match="mode"):
        m.inner = {"mode": "Fly"}
    pub.publish(m)
    s = sub.recv(DEADLINE)
    assert s.big == 2**128 - 1 and s.small == -(2**127)
    assert s.grid.tolist() == [[1, 2], [3, 4], [5, 6]]
    assert s.inner.a == -1 and s.inner.mode is Mode.Drive
    assert s.inners["a"].tolist() == [0, 5] and s.on is True
    assert s.to_dict()["inner"] == {"a": -1, "mode": Mode.Drive}
    del s, m


def test_adopting_a_topic_reads_its_stored_type(root):
    pub = shmx.Publisher("adopt", Image, max_tail_bytes=256)
    sub = shmx.Subscriber("adopt")
    assert sub.schema == Image.schema and sub.type.fingerprint == Image.fingerprint
    pub.send({"seq": 3, "label": "x", "pixels": [1, 2, 3]})
    s = sub.recv(DEADLINE)
    assert (s.seq, s.label, s.pixels.tolist()) == (3, "x", [1, 2, 3])
    with pytest.raises(shmx.Io, match="no such topic"):
        shmx.Subscriber("nobody/made/this")
    # A topic of a primitive: the whole message is `value`.
    p2 = shmx.Publisher("prim", shmx.Array(shmx.u16, 2))
    s2 = shmx.Subscriber("prim")
    p2.send([5, 6])
    assert s2.recv(DEADLINE).value.tolist() == [5, 6]
    del s


def test_recv_releases_the_gil_while_it_waits(root):
    sub = shmx.Subscriber("gil", 0.0)
    sent = threading.Event()

    def publish_later():
        # Runs only if the main thread let go of the GIL while it waits.
        pub = shmx.Publisher("gil", 0.0)
        pub.publish(4.5)
        sent.set()
        time.sleep(0.5)  # keeps the publisher (and the topic) while the value is read

    t = threading.Thread(target=publish_later)
    t.start()
    value = sub.recv(DEADLINE)
    t.join()
    assert sent.is_set() and value == 4.5

    typed = shmx.Subscriber("gil/typed", Pose)

    def publish_typed():
        pub = shmx.Publisher("gil/typed", Pose)
        pub.send({"seq": 11})
        time.sleep(0.5)

    t = threading.Thread(target=publish_typed)
    t.start()
    s = typed.recv(DEADLINE)
    assert s is not None and s.seq == 11
    t.join()
    del s


def test_recv_times_out_and_refuses_bad_timeouts(root):
    sub = shmx.Subscriber("quiet", Pose)
    start = time.monotonic()
    assert sub.recv(0.05) is None
    assert time.monotonic() - start >= 0.05
    assert sub.recv(0) is None
    for bad in (-1.0, float("nan")):
        with pytest.raises(ValueError):
            sub.recv(bad)


def test_iteration_and_asyncio(root):
    sub = shmx.Subscriber("iter", Pose)
    pub = shmx.Publisher("iter", Pose)
    for i in range(3):
        pub.send({"seq": i})
    seen = []
    for s in sub:
        seen.append(s.seq)
        if len(seen) == 3:
            break
    assert seen == [0, 1, 2]

    async def main():
        loop = asyncio.get_running_loop()
        # Published from a thread while the loop awaits.
        loop.call_later(0.05, lambda: pub.send({"seq": 42}))
        s = await asyncio.wait_for(sub.recv_async(), DEADLINE)
        seed_sub = shmx.Subscriber("iter/seed", 0)
        seed_pub = shmx.Publisher("iter/seed", 0)
        loop.call_later(0.05, lambda: seed_pub.publish(5))
        v = await asyncio.wait_for(seed_sub.recv_async(), DEADLINE)
        return s.seq, v

    assert asyncio.run(main()) == (42, 5)
    del s


def test_a_wait_set_reports_the_subscribers_with_samples(root):
    a = shmx.Subscriber("ws/a", Pose)
    b = shmx.Subscriber("ws/b", 0.0)
    pa = shmx.Publisher("ws/a", Pose)
    pb = shmx.Publisher("ws/b", 0.0)
    ws = shmx.WaitSet()
    ws.attach(a)
    ws.attach(b)
    assert len(ws) == 2 and ws.wait(0) == []
    pb.publish(1.0)
    assert ws.wait(DEADLINE) == [b]
    assert b.recv(0) == 1.0 and b.recv(0) is None
    assert ws.wait(0) == []
    pa.send({"seq": 1})
    pb.publish(2.0)
    deadline = time.monotonic() + DEADLINE
    ready = set()
    while ready != {a, b} and time.monotonic() < deadline:
        ready |= set(ws.wait(DEADLINE))
    assert ready == {a, b}
    assert a.take().seq == 1 and b.recv(0) == 2.0
    ws.detach(b)
    pb.publish(3.0)
    assert ws.wait(0.05) == []


def test_endpoints_belong_to_their_thread(root):
    sub = shmx.Subscriber("thread", Pose)
    pub = shmx.Publisher("thread", Pose)
    pub.send({"seq": 1})
    s = sub.recv(DEADLINE)
    errors = []

    def elsewhere():
        for f in (sub.take, lambda: pub.send({"seq": 2}), pub.loan):
            try:
                f()
            except RuntimeError as e:
                errors.append(str(e))
        # Reading a held sample is fine on any thread (its memory stays while it lives).
        errors.append(int(s.seq))

    t = threading.Thread(target=elsewhere)
    t.start()
    t.join()
    assert len(errors) == 4 and all("thread" in e for e in errors[:3]) and errors[3] == 1

    # A sample whose last reference goes on another thread is given back by the owner.
    holder = [s]
    del s
    t = threading.Thread(target=holder.clear)
    t.start()
    t.join()
    assert sub.take() is None  # the owner's next call gives the parked sample back
    assert pub.pool_stats()["delivered"] == 0


def test_errors_are_typed(root):
    with pytest.raises(shmx.InvalidName):
        shmx.Publisher("bad//name", Pose)
    pub = shmx.Publisher("errors", Pose, max_loans=2)
    m = pub.loan()
    with pytest.raises(TypeError, match="field `x` of Pose is a f64, not str"):
        m.x = "fast"
    with pytest.raises(TypeError, match="field `seq` of Pose is a u64, not float"):
        m.seq = 1.5
    with pytest.raises(OverflowError, match="seq"):
        m.seq = -1
    with pytest.raises(AttributeError):
        m.nothing = 1
    with pytest.raises(TypeError, match="Pose has 5 fields, not 2"):
        pub.send((1, 2))
    with pytest.raises(TypeError, match="dict or a tuple"):
        pub.send(3)
    m2 = pub.loan()
    with pytest.raises(shmx.LoanLimit):
        pub.loan()
    pub.publish(m)
    with pytest.raises(RuntimeError, match="published"):
        pub.publish(m)
    with pytest.raises(RuntimeError, match="published"):
        m.seq = 1
    other = shmx.Publisher("errors/other", Pose)
    with pytest.raises(RuntimeError, match="another publisher"):
        other.publish(m2)
    del m2
    with pytest.raises(shmx.TypeMismatch) as e:
        shmx.Subscriber("errors", Image)
    assert "Pose" in str(e.value) and "Image" in str(e.value)
    del e
    pub_img = shmx.Publisher("errors/img", Image, max_tail_bytes=16)
    m = pub_img.loan()
    with pytest.raises(shmx.TailFull):
        m.alloc_pixels(100_000)
    with pytest.raises(shmx.InvalidSchema):
        shmx.Subscriber("errors/schema", "u8,b@1:u8")
    # Schema text names a type too.
    by_text = shmx.Subscriber("errors", Pose.schema)
    assert by_text.type.fingerprint == Pose.fingerprint
    del by_text
    assert issubclass(shmx.TypeMismatch, shmx.Error) and issubclass(shmx.Error, Exception)
    del m


def test_a_lying_publisher_gets_invalid_sample_not_a_crash(root):
    sub = shmx.Subscriber("liar", Image)
    pub = shmx.Publisher("liar", Image, max_tail_bytes=64)
    raw = shmx._shmx.RawPublisher("liar", max_tail_bytes=64)
    header = np.zeros(1, dtype=Image.dtype)
    header["seq"] = 1
    # A relative slice that points past the sample's bytes.
    header["pixels"] = (8, 1000)
    raw.send_bytes(header.tobytes())
    s = sub.recv(DEADLINE)
    assert s.seq == 1
    with pytest.raises(shmx.InvalidSample, match="relative pointer"):
        s.pixels
    # A string that is not UTF-8.
    header["pixels"] = (0, 0)
    header["label"] = (Image.size - 16, 2)  # from byte 16 to the tail's start
    raw.send_bytes(header.tobytes() + b"\xff\xfe")
    with pytest.raises(shmx.InvalidSample, match="UTF-8"):
        sub.recv(DEADLINE).label
    del s, pub


def test_more_errors_of_the_core_arrive_as_their_classes(root, tmp_path):
    # HeldLimit: a subscriber holds at most max_held (8 by default) samples.
    sub = shmx.Subscriber("held", Pose)
    pub = shmx.Publisher("held", Pose, overflow="fail")
    held = []
    for i in range(9):
        pub.send({"seq": i})
    for _ in range(8):
        held.append(sub.take())
    with pytest.raises(shmx.HeldLimit):
        sub.take()
    held.clear()
    assert sub.take().seq == 8
    # QueueFull with overflow="fail".
    for i in range(16):
        pub.send({"seq": i})
    with pytest.raises(shmx.QueueFull):
        pub.send({"seq": 16})
    with pytest.raises(ValueError, match="overflow"):
        shmx.Publisher("held", Pose, overflow="sometimes")
    del sub, pub
    # PermissionDenied: a root that is a symbolic link is not trusted.
    link = tmp_path / "link"
    link.symlink_to(root)
    with pytest.raises(shmx.PermissionDenied):
        shmx.Publisher("perm", Pose, root=str(link))
    # Corrupt: a service file that is not what shmx wrote.
    p = shmx.Publisher("corrupt", Pose)
    del p
    (root / "corrupt").mkdir(mode=0o700)
    service = root / "corrupt" / "service"
    service.write_bytes(b"\0" * 64)
    service.chmod(0o600)
    try:
        with pytest.raises((shmx.Corrupt, shmx.Version)):
            shmx.Subscriber("corrupt", Pose)
    finally:
        service.unlink()
        (root / "corrupt").rmdir()
        # The root's lock file stays while the root holds anything (the topic we made).
        (root / ".lock").unlink(missing_ok=True)
    # Every variant of the Rust error has its class, under shmx.Error.
    for name in ("InvalidName", "TypeMismatch", "QueueFull", "PoolExhausted",
                 "BudgetExceeded", "LoanLimit", "HeldLimit", "Timeout", "Corrupt", "Version",
                 "PermissionDenied", "OutOfSpace", "TooManyParticipants", "InvalidConfig",
                 "InvalidSchema", "InvalidSample", "TailFull", "ForeignTail", "Archive",
                 "Config", "Io", "PeerGone", "InFlightLimit"):
        assert issubclass(getattr(shmx, name), shmx.Error), name


def test_a_field_named_like_an_attribute_is_read_by_index(root):
    Odd = shmx.struct("Odd", [("sequence", shmx.u64), ("value", shmx.f64)])
    sub = shmx.Subscriber("odd", Odd)
    pub = shmx.Publisher("odd", Odd)
    pub.send({"sequence": 41, "value": 2.5})
    s = sub.recv(DEADLINE)
    assert s.sequence == 1 and s["sequence"] == 41  # the sample's number, the field
    assert s["value"] == 2.5 and s.value == 2.5
    del s


def test_relative_fields_at_any_4_aligned_offset(root):
    # `s` lies at byte 4: its pointer words are 4-aligned, not 8.
    Odd = shmx.struct("OddRel", [("n", shmx.u32), ("s", shmx.RelStr),
                                 ("v", shmx.RelSlice(shmx.u16)), ("_pad", shmx.Array(shmx.u8, 4))])
    sub = shmx.Subscriber("oddrel", Odd)
    pub = shmx.Publisher("oddrel", Odd, max_tail_bytes=64)
    m = pub.loan()
    m.n = 1
    m.s = "four"
    m.alloc_v(3)[:] = [7, 8, 9]
    assert m.nbytes > Odd.size
    pub.publish(m)
    s = sub.recv(DEADLINE)
    assert (s.n, s.s, s.v.tolist()) == (1, "four", [7, 8, 9])
    del s, m


def test_errors_carry_their_context_as_attributes(root):
    pub = shmx.Publisher("context", Pose)
    with pytest.raises(shmx.TypeMismatch) as e:
        shmx.Subscriber("context", Image)
    err = e.value
    assert err.topic == "context" and err.existing_type == "Pose"
    assert err.existing_fingerprint == Pose.fingerprint
    assert err.requested_fingerprint == Image.fingerprint and err.requested_type == "Image"
    assert err.existing_size == Pose.size and err.difference
    del e, err
    with pytest.raises(shmx.InvalidName) as e:
        shmx.Publisher("bad//name", Pose)
    assert e.value.name == "bad//name" and e.value.reason
    del e
    m = shmx.Publisher("context/img", Image, max_tail_bytes=16).loan()
    with pytest.raises(shmx.TailFull) as e:
        m.alloc_pixels(100_000)
    assert e.value.topic == "context/img" and e.value.requested == 100_000
    assert 16 <= e.value.available < 100_000
    del e, m, pub
