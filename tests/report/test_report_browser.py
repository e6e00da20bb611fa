"""The HTML report in a real headless Chromium: it loads offline, without errors."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def _chromium(profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    assert Path(CHROMIUM).exists(), (
        "Chromium is needed for this test: apt-get install -y chromium")
    return subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0",
         *args],
        capture_output=True, text=True, timeout=120, check=False)


def test_html_report_renders_in_headless_chromium(rollout, degraded_state, tmp_path):
    page = tmp_path / "report.html"
    result = rollout("report", "--state-dir", str(degraded_state), "--format", "html",
                     "--out", str(page))
    assert result.code == 0, result.err

    dom = _chromium(tmp_path / "profile", "--dump-dom", page.as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert dom.stdout.count("<svg") == 10 and "<polyline" in dom.stdout
    errors = [line for line in dom.stderr.splitlines()
              if "Uncaught" in line or "CONSOLE(" in line]
    assert errors == []

    shot = tmp_path / "shot.png"
    snap = _chromium(tmp_path / "profile2", f"--screenshot={shot}", "--window-size=1200,2000",
                     page.as_uri())
    assert snap.returncode == 0, snap.stderr[-2000:]
    assert shot.stat().st_size > 10_000
