"""Peak resident memory while loading a model, against its weight bytes (target: <= 1.1x).

Each (model, dtype) is loaded in a fresh interpreter: ``import torch`` and the model code, read
the resident set (``VmRSS``) as the baseline, reset the kernel's high-water mark (write ``5`` to
``/proc/self/clear_refs``), call ``load_model(name, dtype=...)`` (random weights, as
``accelbench run``), then read the high-water mark (``VmHWM``). The figure is
``(VmHWM - baseline) / weight_bytes`` with ``weight_bytes = ModelConfig.weight_bytes(dtype)``
(every parameter once; a tied head is not counted twice). A second copy of the weights would
show as ~2x.

    python benchmarks/load_memory.py --models qwen2.5-0.5b,llama-3.2-1b --dtypes float32,bfloat16
    python benchmarks/load_memory.py --folder PATH   # a Hugging Face folder (safetensors path)
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

CHILD = r"""
import json, sys, time
import torch
from workloads.llm.config import resolve
from workloads.llm.loading import load_model

def status(key):
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
source, dtype = sys.argv[1], sys.argv[2]
config, _ = resolve(source)
base = status("VmRSS")
with open("/proc/self/clear_refs", "w") as fh:  # reset VmHWM to the current RSS
    fh.write("5")
t = time.perf_counter()
model = load_model(source, dtype=dtype)
secs = time.perf_counter() - t
peak, after = status("VmHWM"), status("VmRSS")
nbytes = config.weight_bytes(torch.tensor([], dtype=getattr(torch, dtype)).element_size())
print(json.dumps(dict(source=source, dtype=dtype, weight_bytes=nbytes, baseline=base, peak=peak, after=after,
                      load_s=secs, ratio=(peak - base) / nbytes, resident_ratio=(after - base) / nbytes)))
"""


def measure(source: str, dtype: str) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, source, dtype], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default="qwen2.5-0.5b,llama-3.2-1b")
    ap.add_argument("--dtypes", default="float32,bfloat16")
    ap.add_argument("--folder", action="append", default=[], help="also a Hugging Face folder")
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    sources = [m for m in args.models.split(",") if m] + args.folder
    rows = [measure(m, d) for m in sources for d in args.dtypes.split(",")]
    print("| model | dtype | weights GB | baseline RSS GB | peak - baseline GB | peak / weights | resident after / weights | load s |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['source']} | {r['dtype']} | {r['weight_bytes'] / 1e9:.3f} | {r['baseline'] / 1e9:.3f} | "
              f"{(r['peak'] - r['baseline']) / 1e9:.3f} | {r['ratio']:.3f}x | {r['resident_ratio']:.3f}x | {r['load_s']:.1f} |")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(rows, fh, indent=1)
    return 0 if all(r["ratio"] <= 1.1 for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
