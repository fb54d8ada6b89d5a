"""Tables for the terminal (rich) and plain formats (md, csv, json) from lists of row dicts."""

from __future__ import annotations

import csv
import io
import json
from typing import Any, Sequence

from rich.console import Console
from rich.table import Table

FORMATS = ("table", "md", "csv", "json")


def fmt_num(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if value == 0:
            return "0"
        if abs(value) >= 100:
            return f"{value:,.0f}"
        if abs(value) >= 1:
            return f"{value:.2f}"
        return f"{value:.3g}"
    return str(value)


def render_rows(rows: Sequence[dict[str, Any]], columns: Sequence[str], fmt: str, title: str = "") -> str:
    """Render ``rows`` (only ``columns``) as table, md, csv or json."""
    if fmt == "json":
        return json.dumps([{c: r.get(c) for c in columns} for r in rows], indent=1)
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        return buf.getvalue()
    if fmt == "md":
        lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
        lines += ["| " + " | ".join(fmt_num(r.get(c)) for c in columns) + " |" for r in rows]
        return "\n".join(lines)
    table = Table(title=title or None)
    for c in columns:
        table.add_column(c, overflow="fold")
    for r in rows:
        table.add_row(*(fmt_num(r.get(c)) for c in columns))
    console = Console(width=160, record=True, file=io.StringIO())
    console.print(table)
    return console.export_text()


PRIMARY = {"llm": "decode_tok_s", "gemm": "tflops", "membw": "gbps"}


def workload_label(kind: str, params: dict[str, Any]) -> str:
    """Short case label: 'llm tiny float32 B=1 P=64 G=32', 'gemm bfloat16 N=8192', 'membw 1024 MiB'."""
    if kind == "llm":
        return (f"llm {params.get('model')} {params.get('dtype')} B={params.get('batch')} "
                f"P={params.get('prompt_len')} G={params.get('gen_len')}")
    if kind == "gemm":
        return f"gemm {params.get('dtype')} N={params.get('size')}"
    if kind == "membw":
        return f"membw {params.get('size_mb')} MiB"
    return " ".join([kind, *(f"{k}={v}" for k, v in params.items())])


def _median_ci(m: dict[str, Any]) -> str:
    return f"{fmt_num(m['median'])} [{fmt_num(m['ci95'][0])}, {fmt_num(m['ci95'][1])}] {m['unit']}"


def validity_mark(r: dict[str, Any]) -> str:
    """yes / yes (smoke, N warning(s)) / UNSTABLE ... / INVALID ... / - (not ok)."""
    validity = r.get("validity") or {}
    if r["status"] != "ok":
        return "-"
    if validity.get("valid"):
        notes = ["smoke"] if r["measure"].get("tier") == "smoke" else []
        if validity.get("warnings"):
            notes.append(f"{len(validity['warnings'])} warning(s)")
        return "yes" + (f" ({', '.join(notes)})" if notes else "")
    unstable = any("unstable" in x for x in validity.get("reasons", []))
    return ("UNSTABLE " if unstable else "INVALID ") + "; ".join(validity.get("reasons", []))[:80]


def summary_rows(results: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per result: case, status, primary metric median with its CI, latencies, CV, validity."""
    rows = []
    for r in results:
        kind = r["workload"]["kind"]
        metrics = r.get("metrics") or {}
        primary_name = PRIMARY.get(kind) or next(iter(metrics), "")
        primary = metrics.get(primary_name)
        latency = ", ".join(f"{n[:-3]} {fmt_num(metrics[n]['median'])} ms" for n in ("ttft_ms", "tpot_ms") if n in metrics)
        error = (r.get("error") or {}).get("message", "")
        rows.append({
            "backend": r["backend"]["name"],
            "device": (r["backend"].get("device_name") or "-")[:28],
            "case": workload_label(kind, r["workload"].get("params", {})),
            "status": r["status"],
            "median [95% CI]": f"{primary_name} {_median_ci(primary)}" if primary else error[:100],
            "latency": latency,
            "cv": f"{primary['cv']:.1%}" if primary else "-",
            "valid": validity_mark(r),
        })
    return rows


SUMMARY_COLUMNS = ("backend", "device", "case", "status", "median [95% CI]", "latency", "cv", "valid")
