"""The environment block recorded in every result."""

from __future__ import annotations

import json
import os
import platform
import subprocess
from pathlib import Path

import torch

import harness
from harness import environment
from harness.environment import capture_environment, driver_versions, git_state

ROOT = Path(__file__).resolve().parent.parent

KEYS = {
    "host", "cpu_model", "cpu_cores_logical", "cpu_cores_usable", "cpu_governor", "cpu_frequency", "memory_bytes",
    "os", "os_release", "platform", "machine", "python", "python_implementation", "packages", "drivers",
    "env_vars", "load_avg", "harness",
}


def test_environment_block_keys_and_values(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1,2")
    env = capture_environment()
    assert set(env) == KEYS
    assert env["host"] and isinstance(env["host"], str)
    assert env["cpu_model"] and env["cpu_cores_logical"] == os.cpu_count()
    assert 1 <= env["cpu_cores_usable"] <= env["cpu_cores_logical"]
    assert env["memory_bytes"] > 2**26
    assert env["os"] == platform.system() and env["os_release"] == platform.release()
    assert env["python"] == platform.python_version()
    assert env["packages"]["torch"] == torch.__version__
    assert "numpy" in env["packages"] and "onnxruntime" in env["packages"]
    assert set(env["cpu_frequency"]) == {"governor", "driver", "min_khz", "max_khz", "turbo"}
    assert env["cpu_governor"] == env["cpu_frequency"]["governor"]
    assert env["env_vars"]["CUDA_VISIBLE_DEVICES"] == "1,2"
    assert set(env["harness"]) == {"version", "commit", "dirty"} and env["harness"]["version"] == harness.__version__
    json.dumps(env, allow_nan=False)  # strict JSON


def test_git_commit_and_dirty_flag_of_this_checkout():
    state = git_state()
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True)
    if head.returncode != 0:  # running from an installed copy: nothing claimed
        assert state == {"commit": None, "dirty": None}
        return
    assert state["commit"] == head.stdout.strip() and len(state["commit"]) == 40
    porcelain = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True).stdout
    assert state["dirty"] is bool(porcelain.strip())


def test_git_state_outside_a_checkout_is_none(monkeypatch, tmp_path):
    fake = tmp_path / "harness" / "environment.py"
    fake.parent.mkdir()
    fake.write_text("", encoding="utf-8")
    monkeypatch.setattr(environment, "__file__", str(fake))
    assert git_state() == {"commit": None, "dirty": None}


def test_driver_and_toolkit_versions_from_files(monkeypatch, tmp_path):
    cuda = tmp_path / "cuda"
    cuda.mkdir()
    (cuda / "version.json").write_text(json.dumps({"cuda": {"name": "CUDA SDK", "version": "12.4.1"}}), encoding="utf-8")
    musa = tmp_path / "musa"
    musa.mkdir()
    (musa / "version.txt").write_text("MUSA Toolkit version 3.1.0\n", encoding="utf-8")
    cann = tmp_path / "cann"
    (cann / "aarch64-linux").mkdir(parents=True)
    (cann / "aarch64-linux" / "ascend_toolkit_install.info").write_text("package_name=Ascend-cann-toolkit\nversion=8.0.RC3\n")
    monkeypatch.setenv("CUDA_HOME", str(cuda))
    monkeypatch.setenv("MUSA_HOME", str(musa))
    monkeypatch.setenv("ASCEND_TOOLKIT_HOME", str(cann))
    monkeypatch.delenv("NEUWARE_HOME", raising=False)
    real_read = environment._read

    def fake_read(path: str):
        if path == "/proc/driver/nvidia/version":
            return "NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.54.15  Tue Mar  5 22:23:56 UTC 2024"
        if path == "/usr/local/Ascend/driver/version.info":
            return "Version=24.1.rc2\nascendhal_version=7.35.23"
        return real_read(path)

    monkeypatch.setattr(environment, "_read", fake_read)
    drivers = driver_versions()
    assert drivers["nvidia_driver"] == "550.54.15"
    assert drivers["cuda_toolkit"] == "12.4.1"
    assert drivers["musa_toolkit"] == "3.1.0"
    assert drivers["cann_toolkit"] == "8.0.RC3"
    assert drivers["ascend_driver"] == "24.1.rc2"
