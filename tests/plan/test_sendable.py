"""Whatever `validate` accepts, the drivers can send: every request, metric query and
notification of a valid plan builds without error, and what would not is a located error."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from rollout_cli.drivers.http import HttpDriver
from rollout_cli.engine import Call, Measure, RolloutState
from rollout_cli.engine.events import Failed
from rollout_cli.notify import Notifier
from rollout_cli.plan import LoadedPlan, load_plan, load_text
from rollout_cli.reconcile.executor import Executor
from tests.conftest import PLANS, ROOT
from tests.plan.test_broken_plans import BASE, variant, with_rollback_step, with_target

PROM_ENV = {"PROM_URL": "http://127.0.0.1:9090", "SANDBOX_INSTANCE": "127.0.0.1:8080"}


def _answer(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json={})


def send_everything(loaded: LoadedPlan) -> None:
    """Every call, measurement and notification the plan can make, through the real
    executor, metric fetcher and notifier, to a transport that answers 200 {}. Captured
    values are unknown before a run, so they are stand-in strings. Raises what they raise."""
    plan = loaded.plan
    captures = {name: f"<captured:{name}>" for name in plan.captured_names}
    state = RolloutState(id="r", plan=plan.name, captures=captures)
    calls = [Call("traffic", "traffic", i, 0) for i, stage in enumerate(plan.stages)
             if stage.percentage is not None and plan.traffic is not None]
    calls += [Call(f"s{i}.{j}", "step", i, j) for i, stage in enumerate(plan.stages)
              for j in range(len(stage.steps))]
    calls += [Call(f"r{j}", "rollback", None, j) for j in range(len(plan.rollback))]
    with HttpDriver(transport=httpx.MockTransport(_answer), sleep=lambda _: None) as http:
        executor = Executor(loaded, http, simulate_commands=True)
        for call in calls:
            executor.perform(call, executor.prepare(call, state))
        for index in range(len(plan.stages)):
            executor.measure(Measure(tuple(plan.measured_names), {}, index), state, now=1e9)
    notifier = Notifier(plan.notify, loaded.redactor, "r", plan.name,
                        transport=httpx.MockTransport(_answer), sleep=lambda _: None)
    notifier(Failed(time=0.0), state)
    notifier.close()
    assert notifier.drain_failures() == []


@pytest.mark.parametrize("path", [*sorted(PLANS.glob("*.yaml")), *sorted(
    (ROOT / "examples").glob("*.yaml")), ROOT / "tests" / "data" / "brain-api-faults.yaml"],
    ids=lambda p: p.name)
def test_shipped_plans_send_everything_they_validate(path: Path):
    send_everything(load_plan(path, PROM_ENV))


def test_base_plan_with_a_webhook_sends_everything():
    send_everything(load_text(BASE + "notify:\n  - {webhook: 'http://127.0.0.1:9/x'}\n",
                              "p.yaml", {}))


CA_JUNK = "not a certificate\n"

# (id, plan text, expected "line:column: message"); each validated before and then
# failed inside a driver (a ValueError or UnicodeEncodeError that ended the command as
# an internal error), or sent nothing useful.
CASES = [
    ("base-url-unparsable", variant("http://127.0.0.1:9", "http://[::1"),
     "4:13: target.base_url: cannot be sent: Invalid IPv6 URL"),
    ("request-url-unparsable", variant("POST /off", "POST http://[::1/off"),
     "25:14: rollback.0.request: cannot be sent: Invalid IPv6 URL"),
    ("request-port-out-of-range", variant("POST /off", "POST http://127.0.0.1:99999/off"),
     "25:14: rollback.0.request: cannot be sent: Port out of range 0-65535"),
    ("metric-url-without-host", variant("{get: /stats}", "{get: 'http://'}"),
     "10:17: metrics.ok_rate.http.get: cannot be sent: an HTTP request needs an absolute"),
    ("prometheus-url-unparsable",
     variant("    http: {get: /stats}\n    select: ok",
             "    prometheus: {url: 'http://[x', query: up}"),
     "10:23: metrics.ok_rate.prometheus.url: cannot be sent: Invalid IPv6 URL"),
    ("header-not-ascii", with_target("headers: {X-Who: héllo}"),
     "5:20: target.headers.X-Who: cannot be sent: header values are ASCII text"),
    ("step-header-name-not-ascii", with_rollback_step("headers: {Ünit: x}"),
     "26:15: rollback.0.headers.Ünit: cannot be sent: header names are ASCII text"),
    ("json-infinite", with_rollback_step("json: {a: .inf}"),
     "26:11: rollback.0.json: cannot be sent: JSON has no NaN or infinity"),
    ("traffic-json-nan", variant('json: {modern: "{{ percentage }}"}', "json: {modern: .nan}"),
     "7:9: traffic.json: cannot be sent: JSON has no NaN or infinity"),
    ("webhook-not-a-url", BASE + "notify:\n  - {webhook: 'hooks.example/T0/secret-path'}\n",
     "27:15: notify.0.webhook: cannot be sent: not a valid http:// or https:// URL"),
    ("ca-bundle-missing", with_target("verify: /nonexistent/ca.pem"),
     "5:11: target.verify: cannot read the CA bundle /nonexistent/ca.pem: No such file or "
     "directory (hint: "),
    ("ca-bundle-a-directory", with_target("verify: /tmp"),
     "5:11: target.verify: cannot read the CA bundle /tmp: Is a directory"),
    ("ca-bundle-not-a-bundle", with_target("verify: {junk}"),
     "5:11: target.verify: {junk} is not a CA bundle"),
]


@pytest.mark.parametrize(("text", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_what_the_drivers_cannot_send_is_refused_with_location(tmp_path: Path, rollout,
                                                                text: str, expected: str):
    junk = tmp_path / "junk.pem"
    junk.write_text(CA_JUNK)
    plan = tmp_path / "plan.yaml"
    plan.write_text(text.replace("{junk}", str(junk)))

    result = rollout("validate", str(plan))

    assert result.code == 2, result.out
    assert f"{plan}:{expected.replace('{junk}', str(junk))}" in result.err, result.err
    assert "secret-path" not in result.err   # a webhook URL is a secret, even a broken one


def test_unreadable_ca_bundle_is_refused(tmp_path: Path, rollout):
    bundle = tmp_path / "ca.pem"
    bundle.write_text(CA_JUNK)
    bundle.chmod(0)
    if _can_read(bundle):
        pytest.skip("running as root: every file is readable")
    plan = tmp_path / "plan.yaml"
    plan.write_text(with_target(f"verify: {bundle}"))

    result = rollout("validate", str(plan))

    assert result.code == 2
    assert f"cannot read the CA bundle {bundle}: Permission denied" in result.err


def _can_read(path: Path) -> bool:
    try:
        path.open("rb").close()
    except OSError:
        return False
    return True


def test_a_real_ca_bundle_is_accepted(tmp_path: Path, rollout):
    import certifi

    plan = tmp_path / "plan.yaml"
    plan.write_text(with_target(f"verify: {certifi.where()}"))

    result = rollout("validate", str(plan))

    assert result.code == 0, result.err
