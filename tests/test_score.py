"""Scoring hand-made results against configs/references.csv and configs/devices.toml."""

from __future__ import annotations

import csv
import io
import json

import pytest

from harness.devices import load_devices
from harness.errors import UsageError
from harness.score import ROW_KEYS, SMOKE, render_score, score_results

LLM = {"model": "llama-3.1-8b", "dtype": "bfloat16", "batch": 1, "prompt_len": 128, "gen_len": 128}


def result(device: str, kind: str, params: dict, metrics: dict, tier: str = "full", rid: str | None = None,
           status: str = "ok", valid: bool = True) -> dict:
    """A result dict in the accelbench.result/1 shape; `metrics` maps name -> (median, unit)."""
    return {
        "schema": "accelbench.result/1", "id": rid or f"{device}/{kind}", "created": "2026-11-21T08:00:00Z",
        "status": status, "error": None if status == "ok" else {"type": "RuntimeError", "message": "boom"},
        "backend": {"name": "x", "device_name": device, "device_count": 1, "versions": {}, "options": {}, "info": {}},
        "workload": {"kind": kind, "params": params, "facts": {}},
        "measure": {"warmup": 2, "repetitions": 10, "min_duration_s": 1.0, "seed": 0, "tier": tier},
        "metrics": {k: {"unit": u, "n": 10, "mean": v, "median": v} for k, (v, u) in metrics.items()},
        "samples": {}, "validity": {"valid": valid, "reasons": [], "warnings": []}, "environment": {},
    }


def gemm(device, dtype, tflops, **kw):
    return result(device, "gemm", {"dtype": dtype, "size": 8192}, {"tflops": (tflops, "TFLOPS")}, **kw)


def membw(device, gbps, **kw):
    return result(device, "membw", {"size_mb": 1024}, {"gbps": (gbps, "GB/s")}, **kw)


def table(rows):
    """(reference, ratio, verdict) per row, in order."""
    return [(r["reference"], r["ratio"], r["verdict"]) for r in rows]


def test_h200_gemm_bf16(refs, devices):
    rows = score_results([gemm("NVIDIA H200", "bfloat16", 800.0)], refs, devices)
    assert all(tuple(r) == ROW_KEYS for r in rows)
    assert table(rows) == [(989.4, 800.0 / 989.4, "81% of dense peak"), (989.4, 800.0 / 989.4, "below")]
    assert rows[0]["source"] == "devices.toml NVIDIA H200: dense BF16 peak"
    assert rows[1]["source"].startswith("vendor: NVIDIA H200 product page")  # sparse 1,979 never used
    assert {r["device"] for r in rows} == {"NVIDIA H200"} and {r["unit"] for r in rows} == {"TFLOPS"}


def test_h200_gemm_fp8_conflicting_claims_are_separate_rows(refs, devices):
    rows = score_results([gemm("NVIDIA H200", "float8_e4m3fn", 1900.0)], refs, devices)
    assert table(rows) == [
        (1978.9, 1900.0 / 1978.9, "96% of dense peak"),
        (1978.9, 1900.0 / 1978.9, "meets"),
        (3940.0, 1900.0 / 3940.0, "far below"),  # the sparse figure mislabelled 'dense' by a reseller
    ]
    assert rows[2]["source"] == "press: https://www.saulelectric.com/nvidia-h200.html"


def test_ascend_910b3_gemm_and_membw(refs, devices):
    rows = score_results([gemm("Ascend910B3", "float16", 300.0), membw("Ascend910B3", 1300.0)], refs, devices)
    assert table(rows) == [
        (320.0, 300.0 / 320.0, "94% of dense peak"),
        (320.0, 300.0 / 320.0, "meets"),
        (320.0, 300.0 / 320.0, "meets"),
        (256.0, 300.0 / 256.0, "exceeds"),
        (1600.0, 1300.0 / 1600.0, "81% of rated"),
        (1600.0, 1300.0 / 1600.0, "below"),
        (400.0, 1300.0 / 400.0, "exceeds"),
        (768.0, 1300.0 / 768.0, "exceeds"),
        (1200.0, 1300.0 / 1200.0, "meets"),
    ]
    assert rows[1]["source"].startswith("analyst: ")
    assert rows[2]["source"].endswith("[sparsity unspecified]")
    assert [r["workload"].split()[0] for r in rows] == ["gemm"] * 4 + ["membw"] * 5


def test_mlu370_x8_llm_roofline_and_measured_membw(refs, devices):
    results = [
        gemm("MLU370-X8", "float16", 80.0),
        membw("MLU370-X8", 500.0, rid="mlu-membw-1"),
        membw("MLU370-X8", 450.0, rid="mlu-membw-2"),
        result("MLU370-X8", "llm", LLM, {"decode_gbps": (400.0, "GB/s"), "prefill_tflops": (40.0, "TFLOPS"),
                                         "decode_tok_s": (25.0, "tok/s")}),
    ]
    rows = score_results(results, refs, devices)
    gemm_rows = [r for r in rows if r["workload"].startswith("gemm ")]
    assert table(gemm_rows) == [(96.0, 80.0 / 96.0, "83% of dense peak"),
                                (96.0, 80.0 / 96.0, "below"), (96.0, 80.0 / 96.0, "below")]
    assert {r["source"].split(":")[0] for r in gemm_rows[1:]} == {"seed", "vendor"}
    llm = [r for r in rows if r["workload"].startswith("llm ")]
    assert [(r["metric"], r["reference"], r["ratio"], r["verdict"], r["source"]) for r in llm] == [
        ("decode_gbps", 614.4, 400.0 / 614.4, "65% of rated", "devices.toml MLU370-X8: rated bandwidth"),
        ("decode_gbps", 500.0, 400.0 / 500.0, "80% of measured membw", "measured: mlu-membw-1"),
        ("prefill_tflops", 96.0, 40.0 / 96.0, "42% of dense peak", "devices.toml MLU370-X8: dense BF16 peak"),
    ]


def test_mtt_s4000_gemm(refs, devices):
    rows = score_results([gemm("MTT S4000", "float16", 90.0), gemm("MTT S4000", "bfloat16", 90.0)], refs, devices)
    assert table(rows) == [
        (100.0, 90.0 / 100.0, "90% of dense peak"),
        (100.0, 90.0 / 100.0, "meets"),          # launch figure; 0.9 is the 'meets' boundary
        (98.0, 90.0 / 98.0, "meets"),            # IPO prospectus figure, kept as its own claim
        (100.0, 90.0 / 100.0, "90% of dense peak"),
        (100.0, 90.0 / 100.0, "meets"),
    ]
    assert "IPO prospectus" in rows[2]["source"]


def test_910c_die_scales_package_claims(refs, devices):
    rows = score_results([gemm("Ascend910_9392", "bfloat16", 300.0)], refs, devices)
    assert table(rows) == [
        (376.0, 300.0 / 376.0, "80% of dense peak"),
        (752.0 * 0.5, 300.0 / (752.0 * 0.5), "below"),
        (780.0 * 0.5, 300.0 / (780.0 * 0.5), "below"),
    ]
    assert all(r["source"].endswith("[claim x 0.5 per device]") for r in rows[1:])


def test_llm_token_claims_match_model_and_precision_only(refs, devices):
    fp8 = {"model": "llama-2-70b", "dtype": "float8_e4m3fn", "batch": 64, "prompt_len": 1024, "gen_len": 1024}
    metrics = {"output_tok_s": (3000.0, "tok/s"), "decode_tok_s": (3100.0, "tok/s")}
    rows = score_results([result("NVIDIA H200", "llm", fp8, metrics)], refs, devices)
    claims = {3467.3, 3310.7, 3964.0, 3690.8, 3912.8, 3653.5, 4373.5, 4134.0, 4414.6}  # MLPerf H200 rows
    assert {r["reference"] for r in rows} == claims and len(rows) == len(claims)
    for r in rows:
        assert (r["metric"], r["unit"], r["ratio"]) == ("output_tok_s", "tok/s", 3000.0 / r["reference"])
        assert r["source"].startswith("mlperf: ") and "llama2-70b" in r["source"]
    other_dtype = score_results([result("NVIDIA H200", "llm", {**fp8, "dtype": "bfloat16"}, metrics)], refs, devices)
    other_model = score_results([result("NVIDIA H200", "llm", {**fp8, "model": "llama-3.1-8b"}, metrics)], refs,
                                devices)
    for rows in (other_dtype, other_model):
        assert [(r["metric"], r["reference"], r["verdict"]) for r in rows] == [
            ("decode_tok_s", None, "no reference")]


def test_relative_claim_scored_when_both_devices_exist(refs, devices):
    long = {**LLM, "prompt_len": 16384}
    s5000 = result("MTT S5000", "llm", long, {"prefill_tok_s": (5000.0, "tok/s")})
    h20 = result("NVIDIA H20", "llm", long, {"prefill_tok_s": (2500.0, "tok/s")}, rid="h20-run")
    rows = [r for r in score_results([s5000, h20], refs, devices) if r["unit"] == "x_vs_H20"]
    assert len(rows) == 1
    row = rows[0]
    assert (row["device"], row["metric"], row["measured"], row["reference"], row["ratio"], row["verdict"]) == (
        "MTT S5000", "prefill_tok_s vs NVIDIA H20", 2.0, 2.5, 2.0 / 2.5, "below")
    assert row["source"].endswith("[baseline: h20-run]")
    # no baseline, a baseline with other params, or a prompt shorter than the claim's 16k: not scored
    assert not [r for r in score_results([s5000], refs, devices) if r["unit"] == "x_vs_H20"]
    h20_batch4 = result("NVIDIA H20", "llm", {**long, "batch": 4}, {"prefill_tok_s": (2500.0, "tok/s")})
    assert not [r for r in score_results([s5000, h20_batch4], refs, devices) if r["unit"] == "x_vs_H20"]
    short = [result(d, "llm", LLM, {"prefill_tok_s": (v, "tok/s")})
             for d, v in (("MTT S5000", 5.0), ("NVIDIA H20", 2.0))]
    assert not [r for r in score_results(short, refs, devices) if r["unit"] == "x_vs_H20"]


@pytest.mark.parametrize("mine, verdict", [(200.0, "within claimed range 1.5-2.5x"),
                                           (120.0, "below claimed range 1.5-2.5x"),
                                           (300.0, "above claimed range 1.5-2.5x")])
def test_relative_range_claim(tmp_path, refs, mine, verdict):
    path = tmp_path / "devices.toml"
    path.write_text('[devices."Ascend950PR_test"]\nreference = "Huawei Ascend 950 (PR/DT)"\n'
                    '[devices."NVIDIA H20"]\nreference = "NVIDIA H20"\nrelative_names = ["H20"]\n', encoding="utf-8")
    results = [result("Ascend950PR_test", "llm", LLM, {"decode_tok_s": (mine, "tok/s")}),
               result("NVIDIA H20", "llm", LLM, {"decode_tok_s": (100.0, "tok/s")})]
    rows = [r for r in score_results(results, refs, load_devices(path)) if r["unit"] == "x_vs_H20"]
    assert [(r["measured"], r["reference"], r["ratio"], r["verdict"]) for r in rows] == [
        (mine / 100.0, 1.5, (mine / 100.0) / 1.5, verdict)]
    assert rows[0]["source"].startswith("seed: 003_4ecf248bfee2f514.txt")


def test_smoke_tier_shown_but_claims_not_scored(refs, devices):
    rows = score_results([gemm("NVIDIA H200", "bfloat16", 800.0, tier="smoke")], refs, devices)
    assert table(rows) == [(989.4, 800.0 / 989.4, "81% of dense peak"), (989.4, 800.0 / 989.4, SMOKE)]
    long = {**LLM, "prompt_len": 16384}
    pair = [result("MTT S5000", "llm", long, {"prefill_tok_s": (5000.0, "tok/s")}),
            result("NVIDIA H20", "llm", long, {"prefill_tok_s": (2500.0, "tok/s")}, tier="smoke")]
    rel = [r for r in score_results(pair, refs, devices) if r["unit"] == "x_vs_H20"]
    assert [(r["measured"], r["ratio"], r["verdict"]) for r in rel] == [(2.0, 0.8, SMOKE)]


def test_invalid_result_claims_not_scored(refs, devices):
    rows = score_results([gemm("NVIDIA H200", "bfloat16", 800.0, valid=False)], refs, devices)
    assert [r["verdict"] for r in rows] == ["81% of dense peak", "invalid: not scored"]


def test_unknown_device_and_failed_results(refs, devices):
    warnings: list[str] = []
    results = [gemm("Intel(R) Xeon(R) Processor", "float32", 1.5),
               gemm("NVIDIA H200", "bfloat16", 1.0, status="failed")]
    rows = score_results(results, refs, devices, warnings=warnings)
    assert rows == [{"device": "Intel(R) Xeon(R) Processor", "workload": "gemm float32 N=8192", "metric": "tflops",
                     "measured": 1.5, "reference": None, "unit": "TFLOPS", "ratio": None,
                     "verdict": "unknown device", "source": None}]
    assert warnings == ["unknown device 'Intel(R) Xeon(R) Processor': add it to configs/devices.toml",
                        "gemm: status 'failed' (RuntimeError: boom), not scored"]


def test_cpu_with_derived_figures(refs, devices):
    rows = score_results([gemm("Intel(R) Xeon(R) Platinum 8480+", "bfloat16", 50.0)], refs, devices)
    assert table(rows) == [(114.7, 50.0 / 114.7, "44% of dense peak"), (114.7, 50.0 / 114.7, "far below")]


def test_missing_metrics_do_not_crash(refs, devices):
    bare = result("NVIDIA H200", "llm", LLM, {})
    no_median = gemm("NVIDIA H200", "bfloat16", 1.0)
    no_median["metrics"]["tflops"] = {"unit": "TFLOPS"}
    odd_kind = result("NVIDIA H200", "collective", {}, {})
    warnings: list[str] = []
    assert score_results([bare, no_median, odd_kind, "junk"], refs, devices, warnings) == []
    assert len(warnings) == 2
    rows = score_results([result("NVIDIA H200", "llm", LLM, {"decode_gbps": (2400.0, "GB/s")})], refs, devices)
    assert table(rows) == [(4800.0, 0.5, "50% of rated")]


def test_above_ceiling_is_flagged(refs, devices):
    rows = score_results([membw("MTT S80", 470.4)], refs, devices)
    assert table(rows)[0] == (448.0, 470.4 / 448.0, "105% of rated")
    rows = score_results([membw("MTT S80", 480.0)], refs, devices)
    assert rows[0]["verdict"] == "107% of rated (above the ceiling: check the figure)"


# ---- rendering ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def sample_rows(refs, devices):
    return score_results([gemm("NVIDIA H200", "bfloat16", 800.0), gemm("Unknown | GPU", "float16", 1.0)],
                         refs, devices)


def test_render_json_has_exactly_the_nine_keys(sample_rows):
    data = json.loads(render_score(sample_rows, "json"))
    assert len(data) == len(sample_rows) == 3
    assert all(list(obj) == list(ROW_KEYS) for obj in data)
    assert data[0]["ratio"] == 800.0 / 989.4 and data[2]["reference"] is None


def test_render_csv_md_table(sample_rows):
    parsed = list(csv.DictReader(io.StringIO(render_score(sample_rows, "csv"))))
    assert list(parsed[0]) == list(ROW_KEYS) and float(parsed[0]["ratio"]) == 800.0 / 989.4
    assert parsed[2]["reference"] == ""
    md = render_score(sample_rows, "md").splitlines()
    assert md[0] == "| " + " | ".join(ROW_KEYS) + " |" and len(md) == 5
    assert "Unknown \\| GPU" in md[4]
    text = render_score(sample_rows, "table", width=200)
    assert "NVIDIA H200" in text and "81% of dense peak" in text and "0.809" in text
    with pytest.raises(UsageError, match="unknown format 'xml'"):
        render_score(sample_rows, "xml")


def test_int8_gemm_scored_against_dense_tops_claims(refs, devices):
    rows = score_results([gemm("NVIDIA H100 80GB HBM3", "int8", 1500.0)], refs, devices)
    assert table(rows) == [(1978.9, 1500.0 / 1978.9, "below")]  # no INT8 roofline; sparse 3,958 skipped
