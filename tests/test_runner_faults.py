"""Fault injection: backends registered by entry point from a test-only distribution
(tests/plugins/faultpkg, found through its dist-info on PYTHONPATH) crash, hang, raise, run out of
memory or are unavailable; the sweep records each case's true status and goes on."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.plan import Case, Measure
from harness.results import _UMASK, load_results, write_result

ROOT = Path(__file__).resolve().parent.parent
PLUGIN = ROOT / "tests" / "plugins" / "faultpkg"
sys.path.insert(0, str(PLUGIN))  # for the message constants only; the CLI finds it by entry point
import faultbackends  # noqa: E402

sys.path.remove(str(PLUGIN))

TINY = ["--model", "tiny", "--prompt-len", "4", "--gen-len", "4", "--repetitions", "1", "--warmup", "0", "--min-duration", "0"]
FAULTS = ["fault-good", "fault-abort", "fault-exit", "fault-hang", "fault-raise", "fault-oom", "fault-unavailable"]


def plugin_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(PLUGIN)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    env.pop("FAULT_VISIBLE_DEVICES", None)
    env.update(extra)
    return env


def _running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/status", encoding="utf-8") as fh:
            state = next(line for line in fh if line.startswith("State:"))
        return "Z" not in state.split()[1]  # a zombie is dead
    except (FileNotFoundError, StopIteration):
        return False


@pytest.mark.slow
def test_mixed_fault_sweep_records_every_true_status(tmp_path):
    out = tmp_path / "run"
    pid_file = tmp_path / "grandchild.pid"
    proc = subprocess.run(
        [sys.executable, "-m", "harness.cli", "run", "--backend", ",".join(FAULTS), *TINY,
         "--timeout", "15", "--device-ids", "3,5", "--out", str(out)],
        capture_output=True, text=True, timeout=240, env=plugin_env(FAULT_PID_FILE=str(pid_file)), cwd=tmp_path,
    )
    assert proc.returncode == 1, proc.stderr
    assert "6 of 7 case(s) did not succeed" in proc.stderr
    assert "Traceback" not in proc.stderr

    results, warnings = load_results([out])
    assert warnings == [] and len(list(out.glob("*.json"))) == 7 and not list(out.glob(".tmp-*"))
    by = {r["backend"]["name"]: r for r in results}
    assert sorted(by) == sorted(FAULTS)
    assert {k: r["status"] for k, r in by.items()} == {
        "fault-good": "ok", "fault-abort": "crashed", "fault-exit": "crashed", "fault-hang": "timeout",
        "fault-raise": "failed", "fault-oom": "oom", "fault-unavailable": "unavailable",
    }

    good = by["fault-good"]
    assert good["error"] is None and good["metrics"]["decode_tok_s"]["median"] > 0
    assert len(good["samples"]["decode_tok_s"]) == 1
    assert good["backend"]["info"]["visible_devices"] == "3,5"  # --device-ids set before the probe
    assert good["backend"]["versions"]["faultpkg"] == "0.0.0"  # the probe's versions are kept
    assert good["validity"]["valid"] is False  # one repetition cannot show stability

    abort = by["fault-abort"]["error"]
    assert abort["signal"] == "SIGABRT" and abort["returncode"] == -6
    assert abort["message"].startswith("killed by signal SIGABRT")

    exit3 = by["fault-exit"]["error"]
    assert exit3["returncode"] == 3 and exit3["signal"] is None
    assert "exited with code 3" in exit3["message"] and "fault-exit: leaving with code 3" in exit3["message"]

    hang = by["fault-hang"]["error"]
    assert hang["type"] == "Timeout" and hang["timeout_s"] == 15.0 and "no result after 15s" in hang["message"]
    grandchild = int(pid_file.read_text())
    assert not _running(grandchild), "the hanging case's process group was not killed"

    assert by["fault-raise"]["error"]["type"] == "RuntimeError"
    assert by["fault-raise"]["error"]["message"] == faultbackends.RAISE_MESSAGE
    assert "load_llm" in by["fault-raise"]["error"]["traceback"]
    assert by["fault-oom"]["error"]["type"] == "OutOfMemoryError"
    assert by["fault-oom"]["error"]["message"] == faultbackends.OOM_MESSAGE
    assert by["fault-unavailable"]["error"]["message"] == "fault-unavailable: no fault device (FAULT_VISIBLE_DEVICES='3,5')"

    for r in results:  # every result carries the full envelope, whatever its status
        assert r["schema"] == "accelbench.result/1" and r["created"].endswith("Z")
        assert r["environment"]["cpu_model"] and "torch" in r["environment"]["packages"]
        assert r["validity"]["valid"] is False or r["status"] == "ok"
        assert r["measure"]["ci_method"].startswith("95% CI of the median")


# ----------------------------------------------------------------------------- in-process runner
@pytest.fixture
def faults(monkeypatch):
    """Make the fault distribution visible to importlib.metadata in this process."""
    monkeypatch.syspath_prepend(str(PLUGIN))
    monkeypatch.delenv("FAULT_VISIBLE_DEVICES", raising=False)


def _case(backend: str, gen_len: int = 4, **options) -> Case:
    params = {"model": "tiny", "dtype": "float32", "batch": 1, "prompt_len": 4, "gen_len": gen_len}
    return Case(backend, "llm", params, Measure(warmup=0, repetitions=1, min_duration_s=0.0, timeout_s=60), options)


def test_inline_isolation_statuses_and_device_ids_are_scoped(faults, tmp_path):
    from harness.runner import run_plan

    cases = [_case("fault-raise"), _case("fault-unavailable", device_ids="7"), _case("fault-oom"), _case("fault-good", device_ids="2")]
    results = run_plan(cases, tmp_path, isolation="inline")
    assert [r["status"] for r in results] == ["failed", "unavailable", "oom", "ok"]
    assert results[1]["error"]["message"].endswith("(FAULT_VISIBLE_DEVICES='7')")
    assert results[3]["backend"]["info"]["visible_devices"] == "2"
    assert "FAULT_VISIBLE_DEVICES" not in os.environ  # restored after each inline case
    assert sorted(Path(r["_path"]).name for r in results) == sorted(p.name for p in tmp_path.glob("*.json"))


def test_interrupt_inline_keeps_finished_and_writes_nothing_for_the_interrupted(faults, tmp_path):
    from harness.runner import run_plan

    seen = []
    with pytest.raises(KeyboardInterrupt):
        run_plan([_case("fault-raise"), _case("fault-interrupt"), _case("fault-oom")], tmp_path,
                 isolation="inline", on_result=lambda i, n, c, r, p: seen.append(r["status"]))
    files = list(tmp_path.glob("*.json"))
    assert seen == ["failed"] and len(files) == 1 and files[0].name.startswith("fault-raise_")
    assert json.loads(files[0].read_text())["status"] == "failed"
    assert not list(tmp_path.glob(".tmp-*"))


def test_existing_result_is_never_overwritten(tmp_path):
    from harness.execute import base_result

    case = _case("cpu")
    first, second = base_result(case), base_result(case)
    first["status"], second["status"] = "ok", "failed"
    p1 = write_result(tmp_path, first)
    before = p1.read_bytes()
    p2 = write_result(tmp_path, second)
    p3 = write_result(tmp_path, second)
    assert p1 != p2 != p3 and p2.name == p1.name.replace(".json", ".1.json") and p3.name.endswith(".2.json")
    assert p1.read_bytes() == before  # the first file is untouched
    assert [json.loads(p.read_text())["status"] for p in (p1, p2, p3)] == ["ok", "failed", "failed"]
    assert p1.stat().st_mode & 0o777 == 0o666 & ~_UMASK  # an ordinary file, not mkstemp's 0600


def test_never_overwritten_without_hard_links(tmp_path, monkeypatch):
    from harness.execute import base_result

    def no_links(src, dst):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    result = base_result(_case("cpu"))
    paths = [write_result(tmp_path, dict(result, status=s)) for s in ("ok", "failed")]
    assert paths[0] != paths[1]
    assert [json.loads(p.read_text())["status"] for p in paths] == ["ok", "failed"]
    assert not list(tmp_path.glob(".tmp-*"))


def test_same_case_run_twice_without_resume_gives_two_files(faults, tmp_path):
    from harness.runner import run_plan

    run_plan([_case("fault-raise")], tmp_path, isolation="inline")
    run_plan([_case("fault-raise")], tmp_path, isolation="inline")
    results, _ = load_results([tmp_path])
    assert len(results) == 2 and len({r["id"] for r in results}) == 1


def test_outside_plugin_is_listed_by_backends(cli):
    """A distribution that only declares entry points appears in `accelbench backends`, with no other step."""
    proc = cli("backends", "--format", "json", env={"PYTHONPATH": plugin_env()["PYTHONPATH"]})
    assert proc.returncode == 0, proc.stderr
    rows = {r["name"]: r for r in json.loads(proc.stdout)}
    assert rows["fault-good"]["available"] is True
    assert rows["fault-unavailable"]["available"] is False
    assert rows["fault-unavailable"]["reason"] == "fault-unavailable: no fault device (FAULT_VISIBLE_DEVICES=None)"
    assert {"cpu", "cuda", "ascend", "cambricon", "musa", "onnxruntime"} <= set(rows)
