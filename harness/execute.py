"""Run one case in this process: probe, set up, warm up, time repetitions, summarise.

This is what the spawned child runs (``harness.child``) and what ``--isolation inline`` calls
directly. It returns a result dict without ``environment`` and ``created`` (the runner adds them).
"""

from __future__ import annotations

import time
from collections import defaultdict
from typing import Any, Callable

from harness.plan import Case
from harness.stats import summarize

CV_THRESHOLD = 0.10


def classify_exception(exc: BaseException) -> str:
    """``oom`` for torch's OutOfMemoryError, MemoryError and vendor equivalents; else ``failed``."""
    if isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError":
        return "oom"
    text = str(exc).lower()
    if "out of memory" in text or "memory allocation failed" in text:
        return "oom"
    return "failed"


def base_result(case: Case) -> dict[str, Any]:
    return {
        "schema": "accelbench.result/1",
        "id": case.id,
        "status": "failed",
        "error": None,
        "backend": {"name": case.backend, "options": case.backend_options},
        "workload": {"kind": case.workload, "params": case.params, "facts": {}},
        "measure": {
            "warmup": case.measure.warmup,
            "repetitions": case.measure.repetitions,
            "min_duration_s": case.measure.min_duration_s,
            "seed": case.measure.seed,
            "timeout_s": case.measure.timeout_s,
            "tier": case.measure.tier,
        },
        "metrics": {},
        "samples": {},
        "validity": {"valid": False, "reasons": ["not measured"], "warnings": []},
    }


def timed_repetitions(
    run: Callable[[], dict[str, Any]],
    repetitions: int,
    min_duration_s: float,
    clock: Callable[[], float] = time.perf_counter,
) -> tuple[dict[str, list[float]], int, float]:
    """Run until at least ``repetitions`` runs AND ``min_duration_s`` seconds; pool the samples."""
    samples: dict[str, list[float]] = defaultdict(list)
    n, start = 0, clock()
    while n < repetitions or clock() - start < min_duration_s:
        for key, value in run().items():
            if isinstance(value, list):
                samples[key].extend(value)
            else:
                samples[key].append(value)
        n += 1
    return dict(samples), n, clock() - start


def judge_validity(
    metrics: dict[str, dict[str, Any]],
    primary: str,
    reps: int,
    elapsed_s: float,
    measure: Any,
    tokens_ok: bool | None,
) -> dict[str, Any]:
    """MLPerf-style validity block and pyperf-style warnings."""
    reasons: list[str] = []
    warnings: list[str] = []
    if reps < measure.repetitions:
        reasons.append(f"only {reps} repetitions, {measure.repetitions} required")
    if elapsed_s < measure.min_duration_s:
        reasons.append(f"timed region {elapsed_s:.3f}s shorter than min_duration_s {measure.min_duration_s}")
    if tokens_ok is False:
        reasons.append("did not generate exactly gen_len tokens per sequence")
    stats = metrics.get(primary)
    if stats:
        cv = stats["cv"]
        if cv >= CV_THRESHOLD:
            reasons.append(f"{primary} CV {cv:.1%} >= {CV_THRESHOLD:.0%} (unstable)")
            warnings.append(f"{primary} is unstable: CV {cv:.1%}; close other programs, pin clocks, or raise --repetitions")
        # pyperf: the relative standard error std/sqrt(n)/mean should be <= 1/3 of the CV threshold.
        needed = int((3 * cv / CV_THRESHOLD) ** 2) + 1 if cv > 0 else 1
        if stats["n"] < needed and cv < CV_THRESHOLD:
            warnings.append(f"{primary}: {stats['n']} samples is few for CV {cv:.1%}; use at least {needed} repetitions")
        if stats.get("outliers"):
            warnings.append(f"{primary}: {stats['outliers']} outlier(s) by Tukey's fences")
    return {"valid": not reasons, "reasons": reasons, "warnings": warnings}


def execute_case(case: Case) -> dict[str, Any]:
    """Run ``case`` here and return its result. Exceptions become ``failed``/``oom`` statuses."""
    from harness.registry import load_backend_class, load_workload_class

    result = base_result(case)
    trial = None
    try:
        backend = load_backend_class(case.backend)(case.backend_options)
        probe = backend.probe()
        result["backend"].update(
            device_name=probe.device_name, device_count=probe.device_count, memory_bytes=probe.memory_bytes,
            versions=probe.versions, info=probe.info,
        )
        if not probe.available:
            result.update(status="unavailable", error={"type": "Unavailable", "message": probe.reason})
            result["validity"]["reasons"] = [f"backend unavailable: {probe.reason}"]
            return result
        workload = load_workload_class(case.workload)()
        params = workload.validate(case.params)
        facts = workload.facts(params)
        result["workload"]["facts"] = facts
        trial = workload.setup(backend, params, case.measure.seed)
        timer = backend.timer()
        for _ in range(case.measure.warmup):
            trial.run(timer)
        backend.reset_peak_memory()
        meter = backend.energy_meter()
        if meter:
            meter.start()
        samples, reps, elapsed = timed_repetitions(
            lambda: trial.run(timer), case.measure.repetitions, case.measure.min_duration_s
        )
        joules = meter.stop() if meter else None
        peak = backend.peak_memory_bytes()
        units = workload.units
        metrics = {k: summarize(v, units.get(k, "")) for k, v in samples.items()}
        if peak is not None:
            metrics["peak_mem_bytes"] = summarize([peak], "B")
        if joules is not None and case.workload == "llm":
            tokens = params["batch"] * params["gen_len"] * reps
            metrics["energy_j_per_token"] = summarize([joules / tokens], "J/tok")
        result.update(
            status="ok",
            metrics=metrics,
            samples=samples,
            repetitions_run=reps,
            timed_s=elapsed,
            validity=judge_validity(metrics, workload.primary_metric, reps, elapsed, case.measure, trial.tokens_ok()),
        )
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # noqa: BLE001 - every failure becomes the case's status
        result.update(status=classify_exception(exc), error={"type": type(exc).__name__, "message": str(exc)})
        result["validity"]["reasons"] = [f"{type(exc).__name__}: {exc}"]
    finally:
        if trial is not None:
            trial.close()
    return result
