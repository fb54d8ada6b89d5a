"""What the measurement ran on: host, CPU, memory, OS, Python, packages, drivers, harness commit."""

from __future__ import annotations

import glob
import json
import os
import platform
import re
import socket
import subprocess
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

PACKAGES = (
    "torch", "numpy", "onnxruntime", "onnxruntime-gpu", "onnxruntime-cann", "torch-npu", "torch_mlu",
    "torch_musa", "transformers", "safetensors", "pynvml", "nvidia-ml-py", "triton",
)
#: Variables that change what a measurement runs on (visible devices, thread pools).
ENV_VARS = (
    "CUDA_VISIBLE_DEVICES", "ASCEND_RT_VISIBLE_DEVICES", "MLU_VISIBLE_DEVICES", "MUSA_VISIBLE_DEVICES",
    "OMP_NUM_THREADS", "MKL_NUM_THREADS", "TORCH_DEVICE_BACKEND_AUTOLOAD",
)


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text(encoding="utf-8").strip()
    except OSError:
        return None


def package_versions() -> dict[str, str]:
    out = {}
    for name in PACKAGES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            pass
    return out


def git_state() -> dict[str, Any]:
    """Commit and dirty flag of the harness checkout; None for both outside one (an installed wheel).

    Dirty means tracked files differ from the commit (untracked files are ignored).
    """
    root = Path(__file__).resolve().parent.parent
    none = {"commit": None, "dirty": None}
    try:
        top = subprocess.run(["git", "-C", str(root), "rev-parse", "--show-toplevel", "HEAD"],
                             capture_output=True, text=True, timeout=5)
        lines = top.stdout.split()
        # Only the harness's own checkout counts, not a repository that happens to contain the install.
        if top.returncode != 0 or len(lines) != 2 or Path(lines[0]).resolve() != root:
            return none
        status = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                                capture_output=True, text=True, timeout=10)
        if status.returncode != 0:
            return {"commit": lines[1], "dirty": None}
        return {"commit": lines[1], "dirty": bool(status.stdout.strip())}
    except (OSError, subprocess.SubprocessError):
        return none


def _first_version(text: str | None) -> str | None:
    if not text:
        return None
    m = re.search(r"\d+\.\d+(?:\.[0-9A-Za-z]+)*", text)
    return m.group(0) if m else None


def _key_value(path: str, key: str) -> str | None:
    """``key=value`` (or ``key: value``) from a vendor's version file."""
    text = _read(path)
    if not text:
        return None
    for line in text.splitlines():
        k, sep, v = line.partition("=") if "=" in line else line.partition(":")
        if sep and k.strip().lower() == key.lower():
            return v.strip() or None
    return None


def _toolkit_version(home: str | None) -> str | None:
    if not home:
        return None
    data = _read(os.path.join(home, "version.json"))
    if data:
        try:
            parsed = json.loads(data)
            for key in ("cuda", "musa", "neuware"):
                if isinstance(parsed.get(key), dict) and parsed[key].get("version"):
                    return str(parsed[key]["version"])
        except (ValueError, AttributeError):
            pass
    for name in ("version.txt", "version"):
        found = _first_version(_read(os.path.join(home, name)))
        if found:
            return found
    return None


def driver_versions() -> dict[str, str]:
    """Driver and toolkit versions readable from files (no vendor tool is run): what is found."""
    out: dict[str, str | None] = {}
    nv = _read("/proc/driver/nvidia/version")
    if nv:
        m = re.search(r"Kernel Module(?: for \S+)?\s+(\d+\.\d+(?:\.\d+)?)", nv)
        out["nvidia_driver"] = m.group(1) if m else _first_version(nv)
    out["cuda_toolkit"] = _toolkit_version(os.environ.get("CUDA_HOME") or os.environ.get("CUDA_PATH") or
                                           ("/usr/local/cuda" if os.path.isdir("/usr/local/cuda") else None))
    out["ascend_driver"] = _key_value("/usr/local/Ascend/driver/version.info", "Version")
    cann_home = os.environ.get("ASCEND_TOOLKIT_HOME") or os.environ.get("ASCEND_HOME_PATH") or "/usr/local/Ascend/ascend-toolkit/latest"
    for info in sorted(glob.glob(os.path.join(cann_home, "*-linux", "ascend_toolkit_install.info"))):
        out["cann_toolkit"] = _key_value(info, "version")
        break
    out["neuware"] = _toolkit_version(os.environ.get("NEUWARE_HOME") or
                                      ("/usr/local/neuware" if os.path.isdir("/usr/local/neuware") else None))
    out["musa_toolkit"] = _toolkit_version(os.environ.get("MUSA_HOME") or
                                           ("/usr/local/musa" if os.path.isdir("/usr/local/musa") else None))
    return {k: v for k, v in out.items() if v}


def cpu_frequency() -> dict[str, Any]:
    """Frequency scaling of CPU 0: governor, driver, min/max kHz, turbo/boost state (None when unreadable)."""
    base = "/sys/devices/system/cpu/cpu0/cpufreq/"
    no_turbo = _read("/sys/devices/system/cpu/intel_pstate/no_turbo")
    boost = _read("/sys/devices/system/cpu/cpufreq/boost")
    return {
        "governor": _read(base + "scaling_governor"),
        "driver": _read(base + "scaling_driver"),
        "min_khz": _int(_read(base + "scaling_min_freq")),
        "max_khz": _int(_read(base + "scaling_max_freq")),
        "turbo": (no_turbo == "0") if no_turbo is not None else ((boost == "1") if boost is not None else None),
    }


def _int(text: str | None) -> int | None:
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


def memory_bytes() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def capture_environment() -> dict[str, Any]:
    """The environment block of a result (cheap: no torch import, no device initialisation).

    The backend's own probe adds device, driver and toolkit versions as seen by the backend under
    ``backend.versions`` of each result.
    """
    from backends.cpu import cpu_model_name, usable_cores
    from harness import __version__

    freq = cpu_frequency()
    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except (OSError, AttributeError):
        load = None
    return {
        "host": socket.gethostname(),
        "cpu_model": cpu_model_name(),
        "cpu_cores_logical": os.cpu_count(),
        "cpu_cores_usable": usable_cores(),
        "cpu_governor": freq["governor"],
        "cpu_frequency": freq,
        "memory_bytes": memory_bytes(),
        "os": platform.system(),
        "os_release": platform.release(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "packages": package_versions(),
        "drivers": driver_versions(),
        "env_vars": {k: os.environ[k] for k in ENV_VARS if k in os.environ},
        "load_avg": load,
        "harness": {"version": __version__, **git_state()},
    }
