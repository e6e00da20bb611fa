"""Steps with their templates filled in: what would go over the wire, before any I/O."""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rollout_cli.plan.durations import format_duration
from rollout_cli.plan.models import Analysis, Plan, RequestStep, RetrySpec, RunStep, Stage
from rollout_cli.plan.templates import render, render_text


@dataclass(frozen=True)
class ResolvedRequest:
    method: str
    url: str
    headers: dict[str, str]
    json: Any
    body: str | None
    timeout: float
    retry: RetrySpec
    idempotent: bool


@dataclass(frozen=True)
class ResolvedCommand:
    argv: tuple[str, ...] | None
    command: str | None
    shell: bool
    timeout: float
    expect_exit: int
    cwd: str | None
    env: dict[str, str]

    def __str__(self) -> str:
        return self.command if self.command is not None else shlex.join(self.argv or ())


def variables_for(plan: Plan, stage: Stage | None, rollout_id: str,
                  captures: Mapping[str, Any], analysis: Analysis | None = None) -> dict[str, Any]:
    """The template variables in force at a stage."""
    interval = analysis or (plan.analysis_for(stage) if stage else None) or plan.default_analysis
    return {
        **captures,
        "percentage": stage.percentage if stage and stage.percentage is not None else None,
        "stage": stage.name if stage else "",
        "rollout_id": rollout_id,
        "plan": plan.name,
        "interval": format_duration(interval.interval),
        "rate_window": format_duration(plan.rate_window_for(interval)),
    }


def stand_in_variables(plan: Plan, stage: Stage | None) -> dict[str, Any]:
    """The template variables at ``stage`` (None: the rollback) before any run, for dry runs
    and validation: the rollout id and captured values are stand-ins."""
    captures = {name: f"<captured:{name}>" for name in plan.captured_names}
    return variables_for(plan, stage, "<rollout-id>", captures)


def join_url(base_url: str, target: str) -> str:
    if target.startswith(("http://", "https://")):
        return target
    return base_url.rstrip("/") + "/" + target.lstrip("/")


def resolve_request(plan: Plan, step: RequestStep, variables: Mapping[str, Any]) -> ResolvedRequest:
    """Fill a request step's templates; raises templates.MissingVariable."""
    headers = {**plan.target.headers, **step.headers}
    return ResolvedRequest(
        method=step.request.method,
        url=join_url(plan.target.base_url, render_text(step.request.target, variables)),
        headers=_headers(headers, variables),
        json=render(step.json_body, variables),
        body=render_text(step.body, variables) if step.body is not None else None,
        timeout=step.timeout or plan.target.timeout,
        retry=step.retry or plan.target.retry,
        idempotent=step.is_idempotent,
    )


def _headers(headers: Mapping[str, str], variables: Mapping[str, Any]) -> dict[str, str]:
    """Filled headers; one that ends up empty (``Bearer ${TOKEN:-}`` unset) is left out."""
    filled = {name: render_text(value, variables).strip() for name, value in headers.items()}
    return {name: value for name, value in filled.items()
            if value and value.lower() != "bearer"}


def resolve_command(step: RunStep, variables: Mapping[str, Any]) -> ResolvedCommand:
    if isinstance(step.run, str):
        text = render_text(step.run, variables)
        argv = None if step.shell else tuple(shlex.split(text))
        command = text if step.shell else None
    else:
        argv, command = tuple(render_text(a, variables) for a in step.run), None
    return ResolvedCommand(argv, command, step.shell, step.timeout, step.expect_exit, step.cwd,
                           {k: render_text(v, variables) for k, v in step.env.items()})
