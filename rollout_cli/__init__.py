"""rollout: progressive rollouts for any HTTP-controlled service.

The public surface is re-exported here; everything else is private.
"""

from rollout_cli.errors import (
    IllegalTransition,
    LockedError,
    PlanError,
    Problem,
    RolloutError,
    StateError,
    TargetError,
)

__version__ = "0.1.0"

__all__ = [
    "IllegalTransition",
    "LockedError",
    "PlanError",
    "Problem",
    "RolloutError",
    "StateError",
    "TargetError",
    "__version__",
]
