"""The shmx contenders of the Python benchmark: `shmx_open` and its variants (the frame
written in place or copied into the chunk's tail, a spinning receiver).
"""

from __future__ import annotations

from .common import FRAME_BYTES, KIB_DATA, Endpoint, bad_pixel, frame_pattern, pixel_index

# --- shmx ----------------------------------------------------------------------------------

# A frame written in place writes one pixel, and a process's first touch of a page of shared
# memory is a page fault (~1 µs per 4 KiB page and process). In a pipeline every frame is
# written and read whole, so after the first frames each chunk's pages are mapped in both
# processes and a frame costs no faults: the first WARM_FRAMES frames of each endpoint touch
# every page (the latency warm-up is 20 round trips; a topic cycles through fewer chunks).
# The throughput stream is not warmed: its 300 frames include their first touches.
WARM_FRAMES = 32
PAGE = 4096


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

        def make_typed(p, s, warm):
            send = recv = None
            if p is not None:
                loan, publish = p.loan, p.publish
                if not is_frame:

                    def send(seq):  # the producer writes its field in place
                        m = loan()
                        m.seq = seq
                        publish(m)

                elif tail and in_place:
                    first = [warm]

                    def send(seq):
                        m = loan()
                        m.seq = seq
                        # The frame is rendered (or captured) straight into the chunk: this
                        # writes the one pixel the receiver checks.
                        px = m.alloc("pixels", FRAME_BYTES)
                        if first[0]:
                            # A whole frame's pages, as a producer's first frames write them.
                            first[0] -= 1
                            px[::PAGE] = 0
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
                    first = [warm if in_place else 0]

                    def recv():
                        smp = srecv()
                        seq = int(smp.seq)
                        px = smp["pixels"]  # a read-only view of the chunk, no copy
                        if first[0]:
                            # A whole frame's pages, as a consumer's first frames read them.
                            first[0] -= 1
                            px[::PAGE].max()
                        k = pixel_index(seq)
                        if px[k] != k % 251:
                            bad_pixel(seq, px[k])
                        return seq

                else:

                    def recv():
                        return srecv().seq

            return send, recv

        ep.send, ep.recv = make_typed(pub, sub, WARM_FRAMES)
        ep.tsend, ep.trecv = make_typed(tpub, tsub, 0)

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

