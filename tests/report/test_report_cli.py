"""`rollout report` on a real rolled-back demo journal: JSON, Markdown and HTML."""

from __future__ import annotations

import json
import re
from pathlib import Path


def _report(rollout, state: Path, fmt: str, *extra: str) -> str:
    result = rollout("report", "--state-dir", str(state), "--format", fmt, *extra)
    assert result.code == 0, result.err
    return result.out


def test_json_report_tells_stages_decisions_and_rollback(rollout, degraded_state):
    data = json.loads(_report(rollout, degraded_state, "json"))

    assert [s["name"] for s in data["stages"]] == [
        "deploy", "initialize", "validate", "canary-10", "canary-25", "canary-50"]
    assert data["stages"][-1]["ended"] == "rolled back"
    assert all(s["completed"] for s in data["stages"][:-1])
    assert data["outcome"] == "rolled-back"
    [rollback] = data["rollbacks"]
    assert "latency-vs-legacy" in rollback["reason"] and rollback["outcome"] == "rolled-back"
    assert [c["line"].split("/api/")[-1] for c in rollback["calls"]] == [
        "admin/feature-flags/disable", "admin/ab-testing/emergency-stop",
        "admin/memory/cleanup", "admin/alerts/emergency"]
    assert all(c["ok"] is True and c["status"] == 200 for c in rollback["calls"])
    kinds = [d["kind"] for d in data["decisions"]]
    assert kinds[-2:] == ["rollback-started", "rolled-back"]
    assert "gate-approved" in kinds


def test_json_report_has_a_series_per_check_with_thresholds(rollout, degraded_state):
    checks = json.loads(_report(rollout, degraded_state, "json"))["checks"]

    latency = checks["latency-vs-legacy"]
    assert latency["thresholds"].startswith("mean(1s) vs legacy_p95_ms")
    assert latency["points"][-1]["verdict"] == "fail"
    assert latency["points"][-1]["value"] > 0.2
    success = checks["success-rate"]
    assert (success["pass_text"], success["fail_text"]) == (">= 0.95", "< 0.90")
    times = [p["time"] for p in success["points"]]
    assert times == sorted(times) and len(times) == success["seen"]


def test_markdown_report_has_a_heading_per_section(rollout, degraded_state):
    md = _report(rollout, degraded_state, "md")

    headings = re.findall(r"^## (.+)$", md, re.MULTILINE)
    assert headings == ["Timeline", "Decisions", "Rollback", "Checks"]
    assert md.startswith("# Rollout report: brain-api-demo-")
    assert "### latency-vs-legacy (stage)" in md
    rows = [line for line in md.splitlines() if "admin/" in line and line.startswith("| roll")]
    assert len(rows) == 4 and all("ok 200" in row for row in rows)


def test_html_report_is_one_self_contained_file(rollout, degraded_state, tmp_path):
    out = tmp_path / "report.html"
    result = rollout("report", "--state-dir", str(degraded_state), "--format", "html",
                     "--out", str(out))
    assert result.code == 0, result.err
    assert result.out == "" and "wrote" in result.err
    html = out.read_text()

    assert html.startswith("<!DOCTYPE html>") and html.rstrip().endswith("</html>")
    checks = json.loads(_report(rollout, degraded_state, "json"))["checks"]
    assert html.count("<svg") == len(checks) == 10
    for forbidden in ("<script", "<link", "@import", "url(", "<img", "<iframe"):
        assert forbidden not in html
    # The only URLs are the rollback calls' request lines, shown as text in <code>.
    for match in re.finditer(r"https?://", html):
        start = html.rfind("<", 0, match.start())
        assert html.startswith("<code>", start), html[start:match.end() + 20]
    assert 'class="threshold"' in html and 'class="stage"' in html
    assert "canary-50 (50%)" in html


def test_report_of_an_unknown_rollout_is_a_usage_error(rollout, tmp_path):
    result = rollout("report", "nope", "--state-dir", str(tmp_path))
    assert result.code != 0


def test_out_in_a_missing_directory_is_a_usage_error(rollout, tmp_path):
    from tests.test_imports import TINY_PLAN

    plan, state = tmp_path / "tiny.yaml", tmp_path / "state"
    plan.write_text(TINY_PLAN)
    assert rollout("run", str(plan), "--auto-approve", "--state-dir", str(state)).code == 0
    out = tmp_path / "missing" / "report.html"

    result = rollout("report", "--state-dir", str(state), "--format", "html", "--out", str(out))

    assert result.code == 2
    assert f"cannot write the report to {out}: No such file or directory" in result.err
    assert "internal error" not in result.err


def test_report_takes_output_like_every_other_command(rollout, degraded_state):
    given = rollout("report", "--state", str(degraded_state), "--output", "json")
    older = rollout("report", "--state", str(degraded_state), "--format", "json")

    assert (given.code, older.code) == (0, 0)
    assert json.loads(given.out) == json.loads(older.out)
    assert json.loads(given.out)["outcome"] == "rolled-back"
