"""The ``llm`` workload: greedy generation of exactly ``gen_len`` tokens from synthetic prompts."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.dtypes import BYTES, canonical_dtype
from harness.errors import UsageError
from workloads.base import RepSample, Trial, Workload
from workloads.llm.config import ModelConfig, resolve
from workloads.llm.facts import model_facts
from workloads.llm.metrics import LOWER_IS_BETTER, UNITS, llm_rep_metrics


@dataclass
class LLMSpec:
    """What a backend needs to build the model: ``spec.build(device, dtype)`` returns the module."""

    config: ModelConfig
    folder: Path | None = None
    seed: int = 0

    def build(self, device: Any, dtype: str):
        from harness.dtypes import torch_dtype
        from workloads.llm.loading import build_model

        return build_model(self.config, dtype=torch_dtype(dtype), device=device, folder=self.folder, seed=self.seed)


def resolve_model(source: str) -> tuple[ModelConfig, Path | None]:
    """Catalog name or Hugging Face folder -> (config, folder); UsageError when neither."""
    try:
        return resolve(source)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


class LLMTrial(Trial):
    def __init__(self, session: Any, prompt: Any, params: dict[str, Any], facts: dict[str, Any]) -> None:
        self.session = session
        self.prompt = prompt
        self.batch, self.prompt_len, self.gen_len = params["batch"], params["prompt_len"], params["gen_len"]
        self.bytes_per_step = facts.get("decode_bytes_per_step")
        self.prefill_flops = facts.get("prefill_flops")
        self._tokens: list[Any] = []

    def run(self, timer: Any) -> RepSample:
        session = self.session
        session.reset()
        tokens = []
        timer.start()
        ids = session.prefill(self.prompt)
        timer.mark()
        tokens.append(ids)
        for _ in range(self.gen_len - 1):
            ids = session.decode(ids)
            timer.mark()
            tokens.append(ids)
        marks = timer.read_ns()
        self._tokens = tokens
        return llm_rep_metrics(
            marks, self.batch, self.prompt_len, self.gen_len, self.bytes_per_step, self.prefill_flops
        )

    def tokens_ok(self) -> bool:
        return len(self._tokens) == self.gen_len and all(len(t) == self.batch for t in self._tokens)

    def generated(self) -> list[list[int]]:
        """Token ids of the last repetition, [B][G] (reads from the device; not for timed code)."""
        cols = [[int(x) for x in (t.tolist() if hasattr(t, "tolist") else t)] for t in self._tokens]
        return [list(row) for row in zip(*cols)]

    def close(self) -> None:
        self.session = None


class LLMWorkload(Workload):
    """Token throughput of a Llama-family decoder (DESIGN.md "Workloads" and "Metrics")."""

    name = "llm"
    params = {
        "model": (str, "tiny"),
        "dtype": (str, "float32"),
        "batch": (int, 1),
        "prompt_len": (int, 128),
        "gen_len": (int, 128),
    }
    primary_metric = "decode_tok_s"
    units = UNITS
    lower_is_better = LOWER_IS_BETTER

    def validate(self, params: dict[str, Any]) -> dict[str, Any]:
        out = super().validate(params)
        out["dtype"] = canonical_dtype(out["dtype"])
        config, _ = resolve_model(out["model"])
        needed = out["prompt_len"] + out["gen_len"]
        if needed > config.max_position_embeddings:
            raise UsageError(
                f"prompt_len + gen_len = {needed} exceeds {out['model']}'s "
                f"max_position_embeddings ({config.max_position_embeddings})"
            )
        return out

    def facts(self, params: dict[str, Any]) -> dict[str, Any]:
        config, _ = resolve_model(params["model"])
        return model_facts(
            config,
            batch=params["batch"],
            prompt_len=params["prompt_len"],
            gen_len=params["gen_len"],
            dtype_bytes=BYTES[params["dtype"]],
        )

    def setup(self, backend: Any, params: dict[str, Any], seed: int) -> LLMTrial:
        import torch

        config, folder = resolve_model(params["model"])
        if params["dtype"] not in backend.supported_dtypes():
            raise UsageError(
                f"backend '{backend.name}' does not support dtype {params['dtype']} "
                f"(supported: {', '.join(backend.supported_dtypes())})"
            )
        spec = LLMSpec(config=config, folder=folder, seed=seed)
        batch, prompt_len, gen_len = params["batch"], params["prompt_len"], params["gen_len"]
        session = backend.load_llm(spec, params["dtype"], batch, prompt_len + gen_len)
        generator = torch.Generator().manual_seed(seed)
        prompt = torch.randint(0, config.vocab_size, (batch, prompt_len), generator=generator)
        return LLMTrial(session, session.to_device(prompt), params, self.facts(params))
