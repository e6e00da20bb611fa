"""Resuming: after the plan file changed, and after the process following it was stopped.

Plans are plans/brain-api-demo.yaml with only bake lengths changed (0s, 2s for the stage
a process is stopped in) and no analysis (conftest.derive_plan).
"""

from __future__ import annotations

import json
import signal
from pathlib import Path

from tests.rollouts.conftest import ON_EVERY_STORE, Operator, Target, derive_plan, read_until


def _percentages(target: Target) -> list[int]:
    return [body["rolloutPercentage"] for _, path, body in target.changes()
            if path == "/api/admin/ab-testing/update"]


@ON_EVERY_STORE
def test_resume_refuses_a_changed_plan_until_the_change_is_accepted(
        operator: Operator, target: Target, fast_plan: Path):
    assert operator("start", str(fast_plan)).code == 3
    text = fast_plan.read_text()
    fast_plan.write_text(text.replace("{name: canary-25, percentage: 25,",
                                      "{name: canary-25, percentage: 30,", 1))

    refused = operator("resume")
    assert refused.code == 2
    assert "changed since rollout" in refused.err
    assert "--accept-plan-change" in refused.err
    advance_refused = operator("advance")
    assert advance_refused.code == 2
    assert "--accept-plan-change" in advance_refused.err

    accepted = operator("resume", "--accept-plan-change")
    assert accepted.code == 3, accepted.err                 # still at canary-10's gate
    history = json.loads(operator("history", "--output", "json").out)
    changes = [e for e in history["events"] if e["type"] == "plan-changed"]
    assert len(changes) == 1 and "@" in changes[0]["who"]
    assert "plan changed (digest " in operator("history").out

    assert operator("advance").code == 3                     # the new plan, no more refusal
    assert _percentages(target) == [10, 30, 50, 75, 100]


@ON_EVERY_STORE
def test_sigterm_while_baking_leaves_a_note_and_resume_finishes(
        operator: Operator, target: Target, tmp_path: Path):
    plan = derive_plan(tmp_path / "bakes.yaml", bakes={"validate": "2s"})
    follower = operator.spawn("start", str(plan), "--follow")
    try:
        read_until(follower, r"^\S+ +baking$", timeout=30)    # the event line, no path
    finally:
        follower.send_signal(signal.SIGTERM)
    stopped = operator.finish(follower)

    assert stopped.code == 143, stopped.err   # 128 + SIGTERM
    assert "interrupted (SIGTERM)" in stopped.err
    assert "rollout resume" in stopped.err
    events = operator.events()
    assert [e["type"] for e in events[-2:]] == ["stage-baking", "note"]
    assert "interrupted by SIGTERM" in events[-1]["text"]
    assert operator.status()["stage"] == "validate"
    assert _percentages(target) == []

    finished = operator("resume", "--follow", "--auto-approve")
    assert finished.code == 0, finished.out + finished.err
    assert operator.status()["phase"] == "succeeded"
    assert _percentages(target) == [10, 25, 50, 75, 100]


def test_an_in_process_command_leaves_the_callers_sigterm_handler_alone(
        operator: Operator, target: Target, fast_plan: Path):
    before = signal.getsignal(signal.SIGTERM)

    assert operator("start", str(fast_plan)).code == 3

    assert signal.getsignal(signal.SIGTERM) is before


def test_a_plan_change_that_drops_stages_already_reached_is_refused(
        operator: Operator, target: Target, tmp_path: Path):
    plan = derive_plan(tmp_path / "cut.yaml", extra={"canary-50": "gate: manual"})
    assert operator("start", str(plan)).code == 3              # canary-10's gate
    assert operator("advance").code == 3                       # canary-50's gate, at 50%
    text = plan.read_text()
    for stage in ("canary-25", "canary-50", "canary-75"):
        text = "\n".join(line for line in text.splitlines() if f"name: {stage}," not in line)
    plan.write_text(text + "\n")

    resumed = operator("resume", "--accept-plan-change")
    advanced = operator("advance", "--accept-plan-change")

    for refused in (resumed, advanced):
        assert refused.code == 2, refused.out + refused.err
        assert "canary-25" in refused.err and "canary-50" in refused.err
        assert "internal error" not in refused.err
    status = operator.status()
    assert (status["phase"], status["stage"], status["percentage"]) == \
        ("waiting-gate", "canary-50", 50)
    assert _percentages(target) == [10, 25, 50]
