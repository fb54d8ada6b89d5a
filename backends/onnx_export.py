"""ONNX graphs for the ``onnxruntime`` backend: the LLM step graph and the gemm/copy kernels.

The LLM graph is exported from the workload's torch module with torch's dynamo exporter
(``torch.onnx.export(..., dynamo=True)``, which needs ``onnxscript``). The TorchScript exporter
(``dynamo=False``) is still in torch 2.13 but has no symbolic for ``aten::rms_norm`` (the model's
RMSNorm), so it would need per-op patches; the dynamo exporter exports the model unchanged.

One graph serves prefill and decode (weights are held once on the device):

    inputs : input_ids [B, T] int64, input_pos [T] int64, k_cache_0, v_cache_0, ... [B, n_kv, S, hd]
    outputs: next_ids [B] int64 (greedy argmax of the last position, inside the graph),
             next_pos [1] int64 (= input_pos[-1] + 1),
             k_cache_0_out, v_cache_0_out, ... (the caches with positions ``input_pos`` written)

B = max_batch and S = max_seq are static; T is dynamic (T = prompt_len for prefill, 1 for decode).
The attention mask is computed inside the graph from ``input_pos`` (key position <= query
position, as the torch model does), so a decode step needs no host-built mask.
"""

from __future__ import annotations

import contextlib
import logging
import os
import warnings
from dataclasses import dataclass
from typing import Any

#: ONNX opset of every graph here: the dynamo exporter's minimum (it targets opset >= 18), and
#: within what ORT 1.17+ (including the CANN builds 1.20-1.22) implements.
OPSET = 18
#: IR version written with the hand-built kernels (ORT >= 1.16 reads IR 9).
IR_VERSION = 9

INPUT_IDS, INPUT_POS, NEXT_IDS, NEXT_POS = "input_ids", "input_pos", "next_ids", "next_pos"


@dataclass
class ExportedLLM:
    path: str
    batch: int
    max_seq: int
    cache_shape: tuple[int, ...]
    cache_inputs: list[str]
    cache_outputs: list[str]
    dtype: str


def cache_names(n_layers: int) -> list[str]:
    return [f"{kv}_cache_{i}" for i in range(n_layers) for kv in ("k", "v")]


class _StepGraph:
    """Functional wrapper: caches in, caches out (built lazily to keep torch out of module import)."""

    @staticmethod
    def make(model: Any) -> Any:
        import torch

        class StepGraph(torch.nn.Module):
            def __init__(self, inner: Any) -> None:
                super().__init__()
                self.inner = inner

            def forward(self, input_ids, input_pos, caches):
                layers = self.inner.layers
                for i, layer in enumerate(layers):
                    # The model writes k/v for ``input_pos`` into its cache buffers with
                    # index_copy_; torch.export functionalises that into ScatterND on the inputs.
                    layer.attention.k_cache = caches[2 * i]
                    layer.attention.v_cache = caches[2 * i + 1]
                logits = self.inner.forward_last(input_ids, input_pos)
                next_ids = logits.argmax(dim=-1)
                outs = []
                for layer in layers:
                    outs += [layer.attention.k_cache, layer.attention.v_cache]
                return (next_ids, input_pos[-1:] + 1, *outs)

        return StepGraph(model)


@contextlib.contextmanager
def _quiet():
    """The exporter logs progress and registry warnings (torchvision missing): keep children's logs short."""
    loggers = [logging.getLogger(n) for n in ("torch.onnx", "torch.export", "torch._dynamo", "onnxscript")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def export_llm(model: Any, batch: int, max_seq: int, folder: str, dtype: str) -> ExportedLLM:
    """Export ``model`` (a workloads.llm Transformer on the CPU) as the step graph in ``folder``.

    Weights go to an external-data file next to the graph (needed beyond 2 GB; ORT loads it from
    the same folder).
    """
    import torch

    from harness.dtypes import torch_dtype

    tdt = torch_dtype(dtype)
    model.setup_caches(batch, max_seq, dtype=tdt, device="cpu")
    model.eval()
    cfg = model.config
    cache_shape = (batch, cfg.num_key_value_heads, max_seq, cfg.head_dim)
    names = cache_names(len(model.layers))
    outs = [n + "_out" for n in names]
    t0 = min(2, max_seq)  # an example length > 1 keeps T symbolic (no 0/1 specialisation)
    ids = torch.zeros(batch, t0, dtype=torch.long)
    pos = torch.arange(t0)
    caches = [torch.zeros(cache_shape, dtype=tdt) for _ in names]
    tokens = torch.export.Dim("tokens", min=1, max=max_seq)
    path = os.path.join(folder, "llm_step.onnx")
    with torch.no_grad(), _quiet():
        torch.onnx.export(
            _StepGraph.make(model),
            (ids, pos, caches),
            path,
            dynamo=True,
            external_data=True,
            opset_version=OPSET,
            input_names=[INPUT_IDS, INPUT_POS, *names],
            output_names=[NEXT_IDS, NEXT_POS, *outs],
            dynamic_shapes={"input_ids": {1: tokens}, "input_pos": {0: tokens}, "caches": [None] * len(names)},
            verbose=False,
        )
    return ExportedLLM(path, batch, max_seq, cache_shape, names, outs, dtype)


# ----- kernels for the ceiling workloads --------------------------------------------------------
def _tensor_type(dtype: str) -> int:
    from onnx import TensorProto

    return {"float32": TensorProto.FLOAT, "float16": TensorProto.FLOAT16, "uint8": TensorProto.UINT8}[dtype]


def _model_bytes(graph: Any) -> bytes:
    from onnx import helper

    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="accelbench")
    model.ir_version = IR_VERSION
    return model.SerializeToString()


def gemm_model(m: int, n: int, k: int, dtype: str) -> bytes:
    """``c[m, n] = MatMul(a[m, k], b[k, n])``."""
    from onnx import helper

    t = _tensor_type(dtype)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["a", "b"], ["c"])], "gemm",
        [helper.make_tensor_value_info("a", t, [m, k]), helper.make_tensor_value_info("b", t, [k, n])],
        [helper.make_tensor_value_info("c", t, [m, n])],
    )
    return _model_bytes(graph)


def copy_model(numel: int, dtype: str) -> bytes:
    """``y[numel] = Identity(x[numel])``: with ``y`` bound to its own buffer, ORT copies x into it."""
    from onnx import helper

    t = _tensor_type(dtype)
    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])], "copy",
        [helper.make_tensor_value_info("x", t, [numel])], [helper.make_tensor_value_info("y", t, [numel])],
    )
    return _model_bytes(graph)
