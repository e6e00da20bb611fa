"""The plan's JSON Schema, as editors and CI validators read it."""

from __future__ import annotations

from typing import Any

from rollout_cli.plan.fields import json_schema
from rollout_cli.plan.models import Plan


def plan_schema() -> dict[str, Any]:
    schema = json_schema(Plan)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://rollout.dev/schema/plan-v1.json",
        **schema,
        "title": "rollout plan, version 1",
    }
