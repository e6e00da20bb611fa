"""`rollout validate`, `rollout plan`, `rollout schema`."""

from __future__ import annotations

from pathlib import Path

import typer

from rollout_cli.cli.options import OUTPUT, Output


def validate(
    plans: list[Path] = typer.Argument(..., metavar="PLAN...", help="Plan files to check.",
                                       show_default=False),
    output: Output = OUTPUT,
    strict: bool = typer.Option(False, "--strict", help="Treat lint warnings as errors."),
    online: bool = typer.Option(False, "--online",
                                help="Also ask each Prometheus to parse the plan's queries."),
) -> None:
    """Check plan files: every error with file:line:column, plus lint warnings.

    Exits 0 when every plan is valid, 2 otherwise. Nothing is sent anywhere, unless
    --online: then each metric source is asked whether it reads the plan's queries.
    """
    from rollout_cli.plan.validation import validate_files
    from rollout_cli.render import plan_view

    reports = validate_files(plans, online)
    if output is not Output.text:
        plan_view.print_json([report.to_dict() for report in reports])
    else:
        for report in reports:
            plan_view.validation_text(report.file, report.summary, report.problems)
    failed = any(not r.valid or (strict and r.problems) for r in reports)
    raise typer.Exit(2 if failed else 0)


def plan(
    plan_file: Path = typer.Argument(..., metavar="PLAN", help="The plan file.",
                                     show_default=False),
    output: Output = OUTPUT,
) -> None:
    """Dry run: the timeline, every call in order with templates filled, checks, rollback.

    Nothing is sent anywhere; secrets are shown as ***.
    """
    from rollout_cli.plan import load_plan
    from rollout_cli.plan.dryrun import build
    from rollout_cli.render import plan_view

    dry = build(load_plan(plan_file))
    if output is not Output.text:
        plan_view.print_json(dry.to_dict())
    else:
        plan_view.dry_run_text(dry)


def schema() -> None:
    """Print the plan's JSON Schema, for editors and CI validators.

    Save it and point your editor at it with a first line such as
    `# yaml-language-server: $schema=./rollout.schema.json`.
    """
    import json

    from rollout_cli.plan.schema import plan_schema

    typer.echo(json.dumps(plan_schema(), indent=2))

