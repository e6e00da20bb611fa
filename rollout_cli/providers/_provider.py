"""``Provider``: what one metric provider declares, in the module that holds it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from rollout_cli.drivers.http import HttpOutcome
    from rollout_cli.drivers.request import HttpRequest
    from rollout_cli.plan.fields import Model
    from rollout_cli.plan.models import Metric, Plan
    from rollout_cli.providers._numbers import Value


class Provider:
    """A metric provider: how a plan names it, what it reads, and how it measures.

    The model side is all that `validate`, `schema` and `plan` use, so it must not import
    httpx (tests/test_imports.py checks): the class attributes, ``check`` and
    ``request_key``. The fetch side (``requests``, ``templates``, ``read``) runs in a
    rollout's ticks, through ``MetricFetcher``; it builds ``HttpRequest``s, which the
    HTTP driver sends, so a provider never sends anything itself.
    """

    key: ClassVar[str]
    """The plan key that names it: ``http`` in ``metrics: {x: {http: {...}}}``."""

    query: ClassVar[type[Model]]
    """The model of what is under that key (``plan.fields``); its schema is the key's. A
    ``headers:`` key in it is checked, by `validate`, for what httpx can send."""

    beside: ClassVar[Mapping[str, Any]] = {}
    """Keys it adds to the metric next to its own, as ``field(...)`` declarations
    (``select`` for http). Each must have a default (None): ``check`` requires it."""

    alone: ClassVar[str | None] = None
    """Why it takes none of the other providers' ``beside`` keys, said when one is given
    ("PromQL selects by itself")."""

    simulated: ClassVar[bool] = False
    """Whether `rollout simulate`'s in-process sandbox answers it."""

    def check(self, metric: Metric) -> None:
        """Refuse, with ValueError, keys of the metric that do not fit together."""

    def whole_window(self, metric: Metric) -> bool:
        """Whether each measurement answers every point of a stretch of time (a range
        query), so that the latest measurement replaces the ones before it."""
        return False

    def parts(self, metric: Metric) -> tuple[str, ...]:
        """The names of the parts one answer is split into (``modern``, ``legacy``): then
        ``read`` gives a value per part, and checks name them ``metric.part``."""
        return ()

    def syntax_requests(self, plan: Plan, metric: Metric, variables: Mapping[str, Any]
                        ) -> tuple[HttpRequest, ...]:
        """For `validate --online`: requests that ask the source whether it can read the
        metric's query, tried in order until ``syntax_error`` gives a verdict."""
        return ()

    def syntax_error(self, metric: Metric, outcome: HttpOutcome) -> str | None:
        """The answer to one of ``syntax_requests``: what is wrong with the query, "" when
        nothing is, None when this way of asking says nothing (try the next)."""
        return None

    def request_key(self, metric: Metric) -> str | None:
        """The key under the provider's own where a request that cannot be sent is reported
        (the one that gives its URL); None: the provider's key itself."""
        return None

    def describe(self, metric: Metric) -> str:
        """What the metric asks, for `rollout plan`: the request or the query as written
        (templates unfilled). Model side: no httpx."""
        return self.key

    def requests(self, plan: Plan, metric: Metric, variables: Mapping[str, Any],
                 now: float) -> tuple[HttpRequest, ...]:
        """What to send for one measurement at ``now``; raises templates.MissingVariable."""
        raise NotImplementedError

    def templates(self, plan: Plan, metric: Metric) -> list[Any] | None:
        """What ``requests`` fills in from the variables, so that the fetcher builds them
        once per distinct value of those; None when they depend on ``now`` too."""
        return None

    def read(self, metric: Metric, outcomes: Sequence[HttpOutcome]
             ) -> Value | dict[str, Value]:
        """The value of the answers to ``requests``, in their order (by part, for a metric
        with ``parts``); raises ProviderError."""
        raise NotImplementedError
