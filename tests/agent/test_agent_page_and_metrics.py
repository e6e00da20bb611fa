"""The agent's status page in headless Chromium, and its /metrics scraped by a real
Prometheus: both name every rollout, its phase and who drives it."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

from tests.agent.conftest import agent_plan, wait_for
from tests.rollouts.conftest import Operator, Target, serve
from tests.sandbox.conftest import start_prometheus

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
HOSTILE = "<script>alert('owned')</script> & \"quotes\""


def _chromium(profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    assert Path(CHROMIUM).exists(), "Chromium is needed for this test: apt-get install chromium"
    return subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0",
         *args],
        capture_output=True, text=True, timeout=120, check=False)


def _second_plan(path: Path, url: str) -> Path:
    """Another plan (its own name, so its rollout may be active beside the first) on a
    sandbox of its own."""
    agent_plan(path)
    text = path.read_text().replace("name: brain-api-demo", "name: brain-api-eu")
    path.write_text(re.sub(r"base_url: .*", f"base_url: {url}", text))
    return path


def test_the_status_page_shows_every_rollout_escaped_in_headless_chromium(
        operator: Operator, target: Target, start_agent, tmp_path: Path):
    waiting = agent_plan(tmp_path / "plan.yaml")
    with serve() as second:
        paused = _second_plan(tmp_path / "eu.yaml", second.url)
        assert operator("start", str(waiting)).code == 3          # at canary-10's gate
        assert operator("start", str(paused)).code == 3
        ids = {meta.plan_name: meta.id for meta in operator.store.list()}
        assert operator("pause", ids["brain-api-eu"], "--reason", HOSTILE).code == 3
        agent = start_agent("--name", "page")
        try:
            wait_for(lambda: all(operator.store.open(i).lease() for i in ids.values()),
                     10, "both driven")
        except AssertionError:
            raise AssertionError(agent.text) from None

        html = agent.get("/").text
        for rollout_id in ids.values():
            assert f'<section id="{rollout_id}">' in html
            assert f"rollout report {rollout_id}" in html
        assert "waiting-gate" in html and "paused" in html
        assert f"rollout advance {ids['brain-api-demo']} --stage canary-10" in html
        assert "stage canary-10 started (10% traffic)" in html
        assert html.count("driven by agent page ") == 2
        assert '<li class="current">canary-10 10%</li>' in html
        assert "<script" not in html and HOSTILE not in html
        assert "&lt;script&gt;alert(&#x27;owned&#x27;)&lt;/script&gt; &amp; &quot;quotes&quot;" in html
        assert re.search(r"\b(src|href)=", html) is None             # no assets at all
        assert '<meta http-equiv="refresh" content="5">' in html

        dom = _chromium(tmp_path / "profile", "--dump-dom", agent.url + "/")
        assert dom.returncode == 0, dom.stderr[-2000:]
        assert ids["brain-api-demo"] in dom.stdout and "paused" in dom.stdout
        errors = [line for line in dom.stderr.splitlines()
                  if "Uncaught" in line or "CONSOLE(" in line]
        assert errors == []
        shot = tmp_path / "agent.png"
        snap = _chromium(tmp_path / "profile2", f"--screenshot={shot}",
                         "--window-size=1200,1600", agent.url + "/")
        assert snap.returncode == 0, snap.stderr[-2000:]
        assert shot.stat().st_size > 10_000
        code, _ = agent.stop()
        assert code == 0


def test_prometheus_scrapes_the_agent_and_a_query_returns_the_rollouts_phase(
        operator: Operator, target: Target, start_agent, tmp_path: Path):
    plan = agent_plan(tmp_path / "plan.yaml")
    assert operator("start", str(plan)).code == 3
    agent = start_agent("--name", "metrics")
    rollout_id = wait_for(lambda: operator.status()["driver"] and operator.status()["rollout"],
                          10, "driven")
    exposition = agent.get("/metrics").text
    assert (f'rollout_phase{{phase="waiting-gate",plan="brain-api-demo",'
            f'rollout="{rollout_id}"}} 1.0') in exposition
    assert f'rollout_percentage{{plan="brain-api-demo",rollout="{rollout_id}"}} 10.0' in exposition
    assert re.search(r'rollout_agent_leases\{agent="agent metrics [^"]+"\} 1\.0', exposition)

    (tmp_path / "prom").mkdir()
    prometheus = start_prometheus([urlsplit(agent.url).netloc], tmp_path / "prom")
    try:
        found = wait_for(lambda: prometheus.query(f'rollout_phase{{rollout="{rollout_id}"}}'),
                         30, "scraped by Prometheus", every=0.5)
        assert found[0]["metric"]["phase"] == "waiting-gate"
        assert found[0]["value"][1] == "1"
        stage = prometheus.query(f'rollout_stage{{rollout="{rollout_id}"}}')
        assert stage[0]["metric"]["stage"] == "canary-10" and stage[0]["value"][1] == "3"
    finally:
        prometheus.stop()
