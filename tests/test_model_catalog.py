"""Model shapes: catalog values, exact parameter counts, config parsing, resolve() errors."""

from __future__ import annotations

import dataclasses
import json
import time

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from workloads.llm.config import ModelConfig, catalog, catalog_entries, resolve
from workloads.llm.facts import model_facts

REAL = [name for name in catalog_entries() if name != "tiny"]


def test_catalog_has_the_named_shapes():
    assert set(catalog()) == {
        "tiny", "llama-3.2-1b", "llama-3.2-3b", "llama-3.1-8b", "llama-3.1-70b",
        "llama-2-7b", "llama-2-13b", "mistral-7b", "qwen2.5-0.5b", "qwen2.5-7b",
    }
    for name, table in catalog_entries().items():
        assert table["source"], name
        if name != "tiny":
            assert isinstance(table["published_params"], int), name


@pytest.mark.parametrize("name", REAL)
def test_num_parameters_equals_published_count(name):
    cfg = catalog()[name]
    assert cfg.num_parameters() == catalog_entries()[name]["published_params"]
    assert cfg.weight_bytes(2) == 2 * cfg.num_parameters()


def test_llama_3_1_8b_count_by_hand():
    # embed + 32 x (q + k + v + o + gate/up/down + 2 norms) + final norm + untied head
    layer = 4096 * 4096 + 2 * 4096 * 1024 + 4096 * 4096 + 3 * 4096 * 14336 + 2 * 4096
    assert catalog()["llama-3.1-8b"].num_parameters() == 128256 * 4096 + 32 * layer + 4096 + 128256 * 4096


def test_qwen_biases_and_tied_head_counted():
    cfg = catalog()["qwen2.5-0.5b"]
    assert cfg.attention_bias and cfg.tie_word_embeddings and cfg.head_dim == 64
    layer = 896 * 896 + 896 + 2 * (896 * 128 + 128) + 896 * 896 + 3 * 896 * 4864 + 2 * 896
    assert cfg.num_parameters() == 151936 * 896 + 24 * layer + 896 == 494032768


def test_tiny_is_a_small_llama3_gqa_shape():
    cfg = catalog()["tiny"]
    assert cfg.num_key_value_heads < cfg.num_attention_heads
    assert cfg.rope_scaling["rope_type"] == "llama3"
    assert cfg.num_parameters() < 1_000_000


def test_real_shapes_match_their_config_json_fields():
    c = catalog()
    assert c["llama-3.2-1b"].head_dim == 64 and c["llama-3.2-1b"].tie_word_embeddings
    assert c["llama-3.1-70b"].rope_scaling == {
        "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
        "original_max_position_embeddings": 8192, "rope_type": "llama3",
    }
    assert c["llama-2-7b"].rope_theta == 10000.0 and c["llama-2-7b"].rope_scaling is None
    assert c["mistral-7b"].model_type == "mistral" and not c["mistral-7b"].attention_bias
    assert c["qwen2.5-7b"].attention_bias and not c["qwen2.5-7b"].tie_word_embeddings


class _CountOps(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.ops = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops.append(func)
        return func(*args, **(kwargs or {}))


def test_describing_70b_allocates_nothing():
    start = time.perf_counter()
    with _CountOps() as counter:
        cfg, folder = resolve("llama-3.1-70b")
        n = cfg.num_parameters()
        facts = model_facts(cfg, batch=8, prompt_len=1024, gen_len=256, dtype_bytes=2)
    assert time.perf_counter() - start < 1.0
    assert counter.ops == []
    assert folder is None and n == 70553706496
    assert not any(isinstance(getattr(cfg, f.name), torch.Tensor) for f in dataclasses.fields(cfg))
    json.dumps(facts)  # plain JSON-able values


def test_config_is_frozen_and_hashable():
    cfg = catalog()["llama-3.1-8b"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.hidden_size = 1
    assert hash(cfg) == hash(ModelConfig.from_hf_dict(cfg.to_hf_dict()))


# ---------------------------------------------------------------------- from_hf_dict
BASE = {"vocab_size": 100, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4}


def test_from_hf_dict_defaults_and_unknown_keys():
    cfg = ModelConfig.from_hf_dict({**BASE, "bos_token_id": 1, "torch_dtype": "bfloat16", "architectures": ["X"]})
    assert cfg.head_dim == 8 and cfg.num_key_value_heads == 4
    assert cfg.rope_theta == 10000.0 and cfg.rope_scaling is None
    assert not cfg.attention_bias and not cfg.tie_word_embeddings and cfg.model_type == "llama"


def test_from_hf_dict_qwen2_implies_qkv_bias():
    assert ModelConfig.from_hf_dict({**BASE, "model_type": "qwen2"}).attention_bias
    assert not ModelConfig.from_hf_dict({**BASE, "model_type": "qwen2", "attention_bias": False}).attention_bias


def test_from_hf_dict_reads_transformers5_rope_parameters():
    rope = {"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 64}
    v4 = ModelConfig.from_hf_dict({**BASE, "rope_theta": 5e5, "rope_scaling": {**rope, "rope_type": "llama3"}})
    v5 = ModelConfig.from_hf_dict({**BASE, "rope_parameters": {**rope, "rope_theta": 5e5, "rope_type": "llama3"}})
    assert v4 == v5
    plain = ModelConfig.from_hf_dict({**BASE, "rope_parameters": {"rope_theta": 1e6, "rope_type": "default"}})
    assert plain.rope_theta == 1e6 and plain.rope_scaling is None


@pytest.mark.parametrize("field", ["vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads"])
def test_from_hf_dict_missing_field_is_named(field):
    d = {k: v for k, v in BASE.items() if k != field}
    with pytest.raises(ValueError, match=f"missing required field '{field}'"):
        ModelConfig.from_hf_dict(d)


@pytest.mark.parametrize(
    "extra, message",
    [
        ({"hidden_act": "gelu"}, "hidden_act 'gelu' is not supported"),
        ({"model_type": "gpt2"}, "model_type 'gpt2' is not supported"),
        ({"num_key_value_heads": 3}, "not a multiple of num_key_value_heads 3"),
        ({"rope_scaling": {"rope_type": "yarn", "factor": 4.0}}, "rope_scaling type 'yarn' is not supported"),
        ({"rope_scaling": {"rope_type": "llama3", "factor": 8.0}}, "needs a numeric 'low_freq_factor'"),
    ],
)
def test_from_hf_dict_rejects_unsupported(extra, message):
    with pytest.raises(ValueError, match=message):
        ModelConfig.from_hf_dict({**BASE, **extra})


# ---------------------------------------------------------------------- resolve
def test_resolve_catalog_name():
    cfg, folder = resolve("tiny")
    assert cfg == catalog()["tiny"] and folder is None


def test_resolve_folder(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({**BASE, "model_type": "qwen2"}))
    cfg, folder = resolve(str(tmp_path))
    assert folder == tmp_path and cfg.attention_bias


def test_resolve_unknown_name():
    with pytest.raises(ValueError) as e:
        resolve("no-such-model")
    msg = str(e.value)
    assert msg.startswith("unknown model 'no-such-model': not a catalog name (tiny, ")
    assert msg.endswith("nor a folder with config.json") and "\n" not in msg


def test_resolve_folder_without_config(tmp_path):
    with pytest.raises(ValueError, match="has no config.json"):
        resolve(str(tmp_path))


def test_resolve_folder_with_bad_json(tmp_path):
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(ValueError, match="config.json is not valid JSON"):
        resolve(str(tmp_path))


def test_resolve_folder_with_incomplete_config(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"vocab_size": 10}))
    with pytest.raises(ValueError, match="missing required field 'hidden_size'") as e:
        resolve(str(tmp_path))
    assert str(tmp_path) in str(e.value)


def test_load_model_folder_without_weights(tmp_path):
    from workloads.llm.loading import load_model

    (tmp_path / "config.json").write_text(json.dumps(BASE))
    with pytest.raises(ValueError, match=r"no \*\.safetensors weights"):
        load_model(str(tmp_path))
