"""Helpers shared by the benchmark scripts: wait for a quiet machine, take medians.

The benchmarks run on shared machines (CI runners, VMs with 2 cores that other jobs use). A
decode step that streams 2 GB of weights is bandwidth bound; a second busy process halves the
bandwidth or, with 2 OpenMP threads on 2 cores, stalls every parallel region on a preempted thread.
So every script measures its variants alternately (A, B, A, B, ...), reports medians, and calls
:func:`wait_for_quiet` before each measurement: it samples /proc/stat and returns once the
machine's CPUs were at least ``idle_min`` idle over ``window_s`` (or after ``max_wait_s``, saying so).
"""

from __future__ import annotations

import statistics
import sys
import time


def _cpu_times() -> tuple[int, int]:
    with open("/proc/stat", encoding="ascii") as fh:
        fields = [int(x) for x in fh.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return idle, sum(fields[:8])  # without guest time (already counted in user)


def idle_fraction(window_s: float = 1.0) -> float:
    """Fraction of CPU time spent idle, machine-wide, over ``window_s`` seconds (1.0 off Linux)."""
    try:
        i0, t0 = _cpu_times()
        time.sleep(window_s)
        i1, t1 = _cpu_times()
    except OSError:
        time.sleep(window_s)
        return 1.0
    return (i1 - i0) / max(1, t1 - t0)


def wait_for_quiet(idle_min: float = 0.9, window_s: float = 1.0, max_wait_s: float = 120.0, log=sys.stderr) -> float:
    """Block until the machine is at least ``idle_min`` idle over ``window_s``; return that fraction.

    Gives up after ``max_wait_s`` (prints a note) so a busy CI machine still finishes.
    """
    deadline = time.monotonic() + max_wait_s
    while True:
        idle = idle_fraction(window_s)
        if idle >= idle_min:
            return idle
        if time.monotonic() > deadline:
            print(f"note: machine still busy ({1 - idle:.0%} used); measuring anyway", file=log)
            return idle
        time.sleep(window_s)


def median(xs) -> float:
    return float(statistics.median(xs))


def add_shape_args(ap) -> None:
    """The case shape every benchmark takes: --model, --dtype, --batch, --prompt-len, --gen-len."""
    ap.add_argument("--model", default="qwen2.5-0.5b")
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--prompt-len", type=int, default=64)
    ap.add_argument("--gen-len", type=int, default=32)
