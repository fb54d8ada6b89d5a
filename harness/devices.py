"""Device table (`configs/devices.toml`): reported device names -> reference device and rooflines."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

from harness.errors import UsageError

PRECISIONS = ("bf16", "fp16", "fp32", "tf32", "fp8")
_KEYS = {"reference", "also_references", "aliases", "patterns", "relative_names",
         "reference_share", "mem_bandwidth_gbps", "why", "peak_tflops"}


@dataclass(frozen=True)
class DeviceEntry:
    """One device: its reported name, reference label(s) and roofline figures."""

    name: str
    reference: str
    also_references: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()
    patterns: tuple[str, ...] = ()
    relative_names: tuple[str, ...] = ()
    reference_share: float = 1.0
    mem_bandwidth_gbps: float | None = None
    peak_tflops: dict[str, float] = field(default_factory=dict)
    why: str = ""

    @property
    def labels(self) -> tuple[str, ...]:
        """references.csv device labels whose claims apply to this device."""
        return (self.reference, *self.also_references)


def _norm(name: str) -> str:
    return " ".join(str(name).split()).casefold()


@dataclass
class DeviceTable:
    """Lookup from reported device names to `DeviceEntry`s."""

    entries: dict[str, DeviceEntry]

    def match(self, name: str | None) -> DeviceEntry | None:
        """Exact name, then aliases (whitespace/case-insensitive), then patterns; else None.

        A name matched by the patterns of more than one entry is ambiguous and returns None.
        """
        if not name:
            return None
        if name in self.entries:
            return self.entries[name]
        key = _norm(name)
        for entry in self.entries.values():
            if key == _norm(entry.name) or key in {_norm(a) for a in entry.aliases}:
                return entry
        hits = [e for e in self.entries.values()
                if any(re.fullmatch(p, name.strip()) for p in e.patterns)]
        return hits[0] if len(hits) == 1 else None

    @staticmethod
    def unknown_message(name: str | None) -> str:
        """The user-facing line for a device with no entry."""
        return f"unknown device {name!r}: add it to configs/devices.toml"

    def by_relative_name(self, short: str) -> list[DeviceEntry]:
        """Entries that an `x_vs_<short>` unit refers to."""
        return [e for e in self.entries.values() if short in e.relative_names]


def _is_number(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _entry(fname: str, name: str, raw: object) -> DeviceEntry:
    where = f"{fname}: devices.{name!r}"
    if not isinstance(raw, dict):
        raise UsageError(f"{where}: must be a table")
    for key in raw:
        if key not in _KEYS:
            raise UsageError(f"{where}: unknown key {key!r}")
    if not isinstance(raw.get("reference"), str) or not raw["reference"].strip():
        raise UsageError(f"{where}: key 'reference' must be a non-empty string")
    for key in ("also_references", "aliases", "patterns", "relative_names"):
        value = raw.get(key, [])
        if not isinstance(value, list) or not all(isinstance(s, str) and s for s in value):
            raise UsageError(f"{where}: key {key!r} must be a list of strings")
    for pattern in raw.get("patterns", []):
        try:
            re.compile(pattern)
        except re.error as exc:
            raise UsageError(f"{where}: key 'patterns': bad regex {pattern!r} ({exc})") from None
    if "why" in raw and not isinstance(raw["why"], str):
        raise UsageError(f"{where}: key 'why' must be a string")
    share = raw.get("reference_share", 1.0)
    if not _is_number(share) or not 0 < share <= 1:
        raise UsageError(f"{where}: key 'reference_share' must be a number in (0, 1]")
    bw = raw.get("mem_bandwidth_gbps")
    if bw is not None and (not _is_number(bw) or bw <= 0):
        raise UsageError(f"{where}: key 'mem_bandwidth_gbps' must be a positive number")
    peaks = raw.get("peak_tflops", {})
    if not isinstance(peaks, dict):
        raise UsageError(f"{where}: key 'peak_tflops' must be a table")
    for prec, value in peaks.items():
        if prec not in PRECISIONS:
            raise UsageError(f"{where}: unknown key 'peak_tflops.{prec}' (want one of {', '.join(PRECISIONS)})")
        if not _is_number(value) or value <= 0:
            raise UsageError(f"{where}: key 'peak_tflops.{prec}' must be a positive number")
    return DeviceEntry(
        name=name, reference=raw["reference"].strip(),
        also_references=tuple(raw.get("also_references", [])), aliases=tuple(raw.get("aliases", [])),
        patterns=tuple(raw.get("patterns", [])), relative_names=tuple(raw.get("relative_names", [])),
        reference_share=float(share), mem_bandwidth_gbps=None if bw is None else float(bw),
        peak_tflops={k: float(v) for k, v in peaks.items()}, why=raw.get("why", ""),
    )


def load_devices(path: str | Path | None = None) -> DeviceTable:
    """Load and validate a device table (default: the packaged `configs/devices.toml`).

    Raises UsageError naming the file and the offending key.
    """
    if path is None:
        fname, text = "devices.toml", (files("configs") / "devices.toml").read_text(encoding="utf-8")
    else:
        p = Path(path)
        fname = p.name
        try:
            text = p.read_text(encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"cannot read device table {str(p)!r}: {exc.strerror or exc}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{fname}: invalid TOML: {exc}") from None
    for key in data:
        if key != "devices":
            raise UsageError(f"{fname}: unknown key {key!r} (only [devices.\"NAME\"] tables are allowed)")
    devices = data.get("devices", {})
    if not isinstance(devices, dict):
        raise UsageError(f"{fname}: key 'devices' must be a table")
    return DeviceTable({name: _entry(fname, name, raw) for name, raw in devices.items()})
