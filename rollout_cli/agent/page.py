"""`GET /`: the agent's status page, one server-rendered HTML page with no external assets
(inline CSS, no script) that refreshes itself. Every value is escaped: stage names,
reasons and labels come from plans and alerts, which the agent does not vouch for."""

from __future__ import annotations

import time
from html import escape
from typing import Any

from rollout_cli.agent.overview import RolloutView

REFRESH = 5

_STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#1b1f23;background:#fff}
h1{font-size:1.3em}h2{font-size:1.1em;margin:0 0 .4em}
section{border:1px solid #d0d7de;border-radius:6px;padding:1em;margin:0 0 1em}
.ladder{display:flex;gap:.3em;flex-wrap:wrap;margin:.5em 0;padding:0;list-style:none}
.ladder li{padding:.2em .6em;border-radius:4px;background:#eaeef2}
.ladder .done{background:#dafbe1}.ladder .current{background:#0969da;color:#fff}
table{border-collapse:collapse;margin:.5em 0}td,th{padding:.15em .8em .15em 0;text-align:left}
.pass{color:#1a7f37}.fail,.error{color:#cf222e}.inconclusive{color:#9a6700}
.phase{font-weight:bold}.muted{color:#57606a}code{background:#f6f8fa;padding:0 .3em}
"""


def render_page(views: list[RolloutView], agent: str, now: float | None = None) -> str:
    now = time.time() if now is None else now
    active = [view for view in views if view.active]
    ended = [view for view in views if not view.active]
    body = [f"<h1>rollout {escape(agent)}</h1>",
            f'<p class="muted">{len(active)} active rollout(s); refreshed every '
            f"{REFRESH}s; {escape(time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime(now)))}"
            "</p>"]
    if not active:
        body.append("<p>No active rollout: <code>rollout start PLAN</code> hands one to "
                    "this agent.</p>")
    body += [_rollout(view) for view in active]
    if ended:
        body.append("<h2>Recently ended</h2>")
        body += [_rollout(view) for view in ended]
    return ("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f'<meta http-equiv="refresh" content="{REFRESH}">'
            f"<title>rollout {escape(agent)}</title><style>{_STYLE}</style></head>"
            f"<body>{''.join(body)}</body></html>\n")


def _rollout(view: RolloutView) -> str:
    data, status = view.data, view.status
    rid = escape(data["rollout"])
    pct = "-" if data["percentage"] is None else f"{data['percentage']:g}%"
    parts = [f'<section id="{rid}"><h2>{rid} <span class="muted">plan '
             f"{escape(data['plan'])}</span></h2>",
             f'<p><span class="phase">{escape(data["phase"])}</span> at stage '
             f"{escape(str(data['stage'] or '-'))}, traffic {escape(pct)}"
             + (f"; {escape(data['reason'])}" if data["reason"] else "")
             + (f"; paused: {escape(data['pause_reason'])}" if data["pause_reason"] else "")
             + "</p>"]
    if data["driven_by"]:
        parts.append(f'<p class="driver">{escape(data["driven_by"])}</p>')
    parts.append(_ladder(status.plan, data))
    if data["checks"]:
        rows = "".join(_check_row(row) for row in data["checks"])
        parts.append("<table><tr><th>analysis</th><th>check</th><th>value</th>"
                     f"<th>verdict</th><th>rule</th></tr>{rows}</table>")
    parts.append(f"<p>{view.decisions} decision(s), {view.rollbacks} rollback(s), "
                 f"{view.alerts} pushed alert(s) acted on</p>")
    from rollout_cli.engine.events import Outcome

    decisions = [event for event in status.recent if not isinstance(event, Outcome)][-8:]
    if decisions:
        parts.append("<ul class=\"recent\">" + "".join(
            f"<li>{escape(_describe(event))}</li>" for event in decisions) + "</ul>")
    if view.active:
        from rollout_cli.render.rollout_view import next_step_hint

        hint = next_step_hint(data["rollout"], status.state, None, data["stage"])
        parts.append(f'<p class="next">next: {escape(hint)}</p>')
    parts.append(f"<p>Report: <code>rollout report {rid} --format html --out "
                 f"{rid}.html</code></p></section>")
    return "".join(parts)


def _check_row(row: dict[str, Any]) -> str:
    value = "-" if row["value"] is None else f"{row['value']:.4g}"
    verdict = escape(row["verdict"])
    return (f"<tr><td>{escape(row['scope'])}</td><td>{escape(row['check'])}</td>"
            f"<td>{escape(value)}</td><td class=\"{verdict}\">{verdict}</td>"
            f"<td class=\"muted\">{escape(row['rule'] or '')}</td></tr>")


def _ladder(plan: Any, data: dict[str, Any]) -> str:
    if plan is None:
        return ""
    items = []
    for index, stage in enumerate(plan.stages):
        kind = ("done" if index < data["stage_index"] or data["phase"] == "succeeded" else
                "current" if index == data["stage_index"] else "next")
        pct = "" if stage.percentage is None else f" {stage.percentage:g}%"
        items.append(f'<li class="{kind}">{escape(stage.name + pct)}</li>')
    return f'<ol class="ladder">{"".join(items)}</ol>'


def _describe(event: Any) -> str:
    from rollout_cli.render.rollout_view import describe_event

    stamp = time.strftime("%H:%M:%S", time.gmtime(event.time))
    return f"{stamp}  {describe_event(event).strip()}"
