"""Analysis runs: when to measure, and what a round of verdicts means (pure).

Like Argo Rollouts' analysis: every ``interval`` (after ``initial_delay``) the checks are
judged; failures, inconclusive rounds and consecutive errors are counted, and a count
over its limit acts (``failed (1) > failure_limit (0)``). Dry-run checks are judged and
shown, never counted; a check with no data under ``no_data: ignore`` drops out of its
round, and a round in which no check had data is inconclusive.

What a run may be judged on: measurements taken at or after its ``since`` (the instant
its traffic change answered plus ``initial_delay``, moved later when the stage has to
watch again after a pause or an outage), each measurement at most once, and only while
fresh (``FRESH`` seconds): a process that resumes measures before it judges.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rollout_cli.engine.checks import (
    ERROR,
    FAIL,
    IGNORED,
    INCONCLUSIVE,
    PASS,
    Sides,
    Verdict,
    evaluate,
    worst,
)
from rollout_cli.engine.measurements import Measurements
from rollout_cli.plan.models import Analysis, Plan

STAGE, BACKGROUND = "stage", "background"
# How old a measurement may be when it is judged: judging follows measuring within the
# same tick, so an older one was taken by a process that has since died.
FRESH = 1.0


@dataclass(frozen=True)
class Run:
    """The counters of one analysis run (a stage's, or the background one)."""

    started: float
    next_due: float
    rounds: int = 0
    failures: int = 0
    inconclusives: int = 0
    consecutive_errors: int = 0
    passed: bool = False
    phase: str = ""
    action: str = ""             # continue | pause | rollback, until acted on
    message: str = ""
    verdicts: tuple[dict[str, Any], ...] = field(default=())
    since: float | None = None   # samples before this never count; None: ``started``
    judged: int = 0              # the seq of the last `measured` event judged

    def to_json(self) -> dict[str, Any]:
        return {**self.__dict__, "verdicts": list(self.verdicts)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Run:
        return cls(**{**data, "verdicts": tuple(data.get("verdicts", ()))})


    @property
    def watched_since(self) -> float:
        return self.started if self.since is None else self.since


def slack(analysis: Analysis) -> float:
    """How early a round may be measured: so that analyses due close together (within half
    an interval, 10 s at most) share one measurement instead of each sending its own."""
    return min(10.0, analysis.interval / 2)


def earliest(run: Run, analysis: Analysis) -> float:
    """When the run's next round may be measured: early by the slack, never before ``since``."""
    return max(run.next_due - slack(analysis), run.watched_since)


def judgeable(run: Run, analysis: Analysis, measured_at: float | None, measured_seq: int,
              now: float) -> bool:
    """Whether the latest measurement is one this run may judge (see the module's rules)."""
    return (measured_at is not None and measured_seq > run.judged
            and measured_at >= earliest(run, analysis) and now - measured_at <= FRESH)


def measures_all(plan: Plan, analysis: Analysis, measured: tuple[str, ...]) -> bool:
    """Whether a measurement of ``measured`` has every metric the analysis judges."""
    return all(metric in measured for metric in plan.metrics_of(analysis))


def keep_for(plan: Plan, metric: str, interval: float) -> float:
    """How much history of ``metric`` any check needs."""
    return plan.metric_spans.get(metric, 0.0) + 2 * interval


def assess(plan: Plan, analysis: Analysis, scope: str, run: Run, measured: Measurements,
           now: float, measured_seq: int = 0) -> Run:
    """One round on the measurement ``measured_seq`` taken at ``now``: every check judged,
    counters updated, the action decided."""
    since = run.watched_since
    verdicts = [_evaluate(plan, name, measured, now, since) for name in analysis.checks]
    acting = [v for v in verdicts if not v.dry_run and v.phase != IGNORED]
    no_data = not acting and any(not v.dry_run for v in verdicts)
    phases = [v.phase for v in acting] or ([INCONCLUSIVE] if no_data else [])
    counted = [v for v in acting if not v.warming_up]
    failures = run.failures + (FAIL in phases)
    inconclusives = run.inconclusives + (
        no_data or any(v.phase == INCONCLUSIVE for v in counted))
    errors = run.consecutive_errors + 1 if ERROR in phases else 0
    if no_data:
        acting = [Verdict("analysis", INCONCLUSIVE, "no check had data: " + "; ".join(
            v.reason for v in verdicts if not v.dry_run))]
    action, message = _act(analysis, scope, failures, inconclusives, errors, acting)
    passed = (bool(acting) and all(p == PASS for p in phases)) or (
        analysis.on_inconclusive == "continue" and not {FAIL, ERROR} & set(phases)
        and not no_data)
    # At a fixed rate from when the round was due, so a measurement's own duration does not
    # push every later round back; after a long gap (a pause), one interval from now.
    next_due = run.next_due + analysis.interval
    if next_due <= now:
        next_due = now + analysis.interval
    return Run(run.started, next_due, run.rounds + 1, failures, inconclusives, errors, passed,
               worst(phases), action, message, tuple(_verdict_json(v) for v in verdicts),
               run.since, max(measured_seq, run.judged))


def _evaluate(plan: Plan, name: str, measured: Measurements, now: float,
              since: float) -> Verdict:
    check = plan.checks[name]
    sides = None
    if check.compare is not None:
        names = (check.metric, check.baseline or "", check.compare.trials or "",
                 check.compare.baseline_trials or "")
        whole = plan.whole_window_metrics
        sides = Sides(*(measured.of(metric) for metric in names),
                      whole=tuple(metric in whole for metric in names))  # type: ignore[arg-type]
    return evaluate(name, check, measured.of(check.metric), now,
                    measured.of(check.baseline or ""), since, sides)


def _act(analysis: Analysis, scope: str, failures: int, inconclusives: int, errors: int,
         acting: list[Verdict]) -> tuple[str, str]:
    def why(phase: str) -> str:
        return "; ".join(v.reason for v in acting if v.phase == phase)

    if failures > analysis.failure_limit:
        return analysis.on_failure, (f"{scope} analysis: failed ({failures}) > failure_limit "
                                     f"({analysis.failure_limit}): {why(FAIL)}")
    if errors > analysis.consecutive_error_limit:
        return analysis.on_error, (f"{scope} analysis: consecutive errors ({errors}) > "
                                   f"consecutive_error_limit ({analysis.consecutive_error_limit})"
                                   f": {why(ERROR)}")
    if inconclusives > analysis.inconclusive_limit and analysis.on_inconclusive != "continue":
        return analysis.on_inconclusive, (
            f"{scope} analysis: inconclusive ({inconclusives}) > inconclusive_limit "
            f"({analysis.inconclusive_limit}): {why(INCONCLUSIVE)}")
    return "continue", ""


def _verdict_json(verdict: Verdict) -> dict[str, Any]:
    return {"check": verdict.check, "phase": verdict.phase, "reason": verdict.reason,
            "value": verdict.value, "dry_run": verdict.dry_run}


__all__ = ["BACKGROUND", "FRESH", "PASS", "STAGE", "Run", "assess", "earliest", "judgeable",
           "keep_for", "measures_all", "slack"]
