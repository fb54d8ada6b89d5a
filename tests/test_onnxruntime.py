"""The onnxruntime backend: CPU-provider parity with the cpu backend, the runner end to end,
provider names and options, unavailable providers, and the silent fall-back check (simulated)."""

from __future__ import annotations

import json

import onnxruntime
import pytest

from backends.base import PerfCounterTimer
from backends.cpu import CPUBackend, cpu_model_name
from backends.onnxruntime import CANN, CPU, CUDA, OnnxRuntimeBackend, normalize_provider
from harness.conformance import check_backend
from harness.errors import UsageError
from harness.execute import execute_case
from harness.plan import Case, Measure
from workloads.llm.workload import LLMWorkload

QUICK = Measure(warmup=1, repetitions=2, min_duration_s=0.0, seed=0)


def _generate(backend, params, seed=0):
    trial = LLMWorkload().setup(backend, params, seed)
    try:
        trial.run(PerfCounterTimer())
        first = trial.generated()
        assert trial.tokens_ok()
        trial.run(PerfCounterTimer())  # reset() + a second run gives the same tokens
        assert trial.generated() == first
        return first
    finally:
        trial.close()


def test_cpu_provider_tokens_equal_cpu_backend():
    params = LLMWorkload().validate({"model": "tiny", "batch": 2, "prompt_len": 8, "gen_len": 6})
    expected = _generate(CPUBackend({}), params)
    got = _generate(OnnxRuntimeBackend({"provider": "cpu"}), params)
    assert len(got) == 2 and all(len(row) == 6 for row in got)
    assert got == expected


@pytest.mark.parametrize(
    "workload, params, metric",
    [
        ("llm", {"model": "tiny", "batch": 2, "prompt_len": 8, "gen_len": 6}, "decode_tok_s"),
        ("gemm", {"dtype": "float32", "size": 64, "iters": 3}, "tflops"),
        ("membw", {"size_mb": 1, "iters": 3}, "gbps"),
    ],
)
def test_execute_case_ok(workload, params, metric):
    result = execute_case(Case("onnxruntime", workload, params, QUICK, {"provider": "cpu"}))
    assert result["status"] == "ok", result["error"]
    assert result["metrics"][metric]["n"] >= 2 and result["metrics"][metric]["mean"] > 0
    assert result["backend"]["device_name"] == cpu_model_name()  # scores as the cpu backend's device
    assert result["backend"]["versions"]["onnxruntime"] == onnxruntime.__version__
    if workload == "llm":
        assert {"ttft_ms", "itl_ms", "tpot_ms", "prefill_tok_s"} <= set(result["metrics"])


def test_conforms():
    assert check_backend(OnnxRuntimeBackend) == []


def test_copy_kernel_copies():
    run = OnnxRuntimeBackend({}).make_copy(4096)
    assert run().numpy().sum() == 1024  # float32 ones copied into the zeroed output


@pytest.mark.parametrize("given, full", [
    (None, CPU), ("", CPU), ("cpu", CPU), ("CPU", CPU), ("CPUExecutionProvider", CPU),
    ("cuda", CUDA), ("CUDAExecutionProvider", CUDA), ("cann", CANN), ("CANNExecutionProvider", CANN),
    ("cannexecutionprovider", CANN),
])
def test_provider_names(given, full):
    assert normalize_provider(given) == full
    assert OnnxRuntimeBackend({"provider": given}).provider == full


def test_unknown_provider_is_one_clear_line():
    with pytest.raises(UsageError) as info:
        OnnxRuntimeBackend({"provider": "tpu"})
    message = str(info.value)
    assert message == ("unknown onnxruntime provider 'tpu' (use cpu, cuda or cann, or CPUExecutionProvider, "
                       "CUDAExecutionProvider, CANNExecutionProvider)")
    result = execute_case(Case("onnxruntime", "gemm", {"size": 64}, QUICK, {"provider": "tpu"}))
    assert result["status"] == "failed" and result["error"]["message"] == message


@pytest.mark.parametrize("provider, wheel", [("cann", "onnxruntime-cann"), ("cuda", "onnxruntime-gpu")])
def test_absent_provider_is_unavailable_with_reason(provider, wheel):
    full = normalize_provider(provider)
    assert full not in onnxruntime.get_available_providers()  # this machine has the CPU wheel
    probe = OnnxRuntimeBackend({"provider": provider}).probe()
    assert probe.available is False
    assert probe.reason.startswith(f"{full} not in onnxruntime.get_available_providers() (['")
    assert "CPUExecutionProvider" in probe.reason and probe.reason.endswith(f"install {wheel}")
    assert probe.versions["onnxruntime"] == onnxruntime.__version__


class FakeSession:
    """Stands in for onnxruntime.InferenceSession; records the providers argument."""

    calls: list = []
    active: list = []

    def __init__(self, model, sess_options=None, providers=None):
        FakeSession.calls.append(providers)

    def get_providers(self):
        return list(FakeSession.active)


@pytest.fixture
def fake_ort(monkeypatch):
    FakeSession.calls = []
    monkeypatch.setattr(onnxruntime, "InferenceSession", FakeSession)
    monkeypatch.setattr(onnxruntime, "get_available_providers", lambda: [CANN, CUDA, CPU])
    return FakeSession


def test_silent_fallback_to_cpu_is_an_error(fake_ort):
    fake_ort.active = [CPU]  # the CUDA EP failed to initialise and ORT fell back
    backend = OnnxRuntimeBackend({"provider": "cuda"})
    assert backend.probe().available is True
    with pytest.raises(RuntimeError, match=r"^requested CUDAExecutionProvider but the session runs on "
                                           r"CPUExecutionProvider: "):
        backend.make_gemm(8, 8, 8, "float32")
    assert fake_ort.calls == [[(CUDA, {"device_id": "0"}), CPU]]
    result = execute_case(Case("onnxruntime", "gemm", {"size": 8}, QUICK, {"provider": "cuda"}))
    assert result["status"] == "failed" and result["error"]["type"] == "RuntimeError"
    assert "requested CUDAExecutionProvider but the session runs on CPUExecutionProvider" in result["error"]["message"]
    assert not result["metrics"]


def test_cann_provider_options_pass_through(fake_ort):
    fake_ort.active = [CANN, CPU]
    OnnxRuntimeBackend({"provider": "cann"}).create_session(b"model")
    options = {"provider": "CANNExecutionProvider", "device_id": 1, "npu_mem_limit": 2 * 1024**3,
               "arena_extend_strategy": "kSameAsRequested", "enable_cann_graph": False}
    OnnxRuntimeBackend(options).create_session(b"model")
    assert fake_ort.calls == [
        [(CANN, {"device_id": "0", "arena_extend_strategy": "kNextPowerOfTwo", "enable_cann_graph": "1"}), CPU],
        [(CANN, {"device_id": "1", "arena_extend_strategy": "kSameAsRequested", "enable_cann_graph": "0",
                 "npu_mem_limit": str(2 * 1024**3)}), CPU],
    ]


@pytest.mark.parametrize("options, text", [
    ({"arena_extend_strategy": "kDouble"}, "arena_extend_strategy must be one of kNextPowerOfTwo, kSameAsRequested"),
    ({"npu_mem_limit": "lots"}, "npu_mem_limit must be an integer >= 1"),
    ({"enable_cann_graph": "maybe"}, "enable_cann_graph must be true or false"),
])
def test_bad_cann_options(options, text):
    with pytest.raises(UsageError, match=text):
        OnnxRuntimeBackend({"provider": "cann", **options})


def test_cli_cann_is_unavailable_exit_1(cli, tmp_path):
    out = tmp_path / "ort"
    proc = cli("run", "--backend", "onnxruntime", "--provider", "cann", "--workload", "gemm", "--size", "64",
               "--out", str(out))
    assert proc.returncode == 1, proc.stderr
    (path,) = out.glob("*.json")
    result = json.loads(path.read_text())
    assert result["status"] == "unavailable"
    assert result["error"]["message"].startswith("CANNExecutionProvider not in onnxruntime.get_available_providers()")
