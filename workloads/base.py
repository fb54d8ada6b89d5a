"""The workload contract: a workload validates its parameters, states analytic facts, and sets up
a :class:`Trial` on a backend; the runner times trials and summarises their samples."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

from harness.errors import UsageError

#: One repetition's measurements: metric name -> value, or a list of values pooled across reps.
RepSample = dict[str, float | list[float]]


class Trial(ABC):
    """A workload placed on a backend, ready to run repetitions."""

    @abstractmethod
    def run(self, timer: Any) -> RepSample:
        """Run one repetition, timing it with ``timer``; return its measurements."""

    def tokens_ok(self) -> bool | None:
        """For generative workloads: did the last repetition produce exactly the requested tokens."""
        return None

    def close(self) -> None:
        """Free device memory."""


class Workload(ABC):
    """Base class of workloads registered in the ``accelbench.workloads`` entry-point group."""

    name: ClassVar[str] = ""
    #: Parameter name -> (type, default). Every case parameter must be listed here.
    params: ClassVar[dict[str, tuple[type, Any]]] = {}
    #: Metric whose stability decides validity (CV threshold) and that ``compare`` uses by default.
    primary_metric: ClassVar[str] = ""
    #: Metric name -> unit.
    units: ClassVar[dict[str, str]] = {}
    #: Metrics where lower is better (latencies).
    lower_is_better: ClassVar[frozenset[str]] = frozenset()

    def validate(self, params: dict[str, Any]) -> dict[str, Any]:
        """Fill defaults, coerce types and check values; raise UsageError with one clear line."""
        unknown = set(params) - set(self.params)
        if unknown:
            raise UsageError(
                f"workload '{self.name}' has no parameter(s) {', '.join(sorted(unknown))} "
                f"(known: {', '.join(self.params)})"
            )
        out: dict[str, Any] = {}
        for key, (typ, default) in self.params.items():
            value = params.get(key, default)
            if typ is int:
                if isinstance(value, bool) or not isinstance(value, int):
                    try:
                        value = int(str(value))
                    except ValueError:
                        raise UsageError(f"{key} must be an integer, got {value!r}") from None
                if value <= 0:
                    raise UsageError(f"{key} must be positive, got {value}")
            elif typ is str:
                if not isinstance(value, str) or not value:
                    raise UsageError(f"{key} must be a non-empty string, got {value!r}")
            out[key] = value
        return out

    def facts(self, params: dict[str, Any]) -> dict[str, Any]:
        """Analytic facts of the case (parameter counts, bytes, FLOPs); never allocates."""
        return {}

    @abstractmethod
    def setup(self, backend: Any, params: dict[str, Any], seed: int) -> Trial:
        """Build the trial on ``backend`` (which has been probed available)."""
