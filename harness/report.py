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


KEY_METRICS = {
    "llm": ("decode_tok_s", "prefill_tok_s", "ttft_ms", "tpot_ms"),
    "gemm": ("tflops",),
    "membw": ("gbps",),
}
PRIMARY = {"llm": "decode_tok_s", "gemm": "tflops", "membw": "gbps"}


def summary_rows(results: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per result: case, status, key metric medians with CI, CV and validity mark."""
    rows = []
    for r in results:
        kind = r["workload"]["kind"]
        params = " ".join(f"{k}={v}" for k, v in r["workload"].get("params", {}).items())
        row: dict[str, Any] = {
            "backend": r["backend"]["name"],
            "device": r["backend"].get("device_name") or "-",
            "workload": f"{kind} {params}",
            "status": r["status"],
        }
        metrics = r.get("metrics") or {}
        parts = []
        for name in KEY_METRICS.get(kind, tuple(metrics)[:3]):
            m = metrics.get(name)
            if m:
                parts.append(f"{name} {fmt_num(m['median'])} [{fmt_num(m['ci95'][0])}, {fmt_num(m['ci95'][1])}] {m['unit']}")
        primary = metrics.get(PRIMARY.get(kind, ""))
        row["result (median [95% CI])"] = "; ".join(parts) if parts else (r.get("error") or {}).get("message", "")[:120]
        row["cv"] = f"{primary['cv']:.1%}" if primary else "-"
        validity = r.get("validity") or {}
        if r["status"] != "ok":
            row["valid"] = "-"
        elif validity.get("valid"):
            notes = ["smoke"] if r["measure"].get("tier") == "smoke" else []
            if validity.get("warnings"):
                notes.append(f"{len(validity['warnings'])} warning(s)")
            row["valid"] = "yes" + (f" ({', '.join(notes)})" if notes else "")
        else:
            unstable = any("unstable" in x for x in validity.get("reasons", []))
            row["valid"] = ("UNSTABLE " if unstable else "INVALID ") + "; ".join(validity.get("reasons", []))[:80]
        rows.append(row)
    return rows


SUMMARY_COLUMNS = ("backend", "device", "workload", "status", "result (median [95% CI])", "cv", "valid")
