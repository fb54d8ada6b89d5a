"""Run one case in this process: probe, set up, warm up, time repetitions, summarise.

This is what the spawned child runs (``harness.child``) and what ``--isolation inline`` calls
directly. It returns a result dict without ``environment`` and ``created`` (the runner adds them).
"""

from __future__ import annotations

import math
import time
import traceback
from collections import defaultdict
from typing import Any, Callable

from harness.plan import Case
from harness.results import json_safe
from harness.stats import CI_METHOD, OUTLIER_RULE, required_repetitions, summarize

#: A primary metric whose CV reaches this is unstable and the result invalid (pyperf's 10%).
CV_THRESHOLD = 0.10
#: Fewer timed repetitions than this cannot show whether a result is stable: invalid.
MIN_VALID_REPETITIONS = 3


#: Messages of out-of-memory errors that are not ``OutOfMemoryError`` instances: CUDA/NPU/MLU/MUSA
#: allocator messages, cuBLAS/cuDNN allocation failures, ONNX Runtime arena failures, ACL codes.
OOM_PATTERNS = (
    "out of memory",
    "memory allocation failed",
    "failed to allocate memory",
    "cudaerrormemoryallocation",
    "cublas_status_alloc_failed",
    "cudnn_status_alloc_failed",
    "acl_error_rt_memory_allocation",
    "cnrt_ret_err_nomem",
    "not enough memory",
)


def classify_exception(exc: BaseException) -> str:
    """``oom`` for torch's OutOfMemoryError, MemoryError and vendor equivalents; else ``failed``."""
    for cls in type(exc).__mro__:
        if cls is MemoryError or cls.__name__ == "OutOfMemoryError":
            return "oom"
    text = str(exc).lower()
    if any(p in text for p in OOM_PATTERNS):
        return "oom"
    return "failed"


def error_block(exc: BaseException) -> dict[str, Any]:
    """``{type, message, traceback}`` of an exception (the traceback's last lines, for debugging)."""
    tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return {"type": type(exc).__name__, "message": str(exc) or repr(exc), "traceback": tb[-4000:]}


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
            "ci_method": CI_METHOD,
            "outlier_rule": OUTLIER_RULE,
            "cv_threshold": CV_THRESHOLD,
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
    """MLPerf-style validity block (``valid`` + ``reasons``) and pyperf-style ``warnings``.

    Invalid when: fewer repetitions than requested or than ``MIN_VALID_REPETITIONS``; a timed region
    shorter than ``min_duration_s``; a generative workload that did not produce exactly ``gen_len``
    tokens per sequence in every repetition; the primary metric's CV >= ``CV_THRESHOLD``.
    Warnings (the result stays valid): too few repetitions for the observed CV (pyperf's
    ``ceil(4 Z^2 CV^2 / W^2)`` with a 95% CI of the mean at most ``TARGET_CI_WIDTH`` wide), min or
    max 50% or more away from the mean, Tukey outliers, a primary metric that was not produced.
    """
    reasons: list[str] = []
    warnings: list[str] = []
    if reps < measure.repetitions:
        reasons.append(f"only {reps} repetitions, {measure.repetitions} required")
    elif reps < MIN_VALID_REPETITIONS:
        reasons.append(f"only {reps} repetition(s): at least {MIN_VALID_REPETITIONS} are needed to judge stability")
    if elapsed_s < measure.min_duration_s:
        reasons.append(f"timed region {elapsed_s:.3f}s shorter than min_duration_s {measure.min_duration_s:g}")
    if tokens_ok is False:
        reasons.append("did not generate exactly gen_len tokens per sequence in every repetition")
    stats = metrics.get(primary)
    if not stats:
        warnings.append(f"primary metric {primary} was not produced; stability not judged")
    else:
        cv = stats["cv"]
        if cv >= CV_THRESHOLD:
            reasons.append(f"{primary} CV {cv:.1%} >= {CV_THRESHOLD:.0%} (unstable)")
            warnings.append(f"{primary} is unstable: CV {cv:.1%}; close other programs, pin clocks, or raise --repetitions")
        needed = required_repetitions(cv)
        if stats["n"] < needed:
            warnings.append(f"{primary}: {stats['n']} repetition(s) is too few for CV {cv:.1%}; use at least {needed}")
        mean = stats["mean"]
        if mean and stats["n"] > 1 and max(abs(stats["min"] - mean), abs(stats["max"] - mean)) >= 0.5 * abs(mean):
            warnings.append(f"{primary}: min or max is 50% or more away from the mean")
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
        token_check: dict[str, bool | None] = {"ok": None}

        def one_repetition() -> dict[str, Any]:
            sample = trial.run(timer)
            ok = trial.tokens_ok()
            if ok is not None:  # every repetition must produce exactly gen_len tokens
                token_check["ok"] = ok if token_check["ok"] is None else (token_check["ok"] and ok)
            return sample

        samples, reps, elapsed = timed_repetitions(
            one_repetition, case.measure.repetitions, case.measure.min_duration_s
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
        validity = judge_validity(metrics, workload.primary_metric, reps, elapsed, case.measure, token_check["ok"])
        bad = sorted(k for k, v in samples.items() if not all(math.isfinite(x) for x in v))
        if bad:
            validity["valid"] = False
            validity["reasons"].append(f"non-finite samples (stored as null) in {', '.join(bad)}")
        result.update(
            status="ok",
            metrics=metrics,
            samples=samples,
            repetitions_run=reps,
            timed_s=elapsed,
            validity=validity,
        )
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # noqa: BLE001 - every failure becomes the case's status
        result.update(status=classify_exception(exc), error=error_block(exc))
        result["validity"]["reasons"] = [f"{type(exc).__name__}: {exc}"]
    finally:
        if trial is not None:
            try:
                trial.close()
            except Exception:  # noqa: BLE001 - a failing cleanup must not lose the result
                pass
    return json_safe(result)
