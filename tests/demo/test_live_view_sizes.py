"""The live view at the sizes of real terminals: rendered to fixed-size consoles, every
width from 80 columns shows the current stage, each check's value and verdict and the
whole next command; the thresholds and the sparklines give way first."""

from __future__ import annotations

import time
from dataclasses import replace

import pytest
from rich.console import Console

from rollout_cli.engine import RolloutState
from rollout_cli.engine.analysis import Run
from rollout_cli.engine.events import (
    AnalysisStarted,
    GateApproved,
    GateWaiting,
    Intent,
    Outcome,
    StageBaking,
    StageCompleted,
    StageStarted,
)
from rollout_cli.plan import load_plan
from rollout_cli.render.live_view import render
from tests.conftest import PLANS

ROLLOUT = "brain-api-demo-20261206-194500-7f3a"
PLAN = load_plan(PLANS / "brain-api-demo.yaml", {}).plan
# The demo's checks at canary-25, as the engine records them (a trend's value per hour,
# a baseline check's as a ratio), with the value each must show.
VERDICTS = {
    "stage": [("success-rate", 0.9712, "pass", "0.9712"),
              ("latency-vs-legacy", -0.001, "pass", "-0.1%"),
              ("error-rate", 0.0288, "pass", "0.0288"),
              ("critical-alerts", 0.0, "pass", "0")],
    "background": [("memory-stable", 1800.0, "pass", "+0.5/s"),
                   ("ab-test-live", 1.0, "pass", "1"),
                   ("leak-report", 0.0, "pass", "0"),
                   ("dashboard-errors", 0.031, "pass", "0.031"),
                   ("speedup-target", 12.5, "pass", "12.5")],
}
DRY = {"leak-report", "dashboard-errors", "speedup-target"}


def _state(phase: str) -> RolloutState:
    analyses, history = {}, {}
    for scope, rows in VERDICTS.items():
        verdicts = tuple({"check": name, "phase": verdict, "reason": "", "value": value,
                          "dry_run": name in DRY} for name, value, verdict, _ in rows)
        analyses[scope] = Run(100.0, 101.0, rounds=12, verdicts=verdicts)
        for name, value, verdict, _ in rows:
            history[name] = tuple((100.0 + i, value * (1 + i / 40), verdict) for i in range(30))
    return RolloutState(id=ROLLOUT, plan=PLAN.name, phase=phase, stage=4,
                        stage_started=True, traffic_applied=True, baking_since=100.0,
                        bake_clock=100.0, percentage=25.0, analyses=analyses, history=history)


@pytest.fixture(autouse=True)
def utc(monkeypatch: pytest.MonkeyPatch):
    """Event times print in local time: UTC here, so frames are the same on every machine."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def _events() -> list:
    """What the journal holds from canary-10's gate to canary-25's, oldest first."""
    url = "http://127.0.0.1:8080/api/admin/ab-testing/update"
    made = [GateApproved(stage=3, name="canary-10", who="ann", time=80.0),
            StageCompleted(stage=3, name="canary-10", time=80.5),
            StageStarted(stage=4, name="canary-25", percentage=25.0, time=81.0),
            Intent(call_id="traffic:4", kind="traffic", stage=4, line=f"POST {url}",
                   time=81.1),
            Outcome(call_id="traffic:4", ok=True, status=200, attempts=1, elapsed=0.004,
                    percentage=25.0, time=81.2),
            StageBaking(stage=4, since=81.2, time=81.3),
            AnalysisStarted(scope="stage", started=81.3, next_due=81.8, time=81.3),
            GateWaiting(stage=4, name="canary-25", time=90.0)]
    return [replace(event, seq=seq) for seq, event in enumerate(made, 20)]


def _frame(width: int, height: int, phase: str = "waiting-gate", **changes) -> list[str]:
    # Soft-wrapping, as the tool's own console (render/console.py) is.
    console = Console(record=True, width=width, height=height, force_terminal=False,
                      color_system=None, soft_wrap=True)
    console.print(render(PLAN, replace(_state(phase), **changes), _events(), now=102.0))
    return console.export_text().splitlines()


@pytest.mark.parametrize(("width", "height"), [(80, 24), (100, 30), (120, 40)])
def test_every_size_shows_stage_values_verdicts_and_the_whole_next_command(width, height):
    lines = _frame(width, height)
    frame = "\n".join(lines)

    assert len(lines) <= height and all(len(line) <= width for line in lines)
    assert "▶ canary-25 25%" in frame
    for rows in VERDICTS.values():
        for name, _, verdict, shown in rows:
            [row] = [line for line in lines if f"│ {name} " in line]
            assert f" {shown} " in row and verdict in row, row
    assert f"  rollout advance {ROLLOUT} --stage canary-25" in frame
    assert "…" not in frame.split("next:")[1]


def test_at_80_columns_thresholds_give_way_then_sparklines_shrink():
    narrow, wide = "\n".join(_frame(80, 24)), "\n".join(_frame(120, 40))

    assert "thresholds" not in narrow and "history" in narrow
    assert "thresholds" in wide and "pass >= 0.95, fail < 0.90" in wide


def test_the_ladder_keeps_the_current_stage_and_counts_the_others():
    [ladder] = [line for line in _frame(80, 24) if "▶" in line]

    assert "✓ canary-10 10%  ▶ canary-25 25%  · canary-50 50%" in ladder
    assert "earlier" in ladder or "✓ deploy" in ladder
    assert "more" in ladder


def test_a_short_terminal_drops_old_events_not_the_next_command():
    short = _frame(80, 20)
    tall = _frame(80, 40)

    assert len(short) == 20 and len(tall) < 40
    assert any("gate approved by ann" in line for line in tall)
    assert not any("gate approved by ann" in line for line in short)
    assert short[-2].startswith(f"│   rollout advance {ROLLOUT}")


def test_a_finished_rollout_shows_its_end_and_no_bake_clock():
    frame = "\n".join(_frame(80, 24, phase="rolled-back"))

    assert "ended: rolled-back at stage canary-25" in frame
    assert "left" not in frame


def test_the_last_frame_shows_how_the_rollout_ended_even_when_another_process_ended_it():
    from types import SimpleNamespace

    from rollout_cli.render.live_view import LiveView

    console = Console(record=True, width=80, height=24, force_terminal=True, color_system=None)
    view = LiveView(PLAN, console)

    def follow():   # the follower saw the gate; an operator's rollback ended the rollout
        view(GateWaiting(stage=4, name="canary-25", time=120.0, seq=40), _state("waiting-gate"))
        return SimpleNamespace(state=_state("rolled-back"))

    view.run(follow)

    last = console.export_text().split("╭─")[-1]
    assert "rolled-back" in last and "waiting-gate" not in last


def test_a_long_reason_in_the_next_line_wraps_whole_within_the_height():
    reason = ("stage analysis: failed (1) > failure_limit (0): latency-vs-legacy: mean over 1s "
              "(1 sample) = 8820 vs baseline legacy_p95_ms 7000 (+26.0%); pass needs <= +0%, "
              "fail at > +20% -> fail")
    lines = _frame(80, 24, phase="rolled-back", reason=reason)

    assert len(lines) == 24
    nxt = " ".join(line.strip("│ ") for line in lines[lines.index(next(
        line for line in lines if "next:" in line)):-1])
    assert nxt == f"next: rolled back: {reason}"


def test_the_readme_shows_the_80_column_frame_as_rendered():
    from tests.conftest import ROOT

    readme = (ROOT / "README.md").read_text()

    assert "```text\n" + "\n".join(_frame(80, 24)) + "\n```" in readme
