"""`rollout sandbox`: serve the simulated brain API (filled in by the sandbox work)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    del app
