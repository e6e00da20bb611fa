"""The agent's status page in headless Chromium, and its /metrics scraped by a real
Prometheus: both name every rollout, its phase and who drives it."""

from __future__ import annotations

import re
import shutil
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from tests.agent.conftest import agent_plan, wait_for
from tests.rollouts.conftest import Operator, Target, serve
from tests.sandbox.conftest import start_prometheus

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_OWN = {"update.googleapis.com", "accounts.google.com", "clients2.google.com"}
HOSTILE = "<script>alert('owned')</script> & \"quotes\""


class Recorder:
    """An HTTP proxy on loopback that Chromium sends every request through (loopback
    included): it records each URL asked for, forwards those to ``allowed`` (the agent)
    and answers anything else 502 (CONNECT, for https, 403) without going anywhere."""

    def __init__(self, allowed: str):
        self.requested: list[str] = []
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                recorder.requested.append(self.path)
                if urlsplit(self.path).netloc == urlsplit(allowed).netloc:
                    answer = httpx.get(self.path, timeout=10)
                    status, body = answer.status_code, answer.content
                    kind = answer.headers.get("content-type", "text/plain")
                else:
                    status, body, kind = 502, b"outside the agent\n", "text/plain"
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_CONNECT(self) -> None:
                recorder.requested.append(f"CONNECT {self.path}")
                self.send_error(403)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def outside(self, origin: str) -> list[str]:
        """Every request that was not for ``origin``, but Chromium's own (its updater,
        sign-in and clock: they go out on a blank page too, whatever the flags)."""
        def host(request: str) -> str:
            return (request.split(" ")[1].rsplit(":", 1)[0] if request.startswith("CONNECT ")
                    else urlsplit(request).hostname or "")
        return [request for request in self.requested
                if host(request) not in CHROMIUM_OWN
                and urlsplit(request).netloc != urlsplit(origin).netloc]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _chromium(profile: Path, *args: str, proxy: str | None = None
              ) -> subprocess.CompletedProcess[str]:
    assert Path(CHROMIUM).exists(), "Chromium is needed for this test: apt-get install chromium"
    # `<-loopback>` sends loopback through the proxy too: it sees every request.
    via = [f"--proxy-server={proxy}", "--proxy-bypass-list=<-loopback>"] if proxy else []
    return subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0",
         *via, *args],
        capture_output=True, text=True, timeout=120, check=False)


def _console(stderr: str) -> list[str]:
    """The page's console messages and uncaught errors, from Chromium's log."""
    return [line for line in stderr.splitlines() if "Uncaught" in line or "CONSOLE" in line]


def _visit(url: str, profile: Path) -> tuple[str, list[str], list[str]]:
    """Load ``url`` in headless Chromium: the DOM, the console lines, and every request
    that went anywhere but ``url``'s origin."""
    recorder = Recorder(url)
    try:
        dom = _chromium(profile, "--dump-dom", url, proxy=recorder.url)
    finally:
        recorder.close()
    assert dom.returncode == 0, dom.stderr[-2000:]
    return dom.stdout, _console(dom.stderr), recorder.outside(url)


HOSTILE_PAGE = (b"<!doctype html><title>bad</title><script>console.error('broken')</script>"
                b"<img src='http://assets.example.com/logo.png'>"
                b"<link rel=stylesheet href='https://fonts.example.com/a.css'>")


def test_the_browser_checks_catch_console_errors_and_requests_elsewhere(tmp_path: Path):
    """The two checks the status page must pass can fail: a page that logs an error and
    loads an image from elsewhere is caught by both."""
    class Page(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(HOSTILE_PAGE)))
            self.end_headers()
            self.wfile.write(HOSTILE_PAGE)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Page)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        _, console, outside = _visit(f"http://127.0.0.1:{server.server_address[1]}/",
                                     tmp_path / "profile")
    finally:
        server.shutdown()
        server.server_close()
    assert any("broken" in line for line in console), console
    assert "http://assets.example.com/logo.png" in outside
    assert "CONNECT fonts.example.com:443" in outside


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

        page = agent.get("/")
        assert page.headers["content-security-policy"] == (
            "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; "
            "form-action 'none'; frame-ancestors 'none'")
        assert page.headers["x-content-type-options"] == "nosniff"

        dom, console, outside = _visit(agent.url + "/", tmp_path / "profile")
        assert ids["brain-api-demo"] in dom and "paused" in dom
        assert console == [] and outside == []
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
