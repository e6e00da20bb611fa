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


# Columns of the check table that always show, and the ones that give way to them on a
# narrow terminal: the thresholds first, then the sparkline (down to SPARK_MIN bars).
SPARK_MAX, SPARK_MIN, RULE_MIN = 20, 6, 16


def render(plan: Any, state: RolloutState, events: list[dict[str, Any]], now: float) -> Any:
    """One frame, as a rich renderable (pure: everything it shows comes in as arguments).
    It lays itself out for the console it is drawn on: every width from 80 columns shows
    the current stage, each check's value and verdict, and the whole next command."""
    return Frame(plan, state, list(events), now)


class Frame:
    def __init__(self, plan: Any, state: RolloutState, events: list[Any], now: float):
        self.plan, self.state, self.events, self.now = plan, state, events, now

    def __rich_console__(self, console: Any, options: Any) -> Any:
        from rich.console import Group
        from rich.panel import Panel

        inner = max(20, options.max_width - 4)          # the panel's border and padding
        height = options.height or options.size.height
        plan, state = self.plan, self.state
        hint = next_step_hint(state.id, state, None, stage_name(plan, state))
        nxt = _next(hint)
        checks = _checks(plan, state, inner)
        fixed = [_ladder(plan, state, inner), _bake(plan, state, self.now, inner), checks, nxt]
        used = 2 + sum(len(console.render_lines(part, options.update(width=inner, height=None)))
                       for part in fixed)
        room = max(0, height - used) if height else len(self.events)
        shown = self.events[-room:] if room else []
        parts = [*fixed[:3], *([_events(shown)] if shown else []), nxt]
        yield Panel(Group(*parts),
                    title=f"rollout {state.id}  ·  {state.phase}", title_align="left")


def _ladder(plan: Any, state: RolloutState, width: int) -> Any:
    """The stages in a line; when they do not fit, the current one with as many of its
    neighbours as do, the others counted (``✓ 3 earlier``, ``· 2 more``)."""
    from rich.text import Text

    items = []
    for index, stage in enumerate(plan.stages):
        if index < state.stage or state.phase == "succeeded":
            mark, style = "✓", "green"
        elif index == state.stage:
            mark, style = "▶", "bold cyan"
        else:
            mark, style = "·", "dim"
        pct = f" {stage.percentage:g}%" if stage.percentage is not None else ""
        items.append((f"{mark} {stage.name}{pct}", style))
    current = min(state.stage, len(items) - 1)
    low, high = current, current + 1
    def length(low: int, high: int) -> int:
        words = [text for text, _ in items[low:high]]
        if low > 0:
            words.insert(0, f"✓ {low} earlier")
        if high < len(items):
            words.append(f"· {len(items) - high} more")
        return len("  ".join(words))
    grown = True
    while grown:
        grown = False
        # The stage before the current one first (what just passed), then those ahead.
        order = ((low - 1, high), (low, high + 1)) if low == current else (
            (low, high + 1), (low - 1, high))
        for candidate in order:
            if candidate[0] >= 0 and candidate[1] <= len(items) and length(*candidate) <= width:
                low, high = candidate
                grown = True
                break
    line = Text(no_wrap=True, overflow="ellipsis")
    parts: list[tuple[str, str]] = []
    if low > 0:
        parts.append((f"✓ {low} earlier", "green"))
    parts.extend(items[low:high])
    if high < len(items):
        parts.append((f"· {len(items) - high} more", "dim"))
    for position, (text, style) in enumerate(parts):
        line.append(("  " if position else "") + text, style=style if text else "")
    return line


def _bake(plan: Any, state: RolloutState, now: float, width: int) -> Any:
    from rich.progress_bar import ProgressBar
    from rich.table import Table

    from rollout_cli.engine.phases import TERMINAL

    grid = Table.grid(padding=(0, 1))
    if state.stage >= len(plan.stages) or state.phase in TERMINAL:
        grid.add_row(f"ended: {state.phase}"
                     + (f" at stage {stage_name(plan, state)}" if state.phase != "succeeded"
                        and stage_name(plan, state) else ""))
        return grid
    stage = plan.stages[state.stage]
    if stage.bake is None or state.baking_since is None:
        gate = "manual gate" if stage.gate == "manual" else "no bake"
        grid.add_row(f"stage {stage.name}: {gate}")
        return grid
    done = min(state.baked_at(now), stage.bake.min)
    left = max(0.0, stage.bake.min - done)
    label, rest = f"bake {stage.bake}", f"{format_duration(left)} left"
    bar = ProgressBar(total=max(stage.bake.min, 0.001), completed=done,
                      width=max(10, min(40, width - len(label) - len(rest) - 2)))
    grid.add_row(label, bar, rest)
    return grid


def _checks(plan: Any, state: RolloutState, width: int) -> Any:
    """Name, value and verdict always whole; the sparkline and the thresholds take what
    is left, thresholds first to go."""
    from rich.table import Table
    from rich.text import Text

    rows = []
    for row in checks_data(state, plan):
        verdict = row["verdict"] + (" (dry run)" if row["dry_run"] else "")
        rows.append((row["check"], row["shown"], verdict, row["history"], row["rule"] or ""))
    widths = [max([len(header)] + [len(r[i]) for r in rows]) for i, header in
              enumerate(("check", "value", "verdict"))]
    left = width - sum(widths) - 2                       # one space between columns
    spark = min(SPARK_MAX, left - 1) if left - 1 >= SPARK_MIN else 0
    rule = left - (spark + 1 if spark else 0) - 1
    table = Table(box=None, pad_edge=False, show_header=True, header_style="bold",
                  padding=(0, 1, 0, 0))
    for column in ("check", "value", "verdict"):
        table.add_column(column, no_wrap=True, justify="right" if column == "value" else "left")
    if spark:
        table.add_column("history", no_wrap=True)
    if rule >= RULE_MIN:
        table.add_column("thresholds", no_wrap=True, overflow="ellipsis", max_width=rule)
    for name, value, verdict, history, text in rows:
        cells: list[Any] = [name, value, Text(verdict, style=VERDICT_STYLE.get(
            verdict.split()[0], ""))]
        if spark:
            cells.append(sparkline(history[-spark:]))
        if rule >= RULE_MIN:
            cells.append(text)
        table.add_row(*cells)
    return table


def _next(hint: str) -> Any:
    """The next command on a line of its own, never cut: it is what the operator copies."""
    from rich.text import Text

    # Wrapped and folded whatever the console says: it soft-wraps (console.py), which
    # would cut this line at the edge.
    head, tick, rest = hint.partition("`")
    if not tick:
        return Text(f"next: {hint}", no_wrap=False, overflow="fold")
    return Text(f"next: {head.rstrip()}\n  " + rest.replace("`", ""), no_wrap=False,
                overflow="fold")


def _events(events: list[Event]) -> Any:
    from rich.text import Text

    text = Text(no_wrap=True, overflow="ellipsis")
    for index, event in enumerate(events):
        line = describe_event(event).strip().splitlines()[0]
        text.append(("\n" if index else "") + f"{_clock(event.time)}  {line}", style="dim")
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

    def run(self, work: Any) -> Any:
        """Draw while ``work()`` runs; the last frame shows the state it ended with, which
        another process may have made (a rollback from another terminal)."""
        with self:
            result = work()
            self.state = result.state
            self.live.refresh()
        return result

    def __enter__(self) -> LiveView:
        self.live.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.live.__exit__(*exc)
