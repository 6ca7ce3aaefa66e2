"""The report of the Python benchmark: number formats, the medians and ratios over the rounds
(`summarize`), the markdown table, its notes, the targets, and the header's facts (which
optional modules import, the machine's load, the repository's commit).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys


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
