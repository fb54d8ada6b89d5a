"""The public backend contract.

A backend is a class registered in the ``accelbench.backends`` entry-point group. The runner
creates it with the user's options, calls :meth:`Backend.probe` (which never raises), and, when the
backend is available, hands it to a workload. Plugin authors subclass :class:`Backend` (or
:class:`backends.torch_device.TorchDeviceBackend` for a torch device) and check their class with
:func:`harness.conformance.check_backend`.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, ClassVar, Protocol


@dataclass
class Probe:
    """What a backend found on this machine. ``reason`` says what to do when unavailable."""

    available: bool
    reason: str = ""
    device_name: str | None = None
    device_count: int = 0
    memory_bytes: int | None = None
    versions: dict[str, str] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Timer(Protocol):
    """Marks points on the device timeline.

    ``start()`` begins a trial and marks point 0; ``mark()`` marks the next point after the work
    queued so far; ``read_ns()`` waits for the device once and returns every mark as nanoseconds
    since point 0 (so the first value is 0).
    """

    def start(self) -> None: ...

    def mark(self) -> None: ...

    def read_ns(self) -> list[int]: ...


class PerfCounterTimer:
    """Host clock timer for synchronous devices (the CPU): ``time.perf_counter_ns``."""

    def __init__(self, clock=time.perf_counter_ns) -> None:
        self._clock = clock
        self._marks: list[int] = []

    def start(self) -> None:
        self._marks = [self._clock()]

    def mark(self) -> None:
        self._marks.append(self._clock())

    def read_ns(self) -> list[int]:
        t0 = self._marks[0]
        return [t - t0 for t in self._marks]


class LLMSession(Protocol):
    """A model placed on a device with a static KV cache for ``max_batch`` x ``max_seq``.

    Token ids stay on the device: ``prefill`` and ``decode`` return device tensors (or arrays)
    of shape [B] holding the greedy next token, without a host synchronisation.
    """

    def prefill(self, input_ids: Any) -> Any: ...

    def decode(self, ids: Any) -> Any: ...

    def reset(self) -> None: ...

    def to_device(self, input_ids_cpu: Any) -> Any:
        """Place a CPU LongTensor prompt [B, P] where ``prefill`` expects it (outside timing)."""
        ...


class EnergyMeter(Protocol):
    """Integrates device power over a timed region. ``stop()`` returns joules, or None."""

    def start(self) -> None: ...

    def stop(self) -> float | None: ...


class Backend(ABC):
    """Base class of every backend. Subclasses set ``name`` and implement the abstract methods.

    ``options`` are backend-specific settings from the command line or a suite
    (for example ``{"provider": "cann"}`` or ``{"compile": True}``); unknown options are ignored.
    """

    name: ClassVar[str] = ""
    #: Environment variable that selects visible devices (``--device-ids``), if any.
    visible_devices_env: ClassVar[str | None] = None

    def __init__(self, options: dict[str, Any] | None = None) -> None:
        self.options: dict[str, Any] = dict(options or {})

    @abstractmethod
    def probe(self) -> Probe:
        """Report availability; must never raise."""

    @abstractmethod
    def device(self) -> Any:
        """The device handle workloads place tensors on (e.g. ``torch.device('cuda:0')``)."""

    def synchronize(self) -> None:
        """Wait until all queued device work is done."""

    @abstractmethod
    def supported_dtypes(self) -> list[str]:
        """Torch dtype names this backend runs (``float32``, ``bfloat16``, ...)."""

    def reset_peak_memory(self) -> None:
        """Start a new peak-memory window."""

    def peak_memory_bytes(self) -> int | None:
        """Peak device memory since the last reset, or None when unknown."""
        return None

    def timer(self) -> Timer:
        """A timer on this device's timeline (host clock by default)."""
        return PerfCounterTimer()

    def energy_meter(self) -> EnergyMeter | None:
        """A power/energy meter for the device, or None when the device exposes none."""
        return None

    @abstractmethod
    def load_llm(self, spec: Any, dtype: str, max_batch: int, max_seq: int) -> LLMSession:
        """Place (and optionally compile or export) ``spec.build(device, dtype)``; return a session."""

    def make_gemm(self, m: int, n: int, k: int, dtype: str, seed: int = 0) -> Callable[[], Any]:
        """A callable that runs one [m, k] x [k, n] matrix multiply on the device (``gemm``)."""
        raise NotImplementedError(f"backend '{self.name}' does not implement the gemm workload")

    def make_copy(self, nbytes: int) -> Callable[[], Any]:
        """A callable that copies ``nbytes`` device-to-device (``membw``)."""
        raise NotImplementedError(f"backend '{self.name}' does not implement the membw workload")

    def close(self) -> None:
        """Release device resources."""
