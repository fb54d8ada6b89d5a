"""The ``cuda`` backend: NVIDIA GPUs through torch.cuda, energy from NVML when pynvml is installed."""

from __future__ import annotations

import os
from typing import Any

from backends.base import EnergyMeter
from backends.torch_device import TorchDeviceBackend


class NvmlEnergyMeter:
    """Energy over the timed region from ``nvmlDeviceGetTotalEnergyConsumption`` (mJ, Volta+)."""

    def __init__(self, pynvml: Any, index: int) -> None:
        self._nvml = pynvml
        self._handle = pynvml.nvmlDeviceGetHandleByIndex(index)
        self._start = 0

    def start(self) -> None:
        self._start = self._nvml.nvmlDeviceGetTotalEnergyConsumption(self._handle)

    def stop(self) -> float | None:
        return (self._nvml.nvmlDeviceGetTotalEnergyConsumption(self._handle) - self._start) / 1e3


class CUDABackend(TorchDeviceBackend):
    name = "cuda"
    device_type = "cuda"
    visible_devices_env = "CUDA_VISIBLE_DEVICES"
    compile_mode = "reduce-overhead"  # CUDA graphs
    collective_backend = "nccl"
    priority = 20

    def unavailable_reason(self, device_module: Any) -> str:
        import torch

        if torch.version.cuda is None:
            return f"torch {torch.__version__} is built without CUDA; install a CUDA build of torch"
        env = os.environ.get("CUDA_VISIBLE_DEVICES")
        shown = f", CUDA_VISIBLE_DEVICES={env!r}" if env is not None else ""
        return f"torch.cuda.is_available() is False: no NVIDIA driver or device found (CUDA {torch.version.cuda}{shown})"

    def extra_versions(self) -> dict[str, str]:
        import torch

        versions = {"cuda": str(torch.version.cuda)}
        try:
            import pynvml

            pynvml.nvmlInit()
            versions["driver"] = str(pynvml.nvmlSystemGetDriverVersion())
        except Exception:
            pass
        return versions

    def energy_meter(self) -> EnergyMeter | None:
        try:
            import pynvml

            pynvml.nvmlInit()
            return NvmlEnergyMeter(pynvml, self.index)
        except Exception:
            return None
