"""Score results against published claims (references.csv) and rooflines (devices.toml).

Each output row has exactly the keys in `ROW_KEYS`; `ratio` = measured / reference.

Verdicts:
- claim rows (a references.csv figure, or a relative claim): "exceeds" (ratio > 1.10),
  "meets" (0.90 <= ratio <= 1.10), "below" (0.50 <= ratio < 0.90), "far below" (< 0.50);
  a claimed range "lo-hi x" is scored against its lower bound (reference = lo) and the verdict is
  "within claimed range" / "below claimed range" / "above claimed range".
- roofline rows (devices.toml figures, or a measured membw ceiling) describe utilisation:
  "72% of rated", "85% of dense peak", "91% of measured membw"; above 105% the verdict adds
  "(above the ceiling: check the figure)".
- smoke-tier results: claim rows get "smoke: not scored"; results whose validity is false get
  "invalid: not scored". Roofline rows keep their utilisation verdict.
- unknown device: one row, verdict "unknown device", reference/ratio/source null.
- a result with no applicable reference: one row, verdict "no reference".
Only results with status "ok" are scored; the others are reported in `warnings`.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
import shutil
from dataclasses import dataclass
from typing import Any

import pandas as pd

from harness.report import workload_label
from harness.devices import DeviceEntry, DeviceTable
from harness.errors import UsageError
from harness.references import parse_tags

ROW_KEYS = ("device", "workload", "metric", "measured", "reference", "unit", "ratio", "verdict", "source")
FORMATS = ("table", "md", "csv", "json")
EXCEEDS, MEETS, FAR_BELOW = 1.10, 0.90, 0.50
OVER_CEILING = 1.05
SMOKE, INVALID = "smoke: not scored", "invalid: not scored"

DTYPE_PRECISION = {
    "float32": "FP32", "float": "FP32", "tf32": "TF32", "tfloat32": "TF32",
    "bfloat16": "BF16", "float16": "FP16", "half": "FP16",
    "float8_e4m3fn": "FP8", "float8_e5m2": "FP8", "float8_e4m3fnuz": "FP8", "float8_e5m2fnuz": "FP8",
    "int8": "INT8",
}
PHASE_METRIC = {"prefill": "prefill_tok_s", "decode": "decode_tok_s", "output": "output_tok_s"}
PRIMARY_METRIC = {"gemm": "tflops", "membw": "gbps", "llm": "decode_tok_s"}
SAME_PARAMS = ("model", "dtype", "batch", "prompt_len", "gen_len")


def precision_of(dtype: object) -> str | None:
    """Reference precision (BF16, FP16, FP32, TF32, FP8) of a torch dtype name, or None."""
    name = str(dtype or "").removeprefix("torch.")
    return DTYPE_PRECISION.get(name)


def claim_verdict(ratio: float) -> str:
    """Verdict for measured / claimed."""
    if ratio > EXCEEDS:
        return "exceeds"
    if ratio >= MEETS:
        return "meets"
    return "below" if ratio >= FAR_BELOW else "far below"


def roofline_verdict(ratio: float, ceiling: str) -> str:
    """Utilisation verdict, e.g. '72% of rated'."""
    text = f"{round(ratio * 100)}% of {ceiling}"
    return text + " (above the ceiling: check the figure)" if ratio > OVER_CEILING else text


@dataclass
class _Case:
    result: dict
    label: str
    device: str | None
    entry: DeviceEntry | None
    kind: str
    params: dict
    gate: str | None  # verdict replacing claim verdicts (smoke / invalid), else None

    def median(self, metric: str) -> tuple[float, str] | None:
        """(median, unit) of a metric, or None when absent or not a finite number."""
        stats = (self.result.get("metrics") or {}).get(metric)
        if not isinstance(stats, dict):
            return None
        value = stats.get("median")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            return None
        return float(value), str(stats.get("unit") or "")


def _row(case: _Case, metric: str, measured: float | None, reference: float | None, unit: str | None,
         verdict: str, source: str | None) -> dict[str, Any]:
    ratio = measured / reference if measured is not None and reference else None
    return {"device": case.device, "workload": workload_label(case.kind, case.params), "metric": metric, "measured": measured,
            "reference": reference, "unit": unit, "ratio": ratio, "verdict": verdict, "source": source}


def _label(result: dict, index: int) -> str:
    for key in ("path", "_path", "file", "id"):
        if result.get(key):
            return os.path.basename(str(result[key]))
    return f"result #{index + 1}"


def _norm_model(name: object) -> str:
    return re.sub(r"[^a-z0-9.]", "", str(name or "").lower()).replace(".", "")


def _params_match(tags: dict[str, str], params: dict) -> bool:
    for key in ("batch", "prompt_len", "gen_len"):
        try:
            value = int(params.get(key))
        except (TypeError, ValueError):
            value = None
        if key in tags and value != int(tags[key]):
            return False
        if f"min_{key}" in tags and (value is None or value < int(tags[f"min_{key}"])):
            return False
    return True


def _claim_source(claim: dict, notes: list[str]) -> str:
    text = f"{claim['source_kind']}: {claim['source']}"
    return text + "".join(f" [{n}]" for n in notes)


def _scenario(claim: dict) -> str:
    """First clause of a claim's conditions (tag removed), to tell similar claims apart."""
    text = re.sub(r"^\[[^\]]*\]\s*", "", claim["conditions"]).split(";")[0].strip()
    return text if len(text) <= 80 else text[:77] + "..."


def _claims(case: _Case, refs: pd.DataFrame, metric: str, measured: float, unit: str,
            ref_metric: str, precision: str | None = None) -> list[dict]:
    """Rows for absolute claims (peak_tflops/peak_tops dense or unspecified at `precision`, or bandwidth)."""
    assert case.entry is not None
    share = case.entry.reference_share
    sel = refs[refs["device"].isin(case.entry.labels) & (refs["metric"] == ref_metric)]
    rows = []
    for claim in sel.to_dict("records"):
        notes = []
        if ref_metric in ("peak_tflops", "peak_tops"):
            wrong = claim["unit"] not in ("TFLOPS", "TOPS") or claim["precision"] != precision
            if wrong or claim["sparsity"] == "sparse":
                continue
            if claim["sparsity"] != "dense":
                notes.append("sparsity unspecified")
        if share != 1:
            notes.append(f"claim x {share:g} per device")
        reference = claim["value"] * share
        verdict = case.gate or claim_verdict(measured / reference)
        rows.append(_row(case, metric, measured, reference, unit, verdict, _claim_source(claim, notes)))
    return rows


def _peak_roof(case: _Case, metric: str, measured: float, precision: str | None) -> list[dict]:
    assert case.entry is not None
    peak = case.entry.peak_tflops.get((precision or "").lower())
    if peak is None:
        return []
    source = f"devices.toml {case.entry.name}: dense {precision} peak"
    return [_row(case, metric, measured, peak, "TFLOPS", roofline_verdict(measured / peak, "dense peak"), source)]


def _bw_roof(case: _Case, metric: str, measured: float) -> list[dict]:
    assert case.entry is not None
    bw = case.entry.mem_bandwidth_gbps
    if bw is None:
        return []
    source = f"devices.toml {case.entry.name}: rated bandwidth"
    return [_row(case, metric, measured, bw, "GB/s", roofline_verdict(measured / bw, "rated"), source)]


def _membw_ceiling(case: _Case, cases: list[_Case]) -> tuple[float, _Case] | None:
    best = None
    for other in cases:
        if other.kind == "membw" and other.device == case.device and (m := other.median("gbps")):
            if best is None or m[0] > best[0]:
                best = (m[0], other)
    return best


def _token_claims(case: _Case, refs: pd.DataFrame) -> list[dict]:
    assert case.entry is not None
    precision = precision_of(case.params.get("dtype"))
    share = case.entry.reference_share
    sel = refs[refs["device"].isin(case.entry.labels) & (refs["metric"] == "llm_tokens_per_s")]
    rows = []
    for claim in sel.to_dict("records"):
        tags = parse_tags(claim["conditions"])
        if "model" not in tags or "phase" not in tags or precision is None:
            continue  # model/phase of the claim not identifiable: never matched
        if _norm_model(tags["model"]) != _norm_model(case.params.get("model")):
            continue
        if claim["precision"] != precision or not _params_match(tags, case.params):
            continue
        metric = PHASE_METRIC[tags["phase"]]
        got = case.median(metric)
        if got is None:
            continue
        reference = claim["value"] * share
        notes = [_scenario(claim)] + ([f"claim x {share:g} per device"] if share != 1 else [])
        verdict = case.gate or claim_verdict(got[0] / reference)
        rows.append(_row(case, metric, got[0], reference, got[1] or "tok/s", verdict, _claim_source(claim, notes)))
    return rows


def _relative_claims(case: _Case, refs: pd.DataFrame, devices: DeviceTable, cases: list[_Case]) -> list[dict]:
    """Relative claims ('A is N x B'), scored when a result for B with the same params exists."""
    assert case.entry is not None
    sel = refs[refs["device"].isin(case.entry.labels) & (refs["metric"] == "llm_relative_throughput")]
    groups: dict[tuple, list[tuple[dict, dict]]] = {}
    for claim in sel.to_dict("records"):
        tags = parse_tags(claim["conditions"])
        if "phase" not in tags or not claim["unit"].startswith("x_vs_"):
            continue  # not curated as an inference tokens/s claim
        key = (claim["device"], claim["unit"], claim["source"],
               tuple(sorted((k, v) for k, v in tags.items() if k != "bound")), "bound" in tags)
        groups.setdefault(key, []).append((claim, tags))
    rows = []
    for (_, unit, _, _, is_range), members in groups.items():
        claim, tags = members[0]
        model_ok = "model" not in tags or _norm_model(tags["model"]) == _norm_model(case.params.get("model"))
        if not model_ok or not _params_match(tags, case.params):
            continue
        short = unit.removeprefix("x_vs_")
        baseline_names = {e.name for e in devices.by_relative_name(short)}
        metric = PHASE_METRIC[tags["phase"]]
        mine = case.median(metric)
        if mine is None:
            continue
        if is_range:
            bounds = {t["bound"]: c["value"] for c, t in members}
            if set(bounds) != {"lower", "upper"}:
                continue
            lo, hi = bounds["lower"], bounds["upper"]
        for other in cases:
            if other is case or other.kind != "llm" or other.entry is None or other.entry.name not in baseline_names:
                continue
            if any(other.params.get(k) != case.params.get(k) for k in SAME_PARAMS):
                continue
            theirs = other.median(metric)
            if theirs is None or theirs[0] <= 0:
                continue
            measured = mine[0] / theirs[0]
            gate = case.gate or other.gate
            source = _claim_source(claim, [_scenario(claim), f"baseline: {other.label}"])
            reference = lo if is_range else claim["value"]
            if gate:
                verdict = gate
            elif is_range:
                where = "below" if measured < lo else "above" if measured > hi else "within"
                verdict = f"{where} claimed range {lo:g}-{hi:g}x"
            else:
                verdict = claim_verdict(measured / reference)
            rows.append(_row(case, f"{metric} vs {other.device}", measured, reference, unit, verdict, source))
    return rows


def _gemm_ceiling(case: _Case, cases: list[_Case]) -> tuple[float, _Case] | None:
    """Best measured gemm TFLOPS on the same device at the same dtype."""
    best = None
    for other in cases:
        same = other.kind == "gemm" and other.device == case.device and other.params.get("dtype") == case.params.get("dtype")
        if same and (m := other.median("tflops")) and (best is None or m[0] > best[0]):
            best = (m[0], other)
    return best


def _measured_ceilings(case: _Case, cases: list[_Case]) -> list[dict]:
    """LLM throughput vs the chip's measured ceilings: does the software use the chip?"""
    rows = []
    if (got := case.median("decode_gbps")) and (ceiling := _membw_ceiling(case, cases)):
        rows.append(_row(case, "decode_gbps", got[0], ceiling[0], "GB/s",
                         roofline_verdict(got[0] / ceiling[0], "measured membw"), f"measured: {ceiling[1].label}"))
    if (got := case.median("prefill_tflops")) and (ceiling := _gemm_ceiling(case, cases)):
        rows.append(_row(case, "prefill_tflops", got[0], ceiling[0], "TFLOPS",
                         roofline_verdict(got[0] / ceiling[0], "measured gemm"), f"measured: {ceiling[1].label}"))
    return rows


def _score_case(case: _Case, refs: pd.DataFrame, devices: DeviceTable, cases: list[_Case]) -> list[dict]:
    primary = PRIMARY_METRIC[case.kind]
    rows: list[dict] = []
    if case.entry is None:
        got = case.median(primary)
        unknown = _row(case, primary, got[0] if got else None, None, got[1] if got else None, "unknown device", None)
        return [unknown, *(_measured_ceilings(case, cases) if case.kind == "llm" else [])]
    precision = precision_of(case.params.get("dtype"))
    if case.kind == "gemm" and (got := case.median("tflops")):
        rows += _peak_roof(case, "tflops", got[0], precision)
        ref_metric = "peak_tops" if precision == "INT8" else "peak_tflops"  # INT8 claims are TOPS
        rows += _claims(case, refs, "tflops", got[0], got[1] or "TFLOPS", ref_metric, precision)
    elif case.kind == "membw" and (got := case.median("gbps")):
        rows += _bw_roof(case, "gbps", got[0])
        rows += _claims(case, refs, "gbps", got[0], "GB/s", "mem_bandwidth_gbps")
    elif case.kind == "llm":
        if got := case.median("decode_gbps"):
            rows += _bw_roof(case, "decode_gbps", got[0])
        rows += _measured_ceilings(case, cases)
        if got := case.median("prefill_tflops"):
            rows += _peak_roof(case, "prefill_tflops", got[0], precision)
        rows += _token_claims(case, refs)
        rows += _relative_claims(case, refs, devices, cases)
    if not rows and (got := case.median(primary)):
        rows.append(_row(case, primary, got[0], None, got[1], "no reference", None))
    return rows


def score_results(results: list[dict], references: pd.DataFrame, devices: DeviceTable,
                  warnings: list[str] | None = None) -> list[dict]:
    """Score result dicts; returns rows with exactly `ROW_KEYS`.

    Results whose status is not "ok", of an unknown workload kind, or on an unknown device are
    reported by appending one line each to `warnings` (when given).
    """
    notes = warnings if warnings is not None else []
    cases: list[_Case] = []
    for i, result in enumerate(results):
        if not isinstance(result, dict):
            notes.append(f"result #{i + 1}: not a JSON object, skipped")
            continue
        label = _label(result, i)
        status = result.get("status")
        if status != "ok":
            error = result.get("error") or {}
            detail = f" ({error.get('type')}: {error.get('message')})" if isinstance(error, dict) and error else ""
            notes.append(f"{label}: status {status!r}{detail}, not scored")
            continue
        workload = result.get("workload") or {}
        kind = workload.get("kind")
        if kind not in PRIMARY_METRIC:
            notes.append(f"{label}: workload kind {kind!r} has no scoring, skipped")
            continue
        backend = result.get("backend") or {}
        name = backend.get("device_name")
        entry = devices.match(name)
        if entry is None and devices.unknown_message(name) not in notes:
            notes.append(devices.unknown_message(name))
        tier = (result.get("measure") or {}).get("tier")
        valid = (result.get("validity") or {}).get("valid")
        gate = SMOKE if tier == "smoke" else INVALID if valid is False else None
        cases.append(_Case(result, label, name, entry, kind, workload.get("params") or {}, gate))
    rows: list[dict] = []
    for case in cases:
        rows += _score_case(case, references, devices, cases)
    return rows


def _fmt(value: Any, ratio: bool = False) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}" if ratio else f"{value:.5g}"
    return str(value)


def _cells(row: dict) -> list[str]:
    return [_fmt(row[k], ratio=(k == "ratio")) for k in ROW_KEYS]


def render_score(rows: list[dict], fmt: str = "table", width: int | None = None) -> str:
    """Render score rows as 'table' (rich), 'md', 'csv' or 'json' (a list of nine-key objects)."""
    if fmt == "json":
        return json.dumps([{k: row[k] for k in ROW_KEYS} for row in rows], indent=2, ensure_ascii=False)
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(ROW_KEYS)
        writer.writerows([["" if row[k] is None else row[k] for k in ROW_KEYS] for row in rows])
        return out.getvalue()
    if fmt == "md":
        lines = ["| " + " | ".join(ROW_KEYS) + " |", "|" + "---|" * len(ROW_KEYS)]
        lines += ["| " + " | ".join(c.replace("|", "\\|") for c in _cells(row)) + " |" for row in rows]
        return "\n".join(lines) + "\n"
    if fmt == "table":
        from rich.console import Console
        from rich.table import Table

        table = Table(*ROW_KEYS)
        for key in ("measured", "reference", "ratio"):
            table.columns[ROW_KEYS.index(key)].justify = "right"
        table.columns[-1].overflow = "fold"
        for row in rows:
            table.add_row(*_cells(row))
        console = Console(file=io.StringIO(), width=width or shutil.get_terminal_size((160, 24)).columns,
                          color_system=None, force_terminal=False)
        console.print(table)
        return console.file.getvalue()
    raise UsageError(f"unknown format {fmt!r}: use one of {', '.join(FORMATS)}")
