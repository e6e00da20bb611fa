"""`rollout report`: a rollout's story from its journal, as Markdown, HTML or JSON."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

import typer

from rollout_cli.cli.options import ROLLOUT, STATE, STATE_DIR, context


class Format(StrEnum):
    md = "md"
    html = "html"
    json = "json"


# --output as on every other command; --format is its older name.
FORMAT = typer.Option(Format.md, "--output", "-o", "--format", metavar="md|html|json",
                      help="md for a README or ticket; html for one self-contained page with "
                           "a chart per check; json for machines.")
OUT = typer.Option(None, "--out", metavar="FILE", dir_okay=False,
                   help="Write the report here instead of standard output.")


def report(
    cli: typer.Context,
    rollout: str | None = ROLLOUT,
    fmt: Format = FORMAT,
    out: Path | None = OUT,
    state: str | None = STATE,
    state_dir: str | None = STATE_DIR,
) -> None:
    """A rollout's report: stage timeline, every decision with its reason, the rollback
    call by call, and each check's values against its thresholds.

    Reads the journal only (nothing is sent to the target), so it works on running,
    finished and rolled-back rollouts alike; without ROLLOUT, the active or newest one.
    The HTML is one file with inline CSS and SVG charts: no scripts, fonts or network.

    Example: rollout report --output html --out report.html
    """
    from rollout_cli import operations
    from rollout_cli.render import report_view

    built = operations.report(context(cli), rollout)
    render = {Format.md: report_view.to_markdown, Format.html: report_view.to_html,
              Format.json: report_view.to_json}[fmt]
    text = render(built)
    if out is None:
        typer.echo(text, nl=False)
        return
    try:
        out.write_text(text, encoding="utf-8")
    except OSError as exc:
        from rollout_cli.errors import UsageError

        raise UsageError(f"--out: cannot write the report to {out}: "
                         f"{exc.strerror or exc}") from exc
    typer.echo(f"wrote {out} ({fmt.value}, {len(built.stages)} stages, "
               f"{len(built.checks)} checks)", err=True)

