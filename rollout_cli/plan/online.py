"""`rollout validate --online`: ask each metric source whether it can read the plan's
queries, so that a PromQL typo is an error at its line before the rollout, not a pause
during it.

A provider says what to send (``Provider.syntax_requests``) and what the answer means
(``Provider.syntax_error``); Prometheus parses with /api/v1/parse_query where the server
has it (Prometheus 3) and answers an instant query otherwise. A source that cannot be
reached is a warning: validation in CI may run where Prometheus is not.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rollout_cli.errors import Problem

if TYPE_CHECKING:
    from rollout_cli.plan.loader import LoadedPlan


def online_problems(loaded: LoadedPlan) -> list[Problem]:
    """A problem per query its source refuses, at the query's line."""
    from rollout_cli.drivers.http import HttpDriver
    from rollout_cli.plan.calls import stand_in_variables

    plan = loaded.plan
    stage = next((plan.stages[i] for i in plan.traffic_stages), None)
    variables = stand_in_variables(plan, stage)
    problems = []
    with HttpDriver(redactor=loaded.redactor) as http:
        for name, metric in plan.metrics.items():
            provider = metric.provider
            for request in provider.syntax_requests(plan, metric, variables):
                outcome = http.send(request)
                if outcome.status is None:
                    problems.append(loaded.positions.problem(
                        ("metrics", name, provider.key), f"metrics.{name}: could not ask "
                        f"{provider.key} whether it reads the query: {outcome.error}",
                        "run `rollout validate --online` where the source is reachable",
                        key=True, severity="warning"))
                    break
                verdict = provider.syntax_error(metric, outcome)
                if verdict is None:
                    continue            # that server cannot say: ask the next way
                if verdict:
                    problems.append(loaded.positions.problem(
                        ("metrics", name, provider.key, "query"),
                        f"metrics.{name}: {provider.key} refuses the query: {verdict}"))
                break
    return problems
