"""The ``accelbench`` command line (typer). Usage errors: one line on stderr, exit 2."""

from __future__ import annotations

import os

# An installed but broken vendor plugin (torch_npu, torch_musa) must not break `import torch` for
# every backend: vendor backends import their package explicitly (research/vendor-apis.md section 0).
os.environ.setdefault("TORCH_DEVICE_BACKEND_AUTOLOAD", "0")

import json
import sys
from pathlib import Path
from typing import Optional

import typer

try:  # typer >= 0.20 vendors its own copy of click; older typer depends on click
    from typer._click import exceptions as click_exceptions
except ImportError:  # pragma: no cover - older typer
    from click import exceptions as click_exceptions

from harness.errors import UsageError
from harness.report import FORMATS, SUMMARY_COLUMNS, render_rows, summary_rows

app = typer.Typer(
    help="Cross-backend LLM inference benchmarks, scored against published hardware figures.",
    add_completion=False,
    no_args_is_help=False,
    pretty_exceptions_enable=False,
)


def out(text: str) -> None:
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    sys.stdout.flush()


def note(text: str) -> None:
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


def check_format(fmt: str, allowed: tuple[str, ...] = FORMATS) -> str:
    if fmt not in allowed:
        raise UsageError(f"unknown format '{fmt}' (use one of: {', '.join(allowed)})")
    return fmt


@app.command()
def backends(fmt: str = typer.Option("table", "--format", help="table or json")) -> None:
    """List every backend registered by entry point, with availability and the reason."""
    from harness.runner import probe_all

    check_format(fmt, ("table", "json"))
    rows = probe_all()
    if fmt == "json":
        out(json.dumps(rows, indent=1))
        return
    for r in rows:
        r["available"] = "yes" if r.get("available") else "no"
        r["versions"] = " ".join(f"{k}={v}" for k, v in (r.get("versions") or {}).items())
        r["reason"] = r.get("reason") or ""
        r["device_name"] = r.get("device_name") or "-"
    out(render_rows(rows, ("name", "available", "device_name", "device_count", "versions", "reason"), "table"))


@app.command()
def workloads() -> None:
    """List the workloads registered by entry point and their parameters."""
    from harness.registry import WORKLOADS, entry_point_target, load_workload_class, workload_names

    rows = []
    for name in workload_names():
        cls = load_workload_class(name)
        params = ", ".join(f"{k}={d}" for k, (_, d) in cls.params.items())
        rows.append({"name": name, "entry point": entry_point_target(WORKLOADS, name), "parameters (defaults)": params,
                     "primary metric": cls.primary_metric})
    out(render_rows(rows, ("name", "entry point", "parameters (defaults)", "primary metric"), "table"))


@app.command()
def models(fmt: str = typer.Option("table", "--format", help="table or json")) -> None:
    """List the named model shapes (computed analytically; nothing is allocated)."""
    from workloads.llm.config import catalog

    check_format(fmt, ("table", "json"))
    rows = []
    for name, cfg in catalog().items():
        rows.append({
            "name": name,
            "params": cfg.num_parameters(),
            "layers": cfg.num_hidden_layers,
            "hidden_size": cfg.hidden_size,
            "heads": cfg.num_attention_heads,
            "kv_heads": cfg.num_key_value_heads,
            "vocab": cfg.vocab_size,
            "weight_bytes_bf16": cfg.weight_bytes(2),
        })
    if fmt == "json":
        out(json.dumps(rows, indent=1))
    else:
        for r in rows:
            r["params"] = f"{r['params']:,}"
            r["weight_bytes_bf16"] = f"{r['weight_bytes_bf16']:,}"
        out(render_rows(rows, list(rows[0]), "table"))


@app.command()
def env(fmt: str = typer.Option("json", "--format", help="json")) -> None:
    """Print the environment recorded in every result, plus the backends' probes."""
    from harness.environment import capture_environment
    from harness.runner import probe_all

    data = capture_environment()
    data["backends"] = probe_all()
    out(json.dumps(data, indent=1))


def _positive(name: str, value: float | None) -> None:
    if value is not None and value <= 0:
        raise UsageError(f"--{name} must be positive, got {value:g}")


@app.command()
def run(
    backend: Optional[str] = typer.Option(None, help="Backend name(s), comma list; 'auto' = best available."),
    workload: Optional[str] = typer.Option(None, help="Workload: llm, gemm, membw or a plugin's."),
    model: Optional[str] = typer.Option(None, help="Catalog name(s) or a Hugging Face folder (comma list)."),
    batch: Optional[str] = typer.Option(None, help="Batch size(s), comma list."),
    prompt_len: Optional[str] = typer.Option(None, help="Prompt length(s) in tokens, comma list."),
    gen_len: Optional[str] = typer.Option(None, help="Generated tokens per sequence, comma list."),
    size: Optional[str] = typer.Option(None, help="gemm matrix side(s), comma list."),
    size_mb: Optional[str] = typer.Option(None, "--size-mb", help="membw copy size(s) in MiB, comma list."),
    dtype: Optional[str] = typer.Option(None, help="float32, bfloat16, float16 (comma list)."),
    repetitions: Optional[int] = typer.Option(None, help="Minimum timed repetitions."),
    warmup: Optional[int] = typer.Option(None, help="Warmup repetitions (discarded)."),
    min_duration: Optional[float] = typer.Option(None, help="Minimum timed seconds per case."),
    timeout: Optional[float] = typer.Option(None, help="Seconds before a case's process group is killed."),
    seed: Optional[int] = typer.Option(None, help="Seed of weights and prompts."),
    tier: Optional[str] = typer.Option(None, help="smoke (never scored as claims) or full."),
    provider: Optional[str] = typer.Option(None, help="onnxruntime execution provider: cpu, cuda, cann."),
    compile: bool = typer.Option(False, "--compile", help="torch.compile the decode step (CUDA graphs on cuda)."),
    threads: Optional[int] = typer.Option(None, help="CPU threads (default: every usable core)."),
    device_ids: Optional[str] = typer.Option(None, help="Visible device ids for the backend's child process."),
    isolation: str = typer.Option("process", help="process (default) or inline (debugging)."),
    out_dir: Optional[Path] = typer.Option(None, "--out", help="Output folder (default results/<UTC time>)."),
    resume: bool = typer.Option(False, help="Skip cases already in --out."),
    suite: Optional[Path] = typer.Option(None, help="TOML suite (default configs/suites/smoke.toml)."),
) -> None:
    """Run a plan (a suite, or the cases given by options) and write one JSON result per case."""
    from harness.plan import Measure, expand, load_suite, split_list
    from harness.registry import load_backend_class
    from harness.results import default_out_dir, prepare_out_dir
    from harness.runner import best_backend, probe_all, run_plan

    for name, value in (("repetitions", repetitions), ("timeout", timeout), ("threads", threads)):
        _positive(name, value)
    if warmup is not None and warmup < 0:
        raise UsageError(f"--warmup must be >= 0, got {warmup}")
    if min_duration is not None and min_duration < 0:
        raise UsageError(f"--min-duration must be >= 0, got {min_duration:g}")
    if isolation not in ("process", "inline"):
        raise UsageError(f"--isolation must be 'process' or 'inline', got '{isolation}'")
    if resume and out_dir is None:
        raise UsageError("--resume needs --out FOLDER (the folder of the run to resume)")
    if tier is not None and tier not in ("smoke", "full"):
        raise UsageError(f"--tier must be 'smoke' or 'full', got '{tier}'")

    workload_given = any(v is not None for v in (workload, model, batch, prompt_len, gen_len, size, size_mb))
    if suite is None and workload_given:
        groups, measure, where = [{"workload": workload or "llm"}], Measure(), "command line"
    else:
        spec = load_suite(suite or _default_suite())
        groups, where = spec["groups"], spec["path"]
        if workload:
            groups = [g for g in groups if g.get("workload", "llm") == workload] or [{"workload": workload}]
        measure = Measure(**spec["measure"], tier=spec["tier"])
    changes = {k: v for k, v in dict(warmup=warmup, repetitions=repetitions, min_duration_s=min_duration,
                                      seed=seed, timeout_s=timeout, tier=tier).items() if v is not None}
    measure = Measure(**{**measure.__dict__, **changes})
    overrides = {
        "backend": split_list(backend), "model": split_list(model), "batch": split_list(batch),
        "prompt_len": split_list(prompt_len), "gen_len": split_list(gen_len), "dtype": split_list(dtype),
        "size": split_list(size), "size_mb": split_list(size_mb),
    }
    options = {"provider": provider, "compile": compile, "threads": threads, "device_ids": device_ids}
    cases = expand(groups, measure, where=where, overrides=overrides, option_overrides=options)
    if any(c.backend == "auto" for c in cases):
        rows = probe_all()
        best = best_backend(rows)
        device = next((r.get("device_name") for r in rows if r["name"] == best), None)
        note(f"backend auto -> {best} ({device})")
        cases = [c if c.backend != "auto" else type(c)(best, c.workload, c.params, c.measure, c.backend_options) for c in cases]
    for name in sorted({c.backend for c in cases}):
        load_backend_class(name)  # unknown backend -> one clear line before anything runs
    folder = prepare_out_dir(out_dir or default_out_dir())
    note(f"{len(cases)} case(s) -> {folder}")

    def on_start(i: int, n: int, case) -> None:
        note(f"[{i}/{n}] {case.label()} ...")

    def on_result(i: int, n: int, case, result, path) -> None:
        if result["status"] == "skipped":
            note(f"[{i}/{n}] {case.label()}: already done, skipped (--resume)")
        elif result["status"] != "ok":
            note(f"[{i}/{n}]   {result['status']}: {(result.get('error') or {}).get('message', '')[:300]}")

    try:
        results = run_plan(cases, folder, isolation=isolation, resume=resume, on_start=on_start, on_result=on_result)
    except KeyboardInterrupt:
        note(f"interrupted: finished cases are in {folder}; rerun with --resume --out {folder} to complete the sweep")
        raise typer.Exit(130)
    if results:
        out(render_rows(summary_rows(results), SUMMARY_COLUMNS, "table", title=f"accelbench results ({folder})"))
    bad = [r for r in results if r["status"] != "ok"]
    if bad:
        note(f"{len(bad)} of {len(results)} case(s) did not succeed: " + ", ".join(sorted({r['status'] for r in bad})))
        raise typer.Exit(1)


@app.command()
def score(
    paths: Optional[list[Path]] = typer.Argument(None, help="Result files or folders (default: the newest run under results/)."),
    references: Optional[Path] = typer.Option(None, help="Reference figures CSV (default configs/references.csv)."),
    devices: Optional[Path] = typer.Option(None, help="Device table TOML (default configs/devices.toml)."),
    fmt: str = typer.Option("table", "--format", help="table, md, csv or json"),
) -> None:
    """Score results against published figures: vendor claim, measured ceiling, measured LLM throughput."""
    from harness.devices import load_devices
    from harness.references import load_references
    from harness.results import load_results
    from harness.score import render_score, score_results

    check_format(fmt)
    results, warnings = load_results(paths or [_latest_run()])
    rows = score_results(results, load_references(references), load_devices(devices), warnings=warnings)
    for w in warnings:
        note(f"warning: {w}")
    out(render_score(rows, fmt))


@app.command()
def compare(
    baseline: Path = typer.Argument(..., help="Baseline result file or folder."),
    current: Path = typer.Argument(..., help="Current result file or folder."),
    metric: Optional[str] = typer.Option(None, help="Metric to compare (default: each workload's primary metric)."),
    fail_if_slower: Optional[str] = typer.Option(
        None, "--fail-if-slower", help="Exit 1 if a case got worse by more than this percentage (10 or 10%) outside the noise."),
    fmt: str = typer.Option("table", "--format", help="table, md, csv or json"),
) -> None:
    """Compare two runs case by case (median, 95% CI, change, noise) and gate CI on regressions."""
    from harness.compare import compare_paths

    check_format(fmt)
    text, messages, code = compare_paths(baseline, current, metric=metric, fail_if_slower=fail_if_slower, fmt=fmt)
    for line in messages:
        note(line)
    out(text)
    if code:
        raise typer.Exit(code)


def _latest_run() -> Path:
    runs = sorted(p for p in Path("results").glob("*") if p.is_dir() and p.name != "reference")
    if not runs:
        raise UsageError("no results given and none under ./results; pass result files or folders")
    return runs[-1]


def _default_suite() -> Path:
    from harness.plan import default_suite_path

    return default_suite_path()


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def main() -> None:
    """Console-script entry point: one clear line and exit 2 for usage errors, never a traceback."""
    aborts = tuple({typer.Abort, getattr(click_exceptions, "Abort", typer.Abort)})
    exits = tuple({typer.Exit, getattr(click_exceptions, "Exit", typer.Exit)})
    try:
        code = app(standalone_mode=False)
    except UsageError as exc:
        note(f"error: {_one_line(exc)}")
        sys.exit(2)
    except exits as exc:
        sys.exit(exc.exit_code)
    except aborts:
        note("interrupted")
        sys.exit(130)
    except click_exceptions.ClickException as exc:  # bad option values, unknown options
        note(f"error: {_one_line(exc.format_message())}")
        sys.exit(2)
    except KeyboardInterrupt:
        note("interrupted")
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
