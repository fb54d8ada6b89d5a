"""A gpt-fast style Llama-family decoder (Llama 2/3, Mistral, Qwen2).

Pre-norm blocks: RMSNorm -> attention (fused ``wqkv``, RoPE, GQA via SDPA) -> RMSNorm -> SwiGLU MLP
(fused ``w13`` = gate|up, then ``w2`` = down). RoPE uses Hugging Face's rotate-half convention, so
Hugging Face checkpoints load without permuting q/k rows.

Two forward modes:

* ``input_pos`` given (after :meth:`Transformer.setup_caches`): k/v for positions ``input_pos`` are
  written into a preallocated static cache with ``index_copy_`` and every query attends over the
  whole cache (``max_seq`` positions, as gpt-fast) under the mask ``key_position <= query_position``. Shapes never depend on the
  context length, nothing reads a tensor value on the host, so the step can be compiled or
  captured in a device graph.
* ``input_pos`` None: plain causal attention over the given tokens, no cache (parity tests).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .config import ModelConfig

__all__ = ["Transformer", "RMSNorm", "rope_inv_freq", "rope_table"]


def rope_inv_freq(cfg: ModelConfig) -> Tensor:
    """Inverse rotary frequencies (fp32, length head_dim/2), incl. linear and Llama-3 scaling.

    Same arithmetic as transformers' ``ROPE_INIT_FUNCTIONS`` so fp32 logits match to rounding.
    """
    dim = cfg.head_dim
    inv_freq = 1.0 / (cfg.rope_theta ** (torch.arange(0, dim, 2, dtype=torch.int64).float() / dim))
    rs = cfg.rope_scaling
    if rs is None:
        return inv_freq
    if rs["rope_type"] == "linear":
        return inv_freq / float(rs["factor"])
    # llama3: keep high frequencies, divide low frequencies by `factor`, blend in between.
    factor = float(rs["factor"])
    low, high = float(rs["low_freq_factor"]), float(rs["high_freq_factor"])
    old_len = float(rs["original_max_position_embeddings"])
    low_freq_wavelen = old_len / low
    high_freq_wavelen = old_len / high
    wavelen = 2 * math.pi / inv_freq
    inv_freq_llama = torch.where(wavelen > low_freq_wavelen, inv_freq / factor, inv_freq)
    smooth = (old_len / wavelen - low) / (high - low)
    smoothed = (1 - smooth) * inv_freq_llama / factor + smooth * inv_freq_llama
    is_medium = ~(wavelen < high_freq_wavelen) * ~(wavelen > low_freq_wavelen)
    return torch.where(is_medium, smoothed, inv_freq_llama)


def rope_table(cfg: ModelConfig, length: int, *, dtype: torch.dtype, device) -> tuple[Tensor, Tensor]:
    """``(cos, sin)``, each ``[length, head_dim]`` in rotate-half layout (frequencies repeated twice)."""
    inv_freq = rope_inv_freq(cfg).to(device)
    pos = torch.arange(length, dtype=torch.int64, device=device).float()
    freqs = torch.outer(pos, inv_freq)
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos().to(dtype), emb.sin().to(dtype)


def _apply_rope(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """x: [B, T, heads, hd]; cos/sin: [T, 1, hd]. Rotate-half RoPE."""
    half = x.shape[-1] // 2
    rotated = torch.cat((-x[..., half:], x[..., :half]), dim=-1)
    return x * cos + rotated * sin


def _gemv(weight: Tensor, x: Tensor, bias: Tensor | None) -> Tensor:
    """``weight @ x (+ bias)`` for one row ``x`` [in] -> [out]."""
    return torch.mv(weight, x) if bias is None else torch.addmv(bias, weight, x)


# The same as an operator torch.compile keeps opaque: Inductor would lower mv to a generic
# reduction that streams weights ~25% slower than the library gemv kernel.
_gemv_op = torch.library.custom_op("accelbench::gemv", _gemv, mutates_args=())
_gemv_op.register_fake(lambda weight, x, bias: weight.new_empty(weight.shape[0]))


class Linear(nn.Linear):
    """``nn.Linear`` that computes a single bf16 row on the CPU as a matrix-vector product.

    Batch-1 decode multiplies one row by every weight matrix. On the CPU ``F.linear`` sends a
    bf16 row through oneDNN's matrix-matrix kernel, which streams the weights at about 2/3 of the
    rate of the gemv kernel behind ``torch.mv``. For fp32 both are equally fast and for fp16 mv
    is slower (benchmarks/README.md), so every other case takes ``F.linear``.
    """

    def forward(self, x: Tensor) -> Tensor:
        w = self.weight
        if w.dtype != torch.bfloat16 or w.device.type != "cpu" or x.numel() != x.shape[-1]:
            return F.linear(x, w, self.bias)
        # The custom op only under torch.compile: its eager dispatch costs ~10 us a call.
        gemv = _gemv_op if torch.compiler.is_compiling() else _gemv
        return gemv(w, x.reshape(-1), self.bias).view(*x.shape[:-1], -1)

    def reset_parameters(self) -> None:
        if not self.weight.is_meta:  # see Embedding
            super().reset_parameters()


class Embedding(nn.Embedding):
    """``nn.Embedding`` that skips initialisation on the meta device: ``build_model`` fills the
    weights later, and initialising meta tensors runs torch's reference ops, whose first use
    imports torch._dynamo and sympy (~800 modules, ~70 MB and ~0.4 s in every case's process)."""

    def reset_parameters(self) -> None:
        if not self.weight.is_meta:
            super().reset_parameters()


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: Tensor) -> Tensor:
        # One fused op (statistics in fp32 for reduced-precision inputs); equals transformers'
        # LlamaRMSNorm to fp32 rounding.
        return F.rms_norm(x, self.weight.shape, self.weight, self.eps)


class Attention(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.n_head = cfg.num_attention_heads
        self.n_kv = cfg.num_key_value_heads
        self.head_dim = cfg.head_dim
        self.wqkv = Linear(cfg.hidden_size, cfg.q_size + 2 * cfg.kv_size, bias=cfg.attention_bias)
        self.wo = Linear(cfg.q_size, cfg.hidden_size, bias=False)
        self.register_buffer("k_cache", None, persistent=False)
        self.register_buffer("v_cache", None, persistent=False)

    def forward(self, x: Tensor, cos: Tensor, sin: Tensor, input_pos: Tensor | None, mask: Tensor | None) -> Tensor:
        B, T, _ = x.shape
        nh, nkv, hd = self.n_head, self.n_kv, self.head_dim
        qkv = self.wqkv(x).view(B, T, nh + 2 * nkv, hd)
        qk = _apply_rope(qkv[:, :, : nh + nkv], cos, sin)  # q and k rotated together
        q = qk[:, :, :nh].transpose(1, 2)
        k = qk[:, :, nh:].transpose(1, 2)
        v = qkv[:, :, nh + nkv :].transpose(1, 2)
        gqa = nh != nkv
        if input_pos is None:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=T > 1, enable_gqa=gqa)
        else:
            k_cache, v_cache = self.k_cache, self.v_cache
            if B != k_cache.shape[0]:
                k_cache, v_cache = k_cache[:B], v_cache[:B]
            if k_cache.dtype != k.dtype:
                k, v, q = k.to(k_cache.dtype), v.to(k_cache.dtype), q.to(k_cache.dtype)
            k_cache.index_copy_(2, input_pos, k)
            v_cache.index_copy_(2, input_pos, v)
            y = F.scaled_dot_product_attention(q, k_cache, v_cache, attn_mask=mask, enable_gqa=gqa)
            if y.dtype != x.dtype:
                y = y.to(x.dtype)
        return self.wo(y.transpose(1, 2).reshape(B, T, nh * hd))


class FeedForward(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.intermediate = cfg.intermediate_size
        self.w13 = Linear(cfg.hidden_size, 2 * cfg.intermediate_size, bias=False)  # gate | up
        self.w2 = Linear(cfg.intermediate_size, cfg.hidden_size, bias=False)  # down

    def forward(self, x: Tensor) -> Tensor:
        gate, up = self.w13(x).split(self.intermediate, dim=-1)
        return self.w2(F.silu(gate) * up)


class TransformerBlock(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.attention_norm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.attention = Attention(cfg)
        self.ffn_norm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.feed_forward = FeedForward(cfg)

    def forward(self, x: Tensor, cos: Tensor, sin: Tensor, input_pos: Tensor | None, mask: Tensor | None) -> Tensor:
        h = x + self.attention(self.attention_norm(x), cos, sin, input_pos, mask)
        return h + self.feed_forward(self.ffn_norm(h))


class Transformer(nn.Module):
    """Llama-family decoder. Build it on the ``meta`` device and materialise it with
    :func:`workloads.llm.loading.build_model`; constructing it directly allocates and initialises
    weights the ordinary torch way."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.tok_embeddings = Embedding(config.vocab_size, config.hidden_size)
        self.layers = nn.ModuleList(TransformerBlock(config) for _ in range(config.num_hidden_layers))
        self.norm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.output = Linear(config.hidden_size, config.vocab_size, bias=False)
        self.tie_weights()
        self.register_buffer("rope_cos", None, persistent=False)
        self.register_buffer("rope_sin", None, persistent=False)
        self.register_buffer("kv_positions", None, persistent=False)
        self.register_buffer("mask_zero", None, persistent=False)
        self.register_buffer("mask_neg_inf", None, persistent=False)
        self.max_batch = 0
        self.max_seq = 0

    def tie_weights(self) -> None:
        """Share the head with the embedding when the config ties them (call after ``to_empty``)."""
        if self.config.tie_word_embeddings:
            self.output.weight = self.tok_embeddings.weight

    # ------------------------------------------------------------------ tables and caches
    def setup_rope(self, length: int, *, dtype: torch.dtype | None = None, device=None) -> None:
        """(Re)compute the cos/sin table for positions ``[0, length)``."""
        ref = self.tok_embeddings.weight
        dtype = dtype or ref.dtype
        device = torch.device(device) if device is not None else ref.device
        self.rope_cos, self.rope_sin = rope_table(self.config, length, dtype=dtype, device=device)

    def setup_caches(self, max_batch: int, max_seq: int, *, dtype: torch.dtype | None = None, device=None) -> None:
        """Preallocate static KV caches ``[max_batch, n_kv, max_seq, head_dim]`` (zeros) per layer,
        the rope table for ``max_seq`` positions and the key-position vector used for the mask."""
        if max_batch <= 0 or max_seq <= 0:
            raise ValueError(f"setup_caches: max_batch and max_seq must be positive, got {max_batch}, {max_seq}")
        ref = self.tok_embeddings.weight
        dtype = dtype or ref.dtype
        device = torch.device(device) if device is not None else ref.device
        cfg = self.config
        shape = (max_batch, cfg.num_key_value_heads, max_seq, cfg.head_dim)
        for layer in self.layers:
            layer.attention.k_cache = torch.zeros(shape, dtype=dtype, device=device)
            layer.attention.v_cache = torch.zeros(shape, dtype=dtype, device=device)
        self.setup_rope(max_seq, dtype=ref.dtype, device=device)
        self.kv_positions = torch.arange(max_seq, device=device)
        self.mask_zero = torch.zeros((), dtype=dtype, device=device)
        self.mask_neg_inf = torch.full((), float("-inf"), dtype=dtype, device=device)
        self.max_batch, self.max_seq = max_batch, max_seq

    def kv_cache_bytes(self) -> int:
        """Bytes held by the KV cache buffers (0 before :meth:`setup_caches`)."""
        total = 0
        for layer in self.layers:
            for buf in (layer.attention.k_cache, layer.attention.v_cache):
                if buf is not None:
                    total += buf.numel() * buf.element_size()
        return total

    # ------------------------------------------------------------------ forward
    def _hidden(self, input_ids: Tensor, input_pos: Tensor | None) -> Tensor:
        x = self.tok_embeddings(input_ids)
        T = input_ids.shape[1]
        if input_pos is None:
            if self.rope_cos is None or self.rope_cos.shape[0] < T or self.rope_cos.device != x.device:
                self.setup_rope(max(T, self.max_seq), device=x.device)  # shape check only, no sync
            cos, sin, mask = self.rope_cos[:T], self.rope_sin[:T], None
        else:
            if self.kv_positions is None:
                raise RuntimeError("forward with input_pos needs setup_caches() first")
            cos, sin = self.rope_cos[input_pos], self.rope_sin[input_pos]
            # Additive mask [1, 1, T, max_seq]: 0 where key position <= query position, else -inf.
            # Built once per forward (one fused op under compile) and shared by all layers.
            visible = self.kv_positions <= input_pos.unsqueeze(-1)
            mask = torch.where(visible, self.mask_zero, self.mask_neg_inf).view(1, 1, T, -1)
        cos, sin = cos.unsqueeze(1), sin.unsqueeze(1)  # [T, 1, hd]: broadcast over heads
        for layer in self.layers:
            x = layer(x, cos, sin, input_pos, mask)
        return self.norm(x)

    def forward(self, input_ids: Tensor, input_pos: Tensor | None = None) -> Tensor:
        """Logits ``[B, T, vocab]`` in the model dtype.

        ``input_pos`` ([T] positions of ``input_ids`` in the cache) uses and updates the KV cache;
        None runs plain causal attention over ``input_ids`` alone.
        """
        return self.output(self._hidden(input_ids, input_pos))

    def forward_last(self, input_ids: Tensor, input_pos: Tensor | None = None) -> Tensor:
        """Logits ``[B, vocab]`` of the last position only (skips the head for the others)."""
        return self.output(self._hidden(input_ids, input_pos)[:, -1])
