"""The torch model against Hugging Face transformers (fp32), and cached vs uncached decoding."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

transformers = pytest.importorskip("transformers")

from workloads.llm.config import catalog  # noqa: E402
from workloads.llm.loading import build_model, load_model  # noqa: E402
from workloads.llm.model import rope_inv_freq  # noqa: E402

TOL = 1e-4
LLAMA3_ROPE = {
    "rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
    "original_max_position_embeddings": 16,
}


def _randomise(model: torch.nn.Module, seed: int) -> None:
    """transformers initialises biases to 0 and norms to 1; perturb everything so each is tested."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=gen)
            p.copy_(1.0 + 0.1 * noise if "norm" in name else 0.05 * noise)


def _save(model, folder, **kwargs):
    try:
        model.save_pretrained(folder, safe_serialization=True, **kwargs)
    except TypeError:  # transformers releases that always write safetensors dropped the flag
        model.save_pretrained(folder, **kwargs)
    assert not list(folder.glob("*.bin"))


@pytest.fixture(scope="module")
def llama_folder(tmp_path_factory):
    cfg = transformers.LlamaConfig(
        vocab_size=160, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, rope_theta=500000.0, rope_scaling=dict(LLAMA3_ROPE),
        max_position_embeddings=256, rms_norm_eps=1e-5, tie_word_embeddings=False,
    )
    torch.manual_seed(0)
    hf = transformers.LlamaForCausalLM(cfg).eval()
    _randomise(hf, 1)
    folder = tmp_path_factory.mktemp("llama")
    _save(hf, folder)
    return hf, folder


@pytest.fixture(scope="module")
def qwen_folder(tmp_path_factory):
    cfg = transformers.Qwen2Config(
        vocab_size=160, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, rope_theta=1000000.0,
        max_position_embeddings=256, rms_norm_eps=1e-6, tie_word_embeddings=True,
    )
    torch.manual_seed(0)
    hf = transformers.Qwen2ForCausalLM(cfg).eval()
    _randomise(hf, 2)
    folder = tmp_path_factory.mktemp("qwen")
    _save(hf, folder)
    return hf, folder


def _ids(batch=2, length=24, vocab=160, seed=3):
    return torch.randint(0, vocab, (batch, length), generator=torch.Generator().manual_seed(seed))


def _hf_logits(hf, ids):
    with torch.no_grad():
        return hf(ids, use_cache=False).logits.float()


@pytest.mark.parametrize("which", ["llama_folder", "qwen_folder"])
def test_logits_match_transformers(which, request):
    hf, folder = request.getfixturevalue(which)
    model = load_model(str(folder))
    ids = _ids()
    with torch.no_grad():
        ours = model(ids)
    assert ours.shape == (2, 24, 160) and ours.dtype == torch.float32
    assert (ours - _hf_logits(hf, ids)).abs().max().item() < TOL


def test_llama_config_read_from_folder(llama_folder):
    _, folder = llama_folder
    model = load_model(str(folder))
    cfg = model.config
    assert (cfg.num_attention_heads, cfg.num_key_value_heads) == (4, 2)
    assert cfg.rope_scaling["rope_type"] == "llama3" and not cfg.attention_bias


def test_llama3_inv_freq_matches_transformers(llama_folder):
    hf, folder = llama_folder
    model = load_model(str(folder))
    ours = rope_inv_freq(model.config)
    plain = rope_inv_freq(dataclasses.replace(model.config, rope_scaling=None))
    assert not torch.allclose(ours, plain)  # the scaling changes the low frequencies
    torch.testing.assert_close(ours, hf.model.rotary_emb.inv_freq.float(), rtol=0, atol=0)


def test_qwen_biases_and_tied_head_loaded(qwen_folder):
    hf, folder = qwen_folder
    model = load_model(str(folder))
    assert model.config.attention_bias and model.config.tie_word_embeddings
    assert model.output.weight is model.tok_embeddings.weight
    attn = hf.model.layers[1].self_attn
    expected = torch.cat([attn.q_proj.bias, attn.k_proj.bias, attn.v_proj.bias])
    torch.testing.assert_close(model.layers[1].attention.wqkv.bias, expected, rtol=0, atol=0)
    assert model.layers[1].attention.wo.bias is None


def test_sharded_checkpoint_with_index(llama_folder, tmp_path):
    hf, _ = llama_folder
    _save(hf, tmp_path, max_shard_size="50KB")
    assert (tmp_path / "model.safetensors.index.json").is_file()
    assert len(list(tmp_path.glob("*.safetensors"))) > 1
    model = load_model(str(tmp_path))
    ids = _ids(length=8)
    with torch.no_grad():
        assert (model(ids) - _hf_logits(hf, ids)).abs().max().item() < TOL


def test_checkpoint_shape_mismatch_is_a_clear_error(llama_folder, tmp_path):
    _, folder = llama_folder
    d = json.loads((folder / "config.json").read_text())
    d["intermediate_size"] = 128
    (tmp_path / "config.json").write_text(json.dumps(d))
    (tmp_path / "model.safetensors").write_bytes((folder / "model.safetensors").read_bytes())
    with pytest.raises(ValueError, match=r"tensor model\.layers\.0\.mlp\.\w+\.weight has shape \(\d+, \d+\), config\.json implies"):
        load_model(str(tmp_path))


def _incremental(model, ids, prefill):
    """Prefill `prefill` tokens through the cache, then feed the rest one token at a time."""
    B, T = ids.shape
    model.setup_caches(B, T + 5)
    with torch.no_grad():
        chunks = [model(ids[:, :prefill], torch.arange(prefill))]
        for t in range(prefill, T):
            chunks.append(model(ids[:, t : t + 1], torch.tensor([t])))
    return torch.cat(chunks, dim=1)


@pytest.mark.parametrize("which", ["llama_folder", "qwen_folder"])
def test_cached_decoding_matches_full_forward_hf(which, request):
    _, folder = request.getfixturevalue(which)
    model = load_model(str(folder))
    ids = _ids()
    with torch.no_grad():
        full = model(ids)
    assert (_incremental(model, ids, prefill=10) - full).abs().max().item() < TOL


def test_cached_decoding_matches_full_forward_tiny_dummy():
    torch.manual_seed(0)
    model = load_model("tiny")
    ids = _ids(vocab=512, length=20)
    with torch.no_grad():
        full = model(ids)
        last = model.forward_last(ids)
    torch.testing.assert_close(last, full[:, -1])
    assert (_incremental(model, ids, prefill=7) - full).abs().max().item() < TOL
    # a second generation reuses the cache from position 0 with no reset
    assert (_incremental(model, ids.flip(0), prefill=7) - model(ids.flip(0))).abs().max().item() < TOL


def test_batch_smaller_than_cache_batch():
    model = load_model("tiny")
    ids = _ids(batch=1, vocab=512, length=6)
    model.setup_caches(3, 16)
    with torch.no_grad():
        out = model(ids, torch.arange(6))
        torch.testing.assert_close(out, model(ids), rtol=0, atol=TOL)


def test_dummy_weights_deterministic_and_greedy_decode_finite():
    cfg = catalog()["tiny"]
    a = build_model(cfg, dtype=torch.float32, device="cpu", seed=0)
    b = build_model(cfg, dtype=torch.float32, device="cpu", seed=0)
    c = build_model(cfg, dtype=torch.float32, device="cpu", seed=1)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not torch.equal(sa["layers.0.attention.wqkv.weight"], sc["layers.0.attention.wqkv.weight"])
    assert torch.equal(sa["norm.weight"], torch.ones(cfg.hidden_size))
    assert 0.015 < sa["layers.0.feed_forward.w13.weight"].std().item() < 0.025
    a.setup_caches(2, 16)
    ids = _ids(vocab=512, length=4)
    with torch.no_grad():
        tok = a(ids, torch.arange(4))[:, -1].argmax(-1)
        for pos in range(4, 12):
            logits = a(tok.view(2, 1), torch.tensor([pos]))
            assert torch.isfinite(logits).all()
            tok = logits[:, -1].argmax(-1)


def test_bfloat16_build():
    model = load_model("tiny", dtype=torch.bfloat16)
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}
    model.setup_caches(1, 8)
    with torch.no_grad():
        out = model(_ids(batch=1, vocab=512, length=4), torch.arange(4))
    assert out.dtype == torch.bfloat16 and torch.isfinite(out).all()
