"""Harness overhead: the timed decode loop with its instrumentation vs a bare loop (pytest-benchmark).

    python -m pytest benchmarks/test_overhead.py --benchmark-enable [--benchmark-columns=median,iqr,rounds]

* ``instrumented``: ``LLMTrial.run`` with the cpu backend's real timer (``PerfCounterTimer``): a
  mark after prefill and after every decode step, then the metric computation -- exactly what
  ``accelbench run`` times per repetition.
* ``bare``: the same session calls (``reset``, ``prefill``, ``decode`` x (G-1)) with no marks.
* ``paired``: both plus a second bare loop, ``PAIRS`` sets per round, the order alternating (a
  noisy machine drifts less within a set than between two tests). ``extra_info`` holds the
  medians over sets of ``step_overhead`` = TPOT the harness reports (from its marks) / TPOT of
  the bare loop (two clock reads around its decode loop) - 1, the target (< 1%), and
  ``loop_overhead`` = wall time of ``LLMTrial.run`` / wall time of the bare loop - 1, which also
  counts the bookkeeping after the last mark (keeping the tokens, computing the metrics: ~10 us),
  and ``control`` = TPOT of the second bare loop / TPOT of the first - 1: the noise floor.
* ``timer_mark``: the cost of 32 ``timer.mark()`` calls (what the instrumentation adds to one
  repetition at gen_len 32).

Each loop is one repetition of the ``llm`` case (prompt_len 64, gen_len 32, batch 1, float32, all
cores) on ``tiny`` and on ``qwen2.5-0.5b``. Not part of the test suite (testpaths = tests) and
``--benchmark-disable`` is the project default, so without ``--benchmark-enable`` each runs once.
"""

from __future__ import annotations

import statistics
import time

import pytest

from backends.base import PerfCounterTimer
from backends.cpu import CPUBackend
from workloads.llm.workload import LLMWorkload

MODELS = ["tiny", "qwen2.5-0.5b"]
PAIRS = 3
ROUNDS = {"tiny": 300, "qwen2.5-0.5b": 12}


@pytest.fixture(scope="module", params=MODELS)
def trial(request):
    backend = CPUBackend({})
    workload = LLMWorkload()
    params = workload.validate(dict(model=request.param, dtype="float32", batch=1, prompt_len=64, gen_len=32))
    t = workload.setup(backend, params, seed=0)
    t.model_name = request.param
    t.run(backend.timer())  # warm up
    yield t
    t.close()


def bare_loop(trial) -> float:
    """The session calls of one repetition without marks; returns the decode time per step (s),
    from two clock reads around the decode loop."""
    session = trial.session
    session.reset()
    ids = session.prefill(trial.prompt)
    t0 = time.perf_counter_ns()
    for _ in range(trial.gen_len - 1):
        ids = session.decode(ids)
    return (time.perf_counter_ns() - t0) / 1e9 / (trial.gen_len - 1)


def instrumented_loop(trial, timer) -> dict:
    return trial.run(timer)


def test_bare(benchmark, trial):
    benchmark.group = f"decode loop {trial.model_name}"
    benchmark.pedantic(bare_loop, args=(trial,), rounds=ROUNDS[trial.model_name], warmup_rounds=1)


def test_instrumented(benchmark, trial):
    benchmark.group = f"decode loop {trial.model_name}"
    timer = PerfCounterTimer()
    benchmark.pedantic(instrumented_loop, args=(trial, timer), rounds=ROUNDS[trial.model_name], warmup_rounds=1)


def test_paired(benchmark, trial):
    """Instrumented and bare alternately (plus a second bare loop as an A/A control of the noise);
    the overheads are medians of per-set ratios."""
    benchmark.group = f"paired {trial.model_name}"
    timer = PerfCounterTimer()
    loop: list[float] = []  # wall time of LLMTrial.run / wall time of the bare loop
    step: list[float] = []  # TPOT the harness reports / TPOT of the bare loop
    control: list[float] = []  # TPOT of a second bare loop / TPOT of the bare loop

    def one(fn, *args):
        t = time.perf_counter()
        out = fn(*args)
        return time.perf_counter() - t, out

    def sets() -> None:
        for _ in range(PAIRS):
            runs = {"instrumented": (instrumented_loop, trial, timer), "bare": (bare_loop, trial),
                    "bare2": (bare_loop, trial)}
            order = list(runs) if len(loop) % 2 else list(reversed(runs))  # order effects cancel
            res = {name: one(*runs[name]) for name in order}
            loop.append(res["instrumented"][0] / res["bare"][0])
            step.append(res["instrumented"][1]["tpot_ms"] / 1e3 / res["bare"][1])
            control.append(res["bare2"][1] / res["bare"][1])

    benchmark.pedantic(sets, rounds=max(2, ROUNDS[trial.model_name] // PAIRS), warmup_rounds=0)
    result = dict(step_overhead=statistics.median(step) - 1, loop_overhead=statistics.median(loop) - 1,
                  control=statistics.median(control) - 1, sets=len(loop))
    benchmark.extra_info.update(result)
    print(f"\n{trial.model_name}: median of {len(loop)} sets: decode step (TPOT) {result['step_overhead']:+.3%}, "
          f"whole repetition {result['loop_overhead']:+.3%}, A/A control {result['control']:+.3%}")


def test_timer_mark(benchmark):
    timer = PerfCounterTimer()
    timer.start()

    def marks() -> None:  # 32 marks, as one repetition with gen_len=32
        timer.start()
        for _ in range(32):
            timer.mark()

    benchmark.group = "timer"
    benchmark(marks)
