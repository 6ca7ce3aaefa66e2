"""The two processes of a measurement: the driver (ping-pong latency, then the throughput
stream) and the peer (pong, then receiving and checking the stream), and `child_main`, the
target of each child process.
"""

from __future__ import annotations

import os
import signal
import statistics
import time
import traceback

from .cleanup import _CLEANUP
from .common import bad_seq
from .contenders import CONTENDERS

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
