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
    # Every chart, the failing baseline check that explains the rollback included, draws
    # its thresholds (a compare check its allowed change) and a time axis.
    charts = dom.stdout.split("<svg")[1:]
    assert all('class="threshold"' in c and 'class="time-tick"' in c for c in charts)
    latency = next(c for c in charts if 'aria-label="latency-vs-legacy"' in c)
    assert "fail &gt; +20%" in latency and "%</text>" in latency
    errors_vs_legacy = next(c for c in charts if 'aria-label="errors-vs-legacy"' in c)
    assert "allowed &gt; +0.01" in errors_vs_legacy       # a compare check's allowance
    errors = [line for line in dom.stderr.splitlines()
              if "Uncaught" in line or "CONSOLE(" in line]
    assert errors == []

    shot = tmp_path / "shot.png"
    snap = _chromium(tmp_path / "profile2", f"--screenshot={shot}", "--window-size=1200,2000",
                     page.as_uri())
    assert snap.returncode == 0, snap.stderr[-2000:]
    assert shot.stat().st_size > 10_000


# Run in the page after it is laid out: how many pairs of stage labels of one chart
# overlap, how many stage labels are there, and whether any leaves its chart.
_MEASURE = """<script>
let overlaps = 0, labels = 0, outside = 0;
for (const svg of document.querySelectorAll("svg")) {
  const box = svg.getBoundingClientRect();
  const rects = [...svg.querySelectorAll("text.stage-label")].map(t => t.getBoundingClientRect());
  labels += rects.length;
  rects.forEach((a, i) => {
    if (a.left < box.left || a.right > box.right || a.top < box.top) outside++;
    rects.slice(i + 1).forEach(b => {
      if (a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom) overlaps++;
    });
  });
}
document.body.setAttribute("data-measured", `${overlaps} ${labels} ${outside}`);
</script>"""


def test_stage_labels_of_quick_stages_do_not_overlap_in_chromium(tmp_path):
    from rollout_cli.engine.events import from_json
    from rollout_cli.render.report_view import to_html
    from rollout_cli.report import build_report
    from tests.report.test_report_builder import META, _round

    reason = "errors: last = 0.01; pass needs <= 0.05, fail at > 0.1 -> pass"
    events = []
    for index, (name, pct) in enumerate([("canary-1", 1), ("canary-2", 2), ("canary-5", 5),
                                          ("canary-10", 10), ("canary-50", 50)]):
        events.append({"type": "stage-started", "time": 100.0 + index, "stage": index,
                       "name": name, "percentage": pct})
    events += [_round(100.0 + t, "errors", 0.01, "pass", reason) for t in range(0, 120, 5)]
    page = tmp_path / "report.html"
    page.write_text(to_html(build_report(META, map(from_json, events)))
                    .replace("</body>", _MEASURE + "</body>"))

    dom = _chromium(tmp_path / "profile", "--dump-dom", page.as_uri())

    assert dom.returncode == 0, dom.stderr[-2000:]
    overlaps, labels, outside = dom.stdout.split('data-measured="')[1].split('"')[0].split()
    assert (overlaps, outside) == ("0", "0")
    assert int(labels) >= 3          # stacked in rows, not dropped
