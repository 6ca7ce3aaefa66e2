"""The parent's side of one measurement of the Python benchmark: `run_job` starts the two
child processes, collects their results (or errors, or a timeout), cleans up after them, and
turns the driver's and peer's timestamps into latency and throughput.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import shutil
import sys
import time
import traceback

from .cleanup import _LIVE_CHILDREN, _kill_children, _unlink_segments
from .common import PAYLOADS
from .contenders import CONTENDERS
from .measure import child_main


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
