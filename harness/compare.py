"""``accelbench compare BASELINE CURRENT``: case-by-case change between two runs, and a CI gate.

Matching: two results are the same case when backend name, device name, workload kind, workload
parameters (model, dtype, batch, sizes, ...) and backend options (provider, compile, threads; not
``device_ids``) are equal. Measurement settings may differ (a note says so). Only ``ok`` results
are compared; the others are listed as skipped. When one side holds the same case more than once,
the newest result (``created``) is used.

Metric: ``--metric`` or, per case, the workload's ``primary_metric`` (llm ``decode_tok_s``, gemm
``tflops``, membw ``gbps``). Direction comes from the workload's ``lower_is_better`` (latencies,
memory, energy): ``worse %`` is the change in the bad direction.

Noise rule: a change is *outside the noise* when BOTH
  1. the 95% confidence intervals of the two medians do not overlap, and
  2. ``|current - baseline| / baseline > NOISE_K * sqrt(CV_baseline^2 + CV_current^2)``.
When either side has a single sample (n < 2) the noise cannot be estimated and is reported as
"unknown"; the threshold alone then decides.

Gate: with ``--fail-if-slower PCT`` the exit status is 1 when any compared case got worse by more
than PCT percent AND the change is outside the noise (or the noise is unknown). A larger change
within the noise is shown as such and does not fail.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from harness.errors import UsageError
from harness.report import PRIMARY, fmt_num, render_rows
from harness.results import json_safe, load_results

#: Multiple of the combined CV a change must exceed (with non-overlapping CIs) to be outside the noise.
NOISE_K = 1.0
#: Environment fields whose difference between the runs is worth a warning.
ENV_FIELDS = (
    ("CPU model", ("cpu_model",)),
    ("usable CPU cores", ("cpu_cores_usable",)),
    ("CPU governor", ("cpu_governor",)),
    ("OS kernel", ("os_release",)),
    ("Python", ("python",)),
    ("torch", ("packages", "torch")),
    ("onnxruntime", ("packages", "onnxruntime")),
    ("numpy", ("packages", "numpy")),
    ("harness version", ("harness", "version")),
    ("harness commit", ("harness", "commit")),
)
MEASURE_FIELDS = ("warmup", "repetitions", "min_duration_s", "tier")
DISPLAY_COLUMNS = ("backend", "device", "workload", "metric", "better", "baseline", "current", "change", "noise", "verdict", "notes")
DATA_COLUMNS = (
    "backend", "device", "workload", "metric", "unit", "lower_is_better",
    "baseline_median", "baseline_ci_low", "baseline_ci_high", "baseline_cv", "baseline_n",
    "current_median", "current_ci_low", "current_ci_high", "current_cv", "current_n",
    "change_pct", "worse_pct", "noise", "verdict", "regression", "notes",
)


def parse_threshold(text: str | None) -> float | None:
    """``"10"``, ``"10%"``, ``"2.5 %"`` -> 10.0, 10.0, 2.5; UsageError for anything else or < 0."""
    if text is None:
        return None
    m = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*%?\s*", str(text))
    if not m:
        raise UsageError(f"--fail-if-slower must be a percentage such as 10 or 10%, got {text!r}")
    return float(m.group(1))


def _dig(d: Any, path: tuple[str, ...]) -> Any:
    for k in path:
        if not isinstance(d, dict):
            return None
        d = d.get(k)
    return d


def case_key(r: dict[str, Any]) -> str:
    """What makes two results the same case (see the module docstring)."""
    b, w = r.get("backend") or {}, r.get("workload") or {}
    options = {k: v for k, v in (b.get("options") or {}).items() if k != "device_ids" and v not in (None, False, "")}
    return json.dumps([b.get("name"), b.get("device_name"), w.get("kind"), w.get("params") or {}, options],
                      sort_keys=True, default=str)


def case_label(r: dict[str, Any]) -> str:
    b, w = r.get("backend") or {}, r.get("workload") or {}
    params = " ".join(f"{k}={v}" for k, v in (w.get("params") or {}).items())
    opts = "".join(f" {k}={v}" for k, v in (b.get("options") or {}).items() if v not in (None, False, "") and k != "device_ids")
    return f"{b.get('name')}{opts} [{b.get('device_name') or '-'}] {w.get('kind')} {params}".strip()


def workload_info(kind: str) -> tuple[str | None, frozenset[str]]:
    """(primary metric, lower-is-better metrics) of a workload kind; fallbacks when it is not installed."""
    try:
        from harness.registry import load_workload_class

        cls = load_workload_class(kind)
        return getattr(cls, "primary_metric", None) or PRIMARY.get(kind), frozenset(getattr(cls, "lower_is_better", ()))
    except Exception:  # noqa: BLE001 - results of an uninstalled plugin workload are still comparable
        return PRIMARY.get(kind), frozenset()


def lower_is_better(metric: str, known: frozenset[str]) -> bool:
    if metric in known:
        return True
    return bool(re.search(r"(_ms|_us|_ns|_bytes|_j_per_token|^time.*|_time)$", metric))


def noise_verdict(base: dict[str, Any], cur: dict[str, Any]) -> tuple[bool | None, str]:
    """(outside the noise?, explanation). None when a side has one sample (noise unknown)."""
    if base.get("n", 0) < 2 or cur.get("n", 0) < 2:
        return None, "unknown (n=1)"
    b_lo, b_hi = base["ci95"]
    c_lo, c_hi = cur["ci95"]
    overlap = b_hi >= c_lo and c_hi >= b_lo
    combined = math.hypot(base.get("cv") or 0.0, cur.get("cv") or 0.0)
    rel = abs(cur["median"] - base["median"]) / abs(base["median"]) if base["median"] else math.inf
    if overlap:
        return False, "within (CIs overlap)"
    if rel <= NOISE_K * combined:
        return False, f"within (|change| {rel:.1%} <= CV {combined:.1%})"
    return True, "outside"


@dataclass
class Comparison:
    rows: list[dict[str, Any]] = field(default_factory=list)
    only_baseline: list[str] = field(default_factory=list)
    only_current: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    threshold: float | None = None

    @property
    def regressions(self) -> list[dict[str, Any]]:
        return [r for r in self.rows if r["regression"]]


def _newest(results: Iterable[dict[str, Any]], side: str, notes: list[str]) -> dict[str, dict[str, Any]]:
    by_key: dict[str, dict[str, Any]] = {}
    dupes = 0
    for r in sorted(results, key=lambda r: str(r.get("created", ""))):
        key = case_key(r)
        dupes += key in by_key
        by_key[key] = r
    if dupes:
        notes.append(f"{side}: {dupes} case(s) appear more than once; the newest result of each is used")
    return by_key


def _env_differences(pairs: list[tuple[dict, dict]]) -> list[str]:
    out = []
    for label, path in ENV_FIELDS:
        b = sorted({str(_dig(p[0].get("environment"), path)) for p in pairs})
        c = sorted({str(_dig(p[1].get("environment"), path)) for p in pairs})
        if b != c:
            out.append(f"environments differ: {label} {', '.join(b)} (baseline) vs {', '.join(c)} (current)")
    seen = set()
    for base, cur in pairs:
        bv, cv = (base.get("backend") or {}).get("versions") or {}, (cur.get("backend") or {}).get("versions") or {}
        for k in sorted(set(bv) | set(cv)):
            if bv.get(k) != cv.get(k):
                msg = f"backend {base['backend'].get('name')} versions differ: {k} {bv.get(k)} (baseline) vs {cv.get(k)} (current)"
                if msg not in seen:
                    seen.add(msg)
                    out.append(msg)
    for side, idx in (("baseline", 0), ("current", 1)):
        if any(_dig(p[idx].get("environment"), ("harness", "dirty")) for p in pairs):
            out.append(f"{side} was measured from a harness checkout with uncommitted changes (dirty)")
    return out


def compare_results(
    baseline: list[dict[str, Any]],
    current: list[dict[str, Any]],
    *,
    metric: str | None = None,
    threshold: float | None = None,
) -> Comparison:
    """Match, compare and judge (see the module docstring)."""
    comp = Comparison(threshold=threshold)
    ok: dict[str, list[dict[str, Any]]] = {}
    all_keys: dict[str, set[str]] = {}
    for side, results in (("baseline", baseline), ("current", current)):
        all_keys[side] = {case_key(r) for r in results}
        ok[side] = []
        for r in results:
            if r.get("status") == "ok":
                ok[side].append(r)
            else:
                msg = (r.get("error") or {}).get("message") or ""
                comp.skipped.append(f"{side}: {case_label(r)}: status {r.get('status')}" + (f" ({msg[:120]})" if msg else ""))
    base_by, cur_by = _newest(ok["baseline"], "baseline", comp.notes), _newest(ok["current"], "current", comp.notes)
    comp.only_baseline = [case_label(r) for k, r in base_by.items() if k not in all_keys["current"]]
    comp.only_current = [case_label(r) for k, r in cur_by.items() if k not in all_keys["baseline"]]
    pairs = [(base_by[k], cur_by[k]) for k in base_by if k in cur_by]

    measure_diffs: set[str] = set()
    for base, cur in pairs:
        kind = base["workload"]["kind"]
        primary, lower = workload_info(kind)
        name = metric or primary
        label = case_label(base)
        if not name:
            comp.notes.append(f"{label}: no primary metric known for workload '{kind}'; use --metric")
            continue
        bm, cm = (base.get("metrics") or {}).get(name), (cur.get("metrics") or {}).get(name)
        if not bm or not cm or bm.get("median") is None or cm.get("median") is None:
            where = " and ".join(s for s, m in (("baseline", bm), ("current", cm)) if not m or m.get("median") is None)
            comp.notes.append(f"{label}: metric {name} missing in {where}")
            continue
        for f in MEASURE_FIELDS:
            if (base.get("measure") or {}).get(f) != (cur.get("measure") or {}).get(f):
                measure_diffs.add(f"{f} {base['measure'].get(f)} vs {cur['measure'].get(f)}")
        down = lower_is_better(name, lower)
        change = (cm["median"] - bm["median"]) / abs(bm["median"]) * 100 if bm["median"] else math.inf
        worse = change if down else -change
        outside, noise = noise_verdict(bm, cm)
        regression = threshold is not None and worse > threshold and outside is not False
        if outside is False:
            verdict = "within noise"
        else:
            verdict = ("worse" if worse > 0 else "better" if worse < 0 else "same")
            if outside is None and worse != 0:
                verdict += " (noise unknown)"
        if regression:
            verdict = f"REGRESSION (> {threshold:g}%)"
        notes = [f"{side} invalid: {'; '.join((r.get('validity') or {}).get('reasons', []))}"
                 for side, r in (("baseline", base), ("current", cur)) if not (r.get("validity") or {}).get("valid", True)]
        comp.rows.append({
            "backend": base["backend"].get("name"),
            "device": base["backend"].get("device_name") or "-",
            "workload": f"{kind} " + " ".join(f"{k}={v}" for k, v in base["workload"].get("params", {}).items()),
            "metric": name,
            "unit": bm.get("unit", ""),
            "lower_is_better": down,
            "baseline_median": bm["median"], "baseline_ci_low": bm["ci95"][0], "baseline_ci_high": bm["ci95"][1],
            "baseline_cv": bm.get("cv"), "baseline_n": bm.get("n"),
            "current_median": cm["median"], "current_ci_low": cm["ci95"][0], "current_ci_high": cm["ci95"][1],
            "current_cv": cm.get("cv"), "current_n": cm.get("n"),
            "change_pct": change, "worse_pct": worse, "noise": noise, "verdict": verdict, "regression": regression,
            "notes": "; ".join(notes),
            "_invalid": [side for side, r in (("baseline", base), ("current", cur))
                         if not (r.get("validity") or {}).get("valid", True)],
        })
    if metric and pairs and not comp.rows:
        raise UsageError(f"metric '{metric}' is in none of the {len(pairs)} matched case(s)")
    if measure_diffs:
        comp.notes.append("measurement settings differ: " + ", ".join(sorted(measure_diffs)))
    comp.warnings.extend(_env_differences(pairs))
    return comp


def _display(row: dict[str, Any]) -> dict[str, Any]:
    def cell(side: str) -> str:
        return (f"{fmt_num(row[f'{side}_median'])} [{fmt_num(row[f'{side}_ci_low'])}, "
                f"{fmt_num(row[f'{side}_ci_high'])}] {row['unit']}").strip()

    return dict(row, better="lower" if row["lower_is_better"] else "higher", baseline=cell("baseline"),
                current=cell("current"), change=f"{row['change_pct']:+.1f}%",
                notes=", ".join(f"{side} invalid" for side in row["_invalid"]))


def messages(comp: Comparison) -> list[str]:
    """Lines under the table: unmatched, skipped, notes, environment warnings and the verdict."""
    lines = [f"warning: {w}" for w in comp.warnings]
    lines += [f"only in baseline (unmatched): {x}" for x in comp.only_baseline]
    lines += [f"only in current (unmatched): {x}" for x in comp.only_current]
    lines += [f"skipped non-ok result in {x}" for x in comp.skipped]
    lines += [f"note: {n}" for n in comp.notes]
    if comp.threshold is not None:
        regs = comp.regressions
        if regs:
            lines.append(f"FAIL: {len(regs)} case(s) worse by more than {comp.threshold:g}% and outside the noise: "
                         + "; ".join(f"{r['backend']} {r['workload']} {r['metric']} {r['change_pct']:+.1f}%" for r in regs))
        else:
            lines.append(f"ok: no case worse by more than {comp.threshold:g}% outside the noise ({len(comp.rows)} compared)")
    return lines


def render(comp: Comparison, fmt: str) -> tuple[str, list[str]]:
    """(stdout text, lines for stderr). table/md carry the messages under the table; csv sends them to stderr."""
    msgs = messages(comp)
    if fmt == "json":
        data = {
            "rows": [{c: r.get(c) for c in DATA_COLUMNS} for r in comp.rows],
            "threshold_pct": comp.threshold,
            "regressions": len(comp.regressions),
            "only_in_baseline": comp.only_baseline,
            "only_in_current": comp.only_current,
            "skipped": comp.skipped,
            "notes": comp.notes,
            "warnings": comp.warnings,
            "noise_rule": f"CIs of the medians do not overlap and |change| > {NOISE_K:g} x sqrt(CV_b^2 + CV_c^2)",
        }
        return json.dumps(json_safe(data), indent=1, allow_nan=False), []
    if fmt == "csv":
        return render_rows(comp.rows, DATA_COLUMNS, "csv"), msgs
    rows = [_display(r) for r in comp.rows]
    columns = DISPLAY_COLUMNS if any(r["notes"] for r in rows) else DISPLAY_COLUMNS[:-1]
    if fmt == "md":
        text = render_rows(rows, columns, "md") if rows else "_no matched cases_"
        return text + ("\n\n" + "\n".join(f"- {m}" for m in msgs) if msgs else ""), []
    text = render_rows(rows, columns, "table", title="accelbench compare (current vs baseline)") if rows else "no matched cases"
    return text.rstrip("\n") + ("\n\n" + "\n".join(msgs) if msgs else ""), []


def compare_paths(
    baseline: str | Path,
    current: str | Path,
    *,
    metric: str | None = None,
    fail_if_slower: str | None = None,
    fmt: str = "table",
) -> tuple[str, list[str], int]:
    """The ``compare`` command: (stdout text, stderr lines, exit status 0 or 1). UsageError on bad input."""
    threshold = parse_threshold(fail_if_slower)
    stderr: list[str] = []
    sides = []
    for side, path in (("baseline", baseline), ("current", current)):
        results, warnings = load_results([path])
        stderr += [f"warning: {w}" for w in warnings]
        if not results:
            stderr.append(f"warning: no readable result in {side} {path}")
        sides.append(results)
    comp = compare_results(sides[0], sides[1], metric=metric, threshold=threshold)
    if threshold is not None and not comp.rows:
        raise UsageError(f"nothing to compare: no ok case of {current} matches one of {baseline}")
    text, more = render(comp, fmt)
    return text, stderr + more, 1 if comp.regressions else 0
