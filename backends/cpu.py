"""The ``cpu`` backend: torch on the host, timed with ``time.perf_counter_ns``."""

from __future__ import annotations

import os
import platform
import resource
from typing import Any

from backends.base import PerfCounterTimer, Probe, Timer
from backends.torch_device import TorchDeviceBackend


def cpu_model_name() -> str:
    """The CPU model string ("model name" in /proc/cpuinfo), or the platform's processor name."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class CPUBackend(TorchDeviceBackend):
    """Always available. ``threads`` option (default: every usable core) sets torch's intra-op threads."""

    name = "cpu"
    device_type = "cpu"
    priority = 0

    def __init__(self, options: dict[str, Any] | None = None) -> None:
        super().__init__(options)
        import torch

        torch.set_num_threads(int(self.options.get("threads") or usable_cores()))

    def probe(self) -> Probe:
        import torch

        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") if hasattr(os, "sysconf") else None
        return Probe(
            True,
            "",
            device_name=cpu_model_name(),
            device_count=1,
            memory_bytes=memory,
            versions={"torch": torch.__version__},
            info={"device_type": "cpu", "threads": torch.get_num_threads(), "compile_backend": "inductor"},
        )

    def device(self) -> Any:
        import torch

        return torch.device("cpu")

    def synchronize(self) -> None:
        pass

    def supported_dtypes(self) -> list[str]:
        return ["float32", "bfloat16", "float16"]

    def reset_peak_memory(self) -> None:
        pass  # the process high-water mark cannot be reset

    def peak_memory_bytes(self) -> int | None:
        """Peak resident set size of this process (``ru_maxrss``, KiB on Linux)."""
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

    def timer(self) -> Timer:
        return PerfCounterTimer()
