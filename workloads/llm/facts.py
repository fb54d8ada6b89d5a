"""Analytic facts about a model shape for roofline scoring (bytes read per decode step, FLOPs).

Notation: L = num_hidden_layers, D = hidden_size, I = intermediate_size, V = vocab_size,
H = num_attention_heads, K = num_key_value_heads, d = head_dim, B = batch, P = prompt_len,
G = gen_len.

* Matmul parameters ``M`` = L * (D*H*d [q] + 2*D*K*d [k, v] + H*d*D [o] + 3*D*I [gate, up, down])
  + V*D [output head]. The input embedding is a row lookup, not a matmul, and is excluded; a tied
  head is still a matmul over the embedding matrix, so it is included. Norm weights and q/k/v
  biases are elementwise work and are left out of FLOPs (they are in the byte counts).
* Attention FLOPs for one query token attending ``c`` cached positions: QK^T and AV, each
  2*H*d*c per layer, so 4*L*H*d*c.

All results are plain Python ints or floats (JSON-able).
"""

from __future__ import annotations

import math

from .config import ModelConfig

__all__ = [
    "matmul_parameters",
    "decode_weight_bytes",
    "kv_cache_bytes",
    "decode_bytes_per_step",
    "flops_per_token",
    "prefill_flops",
    "model_facts",
]


def _twice(context_len: float) -> int:
    """2 * context_len as an exact int (context lengths are whole or half tokens: P + G/2)."""
    two = 2 * context_len
    if two < 0 or two != int(two):
        raise ValueError(f"context_len must be a non-negative multiple of 0.5, got {context_len!r}")
    return int(two)


def matmul_parameters(cfg: ModelConfig) -> int:
    """Weight-matrix elements used in matmuls per token: all layer projections plus the output
    head (V*D, also when tied); excludes the input embedding lookup, norms and biases."""
    d, q, kv = cfg.hidden_size, cfg.q_size, cfg.kv_size
    per_layer = d * q + 2 * d * kv + q * d + 3 * d * cfg.intermediate_size
    return cfg.num_hidden_layers * per_layer + cfg.vocab_size * d


def decode_weight_bytes(cfg: ModelConfig, dtype_bytes: float) -> int:
    """Weight bytes read per decode step: every parameter except the input embedding table (a
    lookup reads B rows), counting the output head once -- when tied the head is the embedding
    matrix, read in full by the head matmul. Equals num_parameters() when tied and
    num_parameters() - V*D when untied, times ``dtype_bytes`` (gpt-fast's model size)."""
    params = cfg.num_parameters()
    if not cfg.tie_word_embeddings:
        params -= cfg.vocab_size * cfg.hidden_size
    return math.ceil(params * dtype_bytes)


def kv_cache_bytes(cfg: ModelConfig, *, batch: int, context_len: float, kv_dtype_bytes: float) -> int:
    """KV cache bytes at ``context_len`` positions: 2 [k, v] * L * B * context_len * K * d * bytes."""
    per_position = cfg.num_hidden_layers * batch * cfg.num_key_value_heads * cfg.head_dim  # for k or v
    return math.ceil(per_position * _twice(context_len) * kv_dtype_bytes)


def decode_bytes_per_step(
    cfg: ModelConfig,
    *,
    batch: int,
    context_len: float,
    dtype_bytes: float,
    kv_dtype_bytes: float | None = None,
) -> int:
    """Bytes read by one decode step of ``batch`` sequences that attend ``context_len`` positions:
    ``decode_weight_bytes(cfg, dtype_bytes)`` + 2 * L * B * context_len * K * d * kv_dtype_bytes.

    ``kv_dtype_bytes`` defaults to ``dtype_bytes``. Activations and the embedding rows are ignored
    (they are tiny next to the weights). ``context_len`` may be a half-integer (mean contexts).
    """
    kv_bytes = dtype_bytes if kv_dtype_bytes is None else kv_dtype_bytes
    return decode_weight_bytes(cfg, dtype_bytes) + kv_cache_bytes(
        cfg, batch=batch, context_len=context_len, kv_dtype_bytes=kv_bytes
    )


def flops_per_token(cfg: ModelConfig, *, context_len: float, phase: str) -> int:
    """FLOPs to process one token: 2 * M + attention.

    * ``phase="decode"``: the token attends ``context_len`` positions (cache incl. itself):
      2*M + 4*L*H*d*context_len.
    * ``phase="prefill"``: ``context_len`` is the prompt length P; with causal attention token i
      (1-based) attends i positions, mean (P+1)/2, so 2*M + 4*L*H*d*(P+1)/2 = 2*M + 2*L*H*d*(P+1).

    M is :func:`matmul_parameters` (head included for every token, as is customary).
    """
    attn_unit = cfg.num_hidden_layers * cfg.num_attention_heads * cfg.head_dim
    if phase == "decode":
        attention = 2 * attn_unit * _twice(context_len)  # 4 * unit * context_len
    elif phase == "prefill":
        if context_len != int(context_len) or context_len < 1:
            raise ValueError(f"prefill context_len must be a positive whole prompt length, got {context_len!r}")
        attention = 2 * attn_unit * (int(context_len) + 1)
    else:
        raise ValueError(f"phase must be 'prefill' or 'decode', got {phase!r}")
    return 2 * matmul_parameters(cfg) + attention


def prefill_flops(cfg: ModelConfig, batch: int, prompt_len: int) -> int:
    """FLOPs of prefilling ``batch`` prompts of ``prompt_len`` tokens:
    B * P * (2*M + 2*L*H*d*(P+1))."""
    return batch * prompt_len * flops_per_token(cfg, context_len=prompt_len, phase="prefill")


def model_facts(cfg: ModelConfig, *, batch: int, prompt_len: int, gen_len: int, dtype_bytes: float) -> dict:
    """Facts recorded with every ``llm`` result.

    Decode steps 1..G-1 produce tokens 2..G; step i attends P + i positions, so the mean decode
    context is P + G/2, used for ``decode_bytes_per_step`` and ``decode_flops_per_token``.
    """
    mean_ctx = prompt_len + gen_len / 2
    return {
        "params": cfg.num_parameters(),
        "weight_bytes": cfg.weight_bytes(dtype_bytes),
        "decode_context_mean": float(mean_ctx),
        "decode_bytes_per_step": decode_bytes_per_step(
            cfg, batch=batch, context_len=mean_ctx, dtype_bytes=dtype_bytes
        ),
        "prefill_flops": prefill_flops(cfg, batch, prompt_len),
        "decode_flops_per_token": flops_per_token(cfg, context_len=mean_ctx, phase="decode"),
    }
