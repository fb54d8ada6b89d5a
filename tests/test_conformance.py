"""The conformance kit on the project's own backends and on deliberately broken ones."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from backends.ascend import AscendBackend
from backends.base import Probe
from backends.cambricon import CambriconBackend
from backends.cpu import CPUBackend
from backends.cuda import CUDABackend
from backends.musa import MUSABackend
from backends.torch_device import TorchLLMSession
from harness.conformance import assert_conforms, check_backend

sys.path.insert(0, str(Path(__file__).resolve().parent / "fakes"))
import fake_vendors  # noqa: E402

VENDORS = {"ascend": AscendBackend, "cambricon": CambriconBackend, "musa": MUSABackend}


@pytest.fixture
def fakes(monkeypatch):
    monkeypatch.setenv("TORCH_DEVICE_BACKEND_AUTOLOAD", "0")
    for var in ("ASCEND_RT_VISIBLE_DEVICES", "CN_VISIBLE_DEVICES", "MLU_VISIBLE_DEVICES", "CUDA_VISIBLE_DEVICES",
                "MUSA_VISIBLE_DEVICES"):
        monkeypatch.delenv(var, raising=False)
    yield fake_vendors.install
    fake_vendors.uninstall()


def test_cpu_conforms():
    assert check_backend(CPUBackend) == []
    assert_conforms(CPUBackend(), dtype="bfloat16")


def test_cuda_probe_conforms_when_unavailable():
    probe = CUDABackend().probe()
    assert check_backend(CUDABackend) == []
    if not probe.available:
        assert probe.reason


@pytest.mark.parametrize("vendor", VENDORS)
def test_fake_vendors_conform(fakes, vendor):
    fakes(vendor)
    assert_conforms(VENDORS[vendor])


@pytest.mark.parametrize("vendor", VENDORS)
def test_unavailable_vendors_conform(vendor):
    assert check_backend(VENDORS[vendor]) == []  # not installed here: the probe part only


def test_dtype_outside_supported_dtypes(fakes):
    fakes("cambricon")  # MLU370: no bf16
    assert check_backend(CambriconBackend, dtype="bfloat16") == [
        "dtype bfloat16 is not in supported_dtypes() ['float32', 'float16']"]


# ----- broken backends --------------------------------------------------------------------------------
class ProbeRaises(CPUBackend):
    name = "probe-raises"

    def probe(self) -> Probe:
        raise RuntimeError("no driver")


class ProbeBadTypes(CPUBackend):
    name = "probe-bad-types"

    def probe(self) -> Probe:
        return Probe("no", None)  # type: ignore[arg-type]


class ProbeNoReason(CPUBackend):
    name = "probe-no-reason"

    def probe(self) -> Probe:
        return Probe(False, " ")


class BackwardsTimer(CPUBackend):
    name = "backwards-timer"

    def timer(self):
        class Timer:
            def start(self) -> None:
                pass

            def mark(self) -> None:
                pass

            def read_ns(self) -> list[int]:
                return [5, 3, 4, 6]

        return Timer()


class WrongShapeSession(TorchLLMSession):
    def prefill(self, input_ids):
        return super().prefill(input_ids)[:, None]  # [B, 1] instead of [B]

    def decode(self, ids):
        return super().decode(ids).float()


class WrongShape(CPUBackend):
    name = "wrong-shape"

    def load_llm(self, spec, dtype, max_batch, max_seq):
        session = super().load_llm(spec, dtype, max_batch, max_seq)
        return WrongShapeSession(session.model, session.device)


class FloatIds(WrongShape):
    name = "float-ids"

    def load_llm(self, spec, dtype, max_batch, max_seq):
        session = super().load_llm(spec, dtype, max_batch, max_seq)
        session.prefill = lambda ids: TorchLLMSession.prefill(session, ids)  # shape fixed, decode still float
        return session


class BadMemoryAndDtypes(CPUBackend):
    name = "bad-memory"

    def peak_memory_bytes(self):
        return 1.5

    def supported_dtypes(self):
        return []


class ResetRaises(CPUBackend):
    name = "reset-raises"

    def load_llm(self, spec, dtype, max_batch, max_seq):
        session = super().load_llm(spec, dtype, max_batch, max_seq)

        def reset():
            raise ValueError("cache not allocated")

        session.reset = reset
        return session


@pytest.mark.parametrize("backend, problems", [
    (ProbeRaises, ["probe() raised RuntimeError: no driver (probe must never raise: return Probe(False, reason))"]),
    (ProbeBadTypes, ["Probe.available is str, expected bool", "Probe.reason is NoneType, expected str"]),
    (ProbeNoReason, ["Probe.reason is empty although the backend is unavailable (say what is missing)"]),
    (BackwardsTimer, ["timer.read_ns() must start at 0, got 5", "timer marks are not monotonic non-decreasing: [5, 3, 4, 6]"]),
    (WrongShape, ["prefill() returned shape (2, 1), expected (2,) (one greedy id per sequence)"]),
    (FloatIds, ["decode() returned dtype torch.float32, expected an integer dtype"]),
    (BadMemoryAndDtypes, ["supported_dtypes() must be a non-empty list of str, got []",
                          "peak_memory_bytes() returned float, expected int or None"]),
    (ResetRaises, ["reset() raised ValueError: cache not allocated"]),
])
def test_broken_backends_yield_specific_problems(backend, problems):
    assert check_backend(backend) == problems


def test_assert_conforms_lists_the_problems():
    with pytest.raises(AssertionError, match=r"backend 'probe-raises' does not conform:\n- probe\(\) raised RuntimeError"):
        assert_conforms(ProbeRaises)


def test_constructor_failure_is_a_problem():
    class Broken(CPUBackend):
        def __init__(self, options=None):
            raise OSError("cannot open /dev/davinci0")

    assert check_backend(Broken) == ["Broken({}) raised OSError: cannot open /dev/davinci0"]
