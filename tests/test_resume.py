"""Ctrl-C in the middle of a sweep, then ``--resume``: nothing lost, nothing partial, nothing twice."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.plan import Case, Measure
from harness.results import load_results

ROOT = Path(__file__).resolve().parent.parent
PLUGIN = ROOT / "tests" / "plugins" / "faultpkg"

SUITE = """
name = "resume-test"
tier = "smoke"
[measure]
warmup = 0
repetitions = 1
min_duration_s = 0
timeout_s = 120

[[case]]            # fast
backend = "fault-good"
model = "tiny"
prompt_len = 4
gen_len = 4

[[case]]            # slow while FAULT_SLOW_S is set: the interrupt lands here
backend = "fault-slow"
model = "tiny"
prompt_len = 4
gen_len = 4

[[case]]            # two more fast ones
backend = "fault-good"
model = "tiny"
prompt_len = 4
gen_len = [5, 6]
"""


def plugin_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(PLUGIN)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    env.update(extra)
    return env


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "harness.cli", "run", *args]


@pytest.mark.slow
def test_sigint_then_resume_completes_every_case_exactly_once(tmp_path):
    suite = tmp_path / "suite.toml"
    suite.write_text(SUITE, encoding="utf-8")
    out = tmp_path / "run"

    proc = subprocess.Popen(cli("--suite", str(suite), "--out", str(out)), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=plugin_env(FAULT_SLOW_S="300"), cwd=tmp_path)
    try:
        deadline = time.monotonic() + 120
        while not [p for p in out.glob("*.json") if not p.name.startswith(".")]:
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "no result file appeared"
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert f"rerun with --resume --out {out}" in stderr

    first = {p.name: p.read_bytes() for p in out.iterdir()}
    assert list(first) and all(name.startswith("fault-good_") for name in first)  # no file for the interrupted case
    assert not any(name.startswith(".tmp-") for name in first)
    for data in first.values():
        result = json.loads(data)
        assert result["status"] == "ok" and result["metrics"]["decode_tok_s"]["median"] > 0
    # stdout never printed a summary for an interrupted sweep
    assert "accelbench results" not in stdout

    resumed = subprocess.run(cli("--suite", str(suite), "--out", str(out), "--resume"), capture_output=True, text=True,
                             timeout=180, env=plugin_env(FAULT_SLOW_S="0"), cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stderr.count("already done, skipped (--resume)") == len(first)

    results, warnings = load_results([out])
    assert warnings == []
    assert len(results) == 4 and len({r["id"] for r in results}) == 4  # every case exactly once
    assert all(r["status"] == "ok" for r in results)
    assert sorted((r["backend"]["name"], r["workload"]["params"]["gen_len"]) for r in results) == [
        ("fault-good", 4), ("fault-good", 5), ("fault-good", 6), ("fault-slow", 4)]
    for name, data in first.items():  # finished files were not touched
        assert (out / name).read_bytes() == data
    assert not list(out.glob(".tmp-*"))


# ----------------------------------------------------------------------------- in-process resume
@pytest.fixture
def faults(monkeypatch):
    monkeypatch.syspath_prepend(str(PLUGIN))


def _case(backend: str, gen_len: int) -> Case:
    params = {"model": "tiny", "dtype": "float32", "batch": 1, "prompt_len": 4, "gen_len": gen_len}
    return Case(backend, "llm", params, Measure(warmup=0, repetitions=1, min_duration_s=0.0))


def test_resume_skips_by_stable_id_and_reports_earlier_results(faults, tmp_path):
    from harness.runner import run_plan

    cases = [_case("fault-raise", 4), _case("fault-unavailable", 4)]
    run_plan(cases[:1], tmp_path, isolation="inline")
    started, skipped = [], []
    results = run_plan(cases, tmp_path, isolation="inline", resume=True,
                       on_start=lambda i, n, c: started.append(c.backend),
                       on_result=lambda i, n, c, r, p: skipped.append(c.backend) if r["status"] == "skipped" else None)
    assert started == ["fault-unavailable"] and skipped == ["fault-raise"]
    assert [r["status"] for r in results] == ["failed", "unavailable"]  # the sweep's whole picture
    assert results[0]["_resumed"] is True and "_resumed" not in results[1]
    assert len(list(tmp_path.glob("*.json"))) == 2


def test_resume_reruns_a_case_whose_file_is_corrupt(faults, tmp_path):
    from harness.runner import run_plan

    case = _case("fault-raise", 4)
    [result] = run_plan([case], tmp_path, isolation="inline")
    Path(result["_path"]).write_text('{"schema": "accelbench.result/1", "id": "trunc', encoding="utf-8")
    [again] = run_plan([case], tmp_path, isolation="inline", resume=True)
    assert "_resumed" not in again and again["status"] == "failed"
    results, warnings = load_results([tmp_path])
    assert [r["id"] for r in results] == [case.id]
    assert len(warnings) == 1 and Path(result["_path"]).name in warnings[0]


def test_interrupt_during_the_write_keeps_the_finished_result(faults, tmp_path, monkeypatch):
    import harness.runner as runner

    real_write = runner.write_result

    def write_then_interrupted(folder, result):
        os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C arrives while the file is being written
        return real_write(folder, result)

    monkeypatch.setattr(runner, "write_result", write_then_interrupted)
    with pytest.raises(KeyboardInterrupt):
        runner.run_plan([_case("fault-raise", 4), _case("fault-oom", 4)], tmp_path, isolation="inline")
    results, warnings = load_results([tmp_path])
    assert warnings == [] and [r["status"] for r in results] == ["failed"]  # written whole, then stopped
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_case_id_ignores_timeout_but_not_measurement():
    a = _case("cpu", 4)
    assert Case(a.backend, a.workload, a.params, Measure(warmup=0, repetitions=1, min_duration_s=0.0, timeout_s=5)).id == a.id
    assert Case(a.backend, a.workload, a.params, Measure(warmup=0, repetitions=2, min_duration_s=0.0)).id != a.id
    assert _case("cpu", 5).id != a.id
