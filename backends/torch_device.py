"""The shared torch-device backend: one implementation for cpu, cuda, npu, mlu and musa.

A vendor backend is a short declarative subclass: it names the torch device type, the vendor
package that registers it, the visible-devices variable, the compile and collective backends,
the bf16 rule and the telemetry tool. Everything else (probing, events, peak memory, the LLM
session, gemm/copy kernels) lives here once. The device modules ``torch.cuda``, ``torch.npu``,
``torch.mlu`` and ``torch.musa`` share one API (research/vendor-apis.md section 0).
"""

from __future__ import annotations

import importlib
import os
from typing import Any, Callable, ClassVar

from backends.base import Backend, EnergyMeter, LLMSession, Probe, Timer

#: Stand-in torch device types, keyed by a backend's ``device_type``. Empty in production. Fake
#: vendor packages for tests (``tests/fakes/fake_vendors.py``) map "npu", "mlu" and "musa" to "cpu"
#: when they are imported, since stock torch has no such device types; ``device()`` honours it.
DEVICE_STAND_INS: dict[str, str] = {}


class DeviceEventTimer:
    """Timer on the device timeline: ``torch.<dev>.Event(enable_timing=True)``, one sync per read."""

    def __init__(self, device_module: Any) -> None:
        self._mod = device_module
        self._events: list[Any] = []
        self._n = 0

    def start(self) -> None:
        self._n = 0
        self.mark()

    def mark(self) -> None:
        if self._n == len(self._events):
            self._events.append(self._mod.Event(enable_timing=True))
        self._events[self._n].record()
        self._n += 1

    def read_ns(self) -> list[int]:
        self._events[self._n - 1].synchronize()
        first = self._events[0]
        # elapsed_time is in milliseconds on every vendor's Event (vendor-apis.md).
        return [0] + [round(first.elapsed_time(e) * 1e6) for e in self._events[1 : self._n]]


class TorchLLMSession:
    """Greedy generation with a static KV cache; ids stay on the device, no host sync per step."""

    def __init__(self, model: Any, device: Any, decode_fn: Callable[[Any, Any, Any], Any] | None = None) -> None:
        import torch

        self._torch = torch
        self.model = model
        self.device = device
        self._pos = torch.zeros(1, dtype=torch.long, device=device)
        self._decode = decode_fn or decode_one_token

    def to_device(self, input_ids_cpu: Any) -> Any:
        return input_ids_cpu.to(self.device)

    def reset(self) -> None:
        self._pos.zero_()

    def prefill(self, input_ids: Any) -> Any:
        torch = self._torch
        with torch.inference_mode():
            positions = torch.arange(input_ids.shape[1], device=self.device)
            logits = self.model.forward_last(input_ids, positions)  # head on the last position only
            self._pos.fill_(input_ids.shape[1])
            return greedy(logits)

    def decode(self, ids: Any) -> Any:
        with self._torch.inference_mode():
            next_ids = self._decode(self.model, ids, self._pos)
            self._pos += 1
            return next_ids


def decode_one_token(model: Any, ids: Any, pos: Any) -> Any:
    """One greedy decode step: ids [B] at position ``pos`` [1] -> next ids [B]."""
    return greedy(model(ids[:, None], pos)[:, -1])


def greedy(logits: Any) -> Any:
    """Index of the first maximum per row of ``logits`` [B, V], as ``argmax``; ``max`` is 2-5x
    faster than ``argmax`` over a 150k vocabulary on the CPU (0.1 vs 0.5 ms in bf16)."""
    return logits.max(dim=-1).indices


class TorchDeviceBackend(Backend):
    """A backend for any torch device type. Subclasses set the class attributes below."""

    #: torch device type: "cpu", "cuda", "npu", "mlu", "musa".
    device_type: ClassVar[str] = "cpu"
    #: Package that registers the device with torch ("torch_npu"), or None when built in.
    vendor_module: ClassVar[str | None] = None
    #: How to install the vendor package (used in the "not installed" reason).
    install_hint: ClassVar[str] = ""
    #: torch.compile backend for ``--compile`` ("inductor", "npugraph_ex"), None when there is none.
    compile_backend: ClassVar[str | None] = "inductor"
    #: torch.compile mode for ``--compile`` (CUDA graphs where the device supports them).
    compile_mode: ClassVar[str | None] = None
    #: torch.distributed backend name for multi-device work ("nccl", "hccl", "cncl", "mccl").
    collective_backend: ClassVar[str | None] = None
    #: Preference when ``--backend auto`` picks the best available backend.
    priority: ClassVar[int] = 10

    # ----- declarative hooks a vendor subclass may override -------------------------------------
    def vendor_import_reason(self) -> str | None:
        """Import the vendor package; return why the backend is unavailable, or None."""
        if not self.vendor_module:
            return None
        try:
            importlib.import_module(self.vendor_module)
        except ModuleNotFoundError as exc:
            if exc.name and exc.name.split(".")[0] == self.vendor_module:
                hint = f" ({self.install_hint})" if self.install_hint else ""
                return f"{self.vendor_module} is not installed{hint}"
            return f"import {self.vendor_module} failed: {exc}"
        except Exception as exc:  # native-library errors keep their message
            return f"import {self.vendor_module} failed: {type(exc).__name__}: {exc}"
        return None

    def unavailable_reason(self, device_module: Any) -> str:
        """Reason given when ``is_available()`` is False."""
        env = self.visible_devices_env
        shown = f" ({env}={os.environ.get(env)!r})" if env and env in os.environ else ""
        return f"torch.{self.device_type}.is_available() is False{shown}"

    def bf16_supported(self, device_module: Any) -> bool:
        return bool(device_module.is_bf16_supported())

    def extra_versions(self) -> dict[str, str]:
        """Vendor package, toolkit and driver versions."""
        return {}

    # ----- contract -----------------------------------------------------------------------------
    @property
    def index(self) -> int:
        return int(self.options.get("device_index", 0))

    def device_module(self) -> Any:
        import torch

        return getattr(torch, self.device_type)

    def probe(self) -> Probe:
        try:
            return self._probe()
        except Exception as exc:  # probe() must never raise
            return Probe(False, f"probe of {self.name} failed: {type(exc).__name__}: {exc}")

    def _probe(self) -> Probe:
        import torch

        versions = {"torch": torch.__version__}
        reason = self.vendor_import_reason()
        if reason:
            return Probe(False, reason, versions=versions)
        mod = getattr(torch, self.device_type, None)
        if mod is None:
            return Probe(False, f"torch has no '{self.device_type}' device module", versions=versions)
        versions.update(self.extra_versions())
        if not mod.is_available():
            return Probe(False, self.unavailable_reason(mod), versions=versions)
        count = int(mod.device_count())
        env = self.visible_devices_env
        if count == 0:
            value = os.environ.get(env) if env else None
            return Probe(False, f"torch.{self.device_type}.device_count() is 0 ({env}={value!r})", versions=versions)
        if self.index >= count:
            return Probe(False, f"device index {self.index} out of range ({count} visible)", versions=versions)
        props = mod.get_device_properties(self.index)
        return Probe(
            True,
            "",
            device_name=str(mod.get_device_name(self.index)),
            device_count=count,
            memory_bytes=getattr(props, "total_memory", None),
            versions=versions,
            info=self.device_info(),
        )

    def device_info(self) -> dict[str, Any]:
        return {
            "device_type": self.device_type,
            "compile_backend": self.compile_backend,
            "collective_backend": self.collective_backend,
            "visible_devices_env": self.visible_devices_env,
        }

    def device(self) -> Any:
        import torch

        return torch.device(DEVICE_STAND_INS.get(self.device_type, self.device_type), self.index)

    def synchronize(self) -> None:
        self.device_module().synchronize()

    def supported_dtypes(self) -> list[str]:
        dtypes = ["float32", "float16"]
        if self.bf16_supported(self.device_module()):
            dtypes.insert(1, "bfloat16")
        return dtypes

    def reset_peak_memory(self) -> None:
        self.device_module().reset_peak_memory_stats(self.index)

    def peak_memory_bytes(self) -> int | None:
        return int(self.device_module().max_memory_allocated(self.index))

    def timer(self) -> Timer:
        return DeviceEventTimer(self.device_module())

    def energy_meter(self) -> EnergyMeter | None:
        return None

    def compile_backend_name(self) -> str:
        """The torch.compile backend for ``--compile``; UsageError when the device has none."""
        if self.compile_backend is None:
            from harness.errors import UsageError

            raise UsageError(f"backend '{self.name}' has no torch.compile backend; run without --compile")
        return self.compile_backend

    def compiled(self, fn: Callable) -> Callable:
        """``fn`` under torch.compile when ``--compile`` was given."""
        if not self.options.get("compile"):
            return fn
        import torch

        step = torch.compile(fn, backend=self.compile_backend_name(), mode=self.compile_mode, fullgraph=True, dynamic=False)
        # Graph capture (CUDA graphs, npugraph_ex) reuses output buffers: keep each step's ids (as gpt-fast).
        return lambda *args: step(*args).clone()

    def load_llm(self, spec: Any, dtype: str, max_batch: int, max_seq: int) -> LLMSession:
        from harness.dtypes import torch_dtype

        decode_fn = self.compiled(decode_one_token)  # an unusable --compile fails before the build
        device = self.device()
        model = spec.build(device, dtype)
        model.setup_caches(max_batch, max_seq, dtype=torch_dtype(dtype), device=device)
        model.eval()
        return TorchLLMSession(model, device, decode_fn)

    def make_gemm(self, m: int, n: int, k: int, dtype: str, seed: int = 0) -> Callable[[], Any]:
        import torch

        from harness.dtypes import torch_dtype

        gen = torch.Generator().manual_seed(seed)
        dt, device = torch_dtype(dtype), self.device()
        a = torch.randn(m, k, generator=gen).to(device=device, dtype=dt)
        b = torch.randn(k, n, generator=gen).to(device=device, dtype=dt)
        out = torch.empty(m, n, device=device, dtype=dt)
        return lambda: torch.matmul(a, b, out=out)

    def make_copy(self, nbytes: int) -> Callable[[], Any]:
        import torch

        src = torch.ones(nbytes, dtype=torch.uint8, device=self.device())
        dst = torch.empty_like(src)
        return lambda: dst.copy_(src)
