"""Wall time of ``accelbench run`` with defaults (target: < 60 s on a 2-core machine).

Runs the command a user types first, ``accelbench run`` with no arguments (the smoke suite on the
best available backend: probe every backend, then each case in a spawned child that imports
torch), ``--repeat`` times in a fresh output folder, timing the whole process from the shell's
point of view (interpreter start included). For the breakdown it also times ``python -c "import
torch"``, ``accelbench --help`` (CLI start), ``accelbench backends`` (the probe) and the same run
with ``--isolation inline`` (one interpreter, no child per case).

    python benchmarks/time_to_first_result.py --repeat 3
"""

from __future__ import annotations

import argparse
import json
import pathlib
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from _quiet import median, wait_for_quiet  # noqa: E402

ACCELBENCH = shutil.which("accelbench") or "accelbench"


def wall(cmd: list[str]) -> float:
    wait_for_quiet()
    t = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    rows: dict[str, list[float]] = {}
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="ttfr_"))
    try:
        for i in range(args.repeat):
            steps = {
                "python -c 'import torch'": [sys.executable, "-c", "import torch"],
                "accelbench --help": [ACCELBENCH, "--help"],
                "accelbench backends": [ACCELBENCH, "backends"],
                "accelbench run (defaults)": [ACCELBENCH, "run", "--out", str(tmp / f"run{i}")],
                "accelbench run --isolation inline": [ACCELBENCH, "run", "--isolation", "inline", "--out", str(tmp / f"inline{i}")],
            }
            for name, cmd in steps.items():
                rows.setdefault(name, []).append(wall(cmd))
        cases = []
        for f in sorted((tmp / "run0").glob("*.json")):
            r = json.loads(f.read_text())
            cases.append((f.stem, r.get("status"), r.get("repetitions_run"), r.get("timed_s")))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"| command | median s (of {args.repeat}) | all runs s |")
    print("|---|---:|---|")
    for name, ts in rows.items():
        print(f"| `{name}` | {median(ts):.1f} | {', '.join(f'{t:.1f}' for t in ts)} |")
    print("\ncases of the first default run: (file, status, repetitions, timed seconds)")
    for c in cases:
        print("  ", *c)
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(dict(rows=rows, cases=cases), indent=1))
    return 0 if median(rows["accelbench run (defaults)"]) < 60 else 1


if __name__ == "__main__":
    raise SystemExit(main())
