"""Vendor backends (ascend, cambricon, musa) against fake vendor packages routed to the CPU."""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

import pytest
import torch

from backends.ascend import AscendBackend
from backends.cambricon import CambriconBackend
from backends.musa import MUSABackend
from backends.telemetry import (
    PowerSampler,
    parse_cnmon_power,
    parse_mthreads_gmi_power,
    parse_npu_smi_chips,
    parse_npu_smi_power,
    trapezoid_joules,
)
from harness.errors import UsageError
from harness.execute import execute_case
from harness.plan import Case, Measure
from harness.runner import run_plan

ROOT = Path(__file__).resolve().parent.parent
FAKES = ROOT / "tests" / "fakes"
sys.path.insert(0, str(FAKES))
import fake_vendors  # noqa: E402

BACKENDS = {"ascend": AscendBackend, "cambricon": CambriconBackend, "musa": MUSABackend}
VENDORS = list(BACKENDS)
VISIBLE = {"ascend": "ASCEND_RT_VISIBLE_DEVICES", "cambricon": "MLU_VISIBLE_DEVICES", "musa": "MUSA_VISIBLE_DEVICES"}
ALL_VISIBLE = ("ASCEND_RT_VISIBLE_DEVICES", "CN_VISIBLE_DEVICES", "MLU_VISIBLE_DEVICES", "CUDA_VISIBLE_DEVICES",
               "MUSA_VISIBLE_DEVICES")
PARAMS = {"model": "tiny", "dtype": "float32", "batch": 2, "prompt_len": 8, "gen_len": 4}
QUICK = Measure(warmup=1, repetitions=2, min_duration_s=0.0, tier="smoke")


@pytest.fixture
def fakes(monkeypatch, tmp_path):
    """Installer of fake vendors; a clean environment (no visible-devices variables, no SMI tools)."""
    monkeypatch.setenv("TORCH_DEVICE_BACKEND_AUTOLOAD", "0")
    for var in ALL_VISIBLE + ("ASCEND_TOOLKIT_HOME", "ASCEND_HOME_PATH", "NEUWARE_HOME", "MUSA_HOME"):
        monkeypatch.delenv(var, raising=False)
    tools = ("npu-smi", "cnmon", "mthreads-gmi")
    path = [p for p in os.environ["PATH"].split(os.pathsep) if not any((Path(p) / t).exists() for t in tools)]
    monkeypatch.setenv("PATH", os.pathsep.join(path))
    yield fake_vendors.install
    fake_vendors.uninstall()


def tool(folder: Path, name: str, script: str) -> None:
    """A fake SMI tool (bash script) in ``folder``."""
    path = folder / name
    path.write_text("#!/bin/bash\n" + script)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


def case(vendor: str, **options) -> Case:
    return Case(vendor, "llm", dict(PARAMS), QUICK, options)


# ----- end to end ---------------------------------------------------------------------------------
@pytest.mark.parametrize("vendor", VENDORS)
def test_execute_case_end_to_end(fakes, vendor):
    spec = fakes(vendor)
    result = execute_case(case(vendor))
    assert result["status"] == "ok", result["error"]
    backend = result["backend"]
    assert backend["device_name"] == spec.device_name
    assert backend["device_count"] == 2
    assert backend["memory_bytes"] == spec.total_memory
    assert backend["versions"][spec.package] == spec.version
    assert backend["info"]["collective_backend"] == {"ascend": "hccl", "cambricon": "cncl", "musa": "mccl"}[vendor]
    assert result["metrics"]["peak_mem_bytes"]["mean"] == spec.peak_bytes
    assert result["metrics"]["decode_tok_s"]["n"] == 2  # repetitions
    assert result["metrics"]["itl_ms"]["n"] == 2 * (PARAMS["gen_len"] - 1)  # decode steps, device-event timed
    assert "energy_j_per_token" not in result["metrics"]  # no SMI tool on PATH
    assert not any("gen_len" in r for r in result["validity"]["reasons"])  # exactly G tokens


def test_cli_run_in_child_process_with_device_ids(tmp_path, cli):
    env = {"PYTHONPATH": os.pathsep.join([str(ROOT), str(FAKES)]), "ACCELBENCH_FAKE_VENDORS": "ascend",
           "TORCH_DEVICE_BACKEND_AUTOLOAD": "0"}
    proc = cli("run", "--backend", "ascend", "--model", "tiny", "--batch", "1", "--prompt-len", "8",
                   "--gen-len", "4", "--warmup", "0", "--repetitions", "2", "--min-duration", "0",
                   "--device-ids", "1", "--out", str(tmp_path / "out"), env=env)
    assert proc.returncode == 0, proc.stderr
    [path] = (tmp_path / "out").glob("*.json")
    result = json.loads(path.read_text())
    assert result["status"] == "ok"
    assert result["backend"]["device_name"] == "Ascend910B3"
    assert result["backend"]["device_count"] == 1  # ASCEND_RT_VISIBLE_DEVICES=1 in the child
    assert result["backend"]["info"]["visible_devices"] == {"env": "ASCEND_RT_VISIBLE_DEVICES", "value": "1"}


@pytest.mark.parametrize("vendor", VENDORS)
def test_device_ids_set_the_visible_devices_variable(fakes, tmp_path, monkeypatch, vendor):
    fakes(vendor)
    var = VISIBLE[vendor]
    assert BACKENDS[vendor].visible_devices_env == var
    [result] = run_plan([case(vendor, device_ids="1")], tmp_path, isolation="inline")
    assert result["status"] == "ok" and result["backend"]["device_count"] == 1
    assert result["backend"]["info"]["visible_devices"] == {"env": var, "value": "1"}


# ----- why a backend is unavailable -----------------------------------------------------------------
@pytest.mark.parametrize("vendor, words", [("ascend", "CANN"), ("cambricon", "Neuware"), ("musa", "MUSA SDK")])
def test_not_installed(fakes, vendor, words):
    pkg = fake_vendors.SPECS[vendor].package
    probe = BACKENDS[vendor]().probe()
    assert not probe.available
    assert probe.reason.startswith(f"{pkg} is not installed (") and words in probe.reason


@pytest.mark.parametrize("vendor, lib, hint", [
    ("ascend", "libascendcl.so", "source /usr/local/Ascend/ascend-toolkit/set_env.sh"),
    ("cambricon", "libcnrt.so", "LD_LIBRARY_PATH=$NEUWARE_HOME/lib64"),
    ("musa", "libmusart.so.4", "MUSA_HOME=/usr/local/musa"),
])
def test_native_library_missing(fakes, vendor, lib, hint):
    error = f"{lib}: cannot open shared object file: No such file or directory"
    fakes(vendor, fail=ImportError(error))
    reason = BACKENDS[vendor]().probe().reason
    assert reason.startswith(f"import {fake_vendors.SPECS[vendor].package} failed: {error}; ")
    assert hint in reason


def test_old_torch_npu_exits_after_printing_the_error(fakes):
    printed = "ImportError: libascendcl.so: cannot open shared object file: No such file or directory. Please check that the runtime package is installed.\n"
    fakes("ascend", fail=SystemExit(), stderr="Traceback (most recent call last):\n" + printed)
    reason = AscendBackend().probe().reason
    assert "libascendcl.so: cannot open shared object file" in reason and "set_env.sh" in reason


CONFLICT = ("Two accelerators cannot be used at the same time in PyTorch: npu and cuda. You can install the cpu "
            "version of PyTorch to use your npu device, or use the cuda device with 'export TORCH_DEVICE_BACKEND_AUTOLOAD=0'.\n"
            "[ERROR] 2026-01-01-00:00:00 (PID:1, Device:-1, RankID:-1) ERR00007 PTA feature not supported")


def test_torch_npu_refuses_a_cuda_build_of_torch(fakes, monkeypatch):
    monkeypatch.setattr(torch.version, "cuda", "12.4")
    fakes("ascend", fail=RuntimeError(CONFLICT))
    reason = AscendBackend().probe().reason
    assert reason.startswith("torch_npu 2.13.0 refuses this torch: Two accelerators cannot be used at the same time")
    assert "is a CUDA build (torch.version.cuda=12.4)" in reason
    assert "pip install torch==2.13.0 from the PyTorch CPU wheel index" in reason
    assert "[ERROR]" not in reason


def test_torch_npu_refuses_a_second_accelerator(fakes):
    fakes("ascend", fail=RuntimeError(CONFLICT.replace("npu and cuda", "npu and npu")))
    reason = AscendBackend().probe().reason
    assert "refuses to load: Two accelerators" in reason and "TORCH_DEVICE_BACKEND_AUTOLOAD=0" in reason


@pytest.mark.parametrize("vendor, changes, required", [
    ("musa", dict(fail=RuntimeError("torch version must not be less than v2.14.0 when using torch_musa,",
                                    " but now torch version is 2.13.0+cpu")), "2.14.0"),
    ("musa", dict(requires=["torch==2.7.1"], fail=ImportError("_MUSAC.so: undefined symbol: _ZN3c104cuda"),
                  version="2.7.1"), "2.7.1"),
    ("ascend", dict(version="2.9.0.post6", fail=ImportError("libtorch_npu.so: undefined symbol: _ZN3c1010Dispatch")), "2.9.0"),
    ("cambricon", dict(version="1.24.0+torch2.4.0", fail=ImportError("_MLUC.so: undefined symbol: _ZN2at4_ops")), "2.4.0"),
])
def test_torch_version_the_vendor_package_refuses(fakes, vendor, changes, required):
    spec = fakes(vendor, **changes)
    reason = BACKENDS[vendor]().probe().reason
    assert reason.startswith(f"{spec.package} {spec.version} requires torch {required} but torch {torch.__version__} is installed")


@pytest.mark.parametrize("vendor, expected", [
    ("ascend", "torch.npu.is_available() is False: the driver reports no NPU (ASCEND_RT_VISIBLE_DEVICES not set); check `npu-smi`"),
    ("cambricon", "torch.mlu.is_available() is False: the driver reports no MLU (CN_VISIBLE_DEVICES, MLU_VISIBLE_DEVICES, CUDA_VISIBLE_DEVICES not set); check `cnmon`"),
    ("musa", "torch.musa.is_available() is False: the driver reports no GPU (MUSA_VISIBLE_DEVICES not set); check `mthreads-gmi`"),
])
def test_no_device(fakes, vendor, expected):
    fakes(vendor, available=False)
    assert BACKENDS[vendor]().probe().reason == expected


@pytest.mark.parametrize("vendor, value, expected", [
    ("ascend", "", "torch.npu.is_available() is False: ASCEND_RT_VISIBLE_DEVICES='' has no device id and hides every NPU"),
    ("ascend", "1,0", "torch.npu.is_available() is False: ASCEND_RT_VISIBLE_DEVICES='1,0' is not strictly ascending"),
    ("ascend", "7", "torch.npu.is_available() is False: no NPU visible with ASCEND_RT_VISIBLE_DEVICES='7' (torch.npu.device_count() is 0)"),
    ("cambricon", "", "torch.mlu.is_available() is False: MLU_VISIBLE_DEVICES='' is empty and hides every MLU"),
    ("musa", "9", "torch.musa.is_available() is False: no GPU visible with MUSA_VISIBLE_DEVICES='9' (torch.musa.device_count() is 0)"),
])
def test_zero_visible_devices(fakes, monkeypatch, vendor, value, expected):
    fakes(vendor)
    monkeypatch.setenv(VISIBLE[vendor], value)
    assert BACKENDS[vendor]().probe().reason.startswith(expected)


def test_cambricon_visible_devices_precedence(fakes, monkeypatch):
    fakes("cambricon")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")  # torch_mlu falls back to it
    assert CambriconBackend().probe().reason.startswith("torch.mlu.is_available() is False: CUDA_VISIBLE_DEVICES='' is empty")
    monkeypatch.setenv("MLU_VISIBLE_DEVICES", "1")  # MLU_VISIBLE_DEVICES wins over CUDA_VISIBLE_DEVICES
    assert CambriconBackend().probe().device_count == 1
    monkeypatch.setenv("CN_VISIBLE_DEVICES", "0")  # ... and CN_VISIBLE_DEVICES over both
    probe = CambriconBackend().probe()
    assert not probe.available
    assert probe.reason.startswith("CN_VISIBLE_DEVICES='0' overrides MLU_VISIBLE_DEVICES='1' (torch_mlu reads "
                                   "CN_VISIBLE_DEVICES, then MLU_VISIBLE_DEVICES, then CUDA_VISIBLE_DEVICES)")


# ----- dtypes, versions, compile -------------------------------------------------------------------------
@pytest.mark.parametrize("vendor, changes, bf16", [
    ("ascend", dict(device_name="Ascend910B3"), True),
    ("ascend", dict(device_name="Ascend910_9392"), True),
    ("ascend", dict(device_name="Ascend910B"), False),
    ("ascend", dict(device_name="Ascend910A"), False),
    ("ascend", dict(device_name="Ascend310P3"), False),
    ("cambricon", dict(device_name="MLU370-X8", major=3), False),
    ("cambricon", dict(device_name="MLU590-M9D", major=5), True),
    ("musa", dict(device_name="MTT S4000", major=2, minor=2), True),
    ("musa", dict(device_name="MTT S80", major=2, minor=1), False),
])
def test_bf16_rule(fakes, vendor, changes, bf16):
    fakes(vendor, **changes)
    backend = BACKENDS[vendor]()
    assert backend.probe().available
    assert ("bfloat16" in backend.supported_dtypes()) is bf16
    mod = backend.device_module()
    vendor_says = mod.is_bf16_supported(including_emulation=False) if vendor == "musa" else mod.is_bf16_supported()
    assert vendor_says is bf16


@pytest.mark.parametrize("vendor, files, driver_script, expected", [
    ("ascend", {"ASCEND_TOOLKIT_HOME": ("x86_64-linux/ascend_toolkit_install.info",
                                        "package_name=Ascend-cann-toolkit\nversion=8.0.RC2\ninnerversion=V100R001\n")},
     'echo "| npu-smi 24.1.rc2                 Version: 24.1.rc2                                     |"',
     {"cann": "8.0.RC2", "driver": "24.1.rc2"}),
    ("cambricon", {"NEUWARE_HOME": ("version.txt", "Neuware Version 3.9.0\n")},
     'echo "CNMON v5.10.22                                               Driver v5.10.22"',
     {"neuware": "3.9.0", "driver": "v5.10.22"}),
    ("musa", {"MUSA_HOME": ("version.json", '{"musa_toolkits": {"version": "3.1.0", "git_commit": "abc"}}')},
     'echo "mthreads-gmi:2.2.0           Driver Version:3.3.2-server"',
     {"musa_toolkit": "3.1.0", "driver": "3.3.2-server"}),
])
def test_toolkit_and_driver_versions(fakes, monkeypatch, tmp_path, vendor, files, driver_script, expected):
    fakes(vendor)
    backend = BACKENDS[vendor]()
    assert set(backend.probe().versions) == {"torch", fake_vendors.SPECS[vendor].package}  # nothing to read
    for var, (name, text) in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
        monkeypatch.setenv(var, str(tmp_path))
    tool(tmp_path, backend.smi_tool, driver_script)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    versions = backend.probe().versions
    assert {k: versions[k] for k in expected} == expected


def test_ascend_compile_backend_falls_back_to_torchair():
    backend = AscendBackend({"compile": True})
    assert backend.compile_backend_name(lambda: ["inductor", "npu", "npugraph_ex"]) == "npugraph_ex"
    assert backend.compile_backend_name(lambda: ["inductor", "npu"]) == "npu"
    with pytest.raises(UsageError, match="none of the torch.compile backends npugraph_ex, npu is registered"):
        backend.compile_backend_name(lambda: ["inductor"])
    assert MUSABackend({"compile": True}).compile_backend_name() == "inductor"


def test_cambricon_compile_is_a_clear_error(fakes):
    fakes("cambricon")
    result = execute_case(case("cambricon", compile=True))
    assert result["status"] == "failed"
    assert result["error"]["type"] == "UsageError"
    assert result["error"]["message"].startswith("--compile is not supported on backend 'cambricon': torch_mlu registers no torch.compile")


# ----- power telemetry --------------------------------------------------------------------------------
def test_parse_npu_smi():
    text = "        NPU Real-time Power(W)         : 93.5\n        Power Dissipation(W)           : 120.2\n"
    assert parse_npu_smi_power(text) == 93.5
    assert parse_npu_smi_power("Power Dissipation(W) : 88\n") == 88.0
    with pytest.raises(ValueError):
        parse_npu_smi_power("Error: device not found\n")
    classic = ("        NPU ID                         Chip ID                        Chip Logic ID                  Chip Name\n"
               "        0                              0                              0                              Ascend 910B3\n"
               "        0                              1                              -                              Mcu\n"
               "        1                              0                              1                              Ascend 910B3\n")
    assert parse_npu_smi_chips(classic) == {0: ("0", "0"), 1: ("1", "0")}
    a950 = "NPU ID  Slot ID  Chip ID  Chip Phy-ID  Chip Name\n4  0  0  8  Ascend 950\n4  0  1  9  Ascend 950\n"
    assert parse_npu_smi_chips(a950) == {0: ("4", None), 1: ("4", None)}


def test_parse_cnmon_and_mthreads_gmi():
    cnmon = ("Card 0\nPower\n  Usage                 : 75 W\n  Cap                   : 150 W\n"
             "Card 1\nPower\n  Usage                 : 80.5 W\n  Cap                   : 150 W\n")
    assert parse_cnmon_power(cnmon, 1) == 80.5
    assert parse_cnmon_power("Power\n Usage : 60 W\nPower\n Usage : 61 W\n", 1) == 61.0  # no card lines: order
    with pytest.raises(ValueError):
        parse_cnmon_power(cnmon, 2)
    gmi = json.dumps({"Driver Version": "3.3.2", "GPU": [
        {"Index": 0, "Power Readings": {"Power Draw ": "45.00 W"}},
        {"Index": "1", "Power Readings": {"Power Draw ": "N/A"}},
    ]})
    assert parse_mthreads_gmi_power(gmi, 0) == 45.0
    with pytest.raises(ValueError):
        parse_mthreads_gmi_power(gmi, 1)
    with pytest.raises(ValueError):
        parse_mthreads_gmi_power("not json", 0)


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_power_sampler_integrates_with_the_trapezoid_rule():
    assert trapezoid_joules([(0.0, 100.0)]) is None
    assert trapezoid_joules([(0.0, 100.0), (1.0, 200.0), (3.0, 200.0)]) == 150.0 + 400.0
    clock, watts = FakeClock(), iter([100.0, 200.0, 300.0])
    sampler = PowerSampler(lambda: next(watts), interval_s=3600, clock=clock)
    sampler.start()  # t=0: 100 W (the thread would poll only after an hour)
    clock.now = 1.0
    sampler.sample()  # t=1: 200 W
    clock.now = 2.0
    assert sampler.stop() == pytest.approx(150.0 + 250.0)  # t=2: 300 W


def test_power_sampler_gives_none_when_the_tool_fails_mid_run():
    clock, readings = FakeClock(), iter([100.0, RuntimeError("npu-smi exited with 1")])

    def read() -> float:
        value = next(readings)
        if isinstance(value, Exception):
            raise value
        return value

    sampler = PowerSampler(read, interval_s=3600, clock=clock)
    sampler.start()
    clock.now = 1.0
    assert sampler.stop() is None


NPU_SMI = """case "$*" in
  "info -m") printf 'NPU ID  Chip ID  Chip Logic ID  Chip Name\\n0  0  0  Ascend 910B3\\n1  0  1  Ascend 910B3\\n' ;;
  "info -t power -i "*) [ -f "$0.fail" ] && exit 1; echo "NPU Real-time Power(W) : $((90 + $5)).5" ;;
  *) echo "| npu-smi 24.1.rc2   Version: 24.1.rc2 |" ;;
esac
"""


def test_energy_meter_absent_present_and_failing(fakes, monkeypatch, tmp_path):
    fakes("ascend")
    assert AscendBackend().energy_meter() is None  # npu-smi not on PATH
    tool(tmp_path, "npu-smi", NPU_SMI)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("ASCEND_RT_VISIBLE_DEVICES", "1")
    meter = AscendBackend().energy_meter()
    assert isinstance(meter, PowerSampler) and meter._read() == 91.5  # torch index 0 = logic id 1
    result = execute_case(case("ascend"))
    assert result["status"] == "ok" and result["metrics"]["energy_j_per_token"]["mean"] > 0
    assert result["backend"]["info"]["power_telemetry"] == "npu-smi"
    (tmp_path / "npu-smi.fail").write_text("")  # every power reading now fails: no energy, no failure
    result = execute_case(case("ascend"))
    assert result["status"] == "ok" and "energy_j_per_token" not in result["metrics"]
