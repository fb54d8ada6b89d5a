"""The single-row (batch-1 decode) path of ``workloads.llm.model.Linear``: mv/addmv on the CPU."""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F

from workloads.llm.config import catalog
from workloads.llm.loading import build_model
from workloads.llm.model import Linear, _gemv_op


@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_single_row_matches_f_linear(bias, dtype):
    torch.manual_seed(0)
    lin = Linear(48, 40, bias=bias).to(dtype)
    with torch.no_grad():
        for shape in [(48,), (1, 48), (1, 1, 48), (2, 1, 48), (1, 3, 48)]:
            x = torch.randn(shape, dtype=dtype)
            out = lin(x)
            ref = F.linear(x.float(), lin.weight.float(), None if lin.bias is None else lin.bias.float())
            assert out.shape == ref.shape and out.dtype == dtype
            tol = 1e-5 if dtype == torch.float32 else 3e-2
            torch.testing.assert_close(out.float(), ref, rtol=tol, atol=tol)


def test_gemv_custom_op_contract():
    w, x, b = torch.randn(8, 5), torch.randn(5), torch.randn(8)
    torch.library.opcheck(_gemv_op, (w, x, b))
    torch.library.opcheck(_gemv_op, (w, x, None))


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("attention_bias", [False, True])
def test_batch1_cached_decoding_matches_full_forward(attention_bias, dtype):
    """Batch 1, one token per step: in bf16 every projection takes the gemv path (addmv with a
    Qwen-style qkv bias); the full forward takes F.linear."""
    cfg = dataclasses.replace(catalog()["tiny"], attention_bias=attention_bias)
    model = build_model(cfg, dtype=dtype, seed=0)
    ids = torch.randint(0, model.config.vocab_size, (1, 12), generator=torch.Generator().manual_seed(1))
    model.setup_caches(1, 16)
    with torch.no_grad():
        full = model(ids)
        steps = [model(ids[:, :4], torch.arange(4))]
        steps += [model(ids[:, t : t + 1], torch.tensor([t])) for t in range(4, 12)]
    tol = 1e-4 if dtype == torch.float32 else 2e-2 * full.abs().max().item()
    assert (torch.cat(steps, dim=1).float() - full.float()).abs().max().item() < tol
