"""The runner: each case in its own spawned child process with a timeout, results written as they finish.

Statuses: ok, failed (exception kept), oom, crashed (child died: signal or exit code kept),
timeout (the child's process group is killed), unavailable (the probe's reason). The sweep always
goes on. Ctrl-C (and SIGTERM) kills the running child, keeps every finished result (one being
written when the signal arrives is completed first) and writes nothing for the interrupted case,
so ``--resume`` runs it again.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any, Callable

from harness.environment import capture_environment
from harness.execute import base_result, execute_case
from harness.plan import Case
from harness.results import completed_results, utc_now, write_result

RESULT_ORDER = ("schema", "id", "created", "status", "error", "backend", "workload", "measure",
                "metrics", "samples", "validity", "environment")


def _tail(path: Path, limit: int = 1500) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return ""
    return text[-limit:]


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()


def child_env(case: Case | None = None) -> dict[str, str]:
    """Environment of a child: the backend's visible-devices variable set from ``device_ids``."""
    env = dict(os.environ)
    ids = case.backend_options.get("device_ids") if case else None
    if case and ids:
        from harness.registry import load_backend_class

        var = getattr(load_backend_class(case.backend), "visible_devices_env", None)
        if var:
            env[var] = str(ids)
    # Keep the harness importable in the child when running from a source checkout.
    root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    return env


def describe_exit(rc: int) -> tuple[str, str | None]:
    """How a child ended: ("killed by signal SIGABRT", "SIGABRT") or ("exited with code 3 ...", None)."""
    if rc < 0:
        try:
            name = signal.Signals(-rc).name
        except ValueError:
            name = f"signal {-rc}"
        how = f"killed by signal {name}"
        if name == "SIGKILL":
            how += " (possibly the kernel's out-of-memory killer; see dmesg)"
        return how, name
    return f"exited with code {rc} without writing a result", None


def _timeout_result(case: Case) -> dict[str, Any]:
    result = base_result(case)
    message = f"no result after {case.measure.timeout_s:g}s (--timeout); the case's process group was killed"
    result.update(status="timeout", error={"type": "Timeout", "message": message, "timeout_s": case.measure.timeout_s})
    result["validity"]["reasons"] = [f"timeout after {case.measure.timeout_s:g}s"]
    return result


def _read_child_result(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and "status" in data else None


def run_in_child(case: Case) -> dict[str, Any]:
    """Run ``case`` in a spawned process in a new session; map every way it can end to a status.

    The child writes its result atomically to a private temp file. No result + a negative return
    code is ``crashed`` with the signal; no result + exit code is ``crashed`` with the code and the
    tail of the child's output; no exit within ``timeout_s`` is ``timeout`` (the whole process
    group is killed with SIGKILL). A KeyboardInterrupt kills the group and propagates.
    """
    with tempfile.TemporaryDirectory(prefix="accelbench-") as tmp:
        case_file, out_file, log_file = Path(tmp, "case.json"), Path(tmp, "result.json"), Path(tmp, "child.log")
        case_file.write_text(json.dumps(case.to_dict()), encoding="utf-8")
        with open(log_file, "wb") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "harness.child", "run", str(case_file), str(out_file)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                env=child_env(case), start_new_session=True,
            )
            try:
                rc = proc.wait(timeout=case.measure.timeout_s)
            except subprocess.TimeoutExpired:
                _kill_group(proc)
                # A child that wrote its result but hung on the way out still measured the case.
                return _read_child_result(out_file) or _timeout_result(case)
            except BaseException:  # Ctrl-C: stop the child, report nothing for this case
                _kill_group(proc)
                raise
            _kill_group(proc)  # leftovers of the child's session
        result = _read_child_result(out_file)
        if result is not None:
            return result
        result = base_result(case)
        how, sig = describe_exit(rc)
        tail = _tail(log_file)
        error = {"type": "Crashed", "message": how + (f"; output: {tail}" if tail else ""), "returncode": rc, "signal": sig}
        result.update(status="crashed", error=error)
        result["validity"]["reasons"] = [how]
        return result


def finalize(result: dict[str, Any], environment: dict[str, Any]) -> dict[str, Any]:
    result = dict(result, created=utc_now(), environment=environment)
    ordered = {k: result[k] for k in RESULT_ORDER if k in result}
    ordered.update({k: v for k, v in result.items() if k not in ordered})
    return ordered


class _Interrupted(KeyboardInterrupt):
    """SIGTERM turned into the same clean stop as Ctrl-C."""


@contextlib.contextmanager
def _sigterm_as_interrupt():
    """While a sweep runs, SIGTERM (CI cancellation) stops it like Ctrl-C: children killed, results kept."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):  # noqa: ARG001
        raise _Interrupted()

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def _interrupts_deferred():
    """Hold Ctrl-C/SIGTERM while a finished case's result is written, then stop: it is never lost."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: list[int] = []
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    # Leave alone a signal that is ignored or whose handler was not installed from Python.
    previous = {sig: old for sig, old in previous.items() if old is not None and old is not signal.SIG_IGN}

    def hold(signum, frame):  # noqa: ARG001
        pending.append(signum)

    for sig in previous:
        signal.signal(sig, hold)
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
        if pending:
            raise KeyboardInterrupt


@contextlib.contextmanager
def _inline_env(case: Case):
    """``--isolation inline``: set the visible-devices variable for this case only, then restore."""
    env = child_env(case)
    changes = {k: v for k, v in env.items() if k != "PYTHONPATH" and os.environ.get(k) != v}
    saved = {k: os.environ.get(k) for k in changes}
    os.environ.update(changes)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def run_plan(
    cases: list[Case],
    out_dir: Path,
    *,
    isolation: str = "process",
    resume: bool = False,
    on_start: Callable[[int, int, Case], None] | None = None,
    on_result: Callable[[int, int, Case, dict[str, Any], Path | None], None] | None = None,
) -> list[dict[str, Any]]:
    """Run every case and write each result as soon as it ends; return one result per case.

    With ``resume``, a case whose id already has a readable result in ``out_dir`` is not run again;
    its earlier result is returned (with ``_resumed: True``) so the summary and the exit status
    cover the whole sweep. A KeyboardInterrupt (or SIGTERM) propagates after the running child is
    killed; every result written so far stays on disk and the interrupted case has no file.
    """
    environment = capture_environment()
    done = completed_results(out_dir) if resume else {}
    results: list[dict[str, Any]] = []
    with _sigterm_as_interrupt():
        for i, case in enumerate(cases, 1):
            if case.id in done:
                earlier = dict(done[case.id], _resumed=True)
                results.append(earlier)
                if on_result:
                    on_result(i, len(cases), case, {"status": "skipped", "earlier": earlier}, None)
                continue
            if on_start:
                on_start(i, len(cases), case)
            if isolation == "inline":
                with _inline_env(case):
                    raw = execute_case(case)
            else:
                raw = run_in_child(case)
            with _interrupts_deferred():
                result = finalize(raw, environment)
                path = write_result(out_dir, result)
            result["_path"] = str(path)
            results.append(result)
            if on_result:
                on_result(i, len(cases), case, result, path)
    return results


def probe_all(names: list[str] | None = None, timeout_s: float = 300.0) -> list[dict[str, Any]]:
    """Probe backends in a child process, so a misbehaving plugin cannot take the CLI down.

    When the shared child dies or hangs, each backend is probed in its own child and the culprit is
    reported unavailable with what happened.
    """
    from harness.registry import backend_names

    names = names or backend_names()

    def attempt(subset: list[str]) -> list[dict[str, Any]] | str:
        with tempfile.TemporaryDirectory(prefix="accelbench-probe-") as tmp:
            out, log = Path(tmp, "probe.json"), Path(tmp, "probe.log")
            with open(log, "wb") as fh:
                proc = subprocess.Popen(
                    [sys.executable, "-m", "harness.child", "probe", str(out), *subset],
                    stdin=subprocess.DEVNULL, stdout=fh, stderr=subprocess.STDOUT,
                    env=child_env(), start_new_session=True,
                )
                try:
                    rc = proc.wait(timeout=timeout_s)
                except subprocess.TimeoutExpired:
                    _kill_group(proc)
                    return f"probe did not finish in {timeout_s:g}s"
                except BaseException:
                    _kill_group(proc)
                    raise
            if out.is_file():
                return json.loads(out.read_text(encoding="utf-8"))
            why = f"signal {signal.Signals(-rc).name}" if rc < 0 else f"exit code {rc}"
            return f"probe crashed ({why}): {_tail(log, 300)}"

    rows = attempt(names)
    if isinstance(rows, list):
        return rows
    out = []
    for name in names:
        one = attempt([name])
        out.extend(one if isinstance(one, list) else [{"name": name, "available": False, "reason": one, "priority": 0}])
    return out


def best_backend(rows: list[dict[str, Any]]) -> str:
    """The available backend with the highest priority (accelerators before the CPU)."""
    available = [r for r in rows if r.get("available")]
    if not available:
        return "cpu"
    return max(available, key=lambda r: (r.get("priority", 0), r["name"] == "cpu"))["name"]
