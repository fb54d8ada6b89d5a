"""Result files: one JSON object per case, written atomically and never overwritten."""

from __future__ import annotations

import errno
import json
import math
import os
import re
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable

from harness.errors import UsageError

SCHEMA = "accelbench.result/1"
STATUSES = ("ok", "failed", "oom", "timeout", "crashed", "unavailable")
REQUIRED = ("schema", "id", "status", "backend", "workload", "measure")


def _current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _current_umask()


def utc_now() -> str:
    """RFC 3339 UTC timestamp with seconds."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def default_out_dir() -> Path:
    return Path("results") / datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def prepare_out_dir(path: str | Path) -> Path:
    """Create the output folder and check it is writable; UsageError otherwise."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = tempfile.NamedTemporaryFile(dir=path, prefix=".write-test-", delete=True)
        probe.close()
    except OSError as exc:
        raise UsageError(f"cannot write to output folder {path}: {exc.strerror or exc}") from None
    return path


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.]+", "-", text).strip("-")[:80]


def result_filename(result: dict[str, Any]) -> str:
    params = result["workload"].get("params", {})
    tag = "_".join(_slug(str(v)) for v in params.values())
    return f"{_slug(result['backend']['name'])}_{result['workload']['kind']}_{tag}_{result['id'][:8]}.json"


def json_safe(obj: Any) -> Any:
    """``obj`` as strict JSON: non-finite floats (nan, inf) become None, unknown objects their str()."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if obj is None or isinstance(obj, (str, int, bool)):
        return obj
    return str(obj)  # a plugin's odd value (a dtype, a path) must not lose the whole result


def _claim(tmp: str, target: Path) -> bool:
    """Give ``tmp``'s content the name ``target`` atomically unless ``target`` exists; False if it does."""
    try:
        os.link(tmp, target)  # atomic, and fails when the target exists
        return True
    except FileExistsError:
        return False
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK, errno.ENOSYS):
            raise
    # No hard links on this filesystem: reserve the name exclusively, then rename over the reservation.
    try:
        os.close(os.open(target, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
    except FileExistsError:
        return False
    os.replace(tmp, target)
    return True


def write_result(folder: str | Path, result: dict[str, Any]) -> Path:
    """Write ``result`` atomically (temp file, fsync, link); never replaces an existing file.

    When the natural name is taken (the same case run again), the file is named ``NAME.1.json``,
    ``NAME.2.json``, ...; a reader never sees a partly written result file.
    """
    folder = Path(folder)
    data = json.dumps(json_safe(result), indent=1, allow_nan=False).encode()
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".json")
    try:
        with os.fdopen(fd, "wb") as fh:
            if hasattr(os, "fchmod"):
                os.fchmod(fh.fileno(), 0o666 & ~_UMASK)  # mkstemp makes 0600; results are ordinary files
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        base = result_filename(result)
        target = folder / base
        n = 1
        while not _claim(tmp, target):
            target = folder / base.replace(".json", f".{n}.json")
            n += 1
        return target
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def read_result(path: Path) -> dict[str, Any]:
    """Parse and check one result file; ValueError with the reason when it is not a valid result."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"not valid JSON ({exc})") from None
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        raise ValueError(f"not an accelbench result (schema != {SCHEMA!r})")
    missing = [k for k in REQUIRED if k not in data]
    if missing:
        raise ValueError(f"missing key(s) {', '.join(missing)}")
    if data["status"] not in STATUSES:
        raise ValueError(f"unknown status {data['status']!r}")
    return data


def result_files(paths: Iterable[str | Path]) -> list[Path]:
    """JSON files named directly or found (recursively) under folders; UsageError for a missing path."""
    found: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            try:
                found.extend(sorted(f for f in p.rglob("*.json") if not f.name.startswith(".")))
            except OSError as exc:
                raise UsageError(f"cannot read folder {p}: {exc.strerror or exc}") from None
        elif p.is_file():
            found.append(p)
        else:
            raise UsageError(f"no such file or folder: {p}")
    return found


def load_results(paths: Iterable[str | Path]) -> tuple[list[dict[str, Any]], list[str]]:
    """Results under ``paths`` (each annotated with ``_path``) and a warning per unreadable file."""
    results, warnings = [], []
    for f in result_files(paths):
        try:
            data = read_result(f)
        except ValueError as exc:
            warnings.append(f"skipping {f}: {exc}")
            continue
        data["_path"] = str(f)
        results.append(data)
    return results, warnings


def completed_results(folder: str | Path) -> dict[str, dict[str, Any]]:
    """Readable results in ``folder`` by case id, the newest per id (for ``--resume``).

    Any status counts as done (a failed case is not retried; delete its file to run it again).
    Unreadable files are ignored, so their cases run again.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return {}
    results, _ = load_results([folder])
    done: dict[str, dict[str, Any]] = {}
    for r in sorted(results, key=lambda r: str(r.get("created", ""))):
        done[r["id"]] = r
    return done


def completed_ids(folder: str | Path) -> set[str]:
    """Ids of the cases that already have a readable result in ``folder`` (for ``--resume``)."""
    return set(completed_results(folder))
