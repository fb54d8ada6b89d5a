"""Device power telemetry from the vendors' SMI tools, integrated to joules.

None of the three vendor stacks exposes a cumulative energy counter (research/vendor-apis.md
sections 1-3, "No energy counter found"), so :class:`PowerSampler` polls the tool's power reading
in a background thread (about every 100 ms) and integrates the samples with the trapezoid rule
over ``start()`` .. ``stop()``. A tool that is not on PATH gives no meter; a tool that fails or
prints something unparsable mid-run makes ``stop()`` return None (no energy figure), never an error.

Command lines and output formats (research/vendor-apis.md):
- ``npu-smi info -t power -i <NPU ID> -c <Chip ID>`` -> ``NPU Real-time Power(W) : 9.1``
  (hiascend npu-smi reference, npusmi_023/024); ``npu-smi info -m`` maps the chip logic id, which is
  what torch counts, to NPU ID and Chip ID (npusmi_013; Ascend 950 prints a Slot ID column instead).
- ``cnmon info -p`` -> a ``Power`` section per card with ``Usage : 75 W`` (SwanLab cambricon.py [2nd]).
- ``mthreads-gmi -q -d POWER --json`` -> ``GPU[i]["Power Readings"]["Power Draw "]`` (trailing space
  in the key) = ``"45.00 W"`` (SwanLab moorethreads.py [2nd]).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import threading
import time
from typing import Callable

TOOL_TIMEOUT_S = 5.0
_NUMBER = re.compile(r"[-+]?\d+(?:\.\d+)?")


def run_tool(argv: list[str], timeout: float = TOOL_TIMEOUT_S) -> str:
    """stdout of ``argv``; raises on a missing tool, a timeout or a non-zero exit."""
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        raise RuntimeError(f"{argv[0]} exited with {proc.returncode}: {proc.stderr.strip()[:200]}")
    return proc.stdout


# ----- parsers (pure; raise ValueError when the output holds no reading) --------------------------
def parse_npu_smi_power(text: str) -> float:
    """Watts from ``npu-smi info -t power``; prefers the chip's real-time power over the card's."""
    readings: dict[str, float] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        number = _NUMBER.search(value)
        if sep and "power" in key.lower() and number:
            readings[key.strip().lower()] = float(number.group())
    for key, watts in readings.items():
        if "real-time" in key:
            return watts
    if readings:
        return next(iter(readings.values()))
    raise ValueError("no power reading in npu-smi output")


def parse_npu_smi_chips(text: str) -> dict[int, tuple[str, str | None]]:
    """``npu-smi info -m`` -> {chip logic id: (NPU ID, Chip ID or None when ``-c`` is not taken)}.

    Classic layout ``NPU ID  Chip ID  Chip Logic ID  Chip Name``; rows whose logic id is not a number
    (e.g. the MCU) are skipped. The Ascend 950 layout ``NPU ID  Slot ID  Chip ID  Chip Phy-ID  Chip Name``
    has no logic id: chips are numbered in row order and queried by NPU ID alone (as SwanLab does).
    """
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if not lines:
        return {}
    physical = "Slot ID" in lines[0]
    chips: dict[int, tuple[str, str | None]] = {}
    for line in lines[1:]:
        parts = line.split()
        if physical and len(parts) >= 5 and parts[0].isdigit():
            chips[len(chips)] = (parts[0], None)
        elif not physical and len(parts) >= 3 and parts[0].isdigit() and parts[1].isdigit() and parts[2].isdigit():
            chips[int(parts[2])] = (parts[0], parts[1])
    return chips


def parse_cnmon_power(text: str, card: int) -> float:
    """Watts of ``card`` from ``cnmon info -p``: the ``Usage`` line of each card's ``Power`` section."""
    found: dict[int, float] = {}
    current, ordinal, in_power = None, 0, False
    for line in text.splitlines():
        stripped = line.strip()
        low = stripped.lower()
        m = re.match(r"card\s*:?\s*(\d+)", low)
        if m:
            current, in_power = int(m.group(1)), False
            continue
        if low.startswith("power"):
            in_power = True
            continue
        number = _NUMBER.search(stripped.partition(":")[2])
        if in_power and low.startswith("usage") and number:
            found[current if current is not None else ordinal] = float(number.group())
            ordinal, in_power = ordinal + 1, False
    if card not in found:
        raise ValueError(f"no power usage for card {card} in cnmon output")
    return found[card]


def parse_mthreads_gmi_power(text: str, index: int) -> float:
    """Watts of GPU ``index`` from ``mthreads-gmi -q -d POWER --json`` (keys compared after strip)."""
    data = json.loads(text)
    gpus = data.get("GPU", []) if isinstance(data, dict) else []
    if isinstance(gpus, dict):
        gpus = [gpus]
    for pos, gpu in enumerate(gpus):
        gpu = {str(k).strip(): v for k, v in gpu.items()}
        if str(gpu.get("Index", pos)).strip() != str(index):
            continue
        readings = {str(k).strip().lower(): v for k, v in (gpu.get("Power Readings") or {}).items()}
        number = _NUMBER.search(str(readings.get("power draw", "")))
        if number:
            return float(number.group())
    raise ValueError(f"no power draw for GPU {index} in mthreads-gmi output")


# ----- readers: a zero-argument callable returning watts ---------------------------------------------
def npu_smi_reader(logic_id: int) -> Callable[[], float]:
    try:
        chip = parse_npu_smi_chips(run_tool(["npu-smi", "info", "-m"])).get(logic_id)
    except Exception:
        chip = None
    npu_id, chip_id = chip or (str(logic_id), "0")  # one chip per card (910B): NPU ID = logic id
    argv = ["npu-smi", "info", "-t", "power", "-i", npu_id] + (["-c", chip_id] if chip_id is not None else [])
    return lambda: parse_npu_smi_power(run_tool(argv))


def cnmon_reader(card: int) -> Callable[[], float]:
    return lambda: parse_cnmon_power(run_tool(["cnmon", "info", "-p"]), card)


def mthreads_gmi_reader(index: int) -> Callable[[], float]:
    return lambda: parse_mthreads_gmi_power(run_tool(["mthreads-gmi", "-q", "-d", "POWER", "--json"]), index)


READERS: dict[str, Callable[[int], Callable[[], float]]] = {
    "npu-smi": npu_smi_reader,
    "cnmon": cnmon_reader,
    "mthreads-gmi": mthreads_gmi_reader,
}


def trapezoid_joules(samples: list[tuple[float, float]]) -> float | None:
    """Integrate (seconds, watts) samples; None with fewer than two."""
    if len(samples) < 2:
        return None
    return sum((t1 - t0) * (p0 + p1) / 2 for (t0, p0), (t1, p1) in zip(samples, samples[1:]))


class PowerSampler:
    """An :class:`backends.base.EnergyMeter` that polls ``read_watts`` every ``interval_s``.

    One reading is taken in ``start()`` and one in ``stop()``, so the integral spans the whole
    region; each sample is stamped at the middle of its reading. Any failed reading voids the run.
    """

    def __init__(self, read_watts: Callable[[], float], interval_s: float = 0.1,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._read = read_watts
        self._interval = interval_s
        self._clock = clock
        self._samples: list[tuple[float, float]] = []
        self._failed = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def sample(self) -> None:
        """Take one reading now (the thread calls this; tests may too)."""
        try:
            t0 = self._clock()
            watts = float(self._read())
            t = (t0 + self._clock()) / 2
        except Exception:
            self._failed = True
            return
        with self._lock:
            self._samples.append((t, watts))

    def _loop(self) -> None:
        while not self._stop.wait(self._interval) and not self._failed:
            self.sample()

    def start(self) -> None:
        self._samples, self._failed = [], False
        self._stop.clear()
        self.sample()
        self._thread = threading.Thread(target=self._loop, name="accelbench-power", daemon=True)
        self._thread.start()

    def stop(self) -> float | None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=TOOL_TIMEOUT_S + 1)
            self._thread = None
        self.sample()
        if self._failed:
            return None
        with self._lock:
            return trapezoid_joules(sorted(self._samples))


def smi_energy_meter(tool: str | None, index: int | None, interval_s: float = 0.1) -> PowerSampler | None:
    """A sampler on ``tool`` for physical device ``index``; None when the tool is not on PATH."""
    if not tool or index is None or tool not in READERS or shutil.which(tool) is None:
        return None
    return PowerSampler(READERS[tool](index), interval_s)
