"""Every bad input: exit status 2, exactly one line on stderr starting with "error:", no traceback,
nothing written. Most run ``harness.cli.main`` in this process (fast); a few run the real
``python -m harness.cli`` to prove the same through the entry point."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import harness.cli

ROOT = Path(__file__).resolve().parent.parent
FAST = ["run", "--backend", "cpu", "--model", "tiny", "--prompt-len", "4", "--gen-len", "4"]


def invoke(monkeypatch, capsys, args: list[str]) -> tuple[int, str, str]:
    """Run ``accelbench ARGS`` through ``harness.cli.main``: (exit status, stdout, stderr)."""
    monkeypatch.setattr(sys, "argv", ["accelbench", *args])
    with pytest.raises(SystemExit) as exit_info:
        harness.cli.main()
    captured = capsys.readouterr()
    return exit_info.value.code, captured.out, captured.err


def assert_usage_error(code: int, out: str, err: str, fragment: str) -> None:
    lines = err.splitlines()
    assert code == 2, (code, out, err)
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert fragment in lines[0], lines[0]
    assert "Traceback" not in out + err


@pytest.fixture
def files(tmp_path):
    """Bad suites and model folders, by name."""
    def suite(name: str, text: str) -> str:
        path = tmp_path / f"{name}.toml"
        path.write_text(text, encoding="utf-8")
        return str(path)

    case = '[[case]]\nworkload = "llm"\nmodel = "tiny"\n'
    paths = {
        "malformed": suite("malformed", "name = \n"),
        "unknown_top": suite("unknown_top", f'name = "x"\nrepeats = 3\n{case}'),
        "unknown_measure": suite("unknown_measure", f"[measure]\nrepeats = 3\n{case}"),
        "unknown_case_key": suite("unknown_case_key", f'{case}bacth = 4\n'),
        "measure_type": suite("measure_type", f'[measure]\nrepetitions = "3"\n{case}'),
        "measure_zero_timeout": suite("measure_zero_timeout", f"[measure]\ntimeout_s = 0\n{case}"),
        "measure_zero_reps": suite("measure_zero_reps", f"[measure]\nrepetitions = 0\n{case}"),
        "measure_not_table": suite("measure_not_table", f'measure = 5\n{case}'),
        "case_type": suite("case_type", f'{case}batch = "four"\n'),
        "case_table": suite("case_table", f"{case}[case.extra]\na = 1\n"),
        "case_empty_list": suite("case_empty_list", f"{case}batch = []\n"),
        "no_cases": suite("no_cases", 'name = "x"\n'),
        "bad_tier": suite("bad_tier", f'tier = "quick"\n{case}'),
        "name_type": suite("name_type", f"name = 3\n{case}"),
        "unknown_workload_in_suite": suite("unknown_workload_in_suite", '[[case]]\nworkload = "nope"\n'),
    }
    (tmp_path / "nocfg").mkdir()
    (tmp_path / "badjson").mkdir()
    (tmp_path / "badjson" / "config.json").write_text("{not json", encoding="utf-8")
    (tmp_path / "missing_field").mkdir()
    (tmp_path / "missing_field" / "config.json").write_text(json.dumps({"model_type": "llama", "hidden_size": 64}), encoding="utf-8")
    (tmp_path / "a_file").write_text("x", encoding="utf-8")
    paths.update(nocfg=str(tmp_path / "nocfg"), badjson=str(tmp_path / "badjson"),
                 missing_field=str(tmp_path / "missing_field"), a_file=str(tmp_path / "a_file"),
                 missing=str(tmp_path / "does-not-exist"), out=str(tmp_path / "out"))
    return paths


# (test id, arguments with {placeholders} from ``files``, fragment of the one error line)
CASES = [
    ("unknown-backend", ["run", "--backend", "nope", "--model", "tiny"], "unknown backend 'nope'"),
    ("unknown-workload", ["run", "--backend", "cpu", "--workload", "nope"], "unknown workload 'nope'"),
    ("unknown-model", ["run", "--backend", "cpu", "--model", "llama-9000"], "unknown model 'llama-9000'"),
    ("unknown-dtype", [*FAST, "--dtype", "float7"], "unknown dtype 'float7'"),
    ("zero-batch", [*FAST, "--batch", "0"], "batch must be positive, got 0"),
    ("negative-batch", [*FAST, "--batch", "-2"], "batch must be positive, got -2"),
    ("text-batch", [*FAST, "--batch", "four"], "batch must be an integer, got 'four'"),
    ("fractional-prompt", [*FAST, "--prompt-len", "1.5"], "prompt_len must be an integer, got '1.5'"),
    ("zero-gen-len", [*FAST, "--gen-len", "0"], "gen_len must be positive, got 0"),
    ("empty-list", [*FAST, "--batch", ","], "empty list"),
    ("zero-gemm-size", ["run", "--backend", "cpu", "--workload", "gemm", "--size", "0"], "size must be positive, got 0"),
    ("zero-membw-size", ["run", "--backend", "cpu", "--workload", "membw", "--size-mb", "-1"], "size_mb must be positive"),
    ("zero-repetitions", [*FAST, "--repetitions", "0"], "--repetitions must be positive, got 0"),
    ("text-repetitions", [*FAST, "--repetitions", "many"], "Invalid value for '--repetitions'"),
    ("negative-warmup", [*FAST, "--warmup", "-1"], "--warmup must be >= 0, got -1"),
    ("negative-min-duration", [*FAST, "--min-duration", "-1"], "--min-duration must be >= 0"),
    ("nan-min-duration", [*FAST, "--min-duration", "nan"], "min_duration_s must be a finite number >= 0"),
    ("zero-timeout", [*FAST, "--timeout", "0"], "--timeout must be positive, got 0"),
    ("negative-timeout", [*FAST, "--timeout", "-5"], "--timeout must be positive, got -5"),
    ("text-timeout", [*FAST, "--timeout", "soon"], "Invalid value for '--timeout'"),
    ("infinite-timeout", [*FAST, "--timeout", "inf"], "timeout_s must be a finite number > 0"),
    ("zero-threads", [*FAST, "--threads", "0"], "--threads must be positive, got 0"),
    ("bad-isolation", [*FAST, "--isolation", "thread"], "--isolation must be 'process' or 'inline'"),
    ("bad-tier", [*FAST, "--tier", "quick"], "--tier must be 'smoke' or 'full'"),
    ("resume-without-out", [*FAST, "--resume"], "--resume needs --out"),
    ("unknown-option", [*FAST, "--repetition", "3"], "No such option: --repetition"),
    ("suite-missing", ["run", "--suite", "{missing}"], "suite file not found"),
    ("suite-malformed", ["run", "--suite", "{malformed}"], "malformed TOML"),
    ("suite-unknown-key", ["run", "--suite", "{unknown_top}"], "unknown key(s) repeats"),
    ("suite-unknown-measure-key", ["run", "--suite", "{unknown_measure}"], "unknown key 'measure.repeats'"),
    ("suite-unknown-case-key", ["run", "--suite", "{unknown_case_key}"], "unknown key(s) bacth"),
    ("suite-measure-wrong-type", ["run", "--suite", "{measure_type}"], "'measure.repetitions' must be int, got str '3'"),
    ("suite-zero-timeout", ["run", "--suite", "{measure_zero_timeout}"], "'measure.timeout_s' must be positive, got 0.0"),
    ("suite-zero-repetitions", ["run", "--suite", "{measure_zero_reps}"], "'measure.repetitions' must be positive, got 0"),
    ("suite-measure-not-table", ["run", "--suite", "{measure_not_table}"], "'measure' must be a table"),
    ("suite-case-wrong-type", ["run", "--suite", "{case_type}"], "case 1: batch must be an integer, got 'four'"),
    ("suite-case-table", ["run", "--suite", "{case_table}"], "'extra' must be a value or a list of values, not a table"),
    ("suite-case-empty-list", ["run", "--suite", "{case_empty_list}"], "case 1: 'batch' is an empty list"),
    ("suite-no-cases", ["run", "--suite", "{no_cases}"], "needs at least one [[case]] table"),
    ("suite-bad-tier", ["run", "--suite", "{bad_tier}"], "'tier' must be one of smoke, full"),
    ("suite-name-type", ["run", "--suite", "{name_type}"], "'name' must be a string"),
    ("suite-unknown-workload", ["run", "--suite", "{unknown_workload_in_suite}"], "unknown workload 'nope'"),
    ("model-folder-no-config", ["run", "--backend", "cpu", "--model", "{nocfg}"], "has no config.json"),
    ("model-folder-bad-json", ["run", "--backend", "cpu", "--model", "{badjson}"], "config.json is not valid JSON"),
    ("model-folder-missing-field", ["run", "--backend", "cpu", "--model", "{missing_field}"], "missing required field"),
    ("out-not-writable", [*FAST, "--out", "{a_file}/sub"], "cannot write to output folder"),
    ("score-missing-path", ["score", "{missing}"], "no such file or folder"),
    ("compare-missing-baseline", ["compare", "{missing}", "{out}"], "no such file or folder"),
    ("compare-missing-current", ["compare", "{nocfg}", "{missing}"], "no such file or folder"),
    ("compare-missing-argument", ["compare", "{nocfg}"], "Missing argument"),
    ("compare-bad-threshold", ["compare", "{nocfg}", "{nocfg}", "--fail-if-slower", "ten"], "--fail-if-slower must be a percentage"),
    ("compare-negative-threshold", ["compare", "{nocfg}", "{nocfg}", "--fail-if-slower", "-5%"], "--fail-if-slower must be a percentage"),
    ("compare-bad-format", ["compare", "{nocfg}", "{nocfg}", "--format", "xml"], "unknown format 'xml'"),
]


@pytest.mark.parametrize("args, fragment", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_one_clear_line(args, fragment, files, monkeypatch, capsys, tmp_path):
    monkeypatch.chdir(tmp_path)
    argv = [a.format(**files) for a in args]
    if argv[0] == "run" and "--out" not in argv and "--resume" not in argv:
        argv += ["--out", files["out"]]
    code, out, err = invoke(monkeypatch, capsys, argv)
    assert_usage_error(code, out, err, fragment)
    assert not Path(files["out"]).exists() or not list(Path(files["out"]).iterdir())  # nothing ran


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["run", "--backend", "cpu", "--model", "tiny", "--timeout", "soon"], "Invalid value for '--timeout'"),
        (["run", "--backend", "nope", "--model", "tiny"], "unknown backend 'nope'"),
        (["compare", "/nonexistent/a", "/nonexistent/b"], "no such file or folder: /nonexistent/a"),
    ],
    ids=["typer-parse-error", "unknown-backend", "compare-missing"],
)
def test_bad_input_through_the_real_entry_point(args, fragment, tmp_path):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p))
    proc = subprocess.run([sys.executable, "-m", "harness.cli", *args, *(["--out", str(tmp_path / "o")] if args[0] == "run" else [])],
                          capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path)
    assert_usage_error(proc.returncode, proc.stdout, proc.stderr, fragment)


def _valid_result(tmp_path: Path) -> Path:
    from harness.execute import base_result
    from harness.plan import Case, Measure
    from harness.results import write_result
    from harness.stats import summarize

    case = Case("cpu", "llm", {"model": "tiny", "dtype": "float32", "batch": 1, "prompt_len": 4, "gen_len": 4},
                Measure(repetitions=3, min_duration_s=0))
    result = base_result(case)
    result["backend"]["device_name"] = "Test CPU"
    result.update(status="ok", created="2026-01-01T00:00:00Z", environment={},
                  metrics={"decode_tok_s": summarize([100.0, 101.0, 99.0], "tok/s")},
                  validity={"valid": True, "reasons": [], "warnings": []})
    return write_result(tmp_path, result)


def test_score_names_a_corrupt_result_and_goes_on(tmp_path, monkeypatch, capsys):
    good = _valid_result(tmp_path)
    (tmp_path / "broken.json").write_text('{"schema": "accelbench.result/1", "id": ', encoding="utf-8")
    (tmp_path / "other.json").write_text(json.dumps({"hello": "world"}), encoding="utf-8")
    code, out, err = invoke(monkeypatch, capsys, ["score", str(tmp_path), "--format", "json"])
    assert code == 0, err
    warnings = [w for w in err.splitlines() if w.startswith("warning: skipping ")]
    assert len(warnings) == 2
    assert any("broken.json: not valid JSON" in w for w in warnings)
    assert any("other.json: not an accelbench result" in w for w in warnings)
    assert "Traceback" not in out + err
    assert good.name not in err and "decode_tok_s" in out  # the valid result was scored
