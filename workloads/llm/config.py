"""Model shapes for the ``llm`` workload.

A :class:`ModelConfig` describes a Llama-family decoder using the field names of a Hugging Face
``config.json``. Describing a shape never allocates tensors: the catalog of named shapes
(``configs/models.toml``) and any local Hugging Face folder resolve to a config in microseconds,
so ``accelbench models`` can list a 70B model on a laptop.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import pathlib
from dataclasses import dataclass
from importlib import resources
from typing import Any, Mapping

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

__all__ = ["ModelConfig", "catalog", "catalog_entries", "resolve", "SUPPORTED_MODEL_TYPES"]

#: ``model_type`` values whose checkpoints map onto :class:`workloads.llm.model.Transformer`.
SUPPORTED_MODEL_TYPES = ("llama", "mistral", "qwen2")
#: ``rope_type`` values implemented by the model's rotary table.
SUPPORTED_ROPE_TYPES = ("default", "linear", "llama3")

_REQUIRED = ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads")
_LLAMA3_KEYS = ("factor", "low_freq_factor", "high_freq_factor", "original_max_position_embeddings")


@dataclass(frozen=True)
class ModelConfig:
    """Shape of a Llama-family decoder, in Hugging Face ``config.json`` terms.

    ``head_dim`` None means ``hidden_size // num_attention_heads``. ``rope_scaling`` is None or a
    dict in Hugging Face form with a ``rope_type`` key (``"linear"``: ``factor``; ``"llama3"``:
    ``factor``, ``low_freq_factor``, ``high_freq_factor``, ``original_max_position_embeddings``).
    ``attention_bias`` means q/k/v projections carry a bias (Qwen2); ``o_proj`` never does.
    Sliding-window settings (Mistral's ``sliding_window``) are ignored: the model attends the full
    context, which is identical while the context stays within the window.
    """

    vocab_size: int
    hidden_size: int
    intermediate_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int | None = None
    head_dim: int | None = None
    rms_norm_eps: float = 1e-6
    rope_theta: float = 10000.0
    rope_scaling: dict[str, Any] | None = None
    max_position_embeddings: int = 2048
    tie_word_embeddings: bool = False
    attention_bias: bool = False
    model_type: str = "llama"

    def __post_init__(self) -> None:
        for name in _REQUIRED:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"model config: {name} must be a positive integer, got {value!r}")
        if self.num_key_value_heads is None:
            object.__setattr__(self, "num_key_value_heads", self.num_attention_heads)
        if self.head_dim is None:
            if self.hidden_size % self.num_attention_heads:
                raise ValueError(
                    f"model config: hidden_size {self.hidden_size} is not divisible by "
                    f"num_attention_heads {self.num_attention_heads} and head_dim is not given"
                )
            object.__setattr__(self, "head_dim", self.hidden_size // self.num_attention_heads)
        for name in ("num_key_value_heads", "head_dim", "max_position_embeddings"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"model config: {name} must be a positive integer, got {value!r}")
        if self.num_attention_heads % self.num_key_value_heads:
            raise ValueError(
                f"model config: num_attention_heads {self.num_attention_heads} is not a multiple of "
                f"num_key_value_heads {self.num_key_value_heads}"
            )
        if self.head_dim % 2:
            raise ValueError(f"model config: head_dim must be even for rotary embeddings, got {self.head_dim}")
        if self.model_type not in SUPPORTED_MODEL_TYPES:
            raise ValueError(
                f"model config: model_type {self.model_type!r} is not supported "
                f"(supported: {', '.join(SUPPORTED_MODEL_TYPES)})"
            )
        object.__setattr__(self, "rope_scaling", _normalise_rope_scaling(self.rope_scaling))

    def __hash__(self) -> int:  # rope_scaling is a dict; hash its items instead
        fields = [getattr(self, f.name) for f in dataclasses.fields(self)]
        fields = [tuple(sorted(v.items())) if isinstance(v, dict) else v for v in fields]
        return hash(tuple(fields))

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_hf_dict(cls, d: Mapping[str, Any]) -> "ModelConfig":
        """Build from a Hugging Face ``config.json`` dict; unknown keys are ignored.

        Accepts both the transformers 4 layout (``rope_theta`` + ``rope_scaling``) and the
        transformers 5 layout (``rope_parameters``). Qwen2 configs carry no ``attention_bias`` key;
        ``model_type == "qwen2"`` implies q/k/v biases. Raises ``ValueError`` with one line naming
        the problem (a missing required field, an unsupported activation, ...).
        """
        if not isinstance(d, Mapping):
            raise ValueError(f"model config: expected a JSON object, got {type(d).__name__}")
        for name in _REQUIRED:
            if d.get(name) is None:
                raise ValueError(f"model config: missing required field '{name}'")
        model_type = d.get("model_type", "llama")
        act = d.get("hidden_act", "silu")
        if act != "silu":
            raise ValueError(f"model config: hidden_act {act!r} is not supported (only 'silu')")
        if d.get("mlp_bias"):
            raise ValueError("model config: mlp_bias=true is not supported")

        rope_theta = d.get("rope_theta")
        rope_scaling = d.get("rope_scaling")
        params = d.get("rope_parameters")
        if isinstance(params, Mapping):  # transformers >= 5
            if rope_theta is None:
                rope_theta = params.get("rope_theta")
            if rope_scaling is None:
                rest = {k: v for k, v in params.items() if k != "rope_theta"}
                if rest.get("rope_type", rest.get("type", "default")) != "default":
                    rope_scaling = rest

        attention_bias = d.get("attention_bias")
        if attention_bias is None:
            attention_bias = model_type == "qwen2"

        kwargs: dict[str, Any] = {name: d[name] for name in _REQUIRED}
        optional = {
            "num_key_value_heads": d.get("num_key_value_heads"),
            "head_dim": d.get("head_dim"),
            "rms_norm_eps": d.get("rms_norm_eps"),
            "rope_theta": rope_theta,
            "rope_scaling": rope_scaling,
            "max_position_embeddings": d.get("max_position_embeddings"),
            "tie_word_embeddings": d.get("tie_word_embeddings"),
            "attention_bias": attention_bias,
            "model_type": model_type,
        }
        kwargs.update({k: v for k, v in optional.items() if v is not None})
        for name in ("rms_norm_eps", "rope_theta"):
            if name in kwargs:
                kwargs[name] = float(kwargs[name])
        return cls(**kwargs)

    def to_hf_dict(self) -> dict[str, Any]:
        """The config as a Hugging Face style dict (JSON-able)."""
        d = dataclasses.asdict(self)
        if d["rope_scaling"] is None:
            del d["rope_scaling"]
        return d

    # ------------------------------------------------------------------ counts
    @property
    def q_size(self) -> int:
        return self.num_attention_heads * self.head_dim

    @property
    def kv_size(self) -> int:
        return self.num_key_value_heads * self.head_dim

    def layer_parameters(self) -> int:
        """Parameters of one decoder layer: q/k/v/o (+ q/k/v biases), gate/up/down, two RMSNorms."""
        d = self.hidden_size
        attn = d * self.q_size + 2 * d * self.kv_size + self.q_size * d
        if self.attention_bias:
            attn += self.q_size + 2 * self.kv_size
        mlp = 3 * d * self.intermediate_size
        return attn + mlp + 2 * d

    def num_parameters(self) -> int:
        """Exact parameter count: embedding + layers + final norm + head (embedding counted once if tied)."""
        embed = self.vocab_size * self.hidden_size
        head = 0 if self.tie_word_embeddings else embed
        return embed + self.num_hidden_layers * self.layer_parameters() + self.hidden_size + head

    def weight_bytes(self, dtype_bytes: float) -> int:
        """Bytes of all weights stored once at ``dtype_bytes`` per element."""
        return int(math.ceil(self.num_parameters() * dtype_bytes))


def _normalise_rope_scaling(rs: Any) -> dict[str, Any] | None:
    if rs is None:
        return None
    if not isinstance(rs, Mapping):
        raise ValueError(f"model config: rope_scaling must be an object or null, got {rs!r}")
    rs = dict(rs)
    rope_type = rs.get("rope_type", rs.get("type"))
    if rope_type is None:
        raise ValueError("model config: rope_scaling has no 'rope_type'")
    rs.pop("type", None)
    rs["rope_type"] = rope_type
    if rope_type == "default":
        return None
    if rope_type not in SUPPORTED_ROPE_TYPES:
        raise ValueError(
            f"model config: rope_scaling type {rope_type!r} is not supported "
            f"(supported: {', '.join(SUPPORTED_ROPE_TYPES)})"
        )
    needed = ("factor",) if rope_type == "linear" else _LLAMA3_KEYS
    for key in needed:
        if not isinstance(rs.get(key), (int, float)) or isinstance(rs.get(key), bool):
            raise ValueError(f"model config: rope_scaling type {rope_type!r} needs a numeric '{key}'")
    return rs


# ---------------------------------------------------------------------- catalog
@functools.lru_cache(maxsize=1)
def _catalog_toml() -> dict[str, dict[str, Any]]:
    text = resources.files("configs").joinpath("models.toml").read_text(encoding="utf-8")
    data = tomllib.loads(text)
    return {name: table for name, table in data.items() if isinstance(table, dict)}


def catalog_entries() -> dict[str, dict[str, Any]]:
    """The raw tables of ``configs/models.toml`` (incl. ``published_params`` and ``source``), copied."""
    return {name: json.loads(json.dumps(table)) for name, table in _catalog_toml().items()}


@functools.lru_cache(maxsize=1)
def _catalog() -> dict[str, ModelConfig]:
    out = {}
    for name, table in _catalog_toml().items():
        try:
            out[name] = ModelConfig.from_hf_dict(table)
        except ValueError as e:
            raise ValueError(f"configs/models.toml [{name}]: {e}") from None
    return out


def catalog() -> dict[str, ModelConfig]:
    """Named model shapes from ``configs/models.toml`` (name -> config). No tensors are created."""
    return dict(_catalog())


def resolve(source: str | pathlib.Path) -> tuple[ModelConfig, pathlib.Path | None]:
    """Map a model source to ``(config, folder)``.

    A catalog name gives ``(config, None)`` (random weights); a folder holding a Hugging Face
    ``config.json`` gives ``(config, folder)``. Anything else raises ``ValueError`` with one line.
    """
    shapes = _catalog()
    key = str(source)
    if key in shapes:
        return shapes[key], None
    folder = pathlib.Path(key).expanduser()
    if folder.is_dir():
        cfg_file = folder / "config.json"
        if not cfg_file.is_file():
            raise ValueError(f"model folder '{folder}' has no config.json")
        try:
            d = json.loads(cfg_file.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ValueError(f"model folder '{folder}': config.json is not valid JSON ({e})") from None
        try:
            return ModelConfig.from_hf_dict(d), folder
        except ValueError as e:
            raise ValueError(f"model folder '{folder}': {e}") from None
    raise ValueError(
        f"unknown model '{key}': not a catalog name ({', '.join(shapes)}) nor a folder with config.json"
    )
