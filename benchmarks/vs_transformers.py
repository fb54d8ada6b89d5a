"""accelbench's CPU decode side by side with Hugging Face transformers' ``generate``.

Both run in this one process, on the same weights, prompt, shape, dtype and thread count, and are
measured alternately (ours, HF, ours, HF, ...) after waiting for a quiet machine each time:

* weights: a transformers ``*ForCausalLM`` is built from the catalog shape with random weights and
  saved with ``save_pretrained`` to a temporary folder; accelbench loads that folder, so both
  models hold identical weights (the greedy tokens are compared as a check).
* ours: exactly what ``accelbench run --backend cpu`` times -- ``LLMWorkload.setup`` on the
  ``cpu`` backend and ``LLMTrial.run`` with the backend's real timer; decode tok/s = B*(G-1)/(e2e-ttft).
* HF: ``model.generate`` greedy (``do_sample=False``), ``use_cache=True``, EOS disabled; ttft is
  the wall time of ``generate(max_new_tokens=1)``, e2e that of
  ``generate(max_new_tokens=G, min_new_tokens=G)``; decode tok/s = B*(G-1)/(median e2e - median ttft).
* roofline: bytes read per decode step (``facts.decode_bytes_per_step`` at the mean context
  P + G/2) / step time, against the measured copy bandwidth of the ``membw`` kernel
  (``backend.make_copy``: (bytes read + bytes written) / t, 1 GiB) and a read-only stream
  (``torch.sum`` over 1 GiB).

    python benchmarks/vs_transformers.py --model qwen2.5-0.5b --dtype float32 --rounds 7
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from _quiet import add_shape_args, median, wait_for_quiet  # noqa: E402


def copy_gbps(backend, nbytes: int = 2**30, reps: int = 7) -> tuple[float, float]:
    """(copy GB/s as the membw workload counts it: 2*nbytes/t, read-only GB/s of torch.sum)."""
    import torch

    copy = backend.make_copy(nbytes)
    src = torch.ones(nbytes // 4, dtype=torch.float32)
    copy(), src.sum()
    c, r = [], []
    for _ in range(reps):
        t = time.perf_counter()
        copy()
        c.append(time.perf_counter() - t)
        t = time.perf_counter()
        src.sum()
        r.append(time.perf_counter() - t)
    return 2 * nbytes / median(c) / 1e9, nbytes / median(r) / 1e9


def hf_model(config, dtype, folder: pathlib.Path, seed: int):
    """A transformers model of ``config`` with random weights, saved to ``folder``."""
    import torch
    import transformers

    d = config.to_hf_dict()
    model_type = d.pop("model_type")
    hf_cfg = transformers.AutoConfig.for_model(model_type, **d)
    torch.manual_seed(seed)
    model = transformers.AutoModelForCausalLM.from_config(hf_cfg).to(dtype).eval()
    model.generation_config.eos_token_id = None  # exactly G tokens, as accelbench
    model.generation_config.pad_token_id = 0
    model.save_pretrained(folder)
    return model


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_shape_args(ap)
    ap.add_argument("--threads", type=int, default=None, help="default: every usable core")
    ap.add_argument("--rounds", type=int, default=7, help="alternating measurement rounds")
    ap.add_argument("--hf-cache", default="dynamic", help="transformers cache_implementation (dynamic, static)")
    ap.add_argument("--compile", action="store_true", help="accelbench with --compile")
    ap.add_argument("--json", type=pathlib.Path, help="write the figures here")
    args = ap.parse_args(argv)

    import torch
    import transformers

    from backends.base import PerfCounterTimer
    from backends.cpu import CPUBackend
    from harness.dtypes import torch_dtype
    from workloads.llm.config import catalog
    from workloads.llm.facts import decode_bytes_per_step
    from workloads.llm.workload import LLMWorkload

    backend = CPUBackend({"threads": args.threads, "compile": args.compile})
    threads = torch.get_num_threads()
    config = catalog()[args.model]
    dtype = torch_dtype(args.dtype)
    B, P, G = args.batch, args.prompt_len, args.gen_len
    wait_for_quiet()
    bw_copy, bw_read = copy_gbps(backend)
    with tempfile.TemporaryDirectory(prefix="vs_hf_") as tmp:
        hf = hf_model(config, dtype, pathlib.Path(tmp), seed=0)
        workload = LLMWorkload()
        params = workload.validate(dict(model=tmp, dtype=args.dtype, batch=B, prompt_len=P, gen_len=G))
        trial = workload.setup(backend, params, seed=0)
    timer = PerfCounterTimer()  # the cpu backend's timer (backend.timer())
    prompt = trial.prompt
    gen_kwargs = dict(do_sample=False, use_cache=True, attention_mask=torch.ones_like(prompt), pad_token_id=0)
    if args.hf_cache != "dynamic":
        gen_kwargs["cache_implementation"] = args.hf_cache

    def hf_generate(n: int) -> tuple[float, torch.Tensor]:
        with torch.inference_mode():
            t = time.perf_counter()
            out = hf.generate(prompt, max_new_tokens=n, min_new_tokens=n, **gen_kwargs)
            return time.perf_counter() - t, out

    # warm up both (and check the tokens agree)
    for _ in range(2):
        trial.run(timer)
        _, hf_out = hf_generate(G)
        hf_generate(1)
    ours_tokens = torch.tensor(trial.generated())
    hf_tokens = hf_out[:, P:]
    assert hf_tokens.shape == (B, G), hf_tokens.shape
    agree = float((ours_tokens == hf_tokens).float().mean())

    ours_rate, hf_rate, ours_tpot, hf_tpot, ours_ttft, hf_ttft = [], [], [], [], [], []
    for r in range(args.rounds):
        wait_for_quiet()
        m = [trial.run(timer) for _ in range(3)]
        ours_rate.append(median(x["decode_tok_s"] for x in m))
        ours_tpot.append(median(x["tpot_ms"] for x in m))
        ours_ttft.append(median(x["ttft_ms"] for x in m))
        wait_for_quiet()
        ttft = median(hf_generate(1)[0] for _ in range(3))
        e2e = median(hf_generate(G)[0] for _ in range(3))
        hf_rate.append(B * (G - 1) / (e2e - ttft))
        hf_tpot.append((e2e - ttft) / (G - 1) * 1e3)
        hf_ttft.append(ttft * 1e3)
        print(f"round {r + 1}/{args.rounds}: accelbench {ours_rate[-1]:.2f} tok/s, transformers {hf_rate[-1]:.2f} tok/s",
              file=sys.stderr)
    bw_copy2, bw_read2 = copy_gbps(backend)
    bw_copy, bw_read = max(bw_copy, bw_copy2), max(bw_read, bw_read2)

    step_bytes = decode_bytes_per_step(config, batch=B, context_len=P + G / 2, dtype_bytes=dtype.itemsize)
    rows = {}
    for name, rate, tpot, ttft in (("accelbench", ours_rate, ours_tpot, ours_ttft),
                                   (f"transformers {transformers.__version__} generate", hf_rate, hf_tpot, hf_ttft)):
        gbps = step_bytes / (median(tpot) / 1e3) / 1e9
        rows[name] = dict(decode_tok_s=median(rate), tpot_ms=median(tpot), ttft_ms=median(ttft), decode_gbps=gbps,
                          frac_copy=gbps / bw_copy, frac_read=gbps / bw_read, per_round=rate)
    ratio = median(ours_rate) / median(hf_rate)
    result = dict(model=args.model, dtype=args.dtype, batch=B, prompt_len=P, gen_len=G, threads=threads,
                  compile=args.compile, hf_cache=args.hf_cache, rounds=args.rounds, bytes_per_step=step_bytes,
                  copy_gbps=bw_copy, read_gbps=bw_read, greedy_token_agreement=agree, speedup=ratio, rows=rows,
                  torch=torch.__version__, transformers=transformers.__version__)
    print(f"\n{args.model} {args.dtype} B={B} P={P} G={G} threads={threads} compile={args.compile} "
          f"rounds={args.rounds}; {step_bytes / 1e9:.3f} GB/step; copy {bw_copy:.1f} GB/s, read {bw_read:.1f} GB/s; "
          f"greedy tokens agree {agree:.0%}")
    print("| runner | decode tok/s | TPOT ms | TTFT ms | GB/s | % of copy BW | % of read BW |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, row in rows.items():
        print(f"| {name} | {row['decode_tok_s']:.2f} | {row['tpot_ms']:.1f} | {row['ttft_ms']:.0f} | "
              f"{row['decode_gbps']:.1f} | {row['frac_copy']:.0%} | {row['frac_read']:.0%} |")
    print(f"speedup (median decode tok/s): {ratio:.2f}x")
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
