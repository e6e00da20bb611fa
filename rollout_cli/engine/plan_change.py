"""Whether a rollout may continue under a changed plan (pure).

A plan may change what lies ahead of a rollout, never what it has been through: the
stages it has started must still be the new plan's first stages, by name and in order,
or the journal would describe a rollout the plan no longer has.
"""

from __future__ import annotations

from rollout_cli.engine.state import RolloutState
from rollout_cli.plan.models import Plan


def refusal(plan: Plan, state: RolloutState) -> str | None:
    """Why ``state`` cannot continue under ``plan``; None when it can."""
    reached = list(state.stage_names)
    names = [stage.name for stage in plan.stages]
    if names[:len(reached)] != reached:
        kept = ", ".join(names[:len(reached)]) or "no stages"
        return (f"the changed plan removes or reorders stages this rollout has already "
                f"reached ({', '.join(reached)}; the new plan begins {kept}). Restore the "
                "plan, or roll this rollout back and start a new one")
    if state.stage > len(names):
        return (f"the changed plan has {len(names)} stages, and this rollout has completed "
                f"{state.stage}; restore the plan, or roll back and start a new one")
    return None
