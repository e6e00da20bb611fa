"""The live view's frame: ladder, bake progress, checks with sparklines, events, next."""

from __future__ import annotations

from rich.console import Console

from rollout_cli.engine import RolloutState
from rollout_cli.engine.analysis import Run
from rollout_cli.engine.events import StageStarted
from rollout_cli.plan import load_plan
from rollout_cli.render.live_view import render
from tests.conftest import PLANS


def test_frame_shows_where_the_rollout_stands():
    plan = load_plan(PLANS / "brain-api-demo.yaml", {}).plan
    verdict = {"check": "success-rate", "phase": "pass", "reason": "", "value": 0.97,
               "dry_run": False}
    state = RolloutState(id="demo-1", plan=plan.name, phase="running", stage=4,
                         stage_started=True, traffic_applied=True, baking_since=100.0, bake_clock=100.0,
                         percentage=25.0,
                         analyses={"stage": Run(100.0, 101.0, rounds=2, verdicts=(verdict,))},
                         history={"success-rate": ((100.0, 0.96, "pass"), (100.5, 0.97, "pass"))})
    events = [StageStarted(stage=4, name="canary-25", percentage=25.0, time=99.0, seq=9)]

    console = Console(record=True, width=140, force_terminal=False, color_system=None)
    console.print(render(plan, state, events, now=102.0))
    frame = console.export_text()

    assert "rollout demo-1  ·  running" in frame
    assert "✓ canary-10 10%  ▶ canary-25 25%  · canary-50 50%" in frame
    assert "bake 4s..8s" in frame and "2s left" in frame
    assert "success-rate" in frame and "0.97" in frame and "▁█" in frame
    assert "stage canary-25 started (25% traffic)" in frame
    assert "next: " in frame
