"""The ``membw`` ceiling workload: GB/s = (bytes read + bytes written) / t for a device-to-device copy."""

from __future__ import annotations

from typing import Any

from workloads.base import Workload
from workloads.gemm import KernelTrial


class MembwWorkload(Workload):
    name = "membw"
    params = {"size_mb": (int, 256), "iters": (int, 10)}
    primary_metric = "gbps"
    units = {"gbps": "GB/s", "time_ms": "ms"}
    lower_is_better = frozenset({"time_ms"})

    def facts(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"bytes_per_call": 2 * params["size_mb"] * 2**20}

    def setup(self, backend: Any, params: dict[str, Any], seed: int) -> KernelTrial:
        nbytes = params["size_mb"] * 2**20
        kernel = backend.make_copy(nbytes)
        return KernelTrial(kernel, params["iters"], 2.0 * nbytes, 1e9, "gbps")
