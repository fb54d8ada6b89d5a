"""The ``gemm`` ceiling workload: TFLOPS = 2*M*N*K / t for square matrices of side ``size``."""

from __future__ import annotations

from typing import Any, Callable

from harness.dtypes import canonical_dtype
from harness.errors import UsageError
from workloads.base import RepSample, Trial, Workload


class KernelTrial(Trial):
    """Times ``iters`` back-to-back calls of a kernel on the device timeline."""

    def __init__(self, kernel: Callable[[], Any], iters: int, work: float, scale: float, metric: str) -> None:
        self.kernel, self.iters, self.work, self.scale, self.metric = kernel, iters, work, scale, metric

    def run(self, timer: Any) -> RepSample:
        timer.start()
        for _ in range(self.iters):
            self.kernel()
        timer.mark()
        seconds = timer.read_ns()[-1] / 1e9
        return {self.metric: self.work * self.iters / seconds / self.scale, "time_ms": seconds * 1e3 / self.iters}


class GemmWorkload(Workload):
    name = "gemm"
    params = {"dtype": (str, "float32"), "size": (int, 4096), "iters": (int, 10)}
    primary_metric = "tflops"
    units = {"tflops": "TFLOPS", "time_ms": "ms"}
    lower_is_better = frozenset({"time_ms"})

    def validate(self, params: dict[str, Any]) -> dict[str, Any]:
        out = super().validate(params)
        out["dtype"] = canonical_dtype(out["dtype"])
        return out

    def facts(self, params: dict[str, Any]) -> dict[str, Any]:
        n = params["size"]
        return {"flops_per_call": 2 * n**3}

    def setup(self, backend: Any, params: dict[str, Any], seed: int) -> KernelTrial:
        if params["dtype"] not in backend.supported_dtypes():
            raise UsageError(f"backend '{backend.name}' does not support dtype {params['dtype']}")
        n = params["size"]
        kernel = backend.make_gemm(n, n, n, params["dtype"], seed)
        return KernelTrial(kernel, params["iters"], 2.0 * n**3, 1e12, "tflops")
