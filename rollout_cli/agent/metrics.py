"""`GET /metrics`: the rollouts the agent sees, in Prometheus' exposition format.

A custom collector reads the store on every scrape (``overview``), so the numbers are the
journal's, whichever process journaled them:

- ``rollout_phase{rollout, plan, phase}`` 1 for the rollout's phase
- ``rollout_stage{rollout, plan, stage}`` the stage's index
- ``rollout_percentage{rollout, plan}`` the traffic applied
- ``rollout_check_value{rollout, plan, scope, check}`` each check's last value
- ``rollout_check_verdict{rollout, plan, scope, check, verdict}`` 1 for its last verdict
- ``rollout_decisions_total`` / ``rollout_rollbacks_total`` / ``rollout_alerts_total``
  ``{rollout, plan}``: analysis rounds judged, rollbacks started, pushed alerts acted on
- ``rollout_driven{rollout, plan, driver}`` 1 while a driver holds its lease
- ``rollout_agent_leases{agent}`` the leases this agent holds
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from rollout_cli.agent.overview import RolloutView


class RolloutCollector:
    def __init__(self, views: Callable[[], list[RolloutView]], agent: str,
                 leases: Callable[[], list[str]]):
        self.views = views
        self.agent = agent
        self.leases = leases

    def collect(self) -> Iterator[Metric]:
        ids = ["rollout", "plan"]
        phase = GaugeMetricFamily("rollout_phase", "1 for the rollout's phase",
                                  labels=[*ids, "phase"])
        stage = GaugeMetricFamily("rollout_stage", "The index of the rollout's stage",
                                  labels=[*ids, "stage"])
        percentage = GaugeMetricFamily("rollout_percentage", "Traffic applied, in percent",
                                       labels=ids)
        value = GaugeMetricFamily("rollout_check_value", "A check's last measured value",
                                  labels=[*ids, "scope", "check"])
        verdict = GaugeMetricFamily("rollout_check_verdict", "1 for a check's last verdict",
                                    labels=[*ids, "scope", "check", "verdict"])
        decisions = CounterMetricFamily("rollout_decisions", "Analysis rounds judged",
                                        labels=ids)
        rollbacks = CounterMetricFamily("rollout_rollbacks", "Rollbacks started", labels=ids)
        alerts = CounterMetricFamily("rollout_alerts", "Pushed alerts acted on", labels=ids)
        driven = GaugeMetricFamily("rollout_driven", "1 while a driver holds the lease",
                                   labels=[*ids, "driver"])
        for view in self.views():
            data = view.data
            key = [data["rollout"], data["plan"]]
            phase.add_metric([*key, data["phase"]], 1)
            stage.add_metric([*key, data["stage"] or ""], data["stage_index"])
            if data["percentage"] is not None:
                percentage.add_metric(key, data["percentage"])
            for row in data["checks"]:
                where = [*key, row["scope"], row["check"]]
                if row["value"] is not None:
                    value.add_metric(where, row["value"])
                verdict.add_metric([*where, row["verdict"]], 1)
            decisions.add_metric(key, view.decisions)
            rollbacks.add_metric(key, view.rollbacks)
            alerts.add_metric(key, view.alerts)
            if data["driver"] is not None:
                driver = f"{data['driver']['name']} {data['driver']['who']}"
                driven.add_metric([*key, driver], 1)
        leases = GaugeMetricFamily("rollout_agent_leases", "Leases this agent holds",
                                   labels=["agent"])
        leases.add_metric([self.agent], len(self.leases()))
        yield from (phase, stage, percentage, value, verdict, decisions, rollbacks, alerts,
                    driven, leases)

