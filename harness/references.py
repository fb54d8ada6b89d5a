"""Published reference figures (`configs/references.csv`): loading and validation.

Every row is one claim as published, with its source; conflicting claims are separate rows.
A `conditions` value may start with a curation tag, e.g. `[model=llama-2-70b; phase=output]`,
naming what the scorer may match a claim on (see `TAG_KEYS`); untagged LLM claims are never
matched against measurements because their model/phase is not identifiable.
"""

from __future__ import annotations

import csv
import io
import math
import re
from importlib.resources import files
from pathlib import Path

import pandas as pd

from harness.errors import UsageError

COLUMNS = ["device", "vendor", "metric", "value", "unit", "precision", "sparsity",
           "conditions", "source", "source_kind", "quote_or_note"]

_RELATIVE_UNIT = re.compile(r"x(_(vs|of)_\w+)?")
# metric -> predicate on its unit
METRIC_UNITS: dict[str, object] = {
    "peak_tflops": lambda u: u == "TFLOPS" or (u.startswith("x_") and _RELATIVE_UNIT.fullmatch(u)),
    "peak_tops": lambda u: u == "TOPS",
    "mem_capacity_gb": lambda u: u == "GB",
    "mem_bandwidth_gbps": lambda u: u == "GB/s",
    "tdp_w": lambda u: u == "W",
    "interconnect_gbps": lambda u: u == "GB/s",
    "llm_tokens_per_s": lambda u: u in {"tokens/s", "tokens/s/accelerator", "tokens/s/GPU",
                                        "tokens/s/NPU", "tokens/s/card"},
    "llm_relative_throughput": lambda u: u.startswith("x_vs_") and _RELATIVE_UNIT.fullmatch(u),
    "training_tokens_per_s": lambda u: u == "tokens/s",
    "mem_bandwidth_utilization": lambda u: u == "fraction",
    "cost_per_token_relative": lambda u: bool(_RELATIVE_UNIT.fullmatch(u)),
}
SPARSITY = {"", "dense", "sparse", "unspecified"}
SOURCE_KINDS = {"seed", "vendor", "mlperf", "press", "analyst"}
# curation tag keys: result params a claim must equal, min_<param> lower bounds, phase, bound
TAG_KEYS = {"model", "phase", "bound", "batch", "prompt_len", "gen_len",
            "min_batch", "min_prompt_len", "min_gen_len"}
PHASES = {"prefill", "decode", "output"}
_TAG = re.compile(r"^\[([^\]]*)\]")


def parse_tags(conditions: str) -> dict[str, str]:
    """The curation tag at the start of `conditions` as a dict ({} when there is none).

    Raises ValueError on a malformed tag or an unknown key.
    """
    m = _TAG.match(conditions or "")
    if not m:
        return {}
    tags: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in m.group(1).split(";"))):
        key, sep, value = (s.strip() for s in part.partition("="))
        if not sep or not value:
            raise ValueError(f"malformed tag {part!r} (want key=value)")
        if key not in TAG_KEYS:
            raise ValueError(f"unknown tag {key!r}")
        if key == "phase" and value not in PHASES:
            raise ValueError(f"tag phase={value!r} is not one of {sorted(PHASES)}")
        if key == "bound" and value not in {"lower", "upper"}:
            raise ValueError(f"tag bound={value!r} is not 'lower' or 'upper'")
        if key not in {"model", "phase", "bound"} and not value.isdigit():
            raise ValueError(f"tag {key}={value!r} is not an integer")
        tags[key] = value
    return tags


def _check_row(row: dict[str, str]) -> str | None:
    """Why `row` is invalid, or None."""
    metric, unit = row["metric"], row["unit"]
    if metric not in METRIC_UNITS:
        return f"unknown metric {metric!r}"
    if not METRIC_UNITS[metric](unit):
        return f"bad unit {unit!r} for metric {metric!r}"
    try:
        value = float(row["value"])
    except ValueError:
        return f"value {row['value']!r} is not a number"
    if not math.isfinite(value):
        return f"value {row['value']!r} is not a finite number"
    if not row["device"].strip():
        return "missing device"
    if not row["source"].strip():
        return "missing source"
    if row["source_kind"] not in SOURCE_KINDS:
        return f"unknown source_kind {row['source_kind']!r}"
    if row["sparsity"] not in SPARSITY:
        return f"unknown sparsity {row['sparsity']!r}"
    try:
        parse_tags(row["conditions"])
    except ValueError as exc:
        return f"conditions: {exc}"
    return None


def load_references(path: str | Path | None = None) -> pd.DataFrame:
    """Load and validate a references CSV (default: the packaged `configs/references.csv`).

    Returns a DataFrame with the `COLUMNS` (strings, '' for empty) and `value` as float.
    Raises UsageError naming the file and row ("references.csv row 17: ...") on the first bad
    row; row numbers count the header as row 1, as a spreadsheet shows them.
    """
    if path is None:
        resource = files("configs") / "references.csv"
        name, text = "references.csv", resource.read_text(encoding="utf-8")
    else:
        p = Path(path)
        name = p.name
        try:
            text = p.read_text(encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"cannot read references file {str(p)!r}: {exc.strerror or exc}") from None
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise UsageError(f"{name}: missing column(s) {', '.join(missing)}")
    records = []
    for rownum, row in enumerate(reader, start=2):
        if None in row or any(v is None for v in row.values()):
            raise UsageError(f"{name} row {rownum}: wrong number of fields")
        row = {c: row[c].strip() for c in COLUMNS}
        problem = _check_row(row)
        if problem:
            raise UsageError(f"{name} row {rownum}: {problem}")
        records.append(row)
    frame = pd.DataFrame(records, columns=COLUMNS)
    frame["value"] = frame["value"].astype(float)
    return frame
