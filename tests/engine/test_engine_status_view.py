"""What `rollout status` shows per check: value, verdict, thresholds, counters, history."""

from __future__ import annotations

from rollout_cli.engine import RolloutState, apply
from rollout_cli.engine.analysis import Run
from rollout_cli.engine.events import AnalysisRound
from rollout_cli.plan import load_text
from rollout_cli.render.checks_view import checks_data, checks_lines, runs_data, sparkline
from tests.engine.test_engine_analysis import PLAN


def test_sparkline_scales_between_min_and_max():
    assert sparkline([1, 2, 3, None, 8]) == "▁▂▃ █"
    assert sparkline([5, 5]) == "▁▁"
    assert sparkline([None]) == ""


def test_status_rows_carry_the_latest_verdict_thresholds_and_history():
    plan = load_text(PLAN, "judged.yaml", {}).plan
    state = RolloutState(id="r", plan="judged", phase="running")
    for index, rate in enumerate((0.99, 0.97, 0.85)):
        verdict = {"check": "ok", "phase": "pass" if rate > 0.95 else "fail",
                   "reason": f"ok: last = {rate}", "value": rate, "dry_run": False}
        run = Run(0.0, 300.0 * (index + 2), rounds=index + 1, failures=int(rate < 0.9),
                  verdicts=(verdict,))
        state = apply(state, AnalysisRound(scope="stage", stage=0, run=run, seq=index + 1,
                                           time=300.0 * (index + 1)))

    row = checks_data(state, plan)[0]
    assert (row["check"], row["verdict"], row["value"]) == ("ok", "fail", 0.85)
    assert row["rule"] == "last pass >= 0.95, fail < 0.90; no data: inconclusive"
    assert row["history"] == [0.99, 0.97, 0.85]
    assert runs_data(state)["stage"]["failures"] == 1
    lines = checks_lines(state, plan)
    assert lines[0] == "stage analysis: 3 rounds, failures 1, inconclusive 0, " \
                       "consecutive errors 0"
    assert "ok" in lines[1] and "fail" in lines[1] and "█" in lines[1]
