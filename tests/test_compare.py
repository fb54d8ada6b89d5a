"""``accelbench compare``: matching, change, the noise rule, direction, the gate's exit status."""

from __future__ import annotations

import csv
import io
import json
import sys
from pathlib import Path

import numpy as np
import pytest

import harness.cli
from harness.compare import DATA_COLUMNS, compare_results, parse_threshold
from harness.execute import base_result
from harness.plan import Case, Measure
from harness.results import write_result
from harness.stats import summarize

ENV = {"cpu_model": "Test CPU 9000", "cpu_cores_usable": 8, "os_release": "6.1", "python": "3.11.7",
       "packages": {"torch": "2.13.0", "numpy": "2.0"}, "harness": {"version": "0.1.0", "commit": "abc", "dirty": False}}


def make(samples, *, backend="cpu", device="Test CPU 9000", workload="llm", dtype="float32", metric=None,
         status="ok", env=None, created="2026-01-01T00:00:00Z", options=None, extra=None, versions=None):
    if workload == "llm":
        params = {"model": "tiny", "dtype": dtype, "batch": 1, "prompt_len": 4, "gen_len": 4}
        metric = metric or "decode_tok_s"
    else:
        params = {"dtype": dtype, "size": 512, "iters": 10}
        metric = metric or "tflops"
    result = base_result(Case(backend, workload, params, Measure(repetitions=3, min_duration_s=0), options or {}))
    result["backend"].update(device_name=device, versions=versions or {"torch": "2.13.0"})
    result.update(status=status, created=created, environment=env or ENV)
    if status == "ok":
        result["metrics"] = {metric: summarize(samples, "tok/s")}
        for name, values in (extra or {}).items():
            result["metrics"][name] = summarize(values, "ms")
        result["validity"] = {"valid": True, "reasons": [], "warnings": []}
    else:
        result["error"] = {"type": "RuntimeError", "message": "boom"}
    return result


def save(folder: Path, *results) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for r in results:
        write_result(folder, r)
    return folder


def invoke(monkeypatch, capsys, args):
    monkeypatch.setattr(sys, "argv", ["accelbench", *args])
    with pytest.raises(SystemExit) as exit_info:
        harness.cli.main()
    captured = capsys.readouterr()
    return exit_info.value.code, captured.out, captured.err


STABLE = [100.0, 101.0, 99.0, 100.5, 99.5]  # median 100, CI [99, 101], CV 0.79%


def scaled(values, factor):
    return [v * factor for v in values]


# ----------------------------------------------------------------------------- the rule
def test_regression_outside_noise_fails_the_gate(tmp_path, monkeypatch, capsys):
    base = save(tmp_path / "base", make(STABLE))
    cur = save(tmp_path / "cur", make(scaled(STABLE, 0.8)))
    code, out, err = invoke(monkeypatch, capsys, ["compare", str(base), str(cur), "--fail-if-slower", "10%", "--format", "json"])
    assert code == 1, err
    data = json.loads(out)
    [row] = data["rows"]
    assert row["metric"] == "decode_tok_s" and row["lower_is_better"] is False
    assert row["baseline_median"] == 100.0 and row["current_median"] == 80.0
    assert row["change_pct"] == pytest.approx(-20.0) and row["worse_pct"] == pytest.approx(20.0)
    assert row["noise"] == "outside" and row["regression"] is True and row["verdict"] == "REGRESSION (> 10%)"
    assert data["regressions"] == 1 and data["threshold_pct"] == 10.0


def test_change_under_the_threshold_passes(tmp_path, monkeypatch, capsys):
    base = save(tmp_path / "base", make(STABLE))
    cur = save(tmp_path / "cur", make(scaled(STABLE, 0.8)))
    code, out, err = invoke(monkeypatch, capsys, ["compare", str(base), str(cur), "--fail-if-slower", "25"])
    assert code == 0, err
    assert "worse" in out and "REGRESSION" not in out
    assert "ok: no case worse by more than 25% outside the noise (1 compared)" in out


def test_large_change_within_overlapping_cis_does_not_fail(tmp_path, monkeypatch, capsys):
    noisy = [100.0, 80.0, 120.0, 90.0, 110.0]  # CI [80, 120]
    base = save(tmp_path / "base", make(noisy))
    cur = save(tmp_path / "cur", make([v - 15 for v in noisy]))  # median 85: -15%, CI [65, 105] overlaps
    code, out, err = invoke(monkeypatch, capsys, ["compare", str(base), str(cur), "--fail-if-slower", "10", "--format", "json"])
    assert code == 0, err
    [row] = json.loads(out)["rows"]
    assert row["change_pct"] == pytest.approx(-15.0)
    assert row["noise"] == "within (CIs overlap)" and row["verdict"] == "within noise" and row["regression"] is False


def test_disjoint_cis_but_change_below_the_combined_cv_is_noise():
    spread = list(np.linspace(50.0, 150.0, 2001))  # median 100, CI of the median about [97.8, 102.2], CV 28.9%
    comp = compare_results([make(spread)], [make(scaled(spread, 1.06))], threshold=1.0)
    [row] = comp.rows
    assert row["baseline_ci_high"] < row["current_ci_low"]  # the CIs do not overlap ...
    assert row["change_pct"] == pytest.approx(6.0)
    combined = np.hypot(row["baseline_cv"], row["current_cv"])
    assert row["noise"] == f"within (|change| 6.0% <= CV {combined:.1%})"  # ... but the spread is far larger
    assert not comp.regressions


def test_latency_metric_higher_is_worse(tmp_path, monkeypatch, capsys):
    base = save(tmp_path / "base", make(STABLE, extra={"ttft_ms": [10.0, 10.1, 9.9]}))
    cur = save(tmp_path / "cur", make(scaled(STABLE, 1.3), extra={"ttft_ms": [12.0, 12.1, 11.9]}))
    code, out, _ = invoke(monkeypatch, capsys, ["compare", str(base), str(cur), "--metric", "ttft_ms", "--fail-if-slower", "10", "--format", "json"])
    [row] = json.loads(out)["rows"]
    assert code == 1 and row["lower_is_better"] is True
    assert row["change_pct"] == pytest.approx(20.0) and row["worse_pct"] == pytest.approx(20.0)
    # the primary metric (throughput) went up 30%: an improvement, exit 0
    code, out, _ = invoke(monkeypatch, capsys, ["compare", str(base), str(cur), "--fail-if-slower", "10", "--format", "json"])
    [row] = json.loads(out)["rows"]
    assert code == 0 and row["verdict"] == "better" and row["change_pct"] == pytest.approx(30.0)


def test_single_samples_have_unknown_noise_and_the_threshold_decides():
    comp = compare_results([make([100.0])], [make([85.0])], threshold=10)
    [row] = comp.rows
    assert row["noise"] == "unknown (n=1)" and row["regression"] is True
    comp = compare_results([make([100.0])], [make([85.0])], threshold=20)
    assert comp.rows[0]["verdict"] == "worse (noise unknown)" and not comp.regressions


def test_gemm_default_metric_is_tflops():
    comp = compare_results([make([10.0, 10.1, 9.9], workload="gemm")], [make([5.0, 5.1, 4.9], workload="gemm")], threshold=10)
    assert comp.rows[0]["metric"] == "tflops" and comp.rows[0]["change_pct"] == pytest.approx(-50.0)
    assert len(comp.regressions) == 1


# ----------------------------------------------------------------------------- matching and notes
def test_matching_by_backend_device_params_and_options():
    baseline = [make(STABLE), make(STABLE, dtype="bfloat16"), make(STABLE, device="Other CPU"),
                make(STABLE, options={"compile": True}), make(STABLE, backend="cuda", options={"device_ids": "0"})]
    current = [make(STABLE), make(STABLE, dtype="float16"), make(STABLE, backend="cuda", options={"device_ids": "1"})]
    comp = compare_results(baseline, current)
    assert len(comp.rows) == 2  # cpu float32, and cuda whatever its device_ids
    assert sorted(r["backend"] for r in comp.rows) == ["cpu", "cuda"]
    assert len(comp.only_baseline) == 3 and len(comp.only_current) == 1
    assert any("dtype=bfloat16" in x for x in comp.only_baseline)
    assert any("[Other CPU]" in x for x in comp.only_baseline)
    assert any("compile=True" in x for x in comp.only_baseline)
    assert "dtype=float16" in comp.only_current[0]


def test_non_ok_results_are_skipped_with_a_note(tmp_path, monkeypatch, capsys):
    base = save(tmp_path / "base", make(STABLE), make(STABLE, dtype="bfloat16"))
    cur = save(tmp_path / "cur", make(STABLE), make(None, dtype="bfloat16", status="timeout"))
    code, out, err = invoke(monkeypatch, capsys, ["compare", str(base), str(cur), "--fail-if-slower", "10"])
    assert code == 0, err
    assert "skipped non-ok result in current: cpu [Test CPU 9000] llm model=tiny dtype=bfloat16 batch=1 prompt_len=4 gen_len=4: status timeout (boom)" in out
    assert "only in baseline" not in out  # the case exists in current, it just did not succeed


def test_environment_and_version_differences_are_warned():
    other = json.loads(json.dumps(ENV))
    other.update(cpu_model="Other CPU 1")
    other["packages"]["torch"] = "2.14.0"
    other["harness"].update(commit="def", dirty=True)
    comp = compare_results([make(STABLE)], [make(STABLE, env=other, versions={"torch": "2.14.0"})])
    w = comp.warnings
    assert "environments differ: CPU model Test CPU 9000 (baseline) vs Other CPU 1 (current)" in w
    assert "environments differ: torch 2.13.0 (baseline) vs 2.14.0 (current)" in w
    assert "environments differ: harness commit abc (baseline) vs def (current)" in w
    assert "backend cpu versions differ: torch 2.13.0 (baseline) vs 2.14.0 (current)" in w
    assert "current was measured from a harness checkout with uncommitted changes (dirty)" in w
    assert len(comp.rows) == 1  # still compared
    assert compare_results([make(STABLE)], [make(STABLE)]).warnings == []


def test_newest_duplicate_is_used():
    comp = compare_results([make(STABLE, created="2026-01-01T00:00:00Z"), make(scaled(STABLE, 2), created="2026-02-01T00:00:00Z")],
                           [make(scaled(STABLE, 2))])
    assert comp.rows[0]["baseline_median"] == 200.0
    assert comp.notes == ["baseline: 1 case(s) appear more than once; the newest result of each is used"]


def test_corrupt_file_is_named_and_the_rest_compared(tmp_path, monkeypatch, capsys):
    base = save(tmp_path / "base", make(STABLE))
    cur = save(tmp_path / "cur", make(scaled(STABLE, 0.5)))
    (cur / "torn.json").write_text('{"schema": "accelbench.res', encoding="utf-8")
    code, out, err = invoke(monkeypatch, capsys, ["compare", str(base), str(cur), "--fail-if-slower", "10%"])
    assert code == 1
    assert err.splitlines()[0].startswith(f"warning: skipping {cur / 'torn.json'}: not valid JSON")
    assert "FAIL: 1 case(s) worse by more than 10% and outside the noise" in out
    assert "Traceback" not in out + err


def test_files_as_arguments_and_formats(tmp_path, monkeypatch, capsys):
    b = write_result(save(tmp_path / "b"), make(STABLE))
    c = write_result(save(tmp_path / "c"), make(scaled(STABLE, 1.1)))
    code, out, _ = invoke(monkeypatch, capsys, ["compare", str(b), str(c), "--format", "csv"])
    rows = list(csv.DictReader(io.StringIO(out)))
    assert code == 0 and list(rows[0]) == list(DATA_COLUMNS) and float(rows[0]["change_pct"]) == pytest.approx(10.0)
    code, out, _ = invoke(monkeypatch, capsys, ["compare", str(b), str(c), "--format", "md"])
    lines = out.splitlines()
    assert lines[0] == "| backend | device | workload | metric | better | baseline | current | change | noise | verdict |"
    assert lines[2] == ("| cpu | Test CPU 9000 | llm model=tiny dtype=float32 batch=1 prompt_len=4 gen_len=4 | decode_tok_s | higher "
                        "| 100 [99.00, 101] tok/s | 110 [109, 111] tok/s | +10.0% | outside | better |")
    code, out, _ = invoke(monkeypatch, capsys, ["compare", str(b), str(c)])
    assert code == 0 and "accelbench compare (current vs baseline)" in out and "+10.0%" in out


def test_gate_with_nothing_to_compare_is_a_usage_error(tmp_path, monkeypatch, capsys):
    base = save(tmp_path / "base", make(STABLE))
    cur = save(tmp_path / "cur", make(STABLE, device="Another CPU"))
    code, out, err = invoke(monkeypatch, capsys, ["compare", str(base), str(cur), "--fail-if-slower", "5"])
    assert code == 2 and err.startswith("error: nothing to compare") and len(err.splitlines()) == 1
    code, out, err = invoke(monkeypatch, capsys, ["compare", str(base), str(base), "--metric", "no_such_metric"])
    assert code == 2 and err == "error: metric 'no_such_metric' is in none of the 1 matched case(s)\n"


@pytest.mark.parametrize("text, value", [("10", 10.0), ("10%", 10.0), (" 2.5 % ", 2.5), ("0", 0.0), (".5%", 0.5), (None, None)])
def test_parse_threshold(text, value):
    assert parse_threshold(text) == value


@pytest.mark.parametrize("text", ["ten", "-5", "10%%", "%", "", "1e3"])
def test_parse_threshold_rejects(text):
    from harness.errors import UsageError

    with pytest.raises(UsageError, match="--fail-if-slower must be a percentage"):
        parse_threshold(text)


def test_invalid_results_are_flagged_and_zero_baselines_stay_valid_json():
    bad = make(STABLE)
    bad["validity"] = {"valid": False, "reasons": ["decode_tok_s CV 12.0% >= 10% (unstable)"], "warnings": []}
    comp = compare_results([bad], [make(STABLE)])
    assert comp.rows[0]["notes"] == "baseline invalid: decode_tok_s CV 12.0% >= 10% (unstable)"
    from harness.compare import render

    text, _ = render(comp, "md")
    assert text.splitlines()[2].endswith("| within noise | baseline invalid |")
    zero = compare_results([make([0.0, 0.0, 0.0])], [make([1.0, 1.0, 1.0])])
    data = json.loads(render(zero, "json")[0])
    assert data["rows"][0]["change_pct"] is None  # infinite change: null, not "Infinity"
