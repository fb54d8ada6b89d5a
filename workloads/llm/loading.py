"""Build a :class:`~workloads.llm.model.Transformer` on a device, with random or real weights.

The module is created on the ``meta`` device (no memory), materialised directly on the target
device with uninitialised storage, then either filled with seeded random ("dummy") weights, as vLLM's
``--load-format dummy``, or loaded tensor by tensor from a Hugging Face safetensors folder into the
fused layout (read straight into the parameters, one tensor at a time). Nothing is unpickled.
"""

from __future__ import annotations

import json
import math
import os
import pathlib
import re

import torch

from .config import ModelConfig, resolve
from .model import Transformer

__all__ = ["build_model", "load_model", "DUMMY_STD"]

#: Standard deviation of dummy weights (Hugging Face's ``initializer_range`` default).
DUMMY_STD = 0.02
_DUMMY_BOUND = DUMMY_STD * math.sqrt(3.0)
#: Rows of the default rope table built at load time (``setup_caches`` resizes it).
_ROPE_ROWS = 4096

_DTYPE_NAMES = {
    "float32": torch.float32, "fp32": torch.float32, "float": torch.float32,
    "float16": torch.float16, "fp16": torch.float16, "half": torch.float16,
    "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
}


def _as_dtype(dtype: torch.dtype | str) -> torch.dtype:
    if isinstance(dtype, torch.dtype):
        return dtype
    try:
        return _DTYPE_NAMES[str(dtype).lower().removeprefix("torch.")]
    except KeyError:
        raise ValueError(f"unsupported dtype {dtype!r} (use one of {', '.join(_DTYPE_NAMES)})") from None


def build_model(
    config: ModelConfig,
    *,
    dtype: torch.dtype | str = torch.float32,
    device: torch.device | str = "cpu",
    folder: str | pathlib.Path | None = None,
    seed: int = 0,
) -> Transformer:
    """Materialise ``config`` on ``device`` in ``dtype``: dummy weights from ``seed`` when
    ``folder`` is None, else the Hugging Face safetensors weights in ``folder``. Returns the model
    in eval mode with gradients off and a rope table; call ``setup_caches`` before cached decoding.
    """
    dtype = _as_dtype(dtype)
    device = torch.device(device)
    with torch.device("meta"):
        model = Transformer(config)
    _materialise(model, dtype, device)
    with torch.no_grad():
        if folder is None:
            _init_dummy(model, seed)
        else:
            _load_safetensors(model, pathlib.Path(folder))
    model.setup_rope(min(config.max_position_embeddings, _ROPE_ROWS))
    return model.eval()


def load_model(source: str, *, dtype: torch.dtype | str = torch.float32, device: torch.device | str = "cpu") -> Transformer:
    """Build the model named by ``source``: a catalog name (random weights, seed 0) or a local
    Hugging Face folder (config.json + safetensors)."""
    config, folder = resolve(source)
    return build_model(config, dtype=dtype, device=device, folder=folder)


def _materialise(model: Transformer, dtype: torch.dtype, device: torch.device) -> None:
    """Give every meta parameter uninitialised storage of ``dtype`` on ``device`` (no gradients).

    Like ``model.to(dtype).to_empty(device)``, but a tied head keeps sharing the embedding
    (``to_empty`` allocates it twice), and ``torch.empty`` with a shape does not go through
    torch's Python reference ops for meta tensors, whose first use imports sympy (see
    ``model.Embedding``).
    """
    new: dict[int, torch.nn.Parameter] = {}
    for module in model.modules():
        for name, p in list(module.named_parameters(recurse=False)):
            if id(p) not in new:
                new[id(p)] = torch.nn.Parameter(torch.empty(p.shape, dtype=dtype, device=device), requires_grad=False)
            setattr(module, name, new[id(p)])


# ---------------------------------------------------------------------- dummy weights
def _generator(device: torch.device, seed: int) -> torch.Generator:
    try:
        gen = torch.Generator(device=device)
    except (RuntimeError, TypeError):  # a device without its own generator: fill via the CPU
        gen = torch.Generator()
    gen.manual_seed(seed)
    return gen


def _init_dummy(model: Transformer, seed: int) -> None:
    """Uniform(-a, a) with standard deviation DUMMY_STD (a = sqrt(3) * DUMMY_STD) for matrices,
    embeddings and biases; ones for norm weights. Uniform rather than normal because it fills
    about 4x faster on a CPU (vLLM's dummy loader is uniform too); greedy decoding stays finite.

    Deterministic for a given (seed, device type, dtype). Parameters are visited in
    ``named_parameters`` order, which deduplicates a tied head.
    """
    gen = None
    for name, p in model.named_parameters():
        if name.endswith("norm.weight"):
            p.fill_(1.0)
            continue
        if gen is None:
            gen = _generator(p.device, seed)
        if gen.device.type == p.device.type:
            p.uniform_(-_DUMMY_BOUND, _DUMMY_BOUND, generator=gen)
        else:
            p.copy_(torch.empty(p.shape, dtype=p.dtype).uniform_(-_DUMMY_BOUND, _DUMMY_BOUND, generator=gen))


# ---------------------------------------------------------------------- safetensors
_LAYER = re.compile(r"model\.layers\.(\d+)\.(.+)")
_IGNORED = re.compile(r".*rotary_emb\.inv_freq$")


def _targets(model: Transformer) -> dict[str, tuple[torch.Tensor, slice | None]]:
    """HF tensor name -> (destination parameter, row slice of it or None for the whole tensor)."""
    cfg = model.config
    q, kv, inter = cfg.q_size, cfg.kv_size, cfg.intermediate_size
    rows_q, rows_k, rows_v = slice(0, q), slice(q, q + kv), slice(q + kv, q + 2 * kv)
    out: dict[str, tuple[torch.Tensor, slice | None]] = {
        "model.embed_tokens.weight": (model.tok_embeddings.weight, None),
        "model.norm.weight": (model.norm.weight, None),
    }
    if not cfg.tie_word_embeddings:
        out["lm_head.weight"] = (model.output.weight, None)
    for i, layer in enumerate(model.layers):
        pre = f"model.layers.{i}."
        att, ff = layer.attention, layer.feed_forward
        out[pre + "input_layernorm.weight"] = (layer.attention_norm.weight, None)
        out[pre + "post_attention_layernorm.weight"] = (layer.ffn_norm.weight, None)
        for proj, rows in (("q", rows_q), ("k", rows_k), ("v", rows_v)):
            out[pre + f"self_attn.{proj}_proj.weight"] = (att.wqkv.weight, rows)
            if cfg.attention_bias:
                out[pre + f"self_attn.{proj}_proj.bias"] = (att.wqkv.bias, rows)
        out[pre + "self_attn.o_proj.weight"] = (att.wo.weight, None)
        out[pre + "mlp.gate_proj.weight"] = (ff.w13.weight, slice(0, inter))
        out[pre + "mlp.up_proj.weight"] = (ff.w13.weight, slice(inter, 2 * inter))
        out[pre + "mlp.down_proj.weight"] = (ff.w2.weight, None)
    return out


def _shard_files(folder: pathlib.Path) -> list[pathlib.Path]:
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        try:
            weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
            names = sorted(set(weight_map.values()))
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
            raise ValueError(f"model folder '{folder}': unreadable model.safetensors.index.json ({e})") from None
        files = [folder / n for n in names]
        missing = [str(f.name) for f in files if not f.is_file()]
        if missing:
            raise ValueError(f"model folder '{folder}': shards named in the index are missing: {', '.join(missing)}")
        return files
    files = sorted(folder.glob("*.safetensors"))
    if not files:
        raise ValueError(f"model folder '{folder}' has config.json but no *.safetensors weights")
    return files


#: safetensors dtype codes of floating-point checkpoints -> torch dtypes.
_ST_DTYPES = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16, "F64": torch.float64}


def _safetensors_header(fh) -> tuple[int, dict]:
    """``(offset of the data section, {name: {dtype, shape, data_offsets}})`` of an open
    safetensors file: an 8-byte little-endian header length, a JSON header, the raw data."""
    size = os.fstat(fh.fileno()).st_size
    n = int.from_bytes(fh.read(8), "little")
    if not 0 < n <= size - 8:
        raise ValueError("not a safetensors file (bad header length)")
    header = json.loads(fh.read(n))
    header.pop("__metadata__", None)
    base = 8 + n
    for name, entry in header.items():
        if entry["dtype"] not in _ST_DTYPES:
            raise ValueError(f"tensor {name} has unsupported dtype {entry['dtype']}")
        start, end = entry["data_offsets"]
        if end - start != math.prod(entry["shape"]) * _ST_DTYPES[entry["dtype"]].itemsize or base + end > size:
            raise ValueError(f"tensor {name} has inconsistent data_offsets")
    return base, header


def _read_into(fh, base: int, entry: dict, dest: torch.Tensor) -> None:
    """Read one tensor's bytes straight into ``dest``, or into a temporary converted by ``copy_``
    when the dtype or device differs. Plain reads, not a memory map: mapped file pages count in
    the process's resident memory, which would hold the checkpoint a second time while loading."""
    dtype = _ST_DTYPES[entry["dtype"]]
    start, end = entry["data_offsets"]
    direct = dest.device.type == "cpu" and dest.dtype == dtype and dest.is_contiguous()
    buf = dest if direct else torch.empty(dest.shape, dtype=dtype)
    fh.seek(base + start)
    if fh.readinto(buf.view(-1).view(torch.uint8).numpy()) != end - start:
        raise ValueError("file is truncated")
    if not direct:
        dest.copy_(buf)


def _load_safetensors(model: Transformer, folder: pathlib.Path) -> None:
    targets = _targets(model)
    tied = model.config.tie_word_embeddings
    loaded: set[str] = set()
    for path in _shard_files(folder):
        try:
            fh = open(path, "rb")
            base, header = _safetensors_header(fh)
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise ValueError(f"model folder '{folder}': cannot read {path.name} ({e})") from None
        with fh:
            for name, entry in header.items():
                if name in loaded:
                    raise ValueError(f"model folder '{folder}': tensor {name} appears in more than one shard")
                if name not in targets:
                    if _IGNORED.match(name) or (tied and name == "lm_head.weight"):
                        continue
                    raise ValueError(
                        f"model folder '{folder}': unexpected tensor {name} in {path.name} "
                        f"(not a {model.config.model_type} decoder checkpoint?)"
                    )
                param, rows = targets[name]
                dest = param if rows is None else param[rows]
                if tuple(entry["shape"]) != tuple(dest.shape):
                    raise ValueError(
                        f"model folder '{folder}': tensor {name} has shape {tuple(entry['shape'])}, "
                        f"config.json implies {tuple(dest.shape)}"
                    )
                try:
                    _read_into(fh, base, entry, dest)
                except (OSError, ValueError) as e:
                    raise ValueError(f"model folder '{folder}': cannot read {name} from {path.name} ({e})") from None
                loaded.add(name)
    missing = [n for n in targets if n not in loaded]
    if missing:
        more = f" (and {len(missing) - 3} more)" if len(missing) > 3 else ""
        raise ValueError(f"model folder '{folder}': checkpoint lacks {', '.join(missing[:3])}{more}")
