"""The plan language: load YAML into a validated, immutable Plan; lint it; dry-run it.

``load_plan``, ``load_text`` and ``LoadedPlan`` are imported on first use: the loader
brings PyYAML, jmespath and the models, which commands that only need a submodule such as
``plan.durations`` (`rollout status` with nothing to show, `--help`) do not pay for.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rollout_cli.plan.loader import LoadedPlan, load_plan, load_text

__all__ = ["LoadedPlan", "load_plan", "load_text"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from rollout_cli.plan import loader

        return getattr(loader, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
