#!/usr/bin/env python3
"""Python-to-Python benchmark of shmx against the usual ways two Python processes talk.

One interleaved run: for each payload (a float, a 1 KiB struct, a 6 MB frame of 1920x1080x3
u8) and each contender (shmx, multiprocessing.Pipe, multiprocessing.shared_memory + locks, a
Unix domain socket, iceoryx2 where it imports), two fresh processes measure

- one-way latency: a ping-pong of N round trips after a warm-up; one-way = round trip / 2;
  the median and p99 over the round trips;
- one-way throughput: the driver sends M messages as fast as the transport lets it, the
  receiver counts them; messages per second (and MB/s for frames) from the driver's first
  send to the receiver's last receipt (both `time.perf_counter_ns`, CLOCK_MONOTONIC, one
  clock for all processes on Linux).

Every message carries a sequence number that the receiver checks (the float's value is its
sequence number); a frame's receiver also checks one pixel at a position that moves with the
sequence number, so a message that was not really delivered fails the contender.

The machine is a noisy 2-core VM, so the run is interleaved: `--rounds` rounds, each runs
every (payload, contender) once in a shuffled order, and the table gives the median over the
rounds; the ratio columns are medians of per-round ratios to shmx on the same payload (a slow
period of the VM hits both sides of a ratio alike).

Usage (from the repository root, with shmx built into the Python that runs this):

    python benches/python_bench.py --quick             # smoke test, well under a minute
    python benches/python_bench.py --rounds 3 --json results.json
    python benches/python_bench.py --only socket --payloads float,1KiB

Nothing is left behind: every child process is joined with a timeout and killed if it has to
be, the shmx root (`SHMX_ROOT`, a fresh directory under /dev/shm) is removed, and so are the
shared-memory segments and iceoryx2's files in /dev/shm that the run created.
"""

from __future__ import annotations

import argparse
import atexit
import json
import multiprocessing as mp
import os
import platform
import random
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import traceback

# ---------------------------------------------------------------------------------------
# Payloads
# ---------------------------------------------------------------------------------------

FRAME_SHAPE = (1080, 1920, 3)
FRAME_BYTES = 1080 * 1920 * 3  # 6,220,800
KIB_DATA = 1024 - 8

# name -> message size in bytes (a u64 sequence number and the body; the float is 8 bytes,
# its value being the sequence number)
PAYLOADS = {"float": 8, "1KiB": 1024, "6MB": 8 + FRAME_BYTES}
PAYLOAD_ORDER = ["float", "1KiB", "6MB"]

# Iteration counts: (warm-up round trips, measured round trips, throughput messages)
COUNTS_FULL = {"float": (2000, 20000, 200000), "1KiB": (2000, 20000, 200000), "6MB": (20, 200, 300)}
COUNTS_QUICK = {"float": (100, 300, 3000), "1KiB": (100, 300, 3000), "6MB": (5, 30, 30)}

_U64 = struct.Struct("<Q")
_F64 = struct.Struct("<d")
_U32 = struct.Struct("<I")


def frame_pattern():
    """The prepared 1080x1920x3 frame a producer sends: byte k is k % 251."""
    import numpy as np

    return (np.arange(FRAME_BYTES, dtype=np.uint32) % 251).astype(np.uint8).reshape(FRAME_SHAPE)


def pixel_index(seq):
    """The flat index of the pixel a frame's receiver checks for message `seq`."""
    return (seq * 7919 + 13) % FRAME_BYTES


class DeliveryError(Exception):
    """A message arrived out of order, or with the wrong content."""


def bad_seq(got, want):
    raise DeliveryError(f"sequence {got!r} received, {want} expected")


def bad_pixel(seq, got):
    k = pixel_index(seq)
    raise DeliveryError(f"message {seq}: pixel {k} is {got}, {k % 251} expected")


# ---------------------------------------------------------------------------------------
# Endpoints: each contender gives each of the two processes an object with
#   send(seq)      sends one message on this side's outgoing channel (the driver's ping,
#                  the peer's pong), written as a producer would
#   recv() -> seq  blocks for the next message on the incoming channel, reads it as a
#                  consumer would, returns its sequence number
#   tsend / trecv  the same for the throughput stream (driver -> peer); default send/recv
#   window         None when tsend blocks by itself when the receiver is behind (lossless
#                  transports); otherwise the channel drops on overflow and the driver may
#                  run at most `window` messages ahead of the last acknowledgement
#   ack(n) / wait_ack() -> n   the peer's acknowledgements of throughput messages, and the
#                  driver's blocking wait for the next one (only when window is set)
#   close()
# ---------------------------------------------------------------------------------------


class Endpoint:
    window = None
    ack_every = 0

    def __init__(self):
        self.tsend = None
        self.trecv = None

    def close(self):
        pass


# --- multiprocessing.Pipe ---------------------------------------------------------------


def pipe_shared(ctx, payload, tag):
    ping_r, ping_w = ctx.Pipe(duplex=False)
    pong_r, pong_w = ctx.Pipe(duplex=False)
    return {"ping": (ping_r, ping_w), "pong": (pong_r, pong_w)}


def pipe_open(role, payload, shared, barrier, cfg):
    ep = Endpoint()
    out_w = shared["ping" if role == "driver" else "pong"][1]
    in_r = shared["pong" if role == "driver" else "ping"][0]
    size = PAYLOADS[payload]
    if payload == "float":
        pack, unpack = _F64.pack, _F64.unpack
        send_bytes, recv_bytes = out_w.send_bytes, in_r.recv_bytes

        def send(seq):
            send_bytes(pack(seq))

        def recv():
            return unpack(recv_bytes())[0]

    else:
        out = bytearray(size)
        if payload == "6MB":
            out[8:] = frame_pattern().tobytes()
        inb = bytearray(size)
        pack_into, unpack_from = _U64.pack_into, _U64.unpack_from
        send_bytes, recv_into = out_w.send_bytes, in_r.recv_bytes_into
        frame = payload == "6MB"

        def send(seq):
            pack_into(out, 0, seq)
            send_bytes(out)

        def recv():
            n = recv_into(inb)  # the message lands in our own buffer (a copy, as a pipe gives)
            if n != size:
                raise DeliveryError(f"{n} bytes received, {size} expected")
            seq = unpack_from(inb, 0)[0]
            if frame:
                k = pixel_index(seq)
                if inb[8 + k] != k % 251:
                    bad_pixel(seq, inb[8 + k])
            return seq

    ep.send, ep.recv = send, recv
    return ep


# --- Unix domain socket (socketpair, length-prefixed) --------------------------------------


def uds_shared(ctx, payload, tag):
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    return {"driver": a, "peer": b}


def uds_open(role, payload, shared, barrier, cfg):
    ep = Endpoint()
    sock = shared[role]
    other = shared["peer" if role == "driver" else "driver"]
    other.close()  # our copy of the other end: closed, so a dead peer gives EOF
    size = PAYLOADS[payload]
    # One buffer per direction: a 4-byte length, then the message (seq first).
    out = bytearray(4 + size)
    _U32.pack_into(out, 0, size)
    if payload == "6MB":
        out[12:] = frame_pattern().tobytes()
    reader = sock.makefile("rb", buffering=1 << 16)
    inb = bytearray(size)
    inmv = memoryview(inb)
    hdr = bytearray(4)
    sendall, readinto = sock.sendall, reader.readinto
    unpack_len = _U32.unpack_from
    frame = payload == "6MB"
    if payload == "float":
        pack_into, unpack_from = _F64.pack_into, _F64.unpack_from
    else:
        pack_into, unpack_from = _U64.pack_into, _U64.unpack_from

    def send(seq):
        pack_into(out, 4, seq)
        sendall(out)

    def recv():
        if readinto(hdr) != 4:
            raise EOFError("socket closed")
        n = unpack_len(hdr, 0)[0]
        if n != size:
            raise DeliveryError(f"length {n}, {size} expected")
        if readinto(inmv) != size:  # BufferedReader.readinto fills the buffer unless EOF
            raise EOFError("socket closed mid-message")
        seq = unpack_from(inb, 0)[0]
        if frame:
            k = pixel_index(seq)
            if inb[8 + k] != k % 251:
                bad_pixel(seq, inb[8 + k])
        return seq

    def close():
        reader.close()
        sock.close()

    ep.send, ep.recv, ep.close = send, recv, close
    return ep


# --- multiprocessing.shared_memory + locks -----------------------------------------------
#
# One SharedMemory slot per direction and two multiprocessing.Lock objects per slot used as
# binary semaphores ("empty" and "full": a multiprocessing.Lock may be released by another
# process). The writer waits for "empty", copies the message into the slot, releases "full";
# the reader waits for "full", COPIES THE MESSAGE OUT into its own buffer, releases "empty".
# The copy out is what we chose as the honest consumer: with one shared slot the writer
# overwrites it with the next message as soon as the reader lets go, so a consumer that keeps
# or processes a message after that has to copy it first (a shmx sample, by contrast, stays
# valid for as long as the reader holds it, so the shmx reader does not copy). Throughput uses
# the same single slot, so the writer waits for the reader after each message.


def shm_shared(ctx, payload, tag):
    from multiprocessing import shared_memory

    size = PAYLOADS[payload]
    out = {}
    for d in ("ping", "pong"):
        name = f"{tag}_{d}"
        seg = shared_memory.SharedMemory(name=name, create=True, size=size)
        full = ctx.Lock()
        full.acquire()  # no message yet
        empty = ctx.Lock()
        out[d] = (name, empty, full)
        _PARENT_SEGMENTS.append(seg)
    return out


def shm_open(role, payload, shared, barrier, cfg):
    from multiprocessing import shared_memory

    ep = Endpoint()
    size = PAYLOADS[payload]
    out_name, out_empty, out_full = shared["ping" if role == "driver" else "pong"]
    in_name, in_empty, in_full = shared["pong" if role == "driver" else "ping"]
    out_seg = shared_memory.SharedMemory(name=out_name)
    in_seg = shared_memory.SharedMemory(name=in_name)
    oacq, orel = out_empty.acquire, out_full.release
    iacq, irel = in_full.acquire, in_empty.release
    obuf, ibuf = out_seg.buf, in_seg.buf
    views = []
    if payload == "float":
        pack_into, unpack_from = _F64.pack_into, _F64.unpack_from

        def send(seq):
            oacq()
            pack_into(obuf, 0, seq)
            orel()

        def recv():
            iacq()
            seq = unpack_from(ibuf, 0)[0]  # the copy out of an 8-byte message
            irel()
            return seq

    elif payload == "1KiB":
        msg = bytearray(size)
        mine = bytearray(size)
        pack_into, unpack_from = _U64.pack_into, _U64.unpack_from

        def send(seq):
            pack_into(msg, 0, seq)
            oacq()
            obuf[:size] = msg  # copy the message in
            orel()

        def recv():
            iacq()
            mine[:] = ibuf[:size]  # copy it out
            irel()
            return unpack_from(mine, 0)[0]

    else:
        import numpy as np

        frame = frame_pattern()
        oseq = np.ndarray((1,), np.uint64, buffer=obuf, offset=0)
        opx = np.ndarray(FRAME_SHAPE, np.uint8, buffer=obuf, offset=8)
        ishm = np.ndarray((size,), np.uint8, buffer=ibuf)
        mine = np.empty(size, np.uint8)
        mine_seq = mine[:8].view(np.uint64)
        views += [oseq, opx, ishm]
        copyto = np.copyto

        def send(seq):
            oacq()
            oseq[0] = seq
            copyto(opx, frame)  # copy the frame in
            orel()

        def recv():
            iacq()
            copyto(mine, ishm)  # copy it out
            irel()
            seq = int(mine_seq[0])
            k = pixel_index(seq)
            if mine[8 + k] != k % 251:
                bad_pixel(seq, mine[8 + k])
            return seq

    def close():
        views.clear()
        nonlocal obuf, ibuf
        obuf = ibuf = None
        for seg in (out_seg, in_seg):
            try:
                seg.close()
            except BufferError:
                pass

    ep.send, ep.recv, ep.close = send, recv, close
    return ep


# --- shmx ----------------------------------------------------------------------------------


def _shmx_typed(shmx, payload, tail):
    """The message type of `payload`: a fixed array field (1 KiB), or for `tail` a RelSlice
    whose bytes the publisher allocates in the chunk's tail (`max_tail_bytes`)."""
    if payload == "1KiB":
        return shmx.struct("BenchKiB", [("seq", shmx.u64), ("data", shmx.Array(shmx.u8, KIB_DATA))])
    if tail:
        return shmx.struct("BenchImage", [("seq", shmx.u64), ("pixels", shmx.RelSlice(shmx.u8))])
    return shmx.struct(
        "BenchFrame", [("seq", shmx.u64), ("pixels", shmx.Array(shmx.u8, FRAME_BYTES))]
    )


def shmx_open(role, payload, shared, barrier, cfg, in_place=False, tail=False, spin=False):
    """shmx: the float through the seed API (`Publisher(name, 0.0, 16)`, blocking
    `recv()`); the 1 KiB struct and the frame through typed topics (`loan()`, write the
    fields in place, `publish(loan)`; the receiver reads `s.seq` and looks at the frame
    through a read-only view of the chunk, never copying it).

    6 MB variants: the frame copied into a `RelSlice` allocated in the chunk's tail with one
    `np.copyto` from a prepared array (`tail`), or written in place (`in_place`: a producer
    that renders or captures straight into the loaned chunk writes the pixel the receiver
    checks); without `tail`, into a fixed `Array(u8, 6220800)` field (which `loan()` zeroes).
    """
    import shmx

    ep = Endpoint()
    typed_api = hasattr(shmx, "struct")
    mine, theirs = ("ping", "pong") if role == "driver" else ("pong", "ping")
    # Throughput without loss: a shmx queue drops its oldest message when it is full (the
    # Python API offers no blocking overflow), so the driver keeps at most `window` messages
    # in flight, no more than the queue depth, and the peer acknowledges every `ack_every`
    # on a seed float topic. The queue depth is the smaller of the publisher's and the
    # subscriber's buffer_num (a build whose Subscriber takes no buffer_num: 16).
    if payload == "6MB":
        depth, tdepth = 4, 8
    else:
        depth, tdepth = 16, (256 if typed_api else 16)
    ep.window = tdepth
    ep.ack_every = tdepth // 2
    sub_kw = {"buffer_num": tdepth} if typed_api else {}

    if payload == "float":
        pub = shmx.Publisher(mine, 0.0, depth)
        tpub = shmx.Publisher("tput", 0.0, tdepth) if role == "driver" else None
    else:
        if not typed_api:
            raise RuntimeError("this shmx build has no typed API (shmx.struct)")
        T = _shmx_typed(shmx, payload, tail)
        pkw = {"max_tail_bytes": FRAME_BYTES} if tail else {}
        pub = shmx.Publisher(mine, T, buffer_num=depth, **pkw)
        tpub = shmx.Publisher("tput", T, buffer_num=tdepth, **pkw) if role == "driver" else None
    apub = shmx.Publisher("ack", 0.0, 16) if role == "peer" else None
    barrier.wait(cfg["barrier_timeout"])  # every publisher exists before any subscriber
    if payload == "float":
        sub = shmx.Subscriber(theirs, 0.0)
        tsub = shmx.Subscriber("tput", 0.0, **sub_kw) if role == "peer" else None
    else:
        sub = shmx.Subscriber(theirs, T)
        tsub = shmx.Subscriber("tput", T, **sub_kw) if role == "peer" else None
    asub = shmx.Subscriber("ack", 0.0) if role == "driver" else None

    def make_float(p, s):
        publish = p.publish if p else None
        if s is None:
            return publish, None
        if hasattr(s, "recv") and not spin:
            recv = s.recv  # blocking, the GIL released while it waits
        else:
            subscribe = s.subscribe

            def recv():  # spin on subscribe() (or: no blocking recv() in this build)
                while True:
                    v, ok = subscribe()
                    if ok:
                        return v

        return publish, recv

    if payload == "float":
        ep.send, ep.recv = make_float(pub, sub)
        ep.tsend, ep.trecv = make_float(tpub, tsub)
        ep.blocking_recv = hasattr(sub, "recv") or spin
    else:
        import numpy as np

        is_frame = payload == "6MB"
        frame = frame_pattern().ravel() if is_frame else None
        copyto = np.copyto

        def make_typed(p, s):
            send = recv = None
            if p is not None:
                loan, publish = p.loan, p.publish
                if not is_frame:

                    def send(seq):  # the producer writes its field in place
                        m = loan()
                        m.seq = seq
                        publish(m)

                elif tail and in_place:

                    def send(seq):
                        m = loan()
                        m.seq = seq
                        # The frame is rendered (or captured) straight into the chunk: this
                        # writes the one pixel the receiver checks.
                        px = m.alloc("pixels", FRAME_BYTES)
                        k = pixel_index(seq)
                        px[k] = k % 251
                        del px  # views of a loan go before it is published
                        publish(m)

                elif tail:

                    def send(seq):
                        m = loan()
                        m.seq = seq
                        copyto(m.alloc("pixels", FRAME_BYTES), frame)  # the one copy
                        publish(m)

                elif in_place:

                    def send(seq):
                        m = loan()
                        m.seq = seq
                        publish(m)

                else:

                    def send(seq):
                        m = loan()
                        m.seq = seq
                        copyto(m["pixels"], frame)  # the one copy of the frame, into the chunk
                        publish(m)

            if s is not None:
                srecv = s.recv
                if spin:
                    take = s.take

                    def srecv():  # spin on take(), as the iceoryx2 receiver spins
                        while True:
                            smp = take()
                            if smp is not None:
                                return smp

                if is_frame:

                    def recv():
                        smp = srecv()
                        seq = int(smp.seq)
                        px = smp["pixels"]  # a read-only view of the chunk, no copy
                        k = pixel_index(seq)
                        if px[k] != k % 251:
                            bad_pixel(seq, px[k])
                        return seq

                else:

                    def recv():
                        return srecv().seq

            return send, recv

        ep.send, ep.recv = make_typed(pub, sub)
        ep.tsend, ep.trecv = make_typed(tpub, tsub)

    if apub is not None:
        ep.ack = apub.publish
    if asub is not None:
        take = asub.subscribe
        arecv = getattr(asub, "recv", None)

        def wait_ack():
            if arecv is not None:
                v = arecv()  # blocking (spins a little, then sleeps)
            else:
                while True:
                    v, ok = take()
                    if ok:
                        break
            while True:  # the latest acknowledgement
                w, ok = take()
                if not ok:
                    return v
                v = w

        ep.wait_ack = wait_ack
    keep = [pub, sub, tpub, tsub, apub, asub]

    def close():
        keep.clear()

    ep.close = close
    return ep


def shmx_spin_open(role, payload, shared, barrier, cfg):
    frame = payload == "6MB"
    return shmx_open(role, payload, shared, barrier, cfg, in_place=frame, tail=frame, spin=True)


def shmx_tail_open(role, payload, shared, barrier, cfg):
    return shmx_open(role, payload, shared, barrier, cfg, tail=True)


def shmx_main_open(role, payload, shared, barrier, cfg):
    """shmx as it is meant to be used: frames written in place into a `RelSlice` of the
    loaned chunk (the float and the 1 KiB struct as `shmx_open`)."""
    frame = payload == "6MB"
    return shmx_open(role, payload, shared, barrier, cfg, in_place=frame, tail=frame)


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


# ---------------------------------------------------------------------------------------
# Contenders
# ---------------------------------------------------------------------------------------

# name -> (open, shared-maker or None, payloads, requirement)
CONTENDERS = {
    "shmx": (shmx_main_open, None, PAYLOAD_ORDER, "shmx"),
    "shmx, spinning receiver": (shmx_spin_open, None, PAYLOAD_ORDER, "shmx"),
    "shmx, frame copied in": (shmx_tail_open, None, ["6MB"], "shmx"),
    "iceoryx2": (iox2_open, None, PAYLOAD_ORDER, "iceoryx2"),
    "mp.shared_memory + Lock": (shm_open, shm_shared, PAYLOAD_ORDER, None),
    "mp.Pipe": (pipe_open, pipe_shared, PAYLOAD_ORDER, None),
    "Unix socket": (uds_open, uds_shared, PAYLOAD_ORDER, None),
}
CONTENDER_ORDER = list(CONTENDERS)

_PARENT_SEGMENTS = []  # SharedMemory segments the parent created for the current job


# ---------------------------------------------------------------------------------------
# The two processes of a measurement
# ---------------------------------------------------------------------------------------


def _percentile(sorted_vals, q):
    return sorted_vals[min(len(sorted_vals) - 1, round(q * (len(sorted_vals) - 1)))]


def run_driver(ep, counts, barrier, cfg):
    warm, n, m = counts
    send, recv = ep.send, ep.recv
    pc = time.perf_counter_ns
    rts = []
    app = rts.append
    for i in range(warm + n):
        t0 = pc()
        send(i)
        s = recv()
        t1 = pc()
        if s != i:
            bad_seq(s, i)
        app(t1 - t0)
    del rts[:warm]
    rts.sort()
    barrier.wait(cfg["barrier_timeout"])
    tsend = ep.tsend or send
    window = ep.window
    t0 = pc()
    if window is None:
        for i in range(m):
            tsend(i)
    else:
        wait_ack = ep.wait_ack
        acked = 0
        for i in range(m):
            if i - acked >= window:
                acked = wait_ack()
            tsend(i)
    t_sent = pc()
    barrier.wait(cfg["barrier_timeout"])  # the peer has everything
    return {
        "lat_median_ns": statistics.median(rts) / 2,
        "lat_p99_ns": _percentile(rts, 0.99) / 2,
        "lat_min_ns": rts[0] / 2,
        "round_trips": n,
        "t_start": t0,
        "t_sent": t_sent,
    }


def run_peer(ep, counts, barrier, cfg):
    warm, n, m = counts
    send, recv = ep.send, ep.recv
    for i in range(warm + n):
        s = recv()
        if s != i:
            bad_seq(s, i)
        send(i)
    barrier.wait(cfg["barrier_timeout"])
    trecv = ep.trecv or recv
    pc = time.perf_counter_ns
    every = ep.ack_every if ep.window is not None else 0
    if every:
        ack = ep.ack
        left = every
        for i in range(m):
            s = trecv()
            if s != i:
                bad_seq(s, i)
            left -= 1
            if not left:
                ack(i + 1)
                left = every
    else:
        for i in range(m):
            s = trecv()
            if s != i:
                bad_seq(s, i)
    t_end = pc()
    barrier.wait(cfg["barrier_timeout"])
    return {"t_end": t_end, "received": m}


def child_main(role, contender, payload, counts, cfg, shared, barrier, conn):
    ep = None
    # A forked child inherits the parent's handlers and atexit hooks: it must not run them.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C: the parent stops the children
    _CLEANUP["parent_pid"] = None
    try:
        os.environ["SHMX_ROOT"] = cfg["shmx_root"]
        opener = CONTENDERS[contender][0]
        ep = opener(role, payload, shared, barrier, cfg)
        barrier.wait(cfg["barrier_timeout"])
        fn = run_driver if role == "driver" else run_peer
        res = fn(ep, counts, barrier, cfg)
        if getattr(ep, "blocking_recv", None) is not None:
            res["blocking_recv"] = ep.blocking_recv
        conn.send(("ok", res))
    except BaseException as e:  # noqa: BLE001 - reported in the table
        msg = f"{type(e).__name__}: {e}".strip().rstrip(":")
        if isinstance(e, threading_broken_barrier()):
            msg = "the other process failed or timed out (barrier broken)"
        try:
            conn.send(("error", msg, traceback.format_exc()))
        except Exception:
            pass
        try:
            barrier.abort()
        except Exception:
            pass
    finally:
        if ep is not None:
            try:
                ep.close()
            except Exception:
                pass
        conn.close()


def threading_broken_barrier():
    import threading

    return threading.BrokenBarrierError


# ---------------------------------------------------------------------------------------
# The parent: jobs, rounds, cleanup, the table
# ---------------------------------------------------------------------------------------

_LIVE_CHILDREN = []
_CLEANUP = {"base": None, "shm_before": None, "tag": None, "parent_pid": None}


def _kill_children():
    for p in list(_LIVE_CHILDREN):
        if p.is_alive():
            p.terminate()
    for p in list(_LIVE_CHILDREN):
        p.join(2)
        if p.is_alive():
            p.kill()
            p.join(2)
    _LIVE_CHILDREN.clear()


def _unlink_segments():
    for seg in _PARENT_SEGMENTS:
        try:
            seg.close()
        except Exception:
            pass
        try:
            seg.unlink()
        except FileNotFoundError:
            pass
        except Exception:
            pass
    _PARENT_SEGMENTS.clear()


def _final_cleanup():
    if _CLEANUP["parent_pid"] != os.getpid():
        return  # only the parent cleans up (a forked child inherits the atexit hook)
    _kill_children()
    _unlink_segments()
    base = _CLEANUP["base"]
    if base:
        shutil.rmtree(base, ignore_errors=True)
        _CLEANUP["base"] = None
    before = _CLEANUP["shm_before"]
    if before is not None:
        # Whatever this run created in /dev/shm: our segments (named after the run's tag) and
        # iceoryx2's files (iox2_*: it may leave its global management file behind).
        tag = _CLEANUP["tag"]
        for name in set(os.listdir("/dev/shm")) - before:
            if name.startswith("iox2_") or (tag and name.startswith(tag)):
                path = os.path.join("/dev/shm", name)
                try:
                    if os.path.isdir(path):
                        shutil.rmtree(path, ignore_errors=True)
                    else:
                        os.unlink(path)
                except OSError:
                    pass


def run_job(ctx, contender, payload, counts, cfg, job_no):
    """Runs one measurement in two fresh processes; returns a result dict or {'error': ...}."""
    _, make_shared, _, _ = CONTENDERS[contender]
    job_root = os.path.join(cfg["base"], f"job{job_no}")
    os.mkdir(job_root)
    jcfg = dict(cfg)
    jcfg["shmx_root"] = job_root
    jcfg["iox2_prefix"] = f"{cfg['tag']}/job{job_no}"
    shared = None
    conns = {}
    procs = {}
    out = {}
    try:
        shared = make_shared(ctx, payload, f"{cfg['tag']}_{job_no}") if make_shared else None
        barrier = ctx.Barrier(2)
        for role in ("driver", "peer"):
            r, w = ctx.Pipe(duplex=False)
            p = ctx.Process(
                target=child_main,
                args=(role, contender, payload, counts, jcfg, shared, barrier, w),
                daemon=True,
            )
            p.start()
            w.close()
            _LIVE_CHILDREN.append(p)
            conns[role], procs[role] = r, p
        deadline = time.monotonic() + cfg["job_timeout"]
        pending = dict(conns)
        while pending:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            ready = mp.connection.wait(list(pending.values()), timeout=min(left, 1.0))
            for c in ready:
                role = next(k for k, v in pending.items() if v is c)
                try:
                    out[role] = c.recv()
                except EOFError:
                    out[role] = (
                        "error",
                        f"the {role} process died (exit code {procs[role].exitcode})",
                        "",
                    )
                del pending[role]
                if out[role][0] == "error" and pending:
                    # give the other one a moment to notice, then stop waiting for it
                    deadline = min(deadline, time.monotonic() + 3)
        for role in pending:
            out[role] = ("error", f"timed out after {cfg['job_timeout']:g} s", "")
    except Exception as e:  # noqa: BLE001
        out["parent"] = ("error", f"{type(e).__name__}: {e}", traceback.format_exc())
    finally:
        for p in procs.values():
            p.join(5)
        _kill_children()
        for c in conns.values():
            c.close()
        if shared is not None and "driver" in shared:  # the socket pair
            for s in shared.values():
                s.close()
        _unlink_segments()
        shutil.rmtree(job_root, ignore_errors=True)

    errors = [(role, o) for role, o in out.items() if o[0] == "error"]
    if errors:
        # the first real error (not the other side's broken barrier)
        errors.sort(key=lambda ro: "barrier broken" in ro[1][1] or "timed out" in ro[1][1])
        role, o = errors[0]
        if cfg["verbose"] and o[2]:
            sys.stderr.write(f"--- {contender} / {payload} ({role}):\n{o[2]}\n")
        return {"error": f"{o[1]} ({role})"}
    d, pr = out["driver"][1], out["peer"][1]
    m = counts[2]
    secs = (pr["t_end"] - d["t_start"]) / 1e9
    res = {
        "lat_median_ns": d["lat_median_ns"],
        "lat_p99_ns": d["lat_p99_ns"],
        "lat_min_ns": d["lat_min_ns"],
        "msgs_per_s": m / secs,
        "MB_per_s": m * PAYLOADS[payload] / secs / 1e6,
        "tput_messages": m,
        "tput_seconds": secs,
    }
    if "blocking_recv" in d:
        res["blocking_recv"] = d["blocking_recv"]
    return res


def fmt_us(ns):
    us = ns / 1000
    if us < 10:
        return f"{us:.2f}"
    if us < 100:
        return f"{us:.1f}"
    return f"{us:.0f}"


def fmt_rate(r):
    if r >= 1e6:
        return f"{r / 1e6:.2f} M"
    if r >= 1e3:
        return f"{r / 1e3:.1f} k"
    return f"{r:.0f}"


def fmt_ratio(x):
    if x is None:
        return "–"
    if x >= 100:
        return f"{x:.0f}×"
    if x >= 10:
        return f"{x:.1f}×"
    return f"{x:.2f}×"


def summarize(results, payloads, contenders, rounds):
    """Medians over the rounds, and per-round ratios to shmx on the same payload."""
    rows = []
    for payload in payloads:
        ref = results.get((payload, "shmx"), [None] * rounds)
        for c in contenders:
            if (payload, c) not in results:
                continue
            runs = results[(payload, c)]
            ok = [r for r in runs if r and "error" not in r]
            errs = [r["error"] for r in runs if r and "error" in r]
            row = {
                "payload": payload,
                "contender": c,
                "rounds_ok": len(ok),
                "rounds": len(runs),
                "errors": errs,
                "per_round": runs,
            }
            if ok:
                for k in ("lat_median_ns", "lat_p99_ns", "msgs_per_s", "MB_per_s"):
                    row[k] = statistics.median(r[k] for r in ok)
                lat_r, tp_r = [], []
                for r, s in zip(runs, ref):
                    if r and s and "error" not in r and "error" not in s:
                        lat_r.append(r["lat_median_ns"] / s["lat_median_ns"])
                        tp_r.append(r["msgs_per_s"] / s["msgs_per_s"])
                row["lat_vs_shmx"] = statistics.median(lat_r) if lat_r else None
                row["tput_vs_shmx"] = statistics.median(tp_r) if tp_r else None
                if any("blocking_recv" in r for r in ok):
                    row["blocking_recv"] = all(r.get("blocking_recv") for r in ok)
            rows.append(row)
    return rows


def markdown_table(rows):
    lines = [
        "| payload | contender | one-way median (µs) | p99 (µs) | msg/s | MB/s | latency ÷ shmx | msg/s ÷ shmx |",
        "|---|---|--:|--:|--:|--:|--:|--:|",
    ]
    for r in rows:
        name = r["contender"]
        if r.get("blocking_recv") is False:
            name += " (spinning subscribe(): no recv() in this build)"
        if "lat_median_ns" not in r:
            err = r["errors"][0] if r["errors"] else "no result"
            err = err.replace("|", "\\|")
            lines.append(f"| {r['payload']} | {name} | error: {err} | – | – | – | – | – |")
            continue
        mb = f"{r['MB_per_s']:.0f}" if r["payload"] == "6MB" else "–"
        if r["rounds_ok"] < r["rounds"]:
            name += (
                f" ({r['rounds'] - r['rounds_ok']}/{r['rounds']} rounds failed: "
                f"{r['errors'][0].replace('|', '/')})"
            )
        lines.append(
            f"| {r['payload']} | {name} | {fmt_us(r['lat_median_ns'])} | {fmt_us(r['lat_p99_ns'])} "
            f"| {fmt_rate(r['msgs_per_s'])} | {mb} | {fmt_ratio(r.get('lat_vs_shmx'))} "
            f"| {fmt_ratio(r.get('tput_vs_shmx'))} |"
        )
    return "\n".join(lines)


NOTES = """\
One-way latency = ping-pong round trip / 2 (median, p99 over the round trips); msg/s: one
way, the receiver checking every sequence number; MB/s of 6,220,808-byte messages (a u64
sequence number and a 1920x1080x3 u8 frame). Medians over the rounds; the ÷ shmx columns are
medians of per-round ratios to the `shmx` row of the same payload.
- shmx: float through the seed API (blocking `recv()`); 1 KiB and 6 MB typed (`loan()`,
  `m.seq = i`, `publish(m)`; the receiver reads `s.seq` and checks a pixel through a view of
  the chunk, no copy). 6 MB `shmx`: the frame is written in place (a producer that renders
  or captures into the loan: it allocates the frame in the chunk's tail, `alloc("pixels",
  n)`, and writes the pixel the receiver checks); `frame copied in`: the same with the whole
  frame copied into the tail by one `np.copyto` from a prepared array. `spinning receiver`:
  the same endpoints, the receiver spinning on `subscribe()`/`take()` instead of the
  blocking `recv()` (which spins a while, then sleeps).
- shmx and iceoryx2 throughput is lossless: shmx queues drop the oldest when full, so the
  sender keeps at most a queue's worth in flight (acknowledged on a float topic); iceoryx2
  publishers block (`RetryUntilDelivered`); iceoryx2 receivers spin on `receive()`.
- mp.shared_memory + Lock: one slot per direction, two Locks as semaphores; the reader copies
  the message out. mp.Pipe: `send_bytes`/`recv_bytes_into`. Unix socket: a socketpair,
  4-byte length prefix, buffered reads into a preallocated buffer."""


def targets(rows):
    by = {(r["payload"], r["contender"]): r for r in rows}
    out = []
    f = by.get(("float", "shmx"))
    if f and "lat_median_ns" in f:
        us = f["lat_median_ns"] / 1000
        out.append(
            f"- float one-way latency < 2 µs: {us:.2f} µs — {'met' if us < 2 else 'NOT met'}"
        )
        rate = f["msgs_per_s"]
        out.append(
            f"- float throughput > 1 M msg/s: {rate / 1e6:.2f} M/s — "
            f"{'met' if rate > 1e6 else 'NOT met'}"
        )
        for c in ("shmx", "shmx, frame copied in"):
            fr = by.get(("6MB", c))
            if fr and "lat_median_ns" in fr:
                x = fr["lat_median_ns"] / f["lat_median_ns"]
                out.append(
                    f"- 6 MB frame latency within 2× of the float ({c}): {x:.1f}× — "
                    f"{'met' if x <= 2 else 'NOT met'}"
                )
    return "\n".join(out)


def probe(module):
    """(True, version) if `module` imports in a fresh interpreter, else (False, reason)."""
    code = (
        f"import {module} as m, importlib.metadata as md\n"
        f"try: v = md.version({module!r})\nexcept Exception: v = '?'\n"
        f"print(v, 'from', __import__('os').path.dirname(m.__file__))"
    )
    try:
        p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    except Exception as e:  # noqa: BLE001
        return False, f"{type(e).__name__}: {e}"
    if p.returncode != 0:
        last = (p.stderr.strip().splitlines() or ["import failed"])[-1]
        return False, last
    return True, p.stdout.strip()


def machine_load():
    """The load average and the CPU pressure (other work on this machine skews the results)."""
    out = []
    try:
        with open("/proc/loadavg") as f:
            out.append("loadavg " + " ".join(f.read().split()[:3]))
        with open("/proc/pressure/cpu") as f:
            some = f.readline().split()
            out.append("CPU pressure " + " ".join(some[1:3]))
    except OSError:
        pass
    return ", ".join(out) or "?"


def git_describe():
    here = os.path.dirname(os.path.abspath(__file__))
    try:
        return (
            subprocess.run(
                ["git", "-C", here, "rev-parse", "--short", "HEAD"],
                capture_output=True,
                text=True,
                timeout=10,
            ).stdout.strip()
            or "?"
        )
    except Exception:
        return "?"


def main(argv=None):
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    ap.add_argument("--quick", action="store_true", help="a few hundred iterations: a smoke test")
    ap.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="SUBSTRING",
        help="only contenders whose name contains SUBSTRING (case-insensitive; repeatable)",
    )
    ap.add_argument(
        "--payloads",
        default=",".join(PAYLOAD_ORDER),
        help=f"comma-separated subset of {','.join(PAYLOAD_ORDER)}",
    )
    ap.add_argument("--json", metavar="FILE", help="also write the results to FILE")
    ap.add_argument("--start-method", default="fork", choices=["fork", "spawn", "forkserver"])
    ap.add_argument("--seed", type=int, default=None, help="seed of the round order")
    ap.add_argument(
        "--timeout",
        type=float,
        default=None,
        help="seconds per measurement before its processes are killed",
    )
    ap.add_argument("-v", "--verbose", action="store_true", help="tracebacks of failures")
    args = ap.parse_args(argv)

    payloads = [p.strip() for p in args.payloads.split(",") if p.strip()]
    for p in payloads:
        if p not in PAYLOADS:
            ap.error(f"unknown payload {p!r} (known: {', '.join(PAYLOAD_ORDER)})")
    contenders = [
        c
        for c in CONTENDER_ORDER
        if not args.only or any(s.lower() in c.lower() for s in args.only)
    ]
    if not contenders:
        ap.error("--only matched no contender (" + ", ".join(CONTENDER_ORDER) + ")")
    counts = COUNTS_QUICK if args.quick else COUNTS_FULL

    available = {}
    for req in sorted({CONTENDERS[c][3] for c in contenders} - {None}):
        available[req] = probe(req)
    skipped = []
    for c in list(contenders):
        req = CONTENDERS[c][3]
        if req and not available[req][0]:
            contenders.remove(c)
            skipped.append(f"{c}: not available ({available[req][1]})")

    tag = f"shmxpb{os.getpid()}"
    _CLEANUP["parent_pid"] = os.getpid()
    _CLEANUP["shm_before"] = set(os.listdir("/dev/shm"))
    _CLEANUP["tag"] = tag
    base = tempfile.mkdtemp(prefix=f"{tag}-root-", dir="/dev/shm")
    _CLEANUP["base"] = base
    atexit.register(_final_cleanup)

    def on_signal(signum, frame):
        if os.getpid() != _CLEANUP["parent_pid"]:
            os._exit(128 + signum)
        _final_cleanup()
        sys.exit(128 + signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    cfg = {
        "base": base,
        "tag": tag,
        "barrier_timeout": 60.0 if not args.quick else 30.0,
        "job_timeout": args.timeout or (90.0 if not args.quick else 30.0),
        "verbose": args.verbose,
    }
    ctx = mp.get_context(args.start_method)
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    jobs = [(p, c) for p in payloads for c in contenders if p in CONTENDERS[c][2]]
    results = {j: [None] * args.rounds for j in jobs}

    header = [
        f"shmx Python benchmark: {platform.python_implementation()} {platform.python_version()}, "
        f"{os.cpu_count()} CPUs, {platform.system()} {platform.release()}, repo at {git_describe()}, "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
        f"rounds {args.rounds}, {'quick' if args.quick else 'full'} counts "
        + ", ".join(
            f"{p}: {counts[p][1]} round trips + {counts[p][0]} warm-up, {counts[p][2]} messages"
            for p in payloads
        )
        + f"; start method {args.start_method}; order seed {seed}",
    ]
    header.append(f"machine load before the run: {machine_load()}")
    for req, (ok, info) in available.items():
        header.append(f"{req}: {info if ok else 'not available (' + info + ')'}")
    for line in header:
        print(line, flush=True)
    for s in skipped:
        print(s, flush=True)

    t_run = time.monotonic()
    job_no = 0
    for rnd in range(args.rounds):
        order = list(jobs)
        random.Random(seed + rnd).shuffle(order)
        for payload, c in order:
            job_no += 1
            t = time.monotonic()
            r = run_job(ctx, c, payload, counts[payload], cfg, job_no)
            results[(payload, c)][rnd] = r
            took = time.monotonic() - t
            if "error" in r:
                desc = f"error: {r['error']}"
            else:
                desc = (
                    f"{fmt_us(r['lat_median_ns'])} µs one-way (p99 {fmt_us(r['lat_p99_ns'])}), "
                    f"{fmt_rate(r['msgs_per_s'])}msg/s"
                    + (f", {r['MB_per_s']:.0f} MB/s" if payload == "6MB" else "")
                )
            print(
                f"[round {rnd + 1}/{args.rounds}] {payload:5} {c}: {desc} ({took:.1f} s)",
                file=sys.stderr,
                flush=True,
            )
    elapsed = time.monotonic() - t_run

    rows = summarize(results, payloads, contenders, args.rounds)
    print()
    print(markdown_table(rows))
    print()
    print(NOTES)
    print()
    t = targets(rows)
    if t:
        print("Targets (shmx, medians over the rounds):")
        print(t)
    for s in skipped:
        print(f"- {s}")
    load_after = machine_load()
    print(
        f"\n{args.rounds} rounds, {job_no} measurements, {elapsed:.0f} s; load after: {load_after}."
    )

    if args.json:
        doc = {
            "header": header,
            "skipped": skipped,
            "rounds": args.rounds,
            "quick": args.quick,
            "counts": {
                p: dict(zip(("warmup", "round_trips", "throughput_messages"), counts[p]))
                for p in payloads
            },
            "payload_bytes": {p: PAYLOADS[p] for p in payloads},
            "seed": seed,
            "seconds": elapsed,
            "load_after": load_after,
            "rows": rows,
        }
        with open(args.json, "w") as f:
            json.dump(doc, f, indent=1)
    _final_cleanup()
    failed = any("lat_median_ns" not in r for r in rows)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
