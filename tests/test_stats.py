"""Statistics, validity and the timing loop on fixed samples and a fake clock (exact values)."""

from __future__ import annotations

import math
import random

import pytest
import torch

from harness.execute import CV_THRESHOLD, MIN_VALID_REPETITIONS, classify_exception, judge_validity, timed_repetitions
from harness.plan import Measure
from harness.report import summary_rows
from harness.results import json_safe
from harness.stats import ci_coverage, median_ci95, median_ci_rank, required_repetitions, summarize, tukey_outliers


def shuffled(values):
    values = list(values)
    random.Random(4).shuffle(values)
    return values


# ----------------------------------------------------------------------------- median CI
@pytest.mark.parametrize(
    "n, lower, upper",
    [
        (1, 1, 1),      # a single sample: the point itself
        (5, 1, 5),      # n < 6: [min, max]
        (6, 1, 6),      # P(X <= 0) = 1/64 <= 2.5% < P(X <= 1) = 7/64 -> ranks 1 and 6
        (10, 2, 9),     # Conover's table: n = 10 -> x_(2), x_(9)
        (20, 6, 15),    # n = 20 -> x_(6), x_(15)
        (100, 40, 61),  # n = 100 -> x_(40), x_(61)
    ],
)
def test_median_ci_is_the_binomial_order_statistic_interval(n, lower, upper):
    values = [10.0 * i for i in range(1, n + 1)]  # x_(i) = 10 i
    assert median_ci95(sorted(values)) == (10.0 * lower, 10.0 * upper)
    s = summarize(shuffled(values))
    assert s["ci95"] == [10.0 * lower, 10.0 * upper]


def test_median_ci_coverage_is_exact():
    assert ci_coverage(10) == 1 - 2 * 11 / 1024  # 1 - 2 P(X <= 1), X ~ B(10, 1/2)
    assert ci_coverage(6) == 1 - 2 / 64
    assert ci_coverage(5) == 1 - 2 / 32  # [min, max] of 5 samples: 93.75%
    assert all(ci_coverage(n) >= 0.95 for n in range(6, 200))


def test_median_ci_of_many_samples_does_not_overflow():
    # Pooled inter-token latencies easily exceed 1024 samples (2.0 ** n overflowed before).
    assert median_ci_rank(3000) == 1446  # exact integer arithmetic
    assert median_ci_rank(100_000) == math.floor(50_000 - 1.959963984540054 * math.sqrt(100_000) / 2)
    s = summarize(list(range(1, 3001)))
    assert s["ci95"] == [1446.0, 1555.0]


# ----------------------------------------------------------------------------- summary values
def test_summary_exact_values():
    s = summarize(shuffled([10.0, 12.0, 14.0]), "tok/s")
    assert s["unit"] == "tok/s" and s["n"] == 3
    assert s["mean"] == 12.0 and s["median"] == 12.0
    assert s["std"] == 2.0  # n - 1 in the denominator
    assert s["cv"] == pytest.approx(2.0 / 12.0, abs=1e-15)
    assert (s["min"], s["max"]) == (10.0, 14.0)
    assert s["ci95"] == [10.0, 14.0]
    assert s["outliers"] == 0


def test_percentiles_and_outliers_on_fixed_list():
    values = [1, 2, 3, 4, 5, 6, 7, 8, 9, 100]
    s = summarize(shuffled(values))
    # Q1 = 3.25, Q3 = 7.75, IQR = 4.5: fences -3.5 and 14.5 -> only 100 is out.
    assert s["outliers"] == 1
    assert s["p50"] == 5.5
    assert s["p90"] == pytest.approx(18.1)
    assert s["p99"] == pytest.approx(91.81)
    assert s["ci95"] == [2.0, 9.0]


def test_tukey_outliers_both_sides_and_small_samples():
    assert tukey_outliers([-50, 10, 11, 12, 13, 14, 15, 80]) == 2
    assert tukey_outliers([1, 2, 3, 1000]) == 1  # Q1 = 1.75, Q3 = 252.25: upper fence 628
    assert tukey_outliers([1, 2, 1000]) == 0  # fewer than 4 samples: no outliers
    assert tukey_outliers([5, 5, 5, 5, 5]) == 0


def test_tukey_outliers_fence_is_exclusive():
    values = [1.0, 2.0, 3.0, 4.0, 5.0]
    # With a sixth value v > 5: Q1 = 2.25, Q3 = 4.75, IQR = 2.5 -> upper fence 8.5.
    assert tukey_outliers(values + [8.5]) == 0  # on the fence is not outside it
    assert tukey_outliers(values + [8.51]) == 1


def test_single_sample_has_zero_spread():
    s = summarize([7.5])
    assert s["std"] == 0.0 and s["cv"] == 0.0 and s["ci95"] == [7.5, 7.5]
    with pytest.raises(ValueError):
        summarize([])


def test_required_repetitions_follows_pyperf_formula():
    # ceil(4 * 1.96^2 * CV^2 / 0.05^2)
    assert required_repetitions(0.0) == 1
    assert required_repetitions(0.01) == 1
    assert required_repetitions(0.02) == 3
    assert required_repetitions(0.05) == 16
    assert required_repetitions(0.10) == 62


# ----------------------------------------------------------------------------- validity
def _stats(values):
    return {"decode_tok_s": summarize(values, "tok/s")}


def test_validity_ok_for_stable_run():
    m = Measure(repetitions=5, min_duration_s=1.0)
    v = judge_validity(_stats([100, 101, 99, 100.5, 99.5]), "decode_tok_s", 5, 1.5, m, True)
    assert v == {"valid": True, "reasons": [], "warnings": []}


def test_validity_reasons_each_rule():
    m = Measure(repetitions=5, min_duration_s=2.0)
    v = judge_validity(_stats([100, 130, 70, 100, 100]), "decode_tok_s", 4, 1.0, m, False)
    assert not v["valid"]
    r = v["reasons"]
    assert r[0] == "only 4 repetitions, 5 required"
    assert r[1] == "timed region 1.000s shorter than min_duration_s 2"
    assert r[2] == "did not generate exactly gen_len tokens per sequence in every repetition"
    assert r[3].startswith("decode_tok_s CV 21.2% >= 10% (unstable)")
    assert any("use at least" in w for w in v["warnings"])


def test_validity_needs_three_repetitions():
    m = Measure(repetitions=1, min_duration_s=0.0)
    v = judge_validity(_stats([100.0]), "decode_tok_s", 1, 0.01, m, True)
    assert v["reasons"] == [f"only 1 repetition(s): at least {MIN_VALID_REPETITIONS} are needed to judge stability"]


def test_pyperf_style_warnings():
    m = Measure(repetitions=3, min_duration_s=0.0)
    # CV 5% with 3 samples: valid but too few repetitions (16 needed).
    v = judge_validity(_stats([95.0, 100.0, 105.0]), "decode_tok_s", 3, 1.0, m, True)
    assert v["valid"] and v["warnings"] == ["decode_tok_s: 3 repetition(s) is too few for CV 5.0%; use at least 16"]
    # An outlier and a max 50% away from the mean.
    values = [100.0] * 9 + [250.0]
    v = judge_validity(_stats(values), "decode_tok_s", 10, 1.0, Measure(repetitions=10, min_duration_s=0), True)
    assert "decode_tok_s: 1 outlier(s) by Tukey's fences" in v["warnings"]
    assert "decode_tok_s: min or max is 50% or more away from the mean" in v["warnings"]
    assert v["reasons"] == [f"decode_tok_s CV {summarize(values)['cv']:.1%} >= {CV_THRESHOLD:.0%} (unstable)"]


def test_missing_primary_metric_is_a_warning():
    v = judge_validity({}, "decode_tok_s", 3, 1.0, Measure(repetitions=3, min_duration_s=0), None)
    assert v["valid"] and v["warnings"] == ["primary metric decode_tok_s was not produced; stability not judged"]


# ----------------------------------------------------------------------------- timing loop
class FakeClock:
    def __init__(self, step: float) -> None:
        self.t, self.step = 0.0, step

    def __call__(self) -> float:
        return self.t

    def run(self):
        self.t += self.step
        return {"x": self.t, "pooled": [1.0, 2.0]}


def test_timed_repetitions_min_duration_dominates():
    clock = FakeClock(0.25)
    samples, n, elapsed = timed_repetitions(clock.run, repetitions=2, min_duration_s=1.0, clock=clock)
    assert n == 4 and elapsed == 1.0
    assert samples["x"] == [0.25, 0.5, 0.75, 1.0]
    assert samples["pooled"] == [1.0, 2.0] * 4


def test_timed_repetitions_min_repetitions_dominate():
    clock = FakeClock(0.25)
    samples, n, elapsed = timed_repetitions(clock.run, repetitions=7, min_duration_s=1.0, clock=clock)
    assert n == 7 and elapsed == 1.75 and len(samples["x"]) == 7


def test_timed_repetitions_zero_duration_runs_exactly_the_repetitions():
    clock = FakeClock(5.0)
    _, n, elapsed = timed_repetitions(clock.run, repetitions=1, min_duration_s=0.0, clock=clock)
    assert (n, elapsed) == (1, 5.0)


# ----------------------------------------------------------------------------- oom classification
@pytest.mark.parametrize(
    "exc, status",
    [
        (torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"), "oom"),
        (MemoryError(), "oom"),
        (RuntimeError("NPU out of memory. Tried to allocate 1.00 GiB"), "oom"),
        (RuntimeError("MLU out of memory."), "oom"),
        (RuntimeError("[ONNXRuntimeError] : 6 : RUNTIME_EXCEPTION : Failed to allocate memory for requested buffer"), "oom"),
        (RuntimeError("CUDA error: CUBLAS_STATUS_ALLOC_FAILED when calling cublasCreate(handle)"), "oom"),
        (type("OutOfMemoryError", (RuntimeError,), {})("vendor oom"), "oom"),
        (RuntimeError("kernel launch failed"), "failed"),
        (ValueError("bad shape"), "failed"),
    ],
)
def test_classify_exception(exc, status):
    assert classify_exception(exc) == status


# ----------------------------------------------------------------------------- summary table marks
def _result(status="ok", valid=True, reasons=(), tier="full", warnings=()):
    return {
        "status": status,
        "backend": {"name": "cpu", "device_name": "CPU X"},
        "workload": {"kind": "llm", "params": {"model": "tiny"}},
        "measure": {"tier": tier},
        "metrics": {"decode_tok_s": summarize([100.0, 90.0, 110.0], "tok/s")} if status == "ok" else {},
        "validity": {"valid": valid, "reasons": list(reasons), "warnings": list(warnings)},
        "error": None if status == "ok" else {"type": "RuntimeError", "message": "boom"},
    }


def test_summary_marks_invalid_unstable_smoke_and_failed():
    rows = summary_rows([
        _result(),
        _result(tier="smoke", warnings=["w"]),
        _result(valid=False, reasons=["decode_tok_s CV 12.0% >= 10% (unstable)"]),
        _result(valid=False, reasons=["only 1 repetition(s): at least 3 are needed to judge stability"]),
        _result(status="failed", valid=False),
    ])
    assert [r["valid"] for r in rows] == [
        "yes",
        "yes (smoke, 1 warning(s))",
        "UNSTABLE decode_tok_s CV 12.0% >= 10% (unstable)",
        "INVALID only 1 repetition(s): at least 3 are needed to judge stability",
        "-",
    ]
    assert rows[0]["cv"] == "10.0%"
    assert rows[0]["median [95% CI]"] == "decode_tok_s 100 [90.00, 110] tok/s"
    assert rows[4]["median [95% CI]"] == "boom"


def test_json_safe_replaces_non_finite_values():
    assert json_safe({"a": [1.0, math.inf, math.nan], "b": {"c": -math.inf}, "d": (1, "x")}) == {
        "a": [1.0, None, None], "b": {"c": None}, "d": [1, "x"]}
