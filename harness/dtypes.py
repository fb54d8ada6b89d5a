"""Dtype names accepted on the command line (torch names plus common short forms)."""

from __future__ import annotations

from harness.errors import UsageError

ALIASES = {
    "float32": "float32", "fp32": "float32", "f32": "float32",
    "bfloat16": "bfloat16", "bf16": "bfloat16",
    "float16": "float16", "fp16": "float16", "f16": "float16", "half": "float16",
    "float8_e4m3fn": "float8_e4m3fn", "fp8": "float8_e4m3fn",
    "int8": "int8",
}

BYTES = {"float32": 4, "bfloat16": 2, "float16": 2, "float8_e4m3fn": 1, "int8": 1}


def canonical_dtype(name: str) -> str:
    """Torch dtype name for ``name``; UsageError for anything else."""
    try:
        return ALIASES[str(name).lower()]
    except KeyError:
        raise UsageError(
            f"unknown dtype '{name}' (use one of: float32, bfloat16, float16, float8_e4m3fn, int8)"
        ) from None


def torch_dtype(name: str):
    import torch

    return getattr(torch, canonical_dtype(name))
