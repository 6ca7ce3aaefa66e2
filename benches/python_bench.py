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

This file holds the command line and the run; the contenders, the measurement and the
report are in the package next to it, benches/pybench/ (listed in its __init__.py).
"""

from __future__ import annotations

import argparse
import atexit
import json
import multiprocessing as mp
import os
import platform
import random
import signal
import sys
import tempfile
import time

# The modules live in the package next to this file, benches/pybench/: put benches/ first on
# sys.path, whatever the working directory (spawned children inherit the parent's sys.path
# and re-run this file as __mp_main__, so they find the package too).
_BENCHES = os.path.dirname(os.path.abspath(__file__))
if sys.path[:1] != [_BENCHES]:
    sys.path.insert(0, _BENCHES)

from pybench.cleanup import _CLEANUP, _final_cleanup  # noqa: E402
from pybench.common import COUNTS_FULL, COUNTS_QUICK, PAYLOAD_ORDER, PAYLOADS  # noqa: E402
from pybench.contenders import CONTENDER_ORDER, CONTENDERS  # noqa: E402
from pybench.report import (  # noqa: E402
    NOTES,
    fmt_rate,
    fmt_us,
    git_describe,
    machine_load,
    markdown_table,
    probe,
    summarize,
    targets,
)
from pybench.runner import run_job  # noqa: E402


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
