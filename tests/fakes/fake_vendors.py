"""Fake torch_npu / torch_mlu / torch_musa packages that route to the CPU (for tests only).

``install("ascend")`` puts a finder on ``sys.meta_path``: ``import torch_npu`` then runs a fake
package init that, like the real one, registers ``torch.npu`` (a device module with the vendor API
subset the backends use: availability and count honouring the vendor's visible-devices variables,
names, properties, capability, bf16 rule, events timed with ``perf_counter_ns``, peak memory) and
maps the device type to the CPU in ``backends.torch_device.DEVICE_STAND_INS``. The finder also
serves the package's wheel metadata, so ``importlib.metadata.version("torch_npu")`` works even when
the fake import is made to fail (``fail=ImportError(...)``), as for a broken real install.

In a child process: put this folder on PYTHONPATH and set ``ACCELBENCH_FAKE_VENDORS=ascend,musa``;
the ``sitecustomize.py`` next to this file installs them at interpreter start.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.metadata
import os
import re
import sys
import time
import types
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

# SocVersion enum of torch_npu (Ascend/pytorch torch_npu/csrc/core/npu/NpuVariables.h); bf16 iff >= Ascend910B1.
NPU_SOC = {"Ascend910PremiumA": 100, "Ascend910ProA": 101, "Ascend910A": 102, "Ascend910ProB": 103, "Ascend910B": 104,
           "Ascend310P1": 200, "Ascend310P3": 202, "Ascend910B1": 220, "Ascend910B2": 221, "Ascend910B3": 223,
           "Ascend910B4": 224, "Ascend310B1": 240, "Ascend910_9392": 260, "Ascend950PR": 300}


@dataclass
class FakeSpec:
    """One fake vendor: what its package is called and what its device reports."""

    vendor: str
    package: str
    device_type: str
    version: str
    device_name: str
    major: int
    minor: int
    visible_env: tuple[str, ...]
    ascending_ids: bool = False  # torch_npu: ids must be strictly ascending
    devices: int = 2  # physical devices
    total_memory: int = 64 * 2**30
    peak_bytes: int = 3 * 2**20
    available: bool = True  # False: the runtime finds no device (no driver)
    fail: BaseException | None = None  # raised by ``import <package>``
    stderr: str = ""  # printed by ``import <package>`` before it fails (old torch_npu + sys.exit())
    requires: list[str] = field(default_factory=list)  # Requires-Dist lines of the fake wheel


SPECS = {
    "ascend": FakeSpec("ascend", "torch_npu", "npu", "2.13.0", "Ascend910B3", 9, 0,
                       ("ASCEND_RT_VISIBLE_DEVICES",), ascending_ids=True),
    "cambricon": FakeSpec("cambricon", "torch_mlu", "mlu", "1.24.0+torch2.13.0", "MLU370-X8", 3, 0,
                          ("CN_VISIBLE_DEVICES", "MLU_VISIBLE_DEVICES", "CUDA_VISIBLE_DEVICES")),
    "musa": FakeSpec("musa", "torch_musa", "musa", "2.7.1", "MTT S4000", 2, 2, ("MUSA_VISIBLE_DEVICES",)),
}


class FakeEvent:
    """``torch.<dev>.Event``: ``elapsed_time`` in milliseconds between two ``record`` calls."""

    def __init__(self, enable_timing: bool = False, blocking: bool = False, interprocess: bool = False) -> None:
        self.ns: int | None = None

    def record(self, stream: Any = None) -> None:
        self.ns = time.perf_counter_ns()

    def synchronize(self) -> None:
        pass

    def query(self) -> bool:
        return True

    def elapsed_time(self, end: "FakeEvent") -> float:
        return (end.ns - self.ns) / 1e6


def visible_count(spec: FakeSpec) -> int:
    """How many devices the vendor runtime would expose under its visible-devices variables."""
    value = next((os.environ[v] for v in spec.visible_env if v in os.environ), None)
    if value is None:
        return spec.devices
    if spec.ascending_ids:
        ids = [int(x) for x in re.match(r"[\d,]*", value).group().split(",") if x]
        if any(b <= a for a, b in zip(ids, ids[1:])):
            return 0
    else:
        ids = []
        for part in value.split(","):
            if not part.strip().isdigit():
                break
            if int(part) in ids:
                return 0
            ids.append(int(part))
    return len([i for i in ids if i < spec.devices])


def make_device_module(spec: FakeSpec, name: str) -> types.ModuleType:
    mod = types.ModuleType(name)
    mod.__version__ = spec.version
    mod.Event = FakeEvent
    mod.device_count = lambda: visible_count(spec)
    mod.is_available = lambda: spec.available and visible_count(spec) > 0
    mod.current_device = lambda: 0
    mod.set_device = lambda device: None
    mod.synchronize = lambda device=None: None
    mod.get_device_name = lambda device=None: spec.device_name
    mod.get_device_capability = lambda device=None: (spec.major, spec.minor)
    mod.get_device_properties = lambda device=None: types.SimpleNamespace(
        name=spec.device_name, total_memory=spec.total_memory, major=spec.major, minor=spec.minor,
        multi_processor_count=32)
    mod.memory_allocated = lambda device=None: 0
    mod.max_memory_allocated = lambda device=None: spec.peak_bytes
    mod.reset_peak_memory_stats = lambda device=None: None
    mod.mem_get_info = lambda device=None: (spec.total_memory, spec.total_memory)
    mod.empty_cache = lambda: None
    if spec.vendor == "ascend":  # GetSocVersion() >= Ascend910B1
        mod.is_bf16_supported = lambda: NPU_SOC.get(spec.device_name, 0) >= NPU_SOC["Ascend910B1"]
    elif spec.vendor == "cambricon":  # get_device_properties().major >= 5
        mod.is_bf16_supported = lambda: spec.major >= 5
    else:  # capability >= (2, 2), else emulation (assumed to work) when including_emulation
        mod.is_bf16_supported = lambda including_emulation=True: (spec.major, spec.minor) >= (2, 2) or including_emulation
    return mod


class _Distribution(importlib.metadata.Distribution):
    def __init__(self, spec: FakeSpec) -> None:
        self._spec = spec

    def read_text(self, filename: str) -> str | None:
        if filename == "METADATA":
            lines = ["Metadata-Version: 2.1", f"Name: {self._spec.package}", f"Version: {self._spec.version}"]
            return "\n".join(lines + [f"Requires-Dist: {r}" for r in self._spec.requires]) + "\n"
        return None

    def locate_file(self, path: Any) -> Path:
        return Path(os.devnull)


class _Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def __init__(self, spec: FakeSpec) -> None:
        self.spec = spec

    def find_spec(self, fullname: str, path: Any = None, target: Any = None):
        if fullname == self.spec.package:
            return importlib.machinery.ModuleSpec(fullname, self, is_package=True)
        return None

    def find_distributions(self, context: Any = importlib.metadata.DistributionFinder.Context()):
        norm = lambda s: re.sub(r"[-_.]+", "_", s).lower()  # noqa: E731
        if context.name is None or norm(context.name) == norm(self.spec.package):
            yield _Distribution(self.spec)

    def create_module(self, module_spec: Any) -> types.ModuleType:
        spec = self.spec
        # torch.musa *is* the torch_musa package; torch.npu / torch.mlu are its submodule.
        return make_device_module(spec, spec.package) if spec.vendor == "musa" else types.ModuleType(spec.package)

    def exec_module(self, module: types.ModuleType) -> None:
        import torch

        from backends.torch_device import DEVICE_STAND_INS

        spec = self.spec
        if spec.stderr:
            sys.stderr.write(spec.stderr)
        if spec.fail is not None:
            raise spec.fail
        module.__version__ = spec.version
        device_module = module
        if spec.vendor != "musa":
            device_module = make_device_module(spec, f"{spec.package}.{spec.device_type}")
            setattr(module, spec.device_type, device_module)
            sys.modules[device_module.__name__] = device_module
        setattr(torch, spec.device_type, device_module)
        DEVICE_STAND_INS[spec.device_type] = "cpu"


_installed: dict[str, _Finder] = {}


def install(vendor: str, **changes: Any) -> FakeSpec:
    """Make ``import <vendor package>`` load the fake; ``changes`` override :class:`FakeSpec` fields."""
    uninstall(vendor)
    os.environ["TORCH_DEVICE_BACKEND_AUTOLOAD"] = "0"  # as with a real vendor wheel next to fakes
    spec = replace(SPECS[vendor], **changes)
    finder = _Finder(spec)
    sys.meta_path.insert(0, finder)
    _installed[vendor] = finder
    return spec


def uninstall(vendor: str | None = None) -> None:
    """Remove the fake(s): finder, imported modules, ``torch.<dev>`` and the CPU stand-in."""
    for name in [vendor] if vendor else list(_installed):
        finder = _installed.pop(name, None)
        if finder is None:
            continue
        spec = finder.spec
        sys.meta_path[:] = [f for f in sys.meta_path if f is not finder]
        for mod in [m for m in sys.modules if m == spec.package or m.startswith(spec.package + ".")]:
            del sys.modules[mod]
        torch = sys.modules.get("torch")
        if torch is not None and spec.device_type in vars(torch):
            delattr(torch, spec.device_type)
        stand_ins = getattr(sys.modules.get("backends.torch_device"), "DEVICE_STAND_INS", {})
        stand_ins.pop(spec.device_type, None)


def install_from_env(value: str | None = None) -> None:
    """Install the vendors named in ``ACCELBENCH_FAKE_VENDORS`` (comma list), e.g. in a child process."""
    for vendor in filter(None, (v.strip() for v in (value or os.environ.get("ACCELBENCH_FAKE_VENDORS", "")).split(","))):
        install(vendor)
