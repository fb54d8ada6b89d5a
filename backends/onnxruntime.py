"""The ``onnxruntime`` backend: the workload's model exported to ONNX, run by an execution provider.

Option ``provider``: ``cpu`` (default), ``cuda`` or ``cann`` (or the full names
``CPUExecutionProvider``, ``CUDAExecutionProvider``, ``CANNExecutionProvider``). Provider names and
the CANN options are from research/vendor-apis.md section 4.

- Probe: available iff ``onnxruntime`` imports, the exporter's packages import (onnx, onnxscript)
  and the provider is in ``onnxruntime.get_available_providers()`` (the EPs built into the
  installed wheel: ``onnxruntime`` has CPU, ``onnxruntime-gpu`` CUDA, ``onnxruntime-cann`` CANN).
- A provider that fails to initialise makes ORT fall back to CPU with only a log line ("Falling back
  to ['CPUExecutionProvider'] and retrying", vendor-apis.md section 4). Every session created here
  checks ``session.get_providers()[0]`` and raises when it is not the requested provider: a silent
  fall-back is an error, never a result.
- LLM: ``spec.build("cpu", dtype)`` is exported once per session to a temp folder (outside the
  timing) as one step graph (see backends/onnx_export.py) and run with IO binding: the KV cache
  lives in two device buffer sets that swap roles each step (read set s, write set 1 - s), the
  position is a device buffer produced by the graph, and each step's next ids are written into a
  row of a device id pool that the next step reads as its input. No host copy inside the loop.
- Timing: the host clock. ``run_with_iobinding`` returns when the work is done: ORT synchronises the
  execution providers at the end of every Run unless the run option
  ``disable_synchronize_execution_providers`` is set (it is not here), so ``perf_counter_ns`` marks
  are correct for CPU, CUDA and CANN alike.
"""

from __future__ import annotations

import importlib
import os
import shutil
import tempfile
import weakref
from typing import Any, Callable, ClassVar

from backends.base import Backend, LLMSession, PerfCounterTimer, Probe, Timer
from harness.errors import UsageError

CPU, CUDA, CANN = "CPUExecutionProvider", "CUDAExecutionProvider", "CANNExecutionProvider"
#: Accepted spellings (lower-cased) -> ORT provider name.
PROVIDER_ALIASES = {"cpu": CPU, "cuda": CUDA, "cann": CANN, "npu": CANN, "ascend": CANN}
PROVIDER_ALIASES.update({p.lower(): p for p in (CPU, CUDA, CANN)})
#: OrtValue device type strings per provider (IO binding).
ORT_DEVICE = {CPU: "cpu", CUDA: "cuda", CANN: "cann"}
#: Wheel that brings each provider.
INSTALL_HINT = {CPU: "onnxruntime", CUDA: "onnxruntime-gpu", CANN: "onnxruntime-cann"}
#: CANN EP options passed by default (vendor-apis.md section 4: keys every documented release takes).
CANN_DEFAULTS = {"device_id": 0, "arena_extend_strategy": "kNextPowerOfTwo", "enable_cann_graph": True}
ARENA_STRATEGIES = ("kNextPowerOfTwo", "kSameAsRequested")


def normalize_provider(name: str | None) -> str:
    """``cpu``/``cuda``/``cann`` or a full provider name -> the ORT provider name; UsageError else."""
    if name is None or str(name).strip() == "":
        return CPU
    full = PROVIDER_ALIASES.get(str(name).strip().lower())
    if full is None:
        raise UsageError(
            f"unknown onnxruntime provider '{name}' (use cpu, cuda or cann, or {CPU}, {CUDA}, {CANN})"
        )
    return full


def _as_bool(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise UsageError(f"onnxruntime option {name} must be true or false, got {value!r}")


def _as_int(name: str, value: Any, minimum: int = 0) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = None
    if number is None or isinstance(value, bool) or number < minimum:
        raise UsageError(f"onnxruntime option {name} must be an integer >= {minimum}, got {value!r}")
    return number


class DeviceIds:
    """Greedy ids [B] of one step, living in a row of the session's device id pool.

    Has ``shape``, ``dtype``, ``len()`` and ``tolist()`` (which reads the device: not for timed code).
    The row stays valid until the session's next ``prefill``.
    """

    def __init__(self, session: "OrtLLMSession", row: int) -> None:
        self._session, self.row = session, row
        self.shape = (session.batch,)
        self.dtype = session.ids_dtype

    def __len__(self) -> int:
        return self.shape[0]

    def data_ptr(self) -> int:
        return self._session.row_ptr(self.row)

    def numpy(self) -> Any:
        return self._session.host_ids()[self.row].copy()

    def tolist(self) -> list[int]:
        return [int(x) for x in self.numpy()]

    def __iter__(self):
        return iter(self.tolist())

    def __repr__(self) -> str:
        return f"DeviceIds(row={self.row}, ids={self.tolist()})"


class Prompt:
    """A prompt placed on the device: ids [B, P] and positions [P] as OrtValues."""

    def __init__(self, ids: Any, pos: Any, shape: tuple[int, int], keep: tuple = ()) -> None:
        self.ids, self.pos, self.shape, self._keep = ids, pos, shape, keep


class OrtLLMSession:
    """Greedy generation on an ORT session with the KV cache bound as device OrtValues."""

    def __init__(self, backend: "OnnxRuntimeBackend", session: Any, exported: Any, folder: str) -> None:
        import numpy as np

        from backends.onnx_export import INPUT_IDS, INPUT_POS, NEXT_IDS, NEXT_POS

        self._np = np
        self.ids_dtype = np.dtype(np.int64)
        self._ort = importlib.import_module("onnxruntime")
        self.session = session
        self.batch, self.max_seq = exported.batch, exported.max_seq
        self._dev, self._dev_id = backend.ort_device, backend.device_id
        np_dtype = {"float32": np.float32, "float16": np.float16}[exported.dtype]
        self._names = (INPUT_IDS, INPUT_POS, NEXT_IDS, NEXT_POS)
        # Two cache sets, zero-filled once (positions beyond the current one are masked, but the
        # mask is applied as -inf logits; uninitialised memory could hold NaN, and 0 * NaN = NaN).
        self._keep: list[Any] = []  # numpy arrays CPU OrtValues wrap without copying
        self._caches = [[self._value(np.zeros(exported.cache_shape, np_dtype)) for _ in exported.cache_inputs]
                        for _ in range(2)]
        self._pos = [self._value(np.zeros(1, np.int64)) for _ in range(2)]
        # Id pool: row 0 = prefill's ids, row k = decode step k's ids; at most max_seq steps.
        self._rows = self.max_seq + 1
        self._pool_host = np.zeros((self._rows, self.batch), np.int64)
        self._pool = self._value(self._pool_host)
        self._pool_ptr = self._pool.data_ptr()
        # One IO binding per parity s: caches set s -> set 1 - s, pos s -> pos 1 - s.
        self._bindings = []
        for s in range(2):
            io = session.io_binding()
            for name, value in zip(exported.cache_inputs, self._caches[s]):
                io.bind_ortvalue_input(name, value)
            for name, value in zip(exported.cache_outputs, self._caches[1 - s]):
                io.bind_ortvalue_output(name, value)
            io.bind_ortvalue_output(NEXT_POS, self._pos[1 - s])
            self._bindings.append(io)
        self._set = 0  # the cache set holding the current context
        self._row = -1  # the pool row of the last ids
        self._folder = folder
        self._cleanup = weakref.finalize(self, shutil.rmtree, folder, True)

    # ----- device buffers --------------------------------------------------------------------
    def _value(self, array: Any, keep: bool = True) -> Any:
        """An OrtValue on the session's device with ``array``'s contents. On the CPU the OrtValue
        wraps the array's memory, so the array must outlive it (``keep``, or the caller keeps it)."""
        array = self._np.ascontiguousarray(array)
        if keep:
            self._keep.append(array)
        return self._ort.OrtValue.ortvalue_from_numpy(array, self._dev, self._dev_id)

    def row_ptr(self, row: int) -> int:
        return self._pool_ptr + row * self.batch * 8

    def host_ids(self) -> Any:
        """The id pool on the host (the CPU pool is the numpy array itself; else a device copy)."""
        if self._dev == "cpu":
            return self._pool_host
        return self._pool.numpy()

    def _bind_ids_out(self, io: Any, row: int) -> None:
        io.bind_output(self._names[2], self._dev, self._dev_id, self._np.int64, [self.batch], self.row_ptr(row))

    # ----- contract ------------------------------------------------------------------------
    def to_device(self, input_ids_cpu: Any) -> Prompt:
        np = self._np
        ids = np.ascontiguousarray(input_ids_cpu.numpy() if hasattr(input_ids_cpu, "numpy") else input_ids_cpu,
                                   dtype=np.int64)
        if ids.ndim != 2 or ids.shape[0] != self.batch:
            raise ValueError(f"prompt shape {tuple(ids.shape)}: the exported graph takes batch {self.batch}")
        if ids.shape[1] > self.max_seq:
            raise ValueError(f"prompt length {ids.shape[1]} exceeds the KV cache ({self.max_seq})")
        pos = np.arange(ids.shape[1], dtype=np.int64)
        return Prompt(self._value(ids, keep=False), self._value(pos, keep=False), ids.shape, keep=(ids, pos))

    def reset(self) -> None:
        # Stale cache entries beyond the new context are finite and masked: no re-zeroing needed.
        self._set, self._row = 0, -1

    def _run(self, io: Any) -> None:
        self.session.run_with_iobinding(io)  # synchronous: see the module docstring
        self._set = 1 - self._set

    def prefill(self, prompt: Any) -> DeviceIds:
        if not isinstance(prompt, Prompt):
            prompt = self.to_device(prompt)
        io = self._bindings[self._set]
        io.bind_ortvalue_input(self._names[0], prompt.ids)
        io.bind_ortvalue_input(self._names[1], prompt.pos)
        self._row = 0
        self._bind_ids_out(io, 0)
        self._run(io)
        return DeviceIds(self, 0)

    def decode(self, ids: Any) -> DeviceIds:
        np = self._np
        row = self._row + 1
        if row >= self._rows:
            raise RuntimeError(f"decode beyond the KV cache ({self.max_seq} positions); call reset()")
        io = self._bindings[self._set]
        if isinstance(ids, DeviceIds) and ids._session is self:
            io.bind_input(self._names[0], self._dev, self._dev_id, np.int64, [self.batch, 1], ids.data_ptr())
        else:  # ids from elsewhere: upload them (outside the no-copy path)
            host = np.ascontiguousarray(ids.tolist() if hasattr(ids, "tolist") else list(ids), dtype=np.int64)
            io.bind_ortvalue_input(self._names[0], self._value(host.reshape(self.batch, 1), keep=False))
            self._upload = host  # alive until the next upload (CPU OrtValues wrap it)
        io.bind_ortvalue_input(self._names[1], self._pos[self._set])
        self._bind_ids_out(io, row)
        self._row = row
        self._run(io)
        return DeviceIds(self, row)

    def close(self) -> None:
        self.session = None
        self._bindings = []
        self._cleanup()


class OnnxRuntimeBackend(Backend):
    """ONNX Runtime with one execution provider (option ``provider``: cpu, cuda, cann).

    Other options: ``device_id`` (CUDA and CANN, default 0); CANN: ``npu_mem_limit`` (bytes),
    ``arena_extend_strategy`` (kNextPowerOfTwo | kSameAsRequested), ``enable_cann_graph``
    (default true); ``threads`` (CPU intra-op threads; default: ORT's choice, the physical cores).
    """

    name = "onnxruntime"
    #: Never picked by ``--backend auto`` over the torch CPU backend (priority 0).
    priority: ClassVar[int] = -1

    def __init__(self, options: dict[str, Any] | None = None) -> None:
        super().__init__(options)
        # Unknown provider or bad option values: UsageError here, inside the runner's try, so the
        # case fails with this one line (probe() is never reached and so never raises).
        self.provider = normalize_provider(self.options.get("provider"))
        self.device_id = _as_int("device_id", self.options.get("device_id") or 0)
        self.ort_device = ORT_DEVICE[self.provider]
        self.provider_options = self._provider_options()

    def _provider_options(self) -> dict[str, str]:
        """Options of the requested EP, as strings (ORT's Python layer str()s them anyway; "1"/"0"
        for booleans, which every release's parser takes)."""
        if self.provider == CUDA:
            return {"device_id": str(self.device_id)}
        if self.provider != CANN:
            return {}
        opts: dict[str, Any] = dict(CANN_DEFAULTS, device_id=self.device_id)
        if self.options.get("npu_mem_limit") is not None:
            opts["npu_mem_limit"] = _as_int("npu_mem_limit", self.options["npu_mem_limit"], 1)
        strategy = self.options.get("arena_extend_strategy")
        if strategy is not None:
            if strategy not in ARENA_STRATEGIES:
                raise UsageError(f"onnxruntime option arena_extend_strategy must be one of "
                                 f"{', '.join(ARENA_STRATEGIES)}, got {strategy!r}")
            opts["arena_extend_strategy"] = strategy
        if self.options.get("enable_cann_graph") is not None:
            opts["enable_cann_graph"] = _as_bool("enable_cann_graph", self.options["enable_cann_graph"])
        return {k: ("1" if v else "0") if isinstance(v, bool) else str(v) for k, v in opts.items()}

    def providers_arg(self) -> list[Any]:
        """The ``providers`` argument of ``InferenceSession``: the requested EP, then CPU for nodes it lacks."""
        if self.provider == CPU:
            return [CPU]
        return [(self.provider, self.provider_options), CPU]

    # ----- probe ----------------------------------------------------------------------------
    def probe(self) -> Probe:
        try:
            return self._probe()
        except Exception as exc:  # probe() must never raise
            return Probe(False, f"probe of onnxruntime failed: {type(exc).__name__}: {exc}")

    def _probe(self) -> Probe:
        try:
            ort = importlib.import_module("onnxruntime")
        except ImportError as exc:
            return Probe(False, f"onnxruntime is not installed or does not import ({exc}); "
                                f"install {INSTALL_HINT[self.provider]}")
        versions = {"onnxruntime": str(ort.__version__)}
        info = {"provider": self.provider, "provider_options": self.provider_options}
        for module in ("onnx", "onnxscript"):  # the exporter's packages
            try:
                versions[module] = str(importlib.import_module(module).__version__)
            except ImportError:
                return Probe(False, f"{module} is not installed (needed to export models to ONNX); "
                                    f"pip install 'accelbench[onnx]'", versions=versions, info=info)
        available = list(ort.get_available_providers())
        if self.provider not in available:
            return Probe(False, f"{self.provider} not in onnxruntime.get_available_providers() ({available}); "
                                f"install {INSTALL_HINT[self.provider]}", versions=versions, info=info)
        name, count, memory = self._device_facts()
        return Probe(True, "", device_name=name, device_count=count, memory_bytes=memory,
                     versions=versions, info=info)

    def _device_facts(self) -> tuple[str, int, int | None]:
        if self.provider == CPU:
            from backends.cpu import cpu_model_name

            memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") if hasattr(os, "sysconf") else None
            return cpu_model_name(), 1, memory
        module = "cuda" if self.provider == CUDA else "npu"
        try:  # torch knows the device name when its build has the device (torch_npu for Ascend)
            import torch

            if module == "npu":
                importlib.import_module("torch_npu")
            mod = getattr(torch, module)
            if mod.is_available():
                props = mod.get_device_properties(self.device_id)
                return str(mod.get_device_name(self.device_id)), int(mod.device_count()), getattr(props, "total_memory", None)
        except Exception:  # noqa: BLE001 - the name is a nicety; the provider is what counts
            pass
        return self.provider, 1, None

    # ----- device ---------------------------------------------------------------------------
    def device(self) -> Any:
        return f"{self.ort_device}:{self.device_id}"

    def supported_dtypes(self) -> list[str]:
        # float16 exports and runs on every provider (checked on the CPU provider with ORT 1.31);
        # bfloat16 does not: ORT's CPU provider has no bf16 Where, and numpy has no bf16 buffers.
        return ["float32", "float16"]

    def timer(self) -> Timer:
        # Host clock: run_with_iobinding is synchronous (module docstring).
        return PerfCounterTimer()

    def peak_memory_bytes(self) -> int | None:
        # ORT exposes no per-session peak; the process RSS would include the torch export.
        return None

    # ----- sessions ---------------------------------------------------------------------------
    def create_session(self, model: str | bytes) -> Any:
        """An InferenceSession on the requested provider; RuntimeError on a fall-back to CPU."""
        ort = importlib.import_module("onnxruntime")
        opts = ort.SessionOptions()
        if self.options.get("threads"):
            opts.intra_op_num_threads = _as_int("threads", self.options["threads"], 1)
        opts.log_severity_level = 3  # errors only; the fall-back check below reports what matters
        session = ort.InferenceSession(model, sess_options=opts, providers=self.providers_arg())
        active = list(session.get_providers())
        if not active or active[0] != self.provider:
            raise RuntimeError(
                f"requested {self.provider} but the session runs on {active[0] if active else 'no provider'}: "
                f"the provider failed to initialise and onnxruntime fell back (providers in use: {active}; "
                f"check the {INSTALL_HINT[self.provider]} install, drivers and device_id={self.device_id})"
            )
        return session

    def load_llm(self, spec: Any, dtype: str, max_batch: int, max_seq: int) -> LLMSession:
        import gc

        from backends.onnx_export import export_llm

        if dtype not in self.supported_dtypes():
            raise UsageError(f"onnxruntime {self.provider} does not run dtype {dtype} "
                             f"(supported: {', '.join(self.supported_dtypes())})")
        folder = tempfile.mkdtemp(prefix="accelbench-ort-")
        try:
            model = spec.build("cpu", dtype)
            exported = export_llm(model, max_batch, max_seq, folder, dtype)
            del model
            gc.collect()
            session = self.create_session(exported.path)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        return OrtLLMSession(self, session, exported, folder)

    def _values(self, *arrays: Any) -> list[Any]:
        ort = importlib.import_module("onnxruntime")
        return [ort.OrtValue.ortvalue_from_numpy(a, self.ort_device, self.device_id) for a in arrays]

    def make_gemm(self, m: int, n: int, k: int, dtype: str, seed: int = 0) -> Callable[[], Any]:
        import numpy as np

        from backends.onnx_export import gemm_model

        np_dtype = {"float32": np.float32, "float16": np.float16}[dtype]
        rng = np.random.default_rng(seed)
        a = rng.standard_normal((m, k), dtype=np.float32).astype(np_dtype)
        b = rng.standard_normal((k, n), dtype=np.float32).astype(np_dtype)
        c = np.empty((m, n), np_dtype)
        session = self.create_session(gemm_model(m, n, k, dtype))
        va, vb, vc = self._values(a, b, c)
        io = session.io_binding()
        io.bind_ortvalue_input("a", va)
        io.bind_ortvalue_input("b", vb)
        io.bind_ortvalue_output("c", vc)
        keep = (a, b, c, va, vb, vc)

        def run() -> Any:
            session.run_with_iobinding(io)
            return keep[-1]

        return run

    def make_copy(self, nbytes: int) -> Callable[[], Any]:
        import numpy as np

        from backends.onnx_export import copy_model

        dtype, np_dtype, numel = ("float32", np.float32, nbytes // 4) if nbytes % 4 == 0 else ("uint8", np.uint8, nbytes)
        src = np.ones(numel, np_dtype)
        dst = np.zeros(numel, np_dtype)
        session = self.create_session(copy_model(numel, dtype))
        vs, vd = self._values(src, dst)
        io = session.io_binding()
        io.bind_ortvalue_input("x", vs)
        io.bind_ortvalue_output("y", vd)
        keep = (src, dst, vs, vd)

        def run() -> Any:
            session.run_with_iobinding(io)
            return keep[-1]

        return run
