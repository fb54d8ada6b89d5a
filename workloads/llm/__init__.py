"""The ``llm`` workload and the Llama-family model code.

Public API: :func:`load_model` (catalog name or Hugging Face folder -> torch module whose call on
``input_ids`` [B, T] returns logits [B, T, V]).
"""

from workloads.llm.loading import load_model
from workloads.llm.workload import LLMSpec, LLMWorkload

__all__ = ["LLMSpec", "LLMWorkload", "load_model"]
