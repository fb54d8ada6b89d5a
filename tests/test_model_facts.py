"""Analytic bytes and FLOPs, checked against values written out by hand.

tiny: V=512 D=64 I=256 L=2 H=4 K=2 d=16, untied head.
llama-3.1-8b: V=128256 D=4096 I=14336 L=32 H=32 K=8 d=128, untied head.
"""

from __future__ import annotations

import json

import pytest

from workloads.llm.config import catalog
from workloads.llm.facts import (
    decode_bytes_per_step,
    flops_per_token,
    matmul_parameters,
    model_facts,
    prefill_flops,
)

TINY = catalog()["tiny"]
L8B = catalog()["llama-3.1-8b"]

# ---- tiny, by hand
TINY_EMBED = 512 * 64  # = 32768, also the head size (untied)
TINY_ATTN = 64 * 64 + 64 * 32 + 64 * 32 + 64 * 64  # q, k, v, o = 12288
TINY_MLP = 3 * 64 * 256  # gate, up, down = 49152
TINY_PARAMS = TINY_EMBED + 2 * (TINY_ATTN + TINY_MLP + 2 * 64) + 64 + TINY_EMBED  # = 188736
TINY_M = 2 * (TINY_ATTN + TINY_MLP) + TINY_EMBED  # matmul params incl. head = 155648

# ---- llama-3.1-8b, by hand
L8B_EMBED = 128256 * 4096  # = 525336576
L8B_ATTN = 4096 * 4096 + 2 * 4096 * 1024 + 4096 * 4096  # = 41943040
L8B_MLP = 3 * 4096 * 14336  # = 176160768
L8B_M = 32 * (L8B_ATTN + L8B_MLP) + L8B_EMBED  # = 7504658432


def test_hand_constants():
    assert TINY_PARAMS == 188736 == TINY.num_parameters()
    assert TINY_M == 155648 == matmul_parameters(TINY)
    assert L8B_M == 7504658432 == matmul_parameters(L8B)


def test_tiny_decode_bytes():
    # weights without the input embedding, fp32: (188736 - 32768) * 4 = 623872
    # KV at context 10.5, batch 1, fp32: 2 * L * B * ctx * K * d * 4 = 2 * 2 * 1 * 10.5 * 2 * 16 * 4 = 5376
    assert decode_bytes_per_step(TINY, batch=1, context_len=10.5, dtype_bytes=4) == (188736 - 32768) * 4 + 5376 == 629248
    # batch 3, context 100, fp32 weights with an fp16 KV cache
    kv = 2 * 2 * 3 * 100 * 2 * 16 * 2  # = 76800
    assert decode_bytes_per_step(TINY, batch=3, context_len=100, dtype_bytes=4, kv_dtype_bytes=2) == 623872 + kv


def test_tiny_flops():
    # decode at context 10.5: 2 * M + 4 * L * H * d * ctx = 311296 + 4 * 2 * 4 * 16 * 10.5 = 311296 + 5376
    assert flops_per_token(TINY, context_len=10.5, phase="decode") == 2 * 155648 + 5376 == 316672
    # prefill P=8: per token 2 * M + 2 * L * H * d * (P + 1) = 311296 + 2 * 2 * 4 * 16 * 9 = 313600
    assert flops_per_token(TINY, context_len=8, phase="prefill") == 311296 + 2304 == 313600
    assert prefill_flops(TINY, 1, 8) == 8 * 313600 == 2508800
    assert prefill_flops(TINY, 4, 8) == 4 * 2508800


def test_tiny_model_facts():
    facts = model_facts(TINY, batch=1, prompt_len=8, gen_len=5, dtype_bytes=4)
    assert facts == {
        "params": 188736,
        "weight_bytes": 188736 * 4,
        "decode_context_mean": 8 + 5 / 2,
        "decode_bytes_per_step": 629248,
        "prefill_flops": 2508800,
        "decode_flops_per_token": 316672,
    }
    json.dumps(facts)


def test_llama_3_1_8b_bf16_facts():
    # B=1, P=128, G=128 -> mean decode context 128 + 128/2 = 192
    facts = model_facts(L8B, batch=1, prompt_len=128, gen_len=128, dtype_bytes=2)
    weights = (8030261248 - 525336576) * 2  # = 15009849344: all but the embedding table, head included
    kv = 2 * 32 * 1 * 192 * 8 * 128 * 2  # = 25165824
    assert facts["params"] == 8030261248
    assert facts["weight_bytes"] == 16060522496
    assert facts["decode_bytes_per_step"] == weights + kv == 15035015168
    attn_decode = 4 * 32 * 32 * 128 * 192  # = 100663296
    assert facts["decode_flops_per_token"] == 2 * 7504658432 + attn_decode == 15109980160
    prefill_per_token = 2 * 7504658432 + 2 * 32 * 32 * 128 * (128 + 1)  # = 15043133440
    assert facts["prefill_flops"] == 128 * prefill_per_token == 1925521080320


def test_tied_head_is_read_once():
    qwen = catalog()["qwen2.5-0.5b"]  # tied: the head matmul reads the embedding matrix
    assert decode_bytes_per_step(qwen, batch=1, context_len=0, dtype_bytes=2) == 494032768 * 2
    assert matmul_parameters(qwen) == 24 * (896 * 896 + 2 * 896 * 128 + 896 * 896 + 3 * 896 * 4864) + 151936 * 896


def test_bad_arguments():
    with pytest.raises(ValueError, match="phase"):
        flops_per_token(TINY, context_len=4, phase="train")
    with pytest.raises(ValueError, match="multiple of 0.5"):
        decode_bytes_per_step(TINY, batch=1, context_len=1.25, dtype_bytes=2)
