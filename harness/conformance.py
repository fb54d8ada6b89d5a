"""Conformance kit: does a backend keep the contract of ``backends/base.py``?

    from harness.conformance import assert_conforms, check_backend
    problems = check_backend(MyBackend)        # [] when it conforms
    assert_conforms(MyBackend, dtype="bfloat16")  # in a pytest test

The probe must never raise and must return a :class:`backends.base.Probe` with a bool
``available`` and a str ``reason`` (saying why, when unavailable). Only an available backend is
checked further: ``supported_dtypes()``, the memory calls, the timer (marks start at 0 and never
decrease), and an LLM session on the ``tiny`` model (``to_device``, ``prefill`` and ``decode``
return integer ids of shape [B], ``reset()``).
"""

from __future__ import annotations

from typing import Any

from backends.base import Backend, Probe

BATCH, PROMPT, STEPS = 2, 4, 3


def _fail(what: str, exc: BaseException) -> str:
    return f"{what} raised {type(exc).__name__}: {exc}"


def _shape(x: Any) -> tuple[int, ...] | None:
    shape = getattr(x, "shape", None)
    return tuple(int(d) for d in shape) if shape is not None else None


def _is_integer(x: Any) -> bool:
    dtype = getattr(x, "dtype", None)
    if dtype is None:
        return False
    if getattr(dtype, "is_floating_point", None) is not None:  # torch.dtype
        import torch

        return not dtype.is_floating_point and not dtype.is_complex and dtype != torch.bool
    return getattr(dtype, "kind", "") in ("i", "u")  # numpy


def _check_ids(where: str, ids: Any, batch: int) -> list[str]:
    problems = []
    if _shape(ids) != (batch,):
        problems.append(f"{where} returned shape {_shape(ids)}, expected ({batch},) (one greedy id per sequence)")
    if not _is_integer(ids):
        problems.append(f"{where} returned dtype {getattr(ids, 'dtype', type(ids).__name__)}, expected an integer dtype")
    return problems


def check_probe(backend: Backend) -> tuple[Probe | None, list[str]]:
    try:
        probe = backend.probe()
    except Exception as exc:
        return None, [_fail("probe()", exc) + " (probe must never raise: return Probe(False, reason))"]
    if not isinstance(probe, Probe):
        return None, [f"probe() returned {type(probe).__name__}, expected backends.base.Probe"]
    problems = []
    if not isinstance(probe.available, bool):
        problems.append(f"Probe.available is {type(probe.available).__name__}, expected bool")
    if not isinstance(probe.reason, str):
        problems.append(f"Probe.reason is {type(probe.reason).__name__}, expected str")
    elif not probe.available and not probe.reason.strip():
        problems.append("Probe.reason is empty although the backend is unavailable (say what is missing)")
    if not isinstance(probe.versions, dict):
        problems.append(f"Probe.versions is {type(probe.versions).__name__}, expected dict")
    return probe, problems


def check_timer(backend: Backend, marks: int = 3) -> list[str]:
    try:
        timer = backend.timer()
        timer.start()
        for _ in range(marks):
            backend.synchronize()
            timer.mark()
        values = list(timer.read_ns())
    except Exception as exc:
        return [_fail("timer", exc)]
    problems = []
    if len(values) != marks + 1:
        problems.append(f"timer.read_ns() returned {len(values)} marks after start() and {marks} mark() calls, "
                        f"expected {marks + 1}")
    if not all(isinstance(v, int) for v in values):
        problems.append(f"timer.read_ns() must return ints (nanoseconds), got {[type(v).__name__ for v in values]}")
    if values and values[0] != 0:
        problems.append(f"timer.read_ns() must start at 0, got {values[0]}")
    if any(b < a for a, b in zip(values, values[1:])):
        problems.append(f"timer marks are not monotonic non-decreasing: {values}")
    return problems


def check_memory(backend: Backend) -> list[str]:
    try:
        backend.reset_peak_memory()
        peak = backend.peak_memory_bytes()
    except Exception as exc:
        return [_fail("reset_peak_memory()/peak_memory_bytes()", exc)]
    if peak is not None and (isinstance(peak, bool) or not isinstance(peak, int)):
        return [f"peak_memory_bytes() returned {type(peak).__name__}, expected int or None"]
    return []


def check_llm(backend: Backend, dtype: str) -> list[str]:
    import torch

    from workloads.llm import LLMSpec
    from workloads.llm.config import catalog

    config = catalog()["tiny"]
    try:
        session = backend.load_llm(LLMSpec(config=config, seed=0), dtype, BATCH, PROMPT + STEPS + 1)
    except Exception as exc:
        return [_fail(f"load_llm(tiny, {dtype})", exc)]
    problems: list[str] = []
    prompt = torch.randint(0, config.vocab_size, (BATCH, PROMPT), generator=torch.Generator().manual_seed(0))
    step = "to_device()"
    try:
        ids = session.to_device(prompt)
        step = "prefill()"
        ids = session.prefill(ids)
        problems += _check_ids("prefill()", ids, BATCH)
        for _ in range(STEPS):
            if problems:
                break
            step = "decode()"
            ids = session.decode(ids)
            problems += _check_ids("decode()", ids, BATCH)
        step = "reset()"
        session.reset()
        if not problems:
            step = "prefill() after reset()"
            problems += _check_ids(step, session.prefill(session.to_device(prompt)), BATCH)
    except Exception as exc:
        problems.append(_fail(step, exc))
    return problems


def check_backend(backend_cls_or_instance: type[Backend] | Backend, *, dtype: str = "float32") -> list[str]:
    """Every way the backend breaks the contract, as clear strings; [] when it conforms."""
    backend = backend_cls_or_instance
    if isinstance(backend, type):
        try:
            backend = backend({})
        except Exception as exc:
            return [_fail(f"{backend.__name__}({{}})", exc)]
    probe, problems = check_probe(backend)
    if probe is None or probe.available is not True:
        return problems
    try:
        dtypes = backend.supported_dtypes()
    except Exception as exc:
        dtypes = None
        problems.append(_fail("supported_dtypes()", exc))
    if dtypes is not None and (not isinstance(dtypes, list) or not dtypes or not all(isinstance(d, str) for d in dtypes)):
        problems.append(f"supported_dtypes() must be a non-empty list of str, got {dtypes!r}")
    elif dtypes is not None and dtype not in dtypes:
        problems.append(f"dtype {dtype} is not in supported_dtypes() {dtypes}")
    problems += check_memory(backend)
    problems += check_timer(backend)
    if not any(p.startswith("dtype ") for p in problems):
        problems += check_llm(backend, dtype)
    try:
        backend.close()
    except Exception as exc:
        problems.append(_fail("close()", exc))
    return problems


def assert_conforms(backend_cls_or_instance: type[Backend] | Backend, *, dtype: str = "float32") -> None:
    """pytest-friendly: raise AssertionError listing every problem :func:`check_backend` finds."""
    problems = check_backend(backend_cls_or_instance, dtype=dtype)
    if problems:
        name = getattr(backend_cls_or_instance, "name", "") or repr(backend_cls_or_instance)
        raise AssertionError(f"backend '{name}' does not conform:\n- " + "\n- ".join(problems))
