"""Plans: suites (TOML) and command-line options expand into cases.

A suite file::

    name = "smoke"
    tier = "smoke"                       # "smoke" results are never scored against claims
    [measure]                            # warmup, repetitions, min_duration_s, seed, timeout_s
    warmup = 1
    repetitions = 3
    [[case]]                             # one group; list values expand as a cartesian product
    workload = "llm"
    backend = "auto"                     # "auto" = best available backend
    model = "tiny"
    batch = [1, 4]

Backend options (``provider``, ``compile``, ``threads``, ``device_ids``) may appear in a case too.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]
from dataclasses import asdict, dataclass, field, replace
from importlib.resources import files
from pathlib import Path
from typing import Any

from harness.errors import UsageError

BACKEND_OPTIONS = {"provider": str, "compile": bool, "threads": int, "device_ids": str}
MEASURE_KEYS = {"warmup": int, "repetitions": int, "min_duration_s": float, "seed": int, "timeout_s": float}
SUITE_KEYS = {"name", "description", "tier", "measure", "case"}
TIERS = ("smoke", "full")


@dataclass(frozen=True)
class Measure:
    """How a case is measured (part of its id)."""

    warmup: int = 2
    repetitions: int = 5
    min_duration_s: float = 1.0
    seed: int = 0
    timeout_s: float = 1800.0
    tier: str = "full"

    def __post_init__(self) -> None:
        """Reject settings that cannot measure anything (whatever their source: CLI, suite, API)."""
        for name, low in (("warmup", 0), ("repetitions", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise UsageError(f"{name} must be an integer >= {low}, got {value!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise UsageError(f"seed must be an integer, got {self.seed!r}")
        for name, positive in (("min_duration_s", False), ("timeout_s", True)):
            value = getattr(self, name)
            ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
            if not ok or value < 0 or (positive and value == 0):
                raise UsageError(f"{name} must be a finite number {'> 0' if positive else '>= 0'}, got {value!r}")
        if self.tier not in TIERS:
            raise UsageError(f"tier must be one of {', '.join(TIERS)}, got {self.tier!r}")


@dataclass(frozen=True)
class Case:
    backend: str
    workload: str
    params: dict[str, Any]
    measure: Measure
    backend_options: dict[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        """Stable hash of backend + options + workload params + measurement settings (for resume)."""
        m = asdict(self.measure)
        m.pop("timeout_s")  # a longer timeout does not change what is measured
        key = {
            "backend": self.backend,
            "options": {k: v for k, v in self.backend_options.items() if v not in (None, False, "")},
            "workload": self.workload,
            "params": self.params,
            "measure": m,
        }
        return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]

    def label(self) -> str:
        params = " ".join(f"{k}={v}" for k, v in self.params.items())
        opts = "".join(f" {k}={v}" for k, v in self.backend_options.items() if v not in (None, False, ""))
        return f"{self.backend}{opts} {self.workload} {params}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Case":
        return cls(
            backend=d["backend"],
            workload=d["workload"],
            params=d["params"],
            measure=Measure(**d["measure"]),
            backend_options=d.get("backend_options", {}),
        )


def default_suite_path() -> Path:
    return Path(str(files("configs") / "suites" / "smoke.toml"))


POSITIVE = {"repetitions", "timeout_s", "threads"}


def _check_type(where: str, key: str, value: Any, typ: type) -> Any:
    """``value`` checked as ``typ`` (int accepted for float); sizes and counts in range."""
    if typ is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if typ is int and isinstance(value, bool) or not isinstance(value, typ):
        raise UsageError(f"{where}: '{key}' must be {typ.__name__}, got {type(value).__name__} {value!r}")
    name = key.rsplit(".", 1)[-1]
    if typ is float and not math.isfinite(value):
        raise UsageError(f"{where}: '{key}' must be a finite number, got {value}")
    if typ in (int, float) and name != "seed":
        if name in POSITIVE and value <= 0:
            raise UsageError(f"{where}: '{key}' must be positive, got {value}")
        if value < 0:
            raise UsageError(f"{where}: '{key}' must be non-negative, got {value}")
    return value


def load_suite(path: str | Path) -> dict[str, Any]:
    """Parse and validate a suite file; UsageError naming the file and key on any problem."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"suite file not found: {path}")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: malformed TOML: {exc}") from None
    unknown = set(data) - SUITE_KEYS
    if unknown:
        raise UsageError(f"{path}: unknown key(s) {', '.join(sorted(unknown))} (allowed: {', '.join(sorted(SUITE_KEYS))})")
    for key in ("name", "description"):
        if key in data and not isinstance(data[key], str):
            raise UsageError(f"{path}: '{key}' must be a string, got {type(data[key]).__name__} {data[key]!r}")
    tier = data.get("tier", "full")
    if tier not in TIERS:
        raise UsageError(f"{path}: 'tier' must be one of {', '.join(TIERS)}, got {tier!r}")
    measure = data.get("measure", {})
    if not isinstance(measure, dict):
        raise UsageError(f"{path}: 'measure' must be a table")
    for key, value in measure.items():
        if key not in MEASURE_KEYS:
            raise UsageError(f"{path}: unknown key 'measure.{key}' (allowed: {', '.join(MEASURE_KEYS)})")
        measure[key] = _check_type(str(path), f"measure.{key}", value, MEASURE_KEYS[key])
    groups = data.get("case", [])
    if not isinstance(groups, list) or not groups or not all(isinstance(g, dict) for g in groups):
        raise UsageError(f"{path}: needs at least one [[case]] table")
    for i, group in enumerate(groups):
        if "workload" in group and not isinstance(group["workload"], str):
            raise UsageError(f"{path}: case {i + 1}: 'workload' must be a string")
        for key, value in group.items():
            if isinstance(value, dict):
                raise UsageError(f"{path}: case {i + 1}: '{key}' must be a value or a list of values, not a table")
            if isinstance(value, list) and not value:
                raise UsageError(f"{path}: case {i + 1}: '{key}' is an empty list")
    return {"name": data.get("name", path.stem), "tier": tier, "measure": measure, "groups": groups, "path": str(path)}


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, (list, tuple)) else [value]


def split_list(text: str | None) -> list[str] | None:
    """'1,4, 8' -> ['1', '4', '8'] (None stays None)."""
    if text is None:
        return None
    items = [t.strip() for t in str(text).split(",") if t.strip()]
    if not items:
        raise UsageError(f"empty list: {text!r}")
    return items


def expand(
    groups: list[dict[str, Any]],
    measure: Measure,
    *,
    where: str = "plan",
    overrides: dict[str, list[Any]] | None = None,
    option_overrides: dict[str, Any] | None = None,
) -> list[Case]:
    """Cartesian product of each group's lists; ``overrides`` replace matching keys in every group.

    Workload parameters are validated by the workload (unknown keys, types, positive sizes).
    """
    from harness.registry import load_workload_class

    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    cases: list[Case] = []
    for i, group in enumerate(groups):
        group = dict(group)
        workload_name = str(group.pop("workload", "llm"))
        workload = load_workload_class(workload_name)()
        backends = _as_list(overrides.get("backend", group.pop("backend", "auto")))
        group.pop("backend", None)
        options: dict[str, Any] = {}
        for key, typ in BACKEND_OPTIONS.items():
            if key in group:
                options[key] = _check_type(f"{where}: case {i + 1}", key, group.pop(key), typ)
        options.update({k: v for k, v in (option_overrides or {}).items() if v not in (None, False)})
        for key, values in overrides.items():
            if key in workload.params:  # "backend" is not a workload parameter
                group[key] = values
        unknown = set(group) - set(workload.params)
        if unknown:
            raise UsageError(
                f"{where}: case {i + 1}: unknown key(s) {', '.join(sorted(unknown))} for workload "
                f"'{workload_name}' (allowed: {', '.join(list(workload.params) + list(BACKEND_OPTIONS) + ['backend', 'workload'])})"
            )
        keys = list(group)
        for backend in backends:
            for combo in itertools.product(*(_as_list(group[k]) for k in keys)):
                try:
                    params = workload.validate(dict(zip(keys, combo)))
                except UsageError as exc:
                    raise UsageError(f"{where}: case {i + 1}: {exc}" if where != "command line" else str(exc)) from None
                cases.append(Case(str(backend), workload_name, params, measure, dict(options)))
    if not cases:
        raise UsageError(f"{where}: the plan has no cases")
    unique: dict[str, Case] = {}
    for case in cases:  # the same case listed twice runs once (same id, same measurement)
        unique.setdefault(case.id, case)
    return list(unique.values())


def with_backend(cases: list[Case], resolve: dict[str, str]) -> list[Case]:
    """Replace backend placeholders ("auto") by concrete names."""
    return [replace(c, backend=resolve.get(c.backend, c.backend)) for c in cases]
