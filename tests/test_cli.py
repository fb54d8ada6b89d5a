"""The CLI end to end in fresh interpreters (process isolation, real entry points)."""

from __future__ import annotations

import json
from pathlib import Path

from harness.results import load_results


def test_models_json_lists_exact_counts(cli):
    proc = cli("models", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    rows = {r["name"]: r for r in json.loads(proc.stdout)}
    assert rows["llama-3.1-8b"]["params"] == 8_030_261_248
    assert rows["llama-3.1-8b"]["weight_bytes_bf16"] == 2 * 8_030_261_248
    assert rows["qwen2.5-0.5b"]["kv_heads"] == 2


def test_backends_json_reports_cpu_and_cuda(cli):
    proc = cli("backends", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    rows = {r["name"]: r for r in json.loads(proc.stdout)}
    assert rows["cpu"]["available"] is True and rows["cpu"]["device_name"]
    assert rows["cuda"]["available"] is False
    assert "CUDA" in rows["cuda"]["reason"]


def test_run_sweep_writes_one_file_per_case(cli, tmp_path):
    out = tmp_path / "run"
    proc = cli("run", "--backend", "cpu", "--model", "tiny", "--batch", "1,2", "--prompt-len", "8", "--gen-len", "4",
               "--repetitions", "2", "--warmup", "0", "--min-duration", "0", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    results, warnings = load_results([out])
    assert not warnings
    assert sorted(r["workload"]["params"]["batch"] for r in results) == [1, 2]
    assert all(r["status"] == "ok" and r["backend"]["name"] == "cpu" for r in results)
    assert all(r["environment"]["harness"]["version"] for r in results)
    assert "decode_tok_s" in proc.stdout  # the summary table


def test_default_run_is_the_smoke_suite_and_can_be_scored(cli, tmp_path):
    proc = cli("run", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "backend auto -> cpu" in proc.stderr
    runs = list((tmp_path / "results").iterdir())
    assert len(runs) == 1
    results, _ = load_results(runs)
    assert {r["workload"]["kind"] for r in results} == {"llm", "gemm", "membw"}
    assert all(r["measure"]["tier"] == "smoke" for r in results)
    scored = cli("score", "--format", "json", cwd=tmp_path)
    assert scored.returncode == 0, scored.stderr
    rows = json.loads(scored.stdout)
    assert isinstance(rows, list)
    for row in rows:
        assert set(row) == {"device", "workload", "metric", "measured", "reference", "unit", "ratio", "verdict", "source"}


def test_usage_error_is_one_line(cli, tmp_path):
    proc = cli("run", "--backend", "nonesuch", "--out", str(tmp_path / "x"))
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0
    assert proc.stderr.startswith("error: unknown backend 'nonesuch'")
    assert not (Path(tmp_path) / "x").exists() or not any((Path(tmp_path) / "x").iterdir())
