"""The plan language: load YAML into a validated, immutable Plan; lint it; dry-run it."""

from rollout_cli.plan.loader import LoadedPlan, load_plan, load_text

__all__ = ["LoadedPlan", "load_plan", "load_text"]
