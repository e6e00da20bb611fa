"""`rollout report` output: Markdown, one self-contained HTML file (inline CSS and SVG,
nothing fetched), or JSON. Every journal string is escaped: a plan's lines are text."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from html import escape
from itertools import pairwise

from rollout_cli.report import Decision, Report, Rollback, RollbackCall, Series, Stage

Scale = Callable[[float], float]

# Chart geometry, in SVG user units.
_W, _H = 760, 240
_LEFT, _RIGHT, _TOP, _BOTTOM = 64, 16, 28, 34
_VERDICT_COLOURS = {"pass": "#2e7d32", "fail": "#c62828", "inconclusive": "#ef8f00"}


def _when(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def _stage_label(stage: Stage) -> str:
    return stage.name + (f" ({stage.percentage:g}%)" if stage.percentage is not None else "")


def _stage_end(stage: Stage) -> str:
    return _when(stage.completed) if stage.completed is not None else (stage.ended or "running")


def _call_outcome(call: RollbackCall) -> str:
    if call.ok is None:
        return "no outcome recorded"
    text = ("ok" if call.ok else "FAILED") + (f" {call.status}" if call.status is not None
                                              else "")
    if call.attempts:
        text += f", {call.attempts} attempt{'s' if call.attempts != 1 else ''}"
    if call.elapsed is not None:
        text += f", {call.elapsed * 1000:.0f} ms"
    return text + (f": {call.error}" if call.error else "")


def _kind(decision: Decision) -> str:
    """``analysis ×20 (until 12:00:05 UTC)`` for rounds that repeated."""  # noqa: RUF002
    if decision.repeats < 2:
        return decision.kind
    return f"{decision.kind} ×{decision.repeats} (until {_when(decision.last)})"  # noqa: RUF001


def _who(decision: Decision) -> str:
    parts = [decision.who or ""]
    if decision.forced:
        parts.append("forced")
    return ", ".join(p for p in parts if p)


def to_json(report: Report) -> str:
    return json.dumps(report.to_dict(), indent=2, sort_keys=False) + "\n"


# ---------------------------------------------------------------- Markdown


def _md(text: object) -> str:
    # Table cells: a pipe or a newline would break the row.
    return str(text).replace("|", "\\|").replace("\n", " ")


def to_markdown(report: Report) -> str:
    lines = [f"# Rollout report: {report.rollout_id}", "",
             f"- plan: {report.plan}", f"- created: {_when(report.created)}",
             f"- outcome: {report.outcome or 'in progress'}"
             + (f" at {_when(report.ended)}" if report.ended else "")]
    if report.outcome_reason:
        lines.append(f"- reason: {report.outcome_reason}")
    lines += ["", "## Timeline", "", "| # | stage | traffic | started | completed |",
              "|---|---|---|---|---|"]
    lines += [f"| {s.index} | {_md(s.name)} | {_num(s.percentage)} | {_when(s.started)} | "
              f"{_md(_stage_end(s))} |" for s in report.stages]
    lines += ["", "## Decisions", "", "| time | stage | decision | who | reason |",
              "|---|---|---|---|---|"]
    lines += [f"| {_when(d.time)} | {_md(d.stage or '-')} | {_kind(d)} | {_md(_who(d))} | "
              f"{_md(d.reason)} |" for d in report.decisions]
    if report.omitted_decisions:
        lines += ["", f"({report.omitted_decisions} later non-pass analysis rounds omitted)"]
    lines += ["", "## Rollback", ""]
    lines += _md_rollbacks(report.rollbacks)
    lines += ["", "## Checks", ""]
    for series in report.checks.values():
        lines += _md_series(series)
    return "\n".join(lines).rstrip() + "\n"


def _md_rollbacks(rollbacks: list[Rollback]) -> list[str]:
    if not rollbacks:
        return ["No rollback."]
    lines: list[str] = []
    for rollback in rollbacks:
        lines += [f"Started {_when(rollback.started)} by {rollback.who or '-'}: "
                  f"{rollback.reason}", "",
                  f"Outcome: {rollback.outcome or 'not finished'}", "",
                  "| call | line | outcome |", "|---|---|---|"]
        lines += [f"| {_md(c.call_id)} | `{_md(c.line)}` | {_md(_call_outcome(c))} |"
                  for c in rollback.calls]
        lines.append("")
    return lines


def _md_series(series: Series) -> list[str]:
    counts: dict[str, int] = {}
    for _, _, verdict in series.points:
        counts[verdict] = counts.get(verdict, 0) + 1
    values = [v for _, v, _ in series.points if v is not None]
    summary = ", ".join(f"{n} {verdict}" for verdict, n in sorted(counts.items()))
    lines = [f"### {series.check} ({series.scope})", "",
             f"- thresholds: {series.thresholds or '-'}",
             f"- rounds: {series.seen} ({summary or 'none'})"]
    if values:
        lines.append(f"- values: min {_num(min(values))}, max {_num(max(values))}, "
                     f"last {_num(values[-1])}")
    if series.stride > 1:
        lines.append(f"- every {series.stride}th point kept of {series.seen}")
    return [*lines, ""]


# ---------------------------------------------------------------- HTML

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:2em auto;
max-width:1100px;padding:0 1em;color:#222}
h1{font-size:1.5em}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;width:100%;margin:.5em 0}
th,td{border:1px solid #ddd;padding:4px 6px;text-align:left;vertical-align:top}
th{background:#f5f5f5}code{font:12px ui-monospace,monospace;word-break:break-all}
.ok{color:#2e7d32}.bad{color:#c62828;font-weight:600}.muted{color:#777}
svg{background:#fcfcfc;border:1px solid #e3e3e3;max-width:100%;height:auto}
"""


def to_html(report: Report) -> str:
    title = f"Rollout report: {report.rollout_id}"
    body = [f"<h1>{escape(title)}</h1>", _html_summary(report),
            "<h2>Timeline</h2>", _html_timeline(report.stages),
            "<h2>Decisions</h2>", _html_decisions(report),
            "<h2>Rollback</h2>", _html_rollbacks(report.rollbacks),
            "<h2>Checks</h2>"]
    body += [_html_series(series, report.stages) for series in report.checks.values()]
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{escape(title)}</title><style>{_CSS}</style></head>\n<body>\n"
            + "\n".join(body) + "\n</body></html>\n")


def _row(cells: list[str], header: bool = False) -> str:
    tag = "th" if header else "td"
    return "<tr>" + "".join(f"<{tag}>{cell}</{tag}>" for cell in cells) + "</tr>"


def _table(head: list[str], rows: list[list[str]]) -> str:
    return ("<table>" + _row([escape(h) for h in head], header=True)
            + "".join(_row(r) for r in rows) + "</table>")


def _html_summary(report: Report) -> str:
    outcome = report.outcome or "in progress"
    css = "ok" if outcome == "succeeded" else "bad" if report.outcome else "muted"
    items = [f"plan <b>{escape(report.plan)}</b>", f"created {escape(_when(report.created))}",
             f"outcome <span class=\"{css}\">{escape(outcome)}</span>"
             + (f" at {escape(_when(report.ended))}" if report.ended else "")]
    if report.outcome_reason:
        items.append(f"reason: {escape(report.outcome_reason)}")
    return "<ul>" + "".join(f"<li>{item}</li>" for item in items) + "</ul>"


def _html_timeline(stages: list[Stage]) -> str:
    return _table(["#", "stage", "traffic", "started", "completed"],
                  [[str(s.index), escape(s.name), escape(_num(s.percentage)),
                    escape(_when(s.started)), escape(_stage_end(s))] for s in stages])


def _html_decisions(report: Report) -> str:
    rows = [[escape(_when(d.time)), escape(d.stage or "-"), escape(_kind(d)), escape(_who(d)),
             escape(d.reason)] for d in report.decisions]
    note = (f"<p class=\"muted\">{report.omitted_decisions} later non-pass analysis rounds "
            "omitted</p>" if report.omitted_decisions else "")
    return _table(["time", "stage", "decision", "who", "reason"], rows) + note


def _html_rollbacks(rollbacks: list[Rollback]) -> str:
    if not rollbacks:
        return "<p>No rollback.</p>"
    parts = []
    for rollback in rollbacks:
        rows = [[escape(c.call_id), f"<code>{escape(c.line)}</code>",
                 f"<span class=\"{'ok' if c.ok else 'bad'}\">{escape(_call_outcome(c))}</span>"]
                for c in rollback.calls]
        parts.append(f"<p>Started {escape(_when(rollback.started))} by "
                     f"{escape(rollback.who or '-')}: {escape(rollback.reason)}<br>"
                     f"Outcome: <b>{escape(rollback.outcome or 'not finished')}</b></p>"
                     + _table(["call", "line", "outcome"], rows))
    return "\n".join(parts)


def _html_series(series: Series, stages: list[Stage]) -> str:
    head = (f"<h3>{escape(series.check)} <span class=\"muted\">({escape(series.scope)})"
            f"</span></h3><p>{escape(series.thresholds or 'thresholds unknown')}</p>")
    return f"<section class=\"check\">{head}{chart(series, stages)}</section>"


def _thresholds(series: Series) -> list[tuple[str, float]]:
    """Every pass/fail threshold, on the axis the check's values are judged on (a ratio
    for a baseline check, a slope per hour for a trend)."""
    from rollout_cli.plan.expressions import parse_threshold

    found = []
    for label, text in (("pass", series.pass_text), ("fail", series.fail_text),
                        ("allowed", series.allowed_text)):
        if not text:
            continue
        try:
            threshold = parse_threshold(text)
        except ValueError:
            continue
        found.append((f"{label} {threshold.text}", threshold.value))
    return found


def _unit(series: Series) -> tuple[float, str]:
    """How values show: the factor from the judged value and the suffix of the thresholds'
    unit (``%`` for a baseline check's ratio, ``/s`` for a slope judged per hour)."""
    from rollout_cli.plan.expressions import display_unit, parse_threshold

    thresholds = []
    for text in (series.pass_text, series.fail_text, series.allowed_text):
        try:
            thresholds.append(parse_threshold(text) if text else None)
        except ValueError:
            continue
    return display_unit(*thresholds)


def _segments(points: list[tuple[float, float | None]]) -> list[list[tuple[float, float]]]:
    """The line's pieces: it breaks at a round without a value (an error, no data) and
    across a gap in time (a pause, an outage) longer than three usual intervals."""
    steps = sorted(b[0] - a[0] for a, b in pairwise(points))
    usual = steps[len(steps) // 2] if steps else 0.0
    pieces: list[list[tuple[float, float]]] = [[]]
    last: float | None = None
    for t, v in points:
        broken = v is None or (last is not None and usual > 0 and t - last > 3 * usual)
        if broken and pieces[-1]:
            pieces.append([])
        if v is not None:
            pieces[-1].append((t, v))
        last = t
    return [piece for piece in pieces if piece]


def chart(series: Series, stages: list[Stage]) -> str:
    """An inline SVG of one check: values in the thresholds' unit, every threshold, a
    time axis, stage boundaries labelled without overlapping, gaps left as gaps."""
    factor, suffix = _unit(series)
    values = [(t, None if v is None else v * factor) for t, v, _ in series.points]
    points = [(t, v) for t, v in values if v is not None]
    lines = [(label, value * factor) for label, value in _thresholds(series)]
    times = [t for t, _, _ in series.points]
    if not times:
        return "<p class=\"muted\">no values</p>"
    t0, t1 = min(times), max(times)
    ys = [v for _, v in points] + [value for _, value in lines] or [0.0]
    y0, y1 = min(ys), max(ys)
    pad = (y1 - y0) * 0.08 or abs(y1) * 0.1 or 1.0
    y0, y1 = y0 - pad, y1 + pad

    def x(t: float) -> float:
        return _LEFT + (t - t0) / ((t1 - t0) or 1.0) * (_W - _LEFT - _RIGHT)

    layout, rows = _stage_layout(stages, t0, t1, x)
    top = _TOP + _LABEL_ROW * (rows - 1)
    marks = _stage_marks(layout, top)

    def y(v: float) -> float:
        return _H - _BOTTOM - (v - y0) / (y1 - y0) * (_H - top - _BOTTOM)

    parts = [f"<svg class=\"chart\" width=\"{_W}\" "
             f"height=\"{_H}\" viewBox=\"0 0 {_W} {_H}\" role=\"img\" "
             f"aria-label=\"{escape(series.check)}\">",
             _axes(y0, y1, y, top, suffix), *_time_axis(t0, t1, x), *marks]
    parts += [_threshold_line(label, value, y) for label, value in lines]
    for piece in _segments(values):
        coords = " ".join(f"{x(t):.1f},{y(v):.1f}" for t, v in piece)
        parts.append(f"<polyline class=\"values\" fill=\"none\" stroke=\"#1565c0\" "
                     f"stroke-width=\"1.6\" points=\"{coords}\"/>")
    parts += [f"<circle cx=\"{x(t):.1f}\" cy=\"{y(v * factor):.1f}\" r=\"3\" "
              f"fill=\"{_VERDICT_COLOURS.get(p, '#777')}\"><title>{escape(p)} "
              f"{escape(_num(v * factor))}{suffix} at {escape(_when(t))}</title></circle>"
              for t, v, p in series.points if v is not None and p != "pass"]
    parts.append("</svg>")
    return "".join(parts)


def _axes(y0: float, y1: float, y: Scale, top: float, suffix: str) -> str:
    bottom = _H - _BOTTOM
    return (f"<line x1=\"{_LEFT}\" y1=\"{top}\" x2=\"{_LEFT}\" y2=\"{bottom}\" stroke=\"#999\"/>"
            f"<line x1=\"{_LEFT}\" y1=\"{bottom}\" x2=\"{_W - _RIGHT}\" y2=\"{bottom}\" "
            f"stroke=\"#999\"/>"
            f"<text x=\"{_LEFT - 4}\" y=\"{y(y1):.1f}\" font-size=\"10\" text-anchor=\"end\" "
            f"dominant-baseline=\"hanging\">{escape(_num(y1))}{suffix}</text>"
            f"<text x=\"{_LEFT - 4}\" y=\"{y(y0):.1f}\" font-size=\"10\" "
            f"text-anchor=\"end\">{escape(_num(y0))}{suffix}</text>")


_TICK_STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600,
               43200, 86400)


def _time_axis(t0: float, t1: float, x: Scale) -> list[str]:
    """Ticks at round times (UTC), about six across; seconds shown only when they vary."""
    span = t1 - t0
    step = next((s for s in _TICK_STEPS if span / s <= 6), _TICK_STEPS[-1])
    first = (int(t0) // step + (1 if t0 % step else 0)) * step
    shape = "%H:%M:%S" if step < 60 else "%H:%M" if step < 86400 else "%m-%d"
    ticks = []
    at = first
    while at <= t1:
        left = x(at)
        label = datetime.fromtimestamp(at, UTC).strftime(shape)
        ticks.append(f"<line class=\"time-tick\" x1=\"{left:.1f}\" y1=\"{_H - _BOTTOM}\" "
                     f"x2=\"{left:.1f}\" y2=\"{_H - _BOTTOM + 4}\" stroke=\"#999\"/>"
                     f"<text class=\"time-label\" x=\"{left:.1f}\" y=\"{_H - _BOTTOM + 15}\" "
                     f"font-size=\"10\" text-anchor=\"middle\" fill=\"#555\">{label}</text>")
        at += step
    ticks.append(f"<text x=\"{_W - _RIGHT}\" y=\"{_H - 2}\" font-size=\"9\" "
                 f"text-anchor=\"end\" fill=\"#777\">time (UTC)</text>")
    return ticks


_LABEL_ROW = 12          # the height of a row of stage labels
_CHAR = 6.2              # the width of a character of a 10px label, generously


def _stage_layout(stages: list[Stage], t0: float, t1: float, x: Scale
                  ) -> tuple[list[tuple[float, str, float, int | None]], int]:
    """Where each stage's boundary and label go: the label on the first of three rows
    (counted up from the plot) where it overlaps no other; one that fits on none keeps
    only its line and a tooltip. Returns ``(x, label, label's left, row)`` and the rows
    used."""
    placed: list[list[tuple[float, float]]] = [[], [], []]
    layout: list[tuple[float, str, float, int | None]] = []
    for stage in stages:
        if not t0 <= stage.started <= t1:
            continue
        at = x(stage.started)
        label = _stage_label(stage)
        width = len(label) * _CHAR
        # Near the right edge the name goes left of its line, so it is not clipped.
        left = at - 3 - width if at + 3 + width > _W - _RIGHT else at + 3
        row = next((r for r, spans in enumerate(placed)
                    if all(left + width + 4 < a or left > b + 4 for a, b in spans)), None)
        if row is not None:
            placed[row].append((left, left + width))
        layout.append((at, label, left, row))
    return layout, max([1] + [row + 1 for *_, row in layout if row is not None])


def _stage_marks(layout: list[tuple[float, str, float, int | None]], top: float) -> list[str]:
    marks = []
    for at, label, left, row in layout:
        marks.append(f"<line class=\"stage\" x1=\"{at:.1f}\" y1=\"{top - 14:.0f}\" "
                     f"x2=\"{at:.1f}\" y2=\"{_H - _BOTTOM}\" stroke=\"#888\" "
                     f"stroke-width=\"1\"><title>{escape(label)}</title></line>")
        if row is not None:
            marks.append(f"<text class=\"stage-label\" x=\"{left:.1f}\" "
                         f"y=\"{top - 4 - _LABEL_ROW * row:.0f}\" font-size=\"10\" "
                         f"fill=\"#555\">{escape(label)}</text>")
    return marks


def _threshold_line(label: str, value: float, y: Scale) -> str:
    colour = "#2e7d32" if label.startswith("pass") else "#c62828"
    at = y(value)
    # Fail labels sit below their line, pass labels above: equal thresholds stay legible.
    label_y = at + 11 if label.startswith("fail") else at - 3
    return (f"<line class=\"threshold\" x1=\"{_LEFT}\" y1=\"{at:.1f}\" x2=\"{_W - _RIGHT}\" "
            f"y2=\"{at:.1f}\" stroke=\"{colour}\" stroke-dasharray=\"6 4\"/>"
            f"<text x=\"{_W - _RIGHT - 2}\" y=\"{label_y:.1f}\" font-size=\"10\" "
            f"text-anchor=\"end\" fill=\"{colour}\">{escape(label)}</text>")


__all__ = ["chart", "to_html", "to_json", "to_markdown"]
