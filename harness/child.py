"""Child-process entry points (spawned by the runner, never imported by user code).

``python -m harness.child run CASE.json RESULT.json``: run one case, write its result atomically.
``python -m harness.child probe OUT.json [NAME ...]``: probe backends, write a JSON list.
"""

from __future__ import annotations

import os

# An installed but broken vendor plugin (torch_npu, torch_musa) must not break `import torch` for
# every backend: vendor backends import their package explicitly (research/vendor-apis.md section 0).
os.environ.setdefault("TORCH_DEVICE_BACKEND_AUTOLOAD", "0")

import json
import sys
from pathlib import Path


def _write_atomic(path: Path, data: object) -> None:
    tmp = path.with_suffix(".part")
    tmp.write_text(json.dumps(data, allow_nan=False), encoding="utf-8")
    os.replace(tmp, path)


def probe_backends(names: list[str] | None = None) -> list[dict]:
    """Probe each registered backend (or ``names``) in this process; never raises."""
    from harness.registry import backend_names, load_backend_class

    rows = []
    for name in names or backend_names():
        row: dict = {"name": name}
        try:
            cls = load_backend_class(name)
            probe = cls({}).probe()
            row.update(probe.to_dict())
            row["priority"] = int(getattr(cls, "priority", 0))
        except Exception as exc:  # a broken plugin is listed, not fatal
            row.update(available=False, reason=f"cannot load backend: {type(exc).__name__}: {exc}", priority=0)
        rows.append(row)
    return rows


def main(argv: list[str]) -> int:
    command, out = argv[0], Path(argv[2] if argv[0] == "run" else argv[1])
    if command == "run":
        from harness.execute import execute_case
        from harness.plan import Case

        case = Case.from_dict(json.loads(Path(argv[1]).read_text(encoding="utf-8")))
        _write_atomic(out, execute_case(case))
    elif command == "probe":
        _write_atomic(out, probe_backends(argv[2:] or None))
    else:
        print(f"unknown command {command!r}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
