"""Backends and workloads are found only through entry points.

Groups: ``accelbench.backends`` (name -> Backend class) and ``accelbench.workloads``
(name -> Workload class). The project registers its built-ins in its own pyproject; any installed
distribution may add more.
"""

from __future__ import annotations

from importlib.metadata import EntryPoint, entry_points
from typing import Any

from harness.errors import UsageError

BACKENDS = "accelbench.backends"
WORKLOADS = "accelbench.workloads"


def _group(group: str) -> dict[str, EntryPoint]:
    found: dict[str, EntryPoint] = {}
    for ep in entry_points(group=group):
        found.setdefault(ep.name, ep)
    return dict(sorted(found.items()))


def backend_names() -> list[str]:
    return list(_group(BACKENDS))


def workload_names() -> list[str]:
    return list(_group(WORKLOADS))


def _load(group: str, kind: str, name: str) -> Any:
    eps = _group(group)
    if name not in eps:
        known = ", ".join(eps) or "none installed"
        raise UsageError(f"unknown {kind} '{name}' (known: {known})")
    return eps[name].load()


def load_backend_class(name: str) -> type:
    """The Backend class registered as ``name``. Raises UsageError when unknown."""
    return _load(BACKENDS, "backend", name)


def load_workload_class(name: str) -> type:
    """The Workload class registered as ``name``. Raises UsageError when unknown."""
    return _load(WORKLOADS, "workload", name)


def entry_point_target(group: str, name: str) -> str:
    """``module:attr`` an entry point points at (for listings)."""
    return _group(group)[name].value
