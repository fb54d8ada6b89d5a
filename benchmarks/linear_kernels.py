"""GB/s of the CPU kernels that can multiply one row by a weight matrix (batch-1 decode).

For each weight shape and dtype: enough distinct matrices to total ``--gb`` GB (so weights stream
from DRAM, as in decode, not from cache), one row ``x``, and the median over 5 passes of
weight bytes / time for ``F.linear(x, W)`` (what ``nn.Linear`` and transformers use), ``torch.mv(W,
x)`` (what ``workloads.llm.model.Linear`` uses for a bf16 row) and, for bf16, oneDNN with a
prepacked weight (``torch.ops.mkldnn._linear_pointwise``, what Inductor's ``freezing`` emits).

    python benchmarks/linear_kernels.py [--threads 2] [--gb 1.0]
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from _quiet import median, wait_for_quiet  # noqa: E402

SHAPES = [(9728, 896, "qwen2.5-0.5b gate+up"), (896, 4864, "down"), (151936, 896, "head"), (1152, 896, "qkv")]


def gbps(fns, nbytes: float) -> float:
    for f in fns[:3]:
        f()
    ts = []
    for _ in range(5):
        t = time.perf_counter()
        for f in fns:
            f()
        ts.append(time.perf_counter() - t)
    return nbytes / median(ts) / 1e9


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--gb", type=float, default=1.0, help="total weight bytes per measurement")
    args = ap.parse_args(argv)

    import torch
    import torch.nn.functional as F

    from backends.cpu import usable_cores

    torch.set_num_threads(args.threads or usable_cores())
    print(f"threads {torch.get_num_threads()}, GB/s of weight bytes (median of 5 passes)")
    print("| weight [out x in] | dtype | F.linear | mv | oneDNN prepacked |")
    print("|---|---|---:|---:|---:|")
    with torch.inference_mode():
        for out_f, in_f, name in SHAPES:
            for dtype in (torch.float32, torch.bfloat16, torch.float16):
                n = max(2, int(args.gb * 1e9 / (out_f * in_f * dtype.itemsize)))
                ws = [torch.rand(out_f, in_f).to(dtype) for _ in range(n)]
                nbytes = n * out_f * in_f * dtype.itemsize
                x = torch.rand(1, in_f).to(dtype)
                wait_for_quiet()
                lin = gbps([lambda w=w, x=x: F.linear(x, w) for w in ws], nbytes)
                mv = gbps([lambda w=w, x=x: torch.mv(w, x[0]) for w in ws], nbytes)
                packed = ""
                if dtype == torch.bfloat16 and torch.backends.mkldnn.is_available():
                    half = ws[: max(1, n // 2)]  # packing copies: keep the total within --gb
                    del ws
                    ps = [torch.ops.mkldnn._reorder_linear_weight(w, 1) for w in half]
                    del half
                    op = torch.ops.mkldnn._linear_pointwise
                    packed = f"{gbps([lambda p=p, x=x, op=op: op(x, p, None, 'none', [], '') for p in ps], len(ps) * out_f * in_f * 2):.1f}"
                    del ps
                print(f"| {out_f} x {in_f} ({name}) | {str(dtype).removeprefix('torch.')} | {lin:.1f} | {mv:.1f} | {packed} |",
                      flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
