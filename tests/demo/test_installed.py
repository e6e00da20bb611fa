"""A wheel of rollout, installed into a fresh virtualenv the way pipx does, runs the demo:
everything the demo needs ships inside the package."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT


def test_a_wheel_installed_into_a_fresh_venv_runs_the_demo(tmp_path: Path, here: Path):
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels),
                    str(ROOT)], check=True, capture_output=True, cwd=tmp_path)
    [wheel] = wheels.glob("rollout_cli-*.whl")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    # The dependencies come from the package index, as for any user's install.
    subprocess.run([str(venv / "bin" / "pip"), "install", "-q", str(wheel)], check=True,
                   capture_output=True)
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("ROLLOUT_", "PYTHON"))}

    demo = subprocess.run([str(venv / "bin" / "rollout"), "demo", "--speed", "20",
                           "--output", "json"], cwd=here, env=env, capture_output=True,
                          text=True, timeout=300)

    assert demo.returncode == 0, demo.stderr
    summary = json.loads(demo.stdout)
    assert summary["phase"] == "succeeded"
    assert "cannot read plan" not in demo.stderr
    report = subprocess.run([str(venv / "bin" / "rollout"), "report", summary["rollout"]],
                            cwd=here, env=env, capture_output=True, text=True, timeout=60)
    assert report.returncode == 0, report.stderr
    assert report.stdout.startswith(f"# Rollout report: {summary['rollout']}")
