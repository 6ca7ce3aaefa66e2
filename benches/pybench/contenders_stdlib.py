"""The standard-library contenders of the Python benchmark: multiprocessing.Pipe, a Unix
domain socket (socketpair), and multiprocessing.shared_memory with locks.

Each has a `*_shared(ctx, payload, tag)` that the parent calls to make what both processes
share, and a `*_open(role, payload, shared, barrier, cfg)` that gives a child its `Endpoint`.
"""

from __future__ import annotations

import socket

from .cleanup import _PARENT_SEGMENTS
from .common import (
    _F64,
    _U32,
    _U64,
    FRAME_SHAPE,
    PAYLOADS,
    DeliveryError,
    Endpoint,
    bad_pixel,
    frame_pattern,
    pixel_index,
)

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
