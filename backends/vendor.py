"""What the vendor torch backends (ascend, cambricon, musa) share beyond :class:`TorchDeviceBackend`.

A vendor backend stays declarative: it names its package, install and environment hints, the
visible-devices variables in the vendor's order of precedence, where the toolkit writes its
version, its SMI tool (driver version and power telemetry) and its compile backends. This class
turns those into probe reasons, versions, an energy meter and the ``--compile`` choice.
Vendor facts and sources: research/vendor-apis.md.
"""

from __future__ import annotations

import contextlib
import glob
import importlib
import importlib.metadata
import io
import json
import os
import re
import shutil
import sys
from pathlib import Path
from typing import Any, Callable, ClassVar

from backends.base import EnergyMeter, Probe
from backends.telemetry import run_tool, smi_energy_meter
from backends.torch_device import TorchDeviceBackend

_VERSION = re.compile(r"\d+\.\d+(?:\.[0-9A-Za-z]+)*")


def base_version(version: str) -> str:
    """``2.9.0.post6`` / ``2.5.1+cpu`` -> ``2.9.0`` / ``2.5.1``."""
    m = re.match(r"\d+\.\d+(?:\.\d+)?", version)
    return m.group() if m else version


def read_version_file(path: str) -> str | None:
    """A toolkit version from a version file: JSON (``musa_toolkits.version``), ``version=`` lines
    (CANN ``ascend_toolkit_install.info``) or the first version-looking token ("Neuware Version 3.9.0")."""
    text = Path(path).read_text(encoding="utf-8", errors="replace")
    if text.lstrip().startswith("{"):
        data = json.loads(text)
        for key, value in data.items():
            if "toolkit" in key.lower() and isinstance(value, dict) and value.get("version"):
                return str(value["version"])
        return str(data["version"]) if data.get("version") else None
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip().lower() == "version" and value.strip():
            return value.strip()
    m = _VERSION.search(text)
    return m.group() if m else None


def dynamo_backends() -> list[str]:
    """Names ``torch.compile(backend=...)`` accepts, including entry-point ones (torch_npu's)."""
    import torch._dynamo

    return torch._dynamo.list_backends(exclude_tags=())


class VendorTorchBackend(TorchDeviceBackend):
    """Base of the vendor backends; subclasses set the class attributes and the bf16 rule."""

    #: What the device is called in messages ("NPU", "MLU", "GPU").
    device_label: ClassVar[str] = "device"
    #: What makes the vendor's native libraries loadable (shown when the import fails on them).
    environment_hint: ClassVar[str] = ""
    #: Visible-device variables, first set one wins (default: ``visible_devices_env`` alone).
    visible_devices_precedence: ClassVar[tuple[str, ...]] = ()
    #: Key of the toolkit version in ``versions`` and the files it may be read from (globs, $VARS).
    toolkit_name: ClassVar[str] = "toolkit"
    toolkit_files: ClassVar[tuple[str, ...]] = ()
    #: Vendor SMI tool, its arguments that print the driver version, and the regex that finds it.
    smi_tool: ClassVar[str | None] = None
    driver_args: ClassVar[tuple[str, ...]] = ()
    driver_pattern: ClassVar[str] = ""
    #: torch.compile backends tried after ``compile_backend`` when it is not registered.
    compile_fallbacks: ClassVar[tuple[str, ...]] = ()
    #: Why ``--compile`` is unsupported when there is no compile backend at all.
    no_compile_reason: ClassVar[str] = ""

    # ----- import diagnosis -----------------------------------------------------------------------
    def vendor_version(self) -> str | None:
        """The vendor package's version (wheel metadata, else ``__version__``), even if it cannot import."""
        try:
            return importlib.metadata.version(self.vendor_module)
        except Exception:
            return getattr(sys.modules.get(self.vendor_module or ""), "__version__", None)

    def required_torch(self, package_version: str | None, message: str = "") -> str | None:
        """The torch version the vendor package needs, from its error, its wheel's ``Requires-Dist``
        or a ``+torchX.Y.Z`` local version label (torch_mlu wheels); None when unknown."""
        import torch

        installed = base_version(torch.__version__)
        if re.search(r"torch\b.{0,40}version|version.{0,40}\btorch", message, re.I | re.S):
            for found in re.findall(r"v?(\d+\.\d+\.\d+)", message):
                if found != installed:
                    return found
        try:
            for req in importlib.metadata.requires(self.vendor_module) or []:
                m = re.match(r"torch\s*(?:\(\s*)?==\s*([\d.]+)", req)
                if m:
                    return base_version(m.group(1))
        except Exception:
            pass
        m = re.search(r"\+torch(\d+\.\d+(?:\.\d+)?)", package_version or "")
        return m.group(1) if m else None

    def vendor_import_reason(self) -> str | None:
        """Import the vendor package; on failure say which of the known ways it failed."""
        import torch

        pkg = self.vendor_module
        if not pkg:
            return None
        captured = io.StringIO()
        try:
            # Old torch_npu prints the error and calls sys.exit() on a missing libascendcl.so
            # (Ascend/pytorch v2.1.0 torch_npu/__init__.py): capture it to keep the message.
            with contextlib.redirect_stderr(captured):
                importlib.import_module(pkg)
        except ModuleNotFoundError as exc:
            if exc.name and exc.name.split(".")[0] == pkg:
                hint = self.install_hint.format(torch=base_version(torch.__version__))
                return f"{pkg} is not installed ({hint})" if hint else f"{pkg} is not installed"
            return self.import_failure_reason(exc, captured.getvalue())
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # noqa: BLE001 - SystemExit included, see above
            return self.import_failure_reason(exc, captured.getvalue())
        else:
            sys.stderr.write(captured.getvalue())
        return None

    def import_failure_reason(self, exc: BaseException, stderr: str = "") -> str:
        import torch

        pkg, version = self.vendor_module, self.vendor_version()
        lines = [ln.strip() for ln in str(exc).strip().splitlines() if ln.strip() and not ln.startswith("[ERROR]")]
        if not lines:  # sys.exit() after printing the error
            lines = [ln.strip() for ln in stderr.strip().splitlines()[-1:] if ln.strip()]
        message = " ".join(lines) or type(exc).__name__
        label = f"{pkg} {version}" if version else pkg
        if "Two accelerators cannot be used at the same time" in message:
            # torch_npu >= 2.5 refuses a torch whose accelerator is not the CPU (Ascend/pytorch
            # torch_npu/__init__.py: torch._C._get_accelerator().type != "cpu").
            first = lines[0]
            if torch.version.cuda:
                return (f"{label} refuses this torch: {first} torch {torch.__version__} is a CUDA build "
                        f"(torch.version.cuda={torch.version.cuda}); install the CPU wheel: pip install "
                        f"torch=={base_version(torch.__version__)} from the PyTorch CPU wheel index")
            return (f"{label} refuses to load: {first} Another package already registered a device with torch; "
                    f"set TORCH_DEVICE_BACKEND_AUTOLOAD=0 and run {pkg} in its own environment")
        required = self.required_torch(version, message)
        if required and required != base_version(torch.__version__):
            return (f"{label} requires torch {required} but torch {torch.__version__} is installed "
                    f"(install torch=={required}, CPU wheel, or the {pkg} build for torch "
                    f"{base_version(torch.__version__)}): {type(exc).__name__}: {message}")
        if isinstance(exc, OSError) or re.search(r"lib[\w.+-]*\.so|shared object", message):
            hint = f"; {self.environment_hint}" if self.environment_hint else ""
            return f"import {pkg} failed: {message}{hint}"
        return f"import {pkg} failed: {type(exc).__name__}: {message}"

    # ----- visible devices ------------------------------------------------------------------------
    def precedence(self) -> tuple[str, ...]:
        return self.visible_devices_precedence or ((self.visible_devices_env,) if self.visible_devices_env else ())

    def effective_visible_devices(self) -> tuple[str | None, str | None]:
        """The visible-devices variable the vendor runtime obeys here, and its value."""
        for var in self.precedence():
            if var in os.environ:
                return var, os.environ[var]
        return None, None

    def visible_devices_conflict(self) -> str | None:
        """A higher-precedence variable that silently overrides ``visible_devices_env`` (--device-ids)."""
        own = self.visible_devices_env
        var, value = self.effective_visible_devices()
        if own and own in os.environ and var != own and value != os.environ[own]:
            return (f"{var}={value!r} overrides {own}={os.environ[own]!r} ({self.vendor_module} reads "
                    f"{', then '.join(self.precedence())}); unset {var} so that {own} (--device-ids) applies")
        return None

    def visible_ids_problem(self, value: str) -> str | None:
        """Why ``value`` of the visible-devices variable hides every device, if it visibly does."""
        return f"is empty and hides every {self.device_label}" if not value.strip() else None

    def physical_index(self) -> int | None:
        """The driver's (SMI tool's) index of this backend's device; None for UUID lists."""
        _, value = self.effective_visible_devices()
        if value is None:
            return self.index
        ids = [p.strip() for p in value.split(",") if p.strip()]
        return int(ids[self.index]) if self.index < len(ids) and ids[self.index].isdigit() else None

    def unavailable_reason(self, device_module: Any) -> str:
        dev, label = self.device_type, self.device_label
        var, value = self.effective_visible_devices()
        head = f"torch.{dev}.is_available() is False"
        if var is not None:
            problem = self.visible_ids_problem(value or "")
            if problem:
                return f"{head}: {var}={value!r} {problem}"
            try:
                count = int(device_module.device_count())
            except Exception:
                count = None
            if count == 0:
                return (f"{head}: no {label} visible with {var}={value!r} (torch.{dev}.device_count() is 0); "
                        f"give existing device ids or unset {var}")
            return f"{head} ({var}={value!r})"
        check = f"; check `{self.smi_tool}`" if self.smi_tool else ""
        unset = ", ".join(self.precedence()) or "no visible-devices variable"
        return f"{head}: the driver reports no {label} ({unset} not set){check}"

    # ----- probe, versions, telemetry -------------------------------------------------------------
    def _probe(self) -> Probe:
        conflict = self.visible_devices_conflict()
        if conflict:
            import torch

            return Probe(False, conflict, versions={"torch": torch.__version__})
        return super()._probe()

    def toolkit_version(self) -> str | None:
        for pattern in self.toolkit_files:
            for path in sorted(glob.glob(os.path.expandvars(pattern))):
                try:
                    version = read_version_file(path)
                except Exception:
                    continue
                if version:
                    return version
        return None

    def driver_version(self) -> str | None:
        if not self.smi_tool or not self.driver_pattern or shutil.which(self.smi_tool) is None:
            return None
        try:
            m = re.search(self.driver_pattern, run_tool([self.smi_tool, *self.driver_args], timeout=15))
        except Exception:
            return None
        return m.group(1) if m else None

    def extra_versions(self) -> dict[str, str]:
        found = {self.vendor_module or "vendor": self.vendor_version(), self.toolkit_name: self.toolkit_version(),
                 "driver": self.driver_version()}
        return {k: str(v) for k, v in found.items() if v}

    def device_info(self) -> dict[str, Any]:
        info = super().device_info()
        var, value = self.effective_visible_devices()
        tool = self.smi_tool
        info.update(
            visible_devices={"env": var, "value": value} if var else None,
            compile_backends=[b for b in (self.compile_backend, *self.compile_fallbacks) if b],
            power_telemetry=tool if tool and shutil.which(tool) else f"none ({tool} not on PATH)",
        )
        return info

    def energy_meter(self) -> EnergyMeter | None:
        try:
            return smi_energy_meter(self.smi_tool, self.physical_index())
        except Exception:
            return None

    # ----- torch.compile --------------------------------------------------------------------------
    def compile_backend_name(self, registered: Callable[[], list[str]] = dynamo_backends) -> str:
        """The first of ``compile_backend`` + ``compile_fallbacks`` registered with torch._dynamo."""
        from harness.errors import UsageError

        candidates = [b for b in (self.compile_backend, *self.compile_fallbacks) if b]
        if not candidates:
            raise UsageError(f"--compile is not supported on backend '{self.name}': {self.no_compile_reason}; "
                             "run without --compile")
        if len(candidates) == 1:
            return candidates[0]
        names = set(registered())
        for backend in candidates:
            if backend in names:
                return backend
        raise UsageError(f"--compile on '{self.name}': none of the torch.compile backends {', '.join(candidates)} "
                         f"is registered (torch._dynamo.list_backends()); update {self.vendor_module}")
