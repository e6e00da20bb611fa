"""Every broken plan is refused with exit 2 and a message at its file:line:column."""

from __future__ import annotations

import contextlib
import os
import resource
import subprocess
import sys
import threading
from pathlib import Path

import pytest

BASE = """\
version: 1
name: demo
target:
  base_url: http://127.0.0.1:9
traffic:
  request: POST /weights
  json: {modern: "{{ percentage }}"}
metrics:
  ok_rate:
    http: {get: /stats}
    select: ok
checks:
  ok:
    metric: ok_rate
    pass: ">= 0.95"
    fail: "< 0.90"
analysis:
  interval: 1m
  checks: [ok]
stages:
  - name: one
    percentage: 10
    bake: 5m
rollback:
  - request: POST /off
"""


def variant(old: str, new: str) -> str:
    assert old in BASE, old
    return BASE.replace(old, new, 1)


def with_target(line: str) -> str:
    """BASE with ``line`` added to `target:` (on line 5)."""
    return variant("  base_url: http://127.0.0.1:9", f"  base_url: http://127.0.0.1:9\n  {line}")


def with_rollback_step(line: str) -> str:
    """BASE with ``line`` added to its rollback step (on line 26)."""
    return variant("  - request: POST /off", f"  - request: POST /off\n    {line}")


def with_compare(lines: str) -> str:
    """BASE with check `ok` made a compare check against ok_rate; ``lines`` (indented by 6)
    go under its `compare:` (line 17)."""
    return variant('    pass: ">= 0.95"\n    fail: "< 0.90"',
                   "    baseline: ok_rate\n    window: 30m\n    compare:\n" + lines)


# (id, plan text, expected "line:column: message fragment")
CASES = [
    ("compare-unknown-method", with_compare("      method: t-test"),
     "18:15: checks.ok.compare.method: must be 'mann-whitney' or 'sequential', got 't-test'"),
    ("compare-confidence-percent", with_compare("      method: mann-whitney\n      confidence: 98"),
     "19:19: checks.ok.compare.confidence: must be less than or equal to 0.9999, got 98"),
    ("compare-allowed-not-a-change", with_compare("      method: mann-whitney\n      allowed: five"),
     "19:16: checks.ok.compare.allowed: 'five' is not an allowed change (hint: write how much worse"),
    ("compare-allowed-negative", with_compare("      method: mann-whitney\n      allowed: '-5%'"),
     "19:16: checks.ok.compare.allowed: '-5%' is not an allowed change"),
    ("compare-worse-sideways", with_compare("      method: mann-whitney\n      worse: up"),
     "19:14: checks.ok.compare.worse: must be 'higher' or 'lower', got 'up'"),
    ("compare-too-few-samples", with_compare("      method: mann-whitney\n      min_samples: 1"),
     "19:20: checks.ok.compare.min_samples: must be greater than or equal to 3, got 1"),
    ("sequential-without-trials", with_compare("      method: sequential"),
     "17:5: checks.ok.compare: a sequential compare needs `trials:` and `baseline_trials:`"),
    ("sequential-relative", with_compare("      method: sequential\n      trials: ok_rate\n"
                                         "      baseline_trials: ok_rate\n      allowed: +5%"),
     "17:5: checks.ok.compare: allowed '+5%': a sequential compare allows a difference of proportions"),
    ("sequential-unknown-trials", with_compare("      method: sequential\n      trials: requests\n"
                                               "      baseline_trials: ok_rate"),
     "19:15: check 'ok': unknown metric 'requests'"),
    ("compare-with-bands", variant('    fail: "< 0.90"', '    fail: "< 0.90"\n    baseline: ok_rate\n'
                                   '    window: 30m\n    compare: {method: mann-whitney}'),
     "15:11: checks.ok.pass: a compare check judges by its interval against `allowed:`, not by `pass:` or `fail:`"),
    ("compare-without-window", variant('    pass: ">= 0.95"\n    fail: "< 0.90"',
                                       "    baseline: ok_rate\n    compare: {method: mann-whitney}"),
     "13:3: checks.ok: a compare check needs `window:`"),
    ("unknown-top-key", BASE + "stagez: []\n", "26:1: plan: unknown key 'stagez' (hint: did you mean 'stages'?)"),
    ("unknown-stage-key", variant("    bake: 5m", "    bake: 5m\n    bakee: 1h"),
     "24:5: stages.0: unknown key 'bakee' (hint: did you mean 'bake'?)"),
    ("unknown-step-key", with_rollback_step("timout: 1s"),
     "26:5: rollback.0: unknown key 'timout' (hint: did you mean 'timeout'?)"),
    ("missing-version", BASE.replace("version: 1\n", ""),
     "1:1: plan: missing required key 'version'"),
    ("wrong-version", variant("version: 1", "version: 2"), "1:10: version: must be 1, got 2"),
    ("bad-duration", variant("bake: 5m", "bake: 5 minutes"),
     "23:11: stages.0.bake: bad duration '5 minutes'"),
    ("duration-without-unit", variant("interval: 1m", "interval: 60"),
     "18:13: analysis.interval: duration 60 has no unit; write 60s"),
    ("bake-range-backwards", variant("bake: 5m", "bake: 2h..1h"),
     "23:11: stages.0.bake: bake range '2h..1h' ends before it starts"),
    ("bad-expression", variant('pass: ">= 0.95"', 'pass: "about 0.95"'),
     "15:11: checks.ok.pass: bad expression 'about 0.95'"),
    ("percent-without-baseline", variant('pass: ">= 0.95"', 'pass: ">= 95%"'),
     "15:11: checks.ok.pass: '>= 95%' is relative (%), but the check has no `baseline:`"),
    ("slope-without-trend", variant('fail: "< 0.90"', 'fail: "> 5/h"'),
     "16:11: checks.ok.fail: '> 5/h' is a slope, but the check has no `trend:` window"),
    ("check-without-bands", variant('    pass: ">= 0.95"\n    fail: "< 0.90"\n', ""),
     "13:3: checks.ok: a check needs `pass:`, `fail:` or both"),
    # `fail:` followed by nothing is YAML null: it was an internal AttributeError (fuzz).
    ("fail-without-value", variant('    fail: "< 0.90"', "    fail:"),
     "16:5: checks.ok.fail: has no value (hint: write a comparison like '< 0.90', "
     "or leave the key out)"),
    ("pass-without-value", variant('    pass: ">= 0.95"', "    pass:"),
     "15:5: checks.ok.pass: has no value (hint: write a comparison like '>= 0.95', "
     "or leave the key out)"),
    ("bands-without-values", variant('    pass: ">= 0.95"\n    fail: "< 0.90"', "    pass:\n    fail:"),
     "15:5: checks.ok.pass: has no value"),
    # Durations that validated and then crashed the drivers (a zero timeout or deadline),
    # or that no rollout can mean (beyond 365d, infinite).
    ("target-timeout-zero", with_target("timeout: 0"),
     "5:12: target.timeout: must be longer than 0 (hint: write a positive duration"),
    ("target-deadline-zero", with_target("retry: {deadline: 0}"),
     "5:21: target.retry.deadline: must be longer than 0"),
    ("step-timeout-zero", with_rollback_step("timeout: 0"),
     "26:14: rollback.0.timeout: must be longer than 0"),
    ("step-deadline-zero", with_rollback_step("retry: {deadline: 0}"),
     "26:23: rollback.0.retry.deadline: must be longer than 0"),
    ("notify-timeout-zero", BASE + "notify:\n  - {webhook: 'http://127.0.0.1:9/x', timeout: 0}\n",
     "27:48: notify.0.timeout: must be longer than 0"),
    ("interval-zero", variant("interval: 1m", "interval: 0"),
     "18:13: analysis.interval: must be longer than 0"),
    ("bake-absurd", variant("bake: 5m", "bake: 99999999999999999999999d"),
     "23:11: stages.0.bake: duration '99999999999999999999999d' is longer than 365d (hint: "),
    ("timeout-over-a-year", with_target("timeout: 366d"),
     "5:12: target.timeout: duration '366d' is longer than 365d"),
    ("bake-range-over-a-year", variant("bake: 5m", "bake: 1h..8761h"),
     "23:11: stages.0.bake: duration '8761h' is longer than 365d"),
    ("bake-infinite", variant("bake: 5m", "bake: .inf"),
     "23:11: stages.0.bake: duration inf is not a finite number"),
    ("percentage-5001-digits", variant("percentage: 10", "percentage: " + "1" * 5001),
     "22:17: stages.0.percentage: a number of 5001 digits is too long to read (hint: "),
    ("percentage-400-digits", variant("percentage: 10", "percentage: 1" + "0" * 400),
     "22:17: stages.0.percentage: must be less than or equal to 100, got 1000000"),
    ("percentage-infinite", variant("percentage: 10", "percentage: .inf"),
     "22:17: stages.0.percentage: must be a number, got inf"),
    ("nul-byte-on-line-2", variant("name: demo", "name: de\0mo"),
     "2:9: YAML syntax: unacceptable character #x0000"),
    ("percentage-over-100", variant("percentage: 10", "percentage: 120"),
     "22:17: stages.0.percentage: must be less than or equal to 100, got 120"),
    ("percentage-negative", variant("percentage: 10", "percentage: -5"),
     "22:17: stages.0.percentage: must be greater than or equal to 0, got -5"),
    ("unknown-template-variable", variant('"{{ percentage }}"', '"{{ pct }}"'),
     "7:18: unknown template variable 'pct'"),
    ("template-expression", variant('"{{ percentage }}"', '"{{ percentage * 2 }}"'),
     "7:18: template {{ percentage * 2 }} is not a name"),
    ("missing-env-var", variant("http://127.0.0.1:9", "${ROLLOUT_TEST_SURELY_UNSET}"),
     "4:13: environment variable ROLLOUT_TEST_SURELY_UNSET is not set"),
    ("duplicate-stage", variant("    bake: 5m", "    bake: 5m\n  - name: one\n    percentage: 20"),
     "24:11: duplicate stage name 'one' (hint: first used on line 21"),
    ("unknown-check", variant("checks: [ok]", "checks: [ok, okay]"),
     "19:16: unknown check 'okay' (hint: did you mean 'ok'?)"),
    ("unknown-metric", variant("metric: ok_rate", "metric: ok_ratio"),
     "14:13: check 'ok': unknown metric 'ok_ratio' (hint: did you mean 'ok_rate'?)"),
    ("unknown-baseline", variant("metric: ok_rate", "metric: ok_rate\n    baseline: nope"),
     "15:15: check 'ok': unknown metric 'nope'"),
    ("bad-method", variant("POST /off", "YEET /off"),
     "25:14: rollback.0.request: unknown HTTP method 'YEET'"),
    ("step-without-action", variant("  - request: POST /off", "  - name: nothing"),
     "25:5: rollback.0: a step needs a `request:` or a `run:` key"),
    ("json-and-body", with_rollback_step("json: {}\n    body: x"),
     "25:5: rollback.0: give either `json:` or `body:`, not both"),
    ("bad-gate", variant("    bake: 5m", "    bake: 5m\n    gate: sometimes"),
     "24:11: stages.0.gate: must be 'auto' or 'manual', got 'sometimes'"),
    ("bad-jmespath", variant("select: ok", "select: 'ok[['"), "11:13: metrics.ok_rate.select: bad JMESPath"),
    ("select-gives-a-boolean", variant("select: ok", "select: \"status == 'up'\""),
     "11:13: metrics.ok_rate.select: select \"status == 'up'\" gives true or false, not a "
     "number (hint: count what matches instead: length([@][?status == 'up']) is 1 or 0)"),
    ("two-providers", variant("    select: ok", "    select: ok\n    prometheus: {url: 'http://127.0.0.1:9090', query: up}"),
     "9:3: metrics.ok_rate: a metric needs exactly one provider"),
    ("percentage-without-traffic", BASE.replace(BASE[BASE.index("traffic:"):BASE.index("metrics:")], ""),
     "19:17: stage 'one' sets a percentage, but the plan has no `traffic:` request"),
    ("bad-base-url", variant("http://127.0.0.1:9", "ftp://example"),
     "4:13: target.base_url: base_url 'ftp://example' must be an http:// or https:// URL"),
    ("no-stages", variant("stages:\n  - name: one\n    percentage: 10\n    bake: 5m\n", "stages: []\n"),
     "20:9: stages: must have at least 1 item, got []"),
    ("bad-stage-name", variant("- name: one", "- name: Stage One"),
     "21:11: stages.0.name: must be lowercase letters, digits, '.', '_' or '-', starting "
     "with a letter or digit, got 'Stage One'"),
    ("duplicate-key", variant("    bake: 5m", "    bake: 5m\n    bake: 6m"),
     "24:5: duplicate key 'bake' (hint: first given on line 23)"),
    ("yaml-syntax", variant("  checks: [ok]", "  checks: [ok"), "20:7: YAML syntax"),
    ("python-tag", variant("name: demo", "name: !!python/object/apply:os.system ['true']"),
     "2:7: tag tag:yaml.org,2002:python/object/apply:os.system is not allowed"),
    ("not-a-mapping", "- just\n- a list\n", "1:1: a plan is a mapping of keys"),
    ("empty-file", "", "1:1: expected one YAML document, found an empty file"),
    ("billion-laughs", "a: &a [x,x,x,x,x,x,x,x,x,x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [" + ",".join([f"*{chr(97 + i)}"] * 10) + "]\n"
        for i in range(8)), "1:26: document expands to more than 100000 values"),
    ("alert-empty-match", BASE + "alerts:\n  - {match: {}, action: rollback}\n",
     "27:6: alerts.0.match: must name at least one label (an empty match would act on every alert)"),
    ("alert-bad-action", BASE + "alerts:\n  - match: {service: api}\n    action: restart\n",
     "28:13: alerts.0.action: must be 'rollback' or 'pause', got 'restart'"),
    ("alert-not-a-list", BASE + "alerts: {service: api}\n",
     "26:1: alerts: must be a list"),
]


@pytest.mark.parametrize(("text", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_broken_plan_is_refused_with_location(tmp_path: Path, rollout, text: str, expected: str):
    plan = tmp_path / "plan.yaml"
    plan.write_text(text)

    result = rollout("validate", str(plan))

    assert result.code == 2
    assert f"{plan}:{expected}" in result.err, result.err
    assert "Traceback" not in result.err + result.out


def test_base_plan_is_valid(tmp_path: Path, rollout):
    plan = tmp_path / "plan.yaml"
    plan.write_text(BASE)

    result = rollout("validate", str(plan))

    assert result.code == 0, result.err
    assert "valid, 1 stage, bake 5m\n" in result.out       # a fixed bake reads as one


def test_all_errors_reported_at_once(tmp_path: Path, rollout):
    plan = tmp_path / "plan.yaml"
    plan.write_text(variant("bake: 5m", "bake: soon").replace("checks: [ok]", "checks: [nope]")
                    .replace('"{{ percentage }}"', '"{{ pct }}"'))

    result = rollout("validate", str(plan))

    assert result.code == 2
    assert "invalid, 3 errors" in result.err
    assert ":23:11: stages.0.bake: bad duration 'soon'" in result.err
    assert ":19:12: unknown check 'nope'" in result.err
    assert ":7:18: unknown template variable 'pct'" in result.err


def test_plan_command_refuses_invalid_plan_without_running(tmp_path: Path, rollout):
    plan = tmp_path / "plan.yaml"
    plan.write_text(variant("bake: 5m", "bake: soon"))

    result = rollout("plan", str(plan))

    assert result.code == 2
    assert ":23:11: stages.0.bake: bad duration 'soon'" in result.err
    assert "1 error; nothing was run." in result.err
    assert result.out == ""


def test_huge_file_is_refused(tmp_path: Path, rollout):
    plan = tmp_path / "plan.yaml"
    plan.write_text(BASE + "# " + "x" * (1024 * 1024) + "\n")

    result = rollout("validate", str(plan))

    assert result.code == 2
    assert ":1:1: plan file is larger than 1048576 bytes, the limit" in result.err


def _validate_in_a_small_process(path: Path) -> subprocess.CompletedProcess[str]:
    """`rollout validate PATH` in a process held to 1 GiB, so that reading without a limit
    fails fast (MemoryError) instead of filling this machine; a hang ends at the timeout."""
    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))

    return subprocess.run([sys.executable, "-m", "rollout_cli", "validate", str(path)],
                          capture_output=True, text=True, timeout=60, preexec_fn=limit,
                          check=False)


def test_endless_device_is_refused_at_the_limit():
    result = _validate_in_a_small_process(Path("/dev/zero"))

    assert result.returncode == 2, result.stderr
    assert "/dev/zero:1:1: plan file is larger than 1048576 bytes, the limit" in result.stderr


def test_endless_pipe_is_refused_at_the_limit(tmp_path: Path):
    fifo = tmp_path / "plan.yaml"
    os.mkfifo(fifo)

    def write_for_ever() -> None:
        with contextlib.suppress(BrokenPipeError), fifo.open("wb") as pipe:
            while True:
                pipe.write(b"# a comment that never ends\n" * 1024)

    writer = threading.Thread(target=write_for_ever, daemon=True)
    writer.start()
    result = _validate_in_a_small_process(fifo)
    writer.join(timeout=60)

    assert result.returncode == 2, result.stderr
    assert "plan file is larger than 1048576 bytes, the limit" in result.stderr
    assert not writer.is_alive()   # the reader stopped and closed the pipe


def test_missing_file(tmp_path: Path, rollout):
    result = rollout("validate", str(tmp_path / "nope.yaml"))

    assert result.code == 2
    assert "nope.yaml:1:1: cannot read plan: No such file or directory" in result.err


def test_validate_keeps_going_after_a_duplicate_key_and_missing_top_level_keys(
        tmp_path: Path, rollout):
    duplicated = tmp_path / "dup.yaml"
    duplicated.write_text(BASE.replace("name: demo\n", "name: demo\nname: again\n")
                          .replace("    bake: 5m\n", "    bake: 5m\n    colour: red\n")
                          .replace('    pass: ">= 0.95"\n    fail: "< 0.90"\n',
                                   '    pass: "<= 3%"\n'))
    headless = tmp_path / "headless.yaml"
    headless.write_text("target: {base_url: 'http://127.0.0.1:9'}\nchecks: {ok: {metric: x, "
                        "pass: '> 1', extra: 1}}\n")

    dup = rollout("validate", str(duplicated))
    missing = rollout("validate", str(headless))

    assert dup.code == 2 and "invalid, 3 errors" in dup.err
    assert ":3:1: duplicate key 'name' (hint: first given on line 2)" in dup.err
    assert "stages.0: unknown key 'colour'" in dup.err
    assert "'<= 3%' is relative (%), but the check has no `baseline:`; for a ratio write " \
           "'<= 0.03'" in dup.err
    assert missing.code == 2
    assert ":1:1: plan: missing required keys 'version', 'name', 'stages'" in missing.err
    assert "checks.ok: unknown key 'extra'" in missing.err
