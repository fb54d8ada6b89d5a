"""Core harness: metric formulas on a fake clock, the timed loop, plans, result files, the CLI."""

from __future__ import annotations

import json

import pytest

from backends.base import PerfCounterTimer
from harness.errors import UsageError
from harness.execute import execute_case, timed_repetitions
from harness.plan import Case, Measure, expand, load_suite
from harness.results import load_results, write_result
from workloads.llm.metrics import llm_rep_metrics


def test_llm_metrics_on_fake_marks():
    # B=2, P=10, G=4: first token at 100 ms, then decode steps of 20, 30, 50 ms.
    marks = [0, 100_000_000, 120_000_000, 150_000_000, 200_000_000]
    m = llm_rep_metrics(marks, batch=2, prompt_len=10, gen_len=4, decode_bytes_per_step=3e9, prefill_flops=4e12)
    assert m["ttft_ms"] == pytest.approx(100.0)
    assert m["e2e_ms"] == pytest.approx(200.0)
    assert m["itl_ms"] == pytest.approx([20.0, 30.0, 50.0])
    assert m["tpot_ms"] == pytest.approx((200 - 100) / 3)
    assert m["prefill_tok_s"] == pytest.approx(2 * 10 / 0.1)
    assert m["decode_tok_s"] == pytest.approx(2 * 3 / 0.1)
    assert m["decode_tok_s_per_seq"] == pytest.approx(3 / 0.1)
    assert m["output_tok_s"] == pytest.approx(2 * 4 / 0.2)
    assert m["decode_gbps"] == pytest.approx(3e9 / (0.1 / 3) / 1e9)
    assert m["prefill_tflops"] == pytest.approx(4e12 / 0.1 / 1e12)


def test_llm_metrics_reject_wrong_mark_count():
    with pytest.raises(ValueError, match="expected 5 timer marks"):
        llm_rep_metrics([0, 1, 2], batch=1, prompt_len=1, gen_len=4)


def test_perf_counter_timer_on_fake_clock():
    ticks = iter([1000, 1500, 4000])
    timer = PerfCounterTimer(clock=lambda: next(ticks))
    timer.start()
    timer.mark()
    timer.mark()
    assert timer.read_ns() == [0, 500, 3000]


def test_timed_repetitions_needs_both_minimums():
    now = [0.0]

    def clock():
        return now[0]

    def rep():
        now[0] += 0.25
        return {"x": 1.0, "itl": [1.0, 2.0]}

    samples, n, elapsed = timed_repetitions(rep, repetitions=2, min_duration_s=1.0, clock=clock)
    assert n == 4 and elapsed == 1.0  # the duration, not the count, decided
    assert samples["x"] == [1.0] * 4 and samples["itl"] == [1.0, 2.0] * 4
    now[0] = 0.0
    samples, n, _ = timed_repetitions(rep, repetitions=6, min_duration_s=0.1, clock=clock)
    assert n == 6  # the count decided


def test_expand_is_a_cartesian_product_with_overrides():
    groups = [{"workload": "llm", "backend": "cpu", "model": "tiny", "batch": [1, 2], "gen_len": [4, 8], "prompt_len": 8}]
    cases = expand(groups, Measure(), overrides={"dtype": ["bf16"]})
    assert [(c.params["batch"], c.params["gen_len"]) for c in cases] == [(1, 4), (1, 8), (2, 4), (2, 8)]
    assert {c.params["dtype"] for c in cases} == {"bfloat16"}
    assert len({c.id for c in cases}) == 4


def test_case_id_is_stable_and_sensitive():
    params = {"model": "tiny", "dtype": "float32", "batch": 1, "prompt_len": 8, "gen_len": 4}
    a = Case("cpu", "llm", params, Measure())
    assert a.id == Case("cpu", "llm", dict(params), Measure()).id
    assert a.id != Case("cpu", "llm", {**params, "batch": 2}, Measure()).id
    assert a.id != Case("cpu", "llm", params, Measure(seed=1)).id
    assert a.id == Case("cpu", "llm", params, Measure(timeout_s=5)).id  # timeout is not part of what is measured


@pytest.mark.parametrize(
    "groups, message",
    [
        ([{"workload": "llm", "modle": "tiny"}], "unknown key(s) modle"),
        ([{"workload": "llm", "batch": 0}], "batch must be positive"),
        ([{"workload": "llm", "batch": "x"}], "batch must be an integer"),
        ([{"workload": "llm", "dtype": "float13"}], "unknown dtype 'float13'"),
        ([{"workload": "llm", "model": "gpt-9"}], "unknown model 'gpt-9'"),
        ([{"workload": "nope"}], "unknown workload 'nope'"),
    ],
)
def test_expand_rejects_bad_cases(groups, message):
    with pytest.raises(UsageError, match=message.replace("(", r"\(").replace(")", r"\)")):
        expand(groups, Measure())


def test_suite_validation(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[measure]\nrepetitions = 'many'\n[[case]]\nworkload='llm'\n")
    with pytest.raises(UsageError, match="'measure.repetitions' must be int"):
        load_suite(bad)
    bad.write_text("colour = 1\n[[case]]\n")
    with pytest.raises(UsageError, match="unknown key"):
        load_suite(bad)
    bad.write_text("[[case]\n")
    with pytest.raises(UsageError, match="malformed TOML"):
        load_suite(bad)
    with pytest.raises(UsageError, match="suite file not found"):
        load_suite(tmp_path / "missing.toml")


def _tiny_case(**measure) -> Case:
    params = {"model": "tiny", "dtype": "float32", "batch": 2, "prompt_len": 8, "gen_len": 5}
    return Case("cpu", "llm", params, Measure(warmup=1, repetitions=3, min_duration_s=0.0, **measure))


def test_execute_case_inline_produces_full_result():
    result = execute_case(_tiny_case())
    assert result["status"] == "ok", result["error"]
    assert result["backend"]["device_name"]
    assert result["repetitions_run"] == 3
    m = result["metrics"]
    for key in ("ttft_ms", "tpot_ms", "e2e_ms", "itl_ms", "prefill_tok_s", "decode_tok_s", "output_tok_s",
                "decode_gbps", "prefill_tflops", "peak_mem_bytes"):
        assert key in m, key
    assert m["itl_ms"]["n"] == 3 * 4  # (G - 1) steps pooled over 3 repetitions
    assert m["decode_tok_s"]["n"] == 3
    # aggregate decode throughput is B * (G-1) / (e2e - ttft) per repetition
    e2e, ttft = result["samples"]["e2e_ms"][0], result["samples"]["ttft_ms"][0]
    assert result["samples"]["decode_tok_s"][0] == pytest.approx(2 * 4 / ((e2e - ttft) / 1e3))
    assert result["workload"]["facts"]["params"] == 188_736  # the tiny shape in configs/models.toml


def test_result_files_round_trip_and_never_overwrite(tmp_path):
    result = execute_case(_tiny_case())
    result["created"] = "2026-01-01T00:00:00Z"
    a = write_result(tmp_path, result)
    b = write_result(tmp_path, result)
    assert a != b and a.exists() and b.exists()
    (tmp_path / "corrupt.json").write_text("{not json")
    loaded, warnings = load_results([tmp_path])
    assert len(loaded) == 2 and loaded[0]["metrics"] == json.loads(a.read_text())["metrics"]
    assert len(warnings) == 1 and "corrupt.json" in warnings[0]
