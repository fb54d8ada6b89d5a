"""Shared test helpers."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 300, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run ``accelbench ARGS`` in a fresh interpreter; returns the completed process (text)."""
    full_env = dict(os.environ)
    full_env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), full_env.get("PYTHONPATH")) if p)
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "harness.cli", *args],
        capture_output=True, text=True, timeout=timeout, env=full_env, cwd=cwd or ROOT,
    )


@pytest.fixture
def cli():
    return run_cli


@pytest.fixture(scope="module")
def refs():
    """The packaged reference figures (configs/references.csv)."""
    from harness.references import load_references

    return load_references()


@pytest.fixture(scope="module")
def devices():
    """The packaged device table (configs/devices.toml)."""
    from harness.devices import load_devices

    return load_devices()
