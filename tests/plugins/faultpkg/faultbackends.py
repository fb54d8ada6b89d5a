"""Fault-injection backends for the runner tests.

Registered in the ``accelbench.backends`` entry-point group by ``faultpkg-0.0.0.dist-info`` next to
this module: put this folder on ``PYTHONPATH`` and ``importlib.metadata`` finds them as an installed
distribution (no pip). Each wraps the ``cpu`` backend and fails in ``load_llm`` (after the probe,
once the case is really running), except ``fault-unavailable`` whose probe says no.

Environment knobs: ``FAULT_VISIBLE_DEVICES`` is their visible-devices variable (``--device-ids``);
``FAULT_SLOW_S`` makes ``fault-slow`` sleep that long before loading; ``FAULT_PID_FILE`` is where
``fault-hang`` writes the pid of a grandchild it starts (to prove the process group is killed).
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
from typing import Any

from backends.base import Probe
from backends.cpu import CPUBackend

VAR = "FAULT_VISIBLE_DEVICES"
RAISE_MESSAGE = "injected failure: kernel launch failed (fault-raise)"
OOM_MESSAGE = "injected: CUDA out of memory. Tried to allocate 2.00 GiB (fault-oom)"


class FaultGood(CPUBackend):
    """Works: the cpu backend, recording the visible-devices variable it saw in its probe info."""

    name = "fault-good"
    visible_devices_env = VAR
    priority = -1  # never picked by --backend auto

    def probe(self) -> Probe:
        probe = super().probe()
        probe.info = dict(probe.info, visible_devices=os.environ.get(VAR))
        probe.versions = dict(probe.versions, faultpkg="0.0.0")
        return probe


class FaultSlow(FaultGood):
    name = "fault-slow"

    def load_llm(self, spec: Any, dtype: str, max_batch: int, max_seq: int):
        time.sleep(float(os.environ.get("FAULT_SLOW_S", "0")))
        return super().load_llm(spec, dtype, max_batch, max_seq)


class FaultAbort(FaultGood):
    name = "fault-abort"

    def load_llm(self, spec: Any, dtype: str, max_batch: int, max_seq: int):
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # no core file
        os.abort()


class FaultExit(FaultGood):
    name = "fault-exit"

    def load_llm(self, spec: Any, dtype: str, max_batch: int, max_seq: int):
        print("fault-exit: leaving with code 3", file=sys.stderr, flush=True)
        os._exit(3)


class FaultHang(FaultGood):
    name = "fault-hang"

    def load_llm(self, spec: Any, dtype: str, max_batch: int, max_seq: int):
        grandchild = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
        pid_file = os.environ.get("FAULT_PID_FILE")
        if pid_file:
            with open(pid_file, "w", encoding="utf-8") as fh:
                fh.write(str(grandchild.pid))
        while True:
            time.sleep(3600)


class FaultRaise(FaultGood):
    name = "fault-raise"

    def load_llm(self, spec: Any, dtype: str, max_batch: int, max_seq: int):
        raise RuntimeError(RAISE_MESSAGE)


class FaultOOM(FaultGood):
    name = "fault-oom"

    def load_llm(self, spec: Any, dtype: str, max_batch: int, max_seq: int):
        import torch

        raise torch.OutOfMemoryError(OOM_MESSAGE)


class FaultInterrupt(FaultGood):
    """Ctrl-C arriving while the case runs (for in-process tests)."""

    name = "fault-interrupt"

    def load_llm(self, spec: Any, dtype: str, max_batch: int, max_seq: int):
        raise KeyboardInterrupt


class FaultUnavailable(FaultGood):
    name = "fault-unavailable"

    def probe(self) -> Probe:
        return Probe(False, f"fault-unavailable: no fault device ({VAR}={os.environ.get(VAR)!r})")
