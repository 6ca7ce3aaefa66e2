"""The iceoryx2 contender of the Python benchmark (`iox2_open`), where iceoryx2 imports."""

from __future__ import annotations

from .common import (
    FRAME_BYTES,
    FRAME_SHAPE,
    KIB_DATA,
    PAYLOADS,
    Endpoint,
    bad_pixel,
    frame_pattern,
    pixel_index,
)

# --- iceoryx2 ---------------------------------------------------------------------------------


def iox2_open(role, payload, shared, barrier, cfg):
    import ctypes

    import iceoryx2 as iox2

    iox2.set_log_level(iox2.LogLevel.Error)
    ep = Endpoint()
    size = PAYLOADS[payload]
    if payload == "float":

        class Msg(ctypes.Structure):
            _fields_ = [("value", ctypes.c_double)]

    elif payload == "1KiB":

        class Msg(ctypes.Structure):
            _fields_ = [("seq", ctypes.c_uint64), ("data", ctypes.c_uint8 * KIB_DATA)]

    else:

        class Msg(ctypes.Structure):
            _fields_ = [("seq", ctypes.c_uint64), ("pixels", ctypes.c_uint8 * FRAME_BYTES)]

    assert ctypes.sizeof(Msg) == size
    buffer = 4 if payload == "6MB" else 256
    node = iox2.NodeBuilder.new().create(iox2.ServiceType.Ipc)
    prefix = cfg["iox2_prefix"]

    def service(name, create):
        b = (
            node.service_builder(iox2.ServiceName.new(f"{prefix}/{name}"))
            .publish_subscribe(Msg)
            .max_publishers(1)
            .max_subscribers(1)
            .history_size(0)
            .subscriber_max_buffer_size(buffer)
            .enable_safe_overflow(False)  # lossless: the publisher waits (below)
        )
        return b.create() if create else b.open()

    # The driver creates both services, then the peer opens them (no creation race).
    if role == "driver":
        svcs = {"ping": service("ping", True), "pong": service("pong", True)}
        barrier.wait(cfg["barrier_timeout"])
    else:
        barrier.wait(cfg["barrier_timeout"])
        svcs = {"ping": service("ping", False), "pong": service("pong", False)}
    mine, theirs = ("ping", "pong") if role == "driver" else ("pong", "ping")
    pub = (
        svcs[mine]
        .publisher_builder()
        .backpressure_strategy(iox2.BackpressureStrategy.RetryUntilDelivered)
        .create()
    )
    sub = svcs[theirs].subscriber_builder().buffer_size(buffer).create()
    barrier.wait(cfg["barrier_timeout"])
    pub.update_connections()
    barrier.wait(cfg["barrier_timeout"])

    loan, receive = pub.loan_uninit, sub.receive
    c_u64, c_f64, c_u8 = ctypes.c_uint64, ctypes.c_double, ctypes.c_uint8
    if payload == "float":

        def send(seq):
            s = loan()
            c_f64.from_address(s.payload_ptr).value = seq
            s.assume_init().send()

        def recv():
            while True:  # receive() never blocks: spin, as iceoryx2's own benchmarks do
                s = receive()
                if s is not None:
                    return c_f64.from_address(s.payload_ptr).value

    elif payload == "1KiB":

        def send(seq):
            s = loan()
            c_u64.from_address(s.payload_ptr).value = seq
            s.assume_init().send()

        def recv():
            while True:
                s = receive()
                if s is not None:
                    return c_u64.from_address(s.payload_ptr).value

    else:
        import numpy as np

        frame = frame_pattern()
        copyto = np.copyto
        as_array = np.ctypeslib.as_array
        FrameArr = c_u8 * FRAME_BYTES

        def send(seq):
            s = loan()
            p = s.payload_ptr
            c_u64.from_address(p).value = seq
            copyto(as_array(FrameArr.from_address(p + 8)).reshape(FRAME_SHAPE), frame)
            s.assume_init().send()

        def recv():
            while True:
                s = receive()
                if s is not None:
                    break
            p = s.payload_ptr
            seq = c_u64.from_address(p).value
            k = pixel_index(seq)
            v = c_u8.from_address(p + 8 + k).value  # touched in place, not copied
            if v != k % 251:
                bad_pixel(seq, v)
            return seq

    keep = [pub, sub, svcs, node]

    def close():
        keep.clear()

    ep.send, ep.recv, ep.close = send, recv, close
    return ep
