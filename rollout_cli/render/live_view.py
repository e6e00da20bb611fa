"""The live view of a running rollout, for a terminal: the stage ladder, the bake's
progress, the checks, the last events and what the operator can do next. Pipes and logs
get plain lines instead (EventPrinter)."""

from __future__ import annotations

import time
from collections import deque
from typing import Any

from rollout_cli.engine import Event, RolloutState
from rollout_cli.plan.durations import format_duration
from rollout_cli.render.checks_view import checks_data, sparkline
from rollout_cli.render.rollout_view import _clock, describe_event, next_step_hint, stage_name

VERDICT_STYLE = {"pass": "green", "inconclusive": "yellow", "error": "magenta", "fail": "red",
                 "ignored": "dim"}


def render(plan: Any, state: RolloutState, events: list[dict[str, Any]], now: float) -> Any:
    """One frame, as a rich renderable (pure: everything it shows comes in as arguments)."""
    from rich.console import Group
    from rich.panel import Panel

    title = f"rollout {state.id}  ·  {state.phase}"
    return Panel(Group(_ladder(plan, state), _bake(plan, state, now), _checks(plan, state),
                       _events(events),
                       f"next: {next_step_hint(state.id, state, None, stage_name(plan, state))}"),
                 title=title, title_align="left")


def _ladder(plan: Any, state: RolloutState) -> Any:
    from rich.text import Text

    line = Text()
    for index, stage in enumerate(plan.stages):
        if index < state.stage or state.phase == "succeeded":
            mark, style = "✓", "green"
        elif index == state.stage:
            mark, style = "▶", "bold cyan"
        else:
            mark, style = "·", "dim"
        pct = f" {stage.percentage:g}%" if stage.percentage is not None else ""
        line.append(f"{mark} {stage.name}{pct}", style=style)
        if index < len(plan.stages) - 1:
            line.append("  ")
    return line


def _bake(plan: Any, state: RolloutState, now: float) -> Any:
    from rich.progress_bar import ProgressBar
    from rich.table import Table

    grid = Table.grid(padding=(0, 1))
    if state.stage >= len(plan.stages):
        return grid
    stage = plan.stages[state.stage]
    if stage.bake is None or state.baking_since is None:
        gate = "manual gate" if stage.gate == "manual" else "no bake"
        grid.add_row(f"stage {stage.name}: {gate}")
        return grid
    done = min(state.baked_at(now), stage.bake.min)
    left = max(0.0, stage.bake.min - done)
    bar = ProgressBar(total=max(stage.bake.min, 0.001), completed=done, width=40)
    grid.add_row(f"bake {stage.bake}", bar, f"{format_duration(left)} left")
    return grid


def _checks(plan: Any, state: RolloutState) -> Any:
    from rich.table import Table
    from rich.text import Text

    table = Table(box=None, pad_edge=False, show_header=True, header_style="bold")
    for column in ("check", "value", "verdict", "history"):
        table.add_column(column, no_wrap=True)
    table.add_column("thresholds", no_wrap=True, overflow="ellipsis")
    for row in checks_data(state, plan):
        value = "-" if row["value"] is None else f"{row['value']:.4g}"
        verdict = Text(row["verdict"] + (" (dry run)" if row["dry_run"] else ""),
                       style=VERDICT_STYLE.get(row["verdict"], ""))
        table.add_row(row["check"], value, verdict, sparkline(row["history"][-20:]),
                      row["rule"] or "")
    return table


def _events(events: list[Event]) -> Any:
    from rich.text import Text

    text = Text(no_wrap=True, overflow="ellipsis")
    for event in events:
        line = describe_event(event).strip().splitlines()[0]
        text.append(f"{_clock(event.time)}  {line}\n", style="dim")
    return text


class LiveView:
    """An event sink that redraws the frame; use as a context manager around the run."""

    def __init__(self, plan: Any, console: Any, keep: int = 8):
        from rich.live import Live

        self.plan = plan
        self.events: deque[Event] = deque(maxlen=keep)
        self.state: RolloutState | None = None
        self.live = Live(console=console, refresh_per_second=4, transient=False,
                         get_renderable=self._frame)

    def _frame(self) -> Any:
        from rich.text import Text

        if self.state is None:
            return Text("starting...")
        return render(self.plan, self.state, list(self.events), time.time())

    def __call__(self, event: Event, state: RolloutState) -> None:
        self.state = state
        if event.TYPE not in ("measured", "analysis"):
            self.events.append(event)

    def __enter__(self) -> LiveView:
        self.live.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.live.__exit__(*exc)
