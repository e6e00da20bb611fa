"""`rollout plan`, `validate` lint warnings, `--help`, `--version`: what CI jobs read."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import PLANS
from tests.plan.test_broken_plans import BASE

BRAIN = str(PLANS / "brain-api.yaml")
TOKEN = "s3cr3t-token-value-42"
WEBHOOK = "http://127.0.0.1:9/hooks/T000/B000/XXXXsecret"


@pytest.fixture
def secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BRAIN_API_TOKEN", TOKEN)
    monkeypatch.setenv("SLACK_WEBHOOK_URL", WEBHOOK)


def test_dry_run_shows_timeline_calls_checks_and_rollback(rollout, secrets):
    result = rollout("plan", BRAIN)

    assert result.code == 0, result.err
    out = result.out
    assert "Total bake time: 36h30m..46h30m" in out
    for row in ("canary-10", "canary-25", "canary-50", "canary-75", "full", "legacy-cleanup"):
        assert f"│ {row}" in out
    assert "POST http://127.0.0.1:8080/api/admin/ab-testing/update" in out
    assert 'body: {"rolloutPercentage": 25}' in out
    assert 'body: {"testId": "<captured:test_id>"}' in out
    assert "  latency-vs-legacy: fail when the 98% interval of the change is wholly beyond " \
           "+5%, pass when wholly within it, inconclusive otherwise\n" \
           "       modern_latency_ms: mann-whitney(30m) vs legacy_latency_ms; min 50 samples " \
           "a side" in out
    assert "  errors-vs-legacy: fail when the 99% interval of the change is wholly beyond " \
           "+0.01" in out
    assert "modern_errors: sequential(8h) vs legacy_errors (of modern_requests vs " \
           "legacy_requests); min 200 trials a side" in out
    rollback = out[out.index("Rollback, in order:"):]
    assert rollback.index("feature-flags/disable") < rollback.index("emergency-stop") \
        < rollback.index("memory/cleanup") < rollback.index("alerts/emergency")


def test_dry_run_json_lists_calls_in_order_with_percentages(rollout, secrets):
    result = rollout("plan", BRAIN, "--output", "json")

    data = json.loads(result.out)
    traffic = [c["body"]["rolloutPercentage"] for c in data["calls"] if c["kind"] == "traffic"]
    assert traffic == [10, 25, 50, 75, 100]
    assert data["total_latest"] == 46.5 * 3600
    assert [row["stage"] for row in data["timeline"]][:3] == ["deploy", "initialize", "validate"]
    assert data["calls"][0] == {**data["calls"][0], "kind": "run", "line": "npm run build"}


def test_dry_run_says_what_each_check_makes_of_every_value(rollout, secrets, tmp_path: Path):
    plan = tmp_path / "p.yaml"
    plan.write_text(BASE.replace('    fail: "< 0.90"\n', "  alerts: {metric: ok_rate, fail: '> 0'}\n"))

    brain = rollout("plan", BRAIN).out
    one_sided = rollout("plan", str(plan)).out

    assert "  success-rate: pass >= 0.95, fail < 0.90, inconclusive between\n" in brain
    assert "  critical-alerts: pass == 0, fail > 0, inconclusive otherwise\n" in brain
    assert "  ok: pass >= 0.95, fail otherwise\n" in one_sided
    assert "  alerts: fail > 0, pass otherwise\n" in one_sided


def test_dry_run_json_adds_the_bands_and_keeps_the_rule(rollout, secrets):
    checks = {c["name"]: c for c in json.loads(rollout("plan", BRAIN, "-o", "json").out)["checks"]}

    assert checks["success-rate"]["rule"] == "last pass >= 0.95, fail < 0.90; no data: inconclusive"
    assert checks["success-rate"]["bands"] == "pass >= 0.95, fail < 0.90, inconclusive between"
    assert checks["leak-report"]["bands"] == "pass == 0, fail otherwise"


@pytest.mark.parametrize("output", ["text", "json"])
def test_secrets_never_appear_in_dry_run(rollout, secrets, output):
    result = rollout("plan", BRAIN, "--output", output)

    assert result.code == 0
    assert TOKEN not in result.out + result.err
    assert WEBHOOK not in result.out + result.err
    assert "Authorization" in result.out and "***" in result.out


def test_env_var_marked_secret_is_masked_wherever_it_lands(rollout, tmp_path: Path, monkeypatch):
    monkeypatch.setenv("TENANT", "acme-tenant-9")
    plan = tmp_path / "p.yaml"
    plan.write_text(BASE.replace("POST /off", "POST /off/${TENANT}") + "secrets: [TENANT]\n")

    result = rollout("plan", str(plan), "-o", "json")

    assert result.code == 0
    assert "acme-tenant-9" not in result.out
    assert "/off/***" in result.out


def test_lint_warnings_do_not_fail_validation_unless_strict(rollout, tmp_path: Path):
    plan = tmp_path / "p.yaml"
    plan.write_text(BASE.replace("interval: 1m", "interval: 10m")
                    .replace("    bake: 5m", "    bake: 5m\n  - {name: two, percentage: 5}")
                    .replace("rollback:\n  - request: POST /off\n", ""))

    result = rollout("validate", str(plan))
    strict = rollout("validate", "--strict", str(plan))

    assert result.code == 0 and strict.code == 2
    assert "warning: stage 'one': analysis interval 10m is longer than its bake 5m" in result.out
    assert "warning: stage 'two': percentage 5 does not increase on the previous 10" in result.out
    assert "warning: the plan has no rollback steps" in result.out


def test_lint_warns_on_window_longer_than_bake_and_unguarded_traffic(rollout, tmp_path: Path):
    plan = tmp_path / "p.yaml"
    plan.write_text(BASE.replace("    metric: ok_rate\n", "    metric: ok_rate\n    window: 1h\n")
                    .replace("    bake: 5m", "    bake: 5m\n  - name: two\n    percentage: 50\n"
                             "    analysis: {checks: []}"))

    result = rollout("validate", str(plan), "-o", "json")

    report = json.loads(result.out)[0]
    messages = [w["message"] for w in report["warnings"]]
    assert report["valid"] is True
    assert "stage 'one': check 'ok' looks at 1h, longer than the bake 5m" in messages
    assert "stage 'two' moves traffic with no analysis and no manual gate" in messages
    assert report["warnings"][0]["line"] > 0


def test_validate_many_plans(rollout, tmp_path: Path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\n")

    both = rollout("validate", BRAIN, str(PLANS / "brain-api-demo.yaml"))
    mixed = rollout("validate", BRAIN, str(bad))

    assert both.code == 0 and both.out.count(": valid,") == 2
    assert mixed.code == 2 and "bad.yaml: invalid" in mixed.err


@pytest.mark.parametrize("command", [[], ["validate"], ["plan"], ["schema"]])
def test_every_command_has_help(rollout, command):
    result = rollout(*command, "--help")

    assert result.code == 0
    assert "Usage: rollout" in result.out
    assert len(result.out.splitlines()) > 4


def test_version(rollout):
    from rollout_cli import __version__

    result = rollout("--version")

    assert (result.code, result.out.strip()) == (0, f"rollout {__version__}")


def test_unknown_flag_is_a_usage_error(rollout):
    result = rollout("plan", BRAIN, "--output", "yaml")

    assert result.code == 2


def test_shipped_plans_pass_the_ci_example_strictly(rollout, monkeypatch):
    # examples/github-actions.yml runs `rollout validate --strict` on them, with no Slack.
    monkeypatch.delenv("SLACK_WEBHOOK_URL", raising=False)

    result = rollout("validate", "--strict", BRAIN, str(PLANS / "brain-api-demo.yaml"))

    assert result.code == 0, result.out + result.err
    assert "warning" not in result.out


def test_an_empty_webhook_without_a_default_is_still_a_warning(rollout, tmp_path: Path):
    plan = tmp_path / "p.yaml"
    plan.write_text(BASE + "notify:\n  - webhook: ''\n")
    off = tmp_path / "off.yaml"
    off.write_text(BASE + "notify:\n  - webhook: ${NOT_SET_ANYWHERE:-}\n")

    assert "notify webhook is empty" in rollout("validate", "--strict", str(plan)).out
    assert rollout("validate", "--strict", str(off)).code == 0


def test_dry_run_shows_metric_queries_analysis_timing_and_the_traffic_steps_name(
        rollout, tmp_path: Path, monkeypatch):
    monkeypatch.setenv("PROM_TOKEN", "prom-s3cr3t-9")
    plan = tmp_path / "p.yaml"
    plan.write_text(
        BASE.replace("traffic:\n", "traffic:\n  name: set the modern weight\n")
        .replace("  interval: 1m\n", "  interval: 1m\n  initial_delay: 2m\n")
        .replace("metrics:\n", "secrets: [PROM_TOKEN]\nmetrics:\n  errors:\n    prometheus:\n"
                 "      url: http://127.0.0.1:9090/${PROM_TOKEN}\n"
                 "      query: sum(rate(http_requests_total{code=~\"5..\"}[5m]))\n"))

    text = rollout("plan", str(plan)).out
    data = json.loads(rollout("plan", str(plan), "--output", "json").out)

    assert "  ok_rate: GET /stats, select ok\n" in text
    assert ('  errors: PromQL at http://127.0.0.1:9090/***: '
            'sum(rate(http_requests_total{code=~"5.."}[5m]))') in text
    assert "  one: every 1m, the first measurement 2m after the traffic change; checks ok" in text
    assert "# set the modern weight: set traffic to 10%" in text
    assert "prom-s3cr3t-9" not in text + json.dumps(data)
    assert data["analyses"][0] == {**data["analyses"][0], "scope": ["one"],
                                   "interval": 60.0, "initial_delay": 120.0}
    assert [m["provider"] for m in data["metrics"]] == ["prometheus", "http"]
    assert "│ 5m " in text and "5m..5m" not in text          # a fixed bake reads as one


def test_the_brain_plan_has_no_warning_about_its_sequential_compare_window(rollout):
    """errors-vs-legacy looks at 8h in stages that bake 2h: how it keeps the stage's every
    count, not a mistake; the lint says nothing of it (a threshold check it would)."""
    result = rollout("validate", BRAIN, "-o", "json")

    messages = [w["message"] for w in json.loads(result.out)[0]["warnings"]]
    assert not [m for m in messages if "errors-vs-legacy" in m]
