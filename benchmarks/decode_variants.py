"""accelbench's own CPU decode under variants: eager vs ``--compile``, 2 threads vs 1, and the code
before issue 6 ("before": ``F.linear`` for every projection, ``argmax``, full-prompt logits in
prefill), measured alternately in one process on the same random weights.

Each variant is a session from the cpu backend's ``load_llm`` (its own copy of the weights) timed
by ``LLMTrial.run`` with the real timer, as ``accelbench run`` does. Per round and variant: wait
for a quiet machine, 3 repetitions, their median; the table shows the median over rounds.
GB/s = ``decode_bytes_per_step`` (weights excl. the input embedding, plus the KV cache at the mean
context) / TPOT; "% copy" divides by the copy bandwidth of the ``membw`` kernel ((read + written)
/ t over 1 GiB), "% read" by a read-only stream (``torch.sum`` over 1 GiB).

    python benchmarks/decode_variants.py --model qwen2.5-0.5b --dtype float32 --rounds 5
"""

from __future__ import annotations

import argparse
import functools
import json
import pathlib
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from _quiet import add_shape_args, median, wait_for_quiet  # noqa: E402
from vs_transformers import copy_gbps  # noqa: E402


def make_before(session) -> None:
    """Turn a session back into the pre-issue-6 code path (for the comparison only)."""
    import torch
    import torch.nn.functional as F

    from workloads.llm.model import Linear

    for m in session.model.modules():
        if isinstance(m, Linear):
            m.forward = functools.partial(lambda mod, x: F.linear(x, mod.weight, mod.bias), m)

    def prefill(input_ids):
        with torch.inference_mode():
            logits = session.model(input_ids, torch.arange(input_ids.shape[1]))
            session._pos.fill_(input_ids.shape[1])
            return logits[:, -1].argmax(dim=-1)

    session.prefill = prefill
    session._decode = lambda model, ids, pos: model(ids[:, None], pos)[:, -1].argmax(dim=-1)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_shape_args(ap)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--variants", default="eager,eager-1-thread,compile,before")
    ap.add_argument("--json")
    args = ap.parse_args(argv)

    import torch

    from backends.base import PerfCounterTimer
    from backends.cpu import CPUBackend, usable_cores
    from harness.dtypes import torch_dtype
    from workloads.llm.config import resolve
    from workloads.llm.facts import decode_bytes_per_step
    from workloads.llm.workload import LLMWorkload

    cores = usable_cores()
    workload = LLMWorkload()
    params = workload.validate(dict(model=args.model, dtype=args.dtype, batch=args.batch,
                                    prompt_len=args.prompt_len, gen_len=args.gen_len))
    names = args.variants.split(",")
    threads = {n: (1 if n.endswith("1-thread") else cores) for n in names}
    trials, compile_s = {}, {}
    for name in names:
        backend = CPUBackend({"threads": threads[name], "compile": name.startswith("compile")})
        trials[name] = workload.setup(backend, params, seed=0)
        if name == "before":
            make_before(trials[name].session)
        t = time.perf_counter()
        trials[name].run(PerfCounterTimer())  # warm-up (compiles)
        compile_s[name] = time.perf_counter() - t
    timer = PerfCounterTimer()
    rates = {n: [] for n in names}
    tpots = {n: [] for n in names}
    ttfts = {n: [] for n in names}
    wait_for_quiet()
    bw_copy, bw_read = copy_gbps(CPUBackend({}))
    for r in range(args.rounds):
        for name in names:
            torch.set_num_threads(threads[name])
            wait_for_quiet()
            m = [trials[name].run(timer) for _ in range(3)]
            rates[name].append(median(x["decode_tok_s"] for x in m))
            tpots[name].append(median(x["tpot_ms"] for x in m))
            ttfts[name].append(median(x["ttft_ms"] for x in m))
        print(f"round {r + 1}/{args.rounds}: " + ", ".join(f"{n} {rates[n][-1]:.2f}" for n in names), file=sys.stderr)
    torch.set_num_threads(cores)
    c2, r2 = copy_gbps(CPUBackend({}))
    bw_copy, bw_read = max(bw_copy, c2), max(bw_read, r2)
    config, _ = resolve(args.model)
    step_bytes = decode_bytes_per_step(config, batch=args.batch, context_len=args.prompt_len + args.gen_len / 2,
                                       dtype_bytes=torch_dtype(args.dtype).itemsize)
    print(f"\n{args.model} {args.dtype} B={args.batch} P={args.prompt_len} G={args.gen_len}, {args.rounds} rounds; "
          f"{step_bytes / 1e9:.3f} GB/step; copy {bw_copy:.1f} GB/s, read {bw_read:.1f} GB/s")
    print("| variant | threads | decode tok/s | TPOT ms | TTFT ms | GB/s | % copy | % read | first rep s |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    out = {}
    for n in names:
        gbps = step_bytes / (median(tpots[n]) / 1e3) / 1e9
        out[n] = dict(threads=threads[n], decode_tok_s=median(rates[n]), tpot_ms=median(tpots[n]),
                      ttft_ms=median(ttfts[n]), gbps=gbps, first_rep_s=compile_s[n], per_round=rates[n])
        print(f"| {n} | {threads[n]} | {median(rates[n]):.2f} | {median(tpots[n]):.1f} | {median(ttfts[n]):.0f} | "
              f"{gbps:.1f} | {gbps / bw_copy:.0%} | {gbps / bw_read:.0%} | {compile_s[n]:.1f} |")
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(dict(args=vars(args), copy_gbps=bw_copy, read_gbps=bw_read,
                                                           bytes_per_step=step_bytes, variants=out), indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
