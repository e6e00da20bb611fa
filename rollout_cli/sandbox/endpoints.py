"""The seed guide's API surface: one handler per endpoint, each a thin call into the model.

Handlers run under the model's lock. They validate the request (400 with a JSON error),
call the model (409 when the model's state forbids it) and shape the answer with
``reports``. Every successful call answers 200.
"""

from __future__ import annotations

from typing import Any

from rollout_cli.sandbox import reports
from rollout_cli.sandbox.abtest import AbTestConfig, Conflict
from rollout_cli.sandbox.model import DASHBOARD, MEMORY_MANAGEMENT, BrainModel
from rollout_cli.sandbox.routing import HttpError, Reply, Request, Route

_ADMIN = "/api/admin"
_AB_FIELDS = {
    "testId": "test_id",
    "name": "name",
    "rolloutPercentage": "rollout_percentage",
    "enabled": "enabled",
    "maxErrorRate": "max_error_rate",
    "minSuccessRate": "min_success_rate",
    "maxResponseTime": "max_response_time_ms",
    "enableAutoRollback": "enable_auto_rollback",
}


# --- field validation ---------------------------------------------------------------


def _text(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if value is None:
        raise HttpError(400, f"missing field: {name}")
    if not isinstance(value, str) or not value.strip():
        raise HttpError(400, f"{name}: expected non-empty text, got {value!r}")
    return value


def _number(name: str, value: Any, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise HttpError(400, f"{name}: expected a number, got {value!r}")
    if not low <= value <= high:
        raise HttpError(400, f"{name}: expected a number from {low:g} to {high:g}, got {value!r}")
    return float(value)


def _boolean(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise HttpError(400, f"{name}: expected true or false, got {value!r}")
    return value


def _ab_value(field: str, value: Any) -> Any:
    if field in ("testId", "name"):
        return _text({field: value}, field)
    if field in ("enabled", "enableAutoRollback"):
        return _boolean(field, value)
    if field == "rolloutPercentage":
        return _number(field, value, 0, 100)
    if field == "maxResponseTime":
        return _number(field, value, 1, 3_600_000)
    return _number(field, value, 0, 1)


def _ab_settings(body: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(body) - set(_AB_FIELDS))
    if unknown:
        known = ", ".join(_AB_FIELDS)
        raise HttpError(400, f"unknown field(s): {', '.join(unknown)} (known: {known})")
    return {_AB_FIELDS[k]: _ab_value(k, v) for k, v in body.items() if v is not None}


def _ok(body: dict[str, Any]) -> Reply:
    return Reply(200, body)


# --- the user routes ------------------------------------------------------------------


def brain_health(model: BrainModel, request: Request) -> Reply:
    mode = request.query.get("mode")
    if mode != "health":
        raise HttpError(400, f"GET /api/brain needs ?mode=health, got mode={mode!r}")
    return _ok(reports.health(model))


def brain_chat(model: BrainModel, request: Request) -> Reply:
    body = request.json()
    messages = body.get("messages")
    if messages is None:
        raise HttpError(400, "missing field: messages")
    if not isinstance(messages, list) or not messages:
        raise HttpError(400, "messages: expected a non-empty list")
    answer = model.serve_user_request()
    headers = [("X-Brain-Variant", answer.variant)]
    latency = round(answer.latency_ms, 1)
    if answer.status != 200:
        error = {"error": f"{answer.variant} implementation failed", "status": answer.status}
        return Reply(answer.status, {**error, "variant": answer.variant}, headers)
    reply = {"role": "assistant", "content": f"Hello from the {answer.variant} brain."}
    return Reply(200, {"variant": answer.variant, "latencyMs": latency, "message": reply}, headers)


def brain_test(model: BrainModel, request: Request) -> Reply:
    request.json(required=False)
    answers = model.probe()
    results = {
        name: {"ok": a.status == 200, "status": a.status, "latencyMs": round(a.latency_ms, 1)}
        for name, a in answers.items()
    }
    return _ok({"ok": all(r["ok"] for r in results.values()), "results": results})


# --- dashboard ------------------------------------------------------------------------


def dashboard_start(model: BrainModel, request: Request) -> Reply:
    request.json(required=False)
    return _ok({"status": "running", "since": model.start(DASHBOARD)})


def dashboard_metrics(model: BrainModel, request: Request) -> Reply:
    return _ok(reports.dashboard_metrics(model, request.window()))


def dashboard_alerts(model: BrainModel, request: Request) -> Reply:
    return _ok(reports.alerts(model, request.window()))


def dashboard_update_baselines(model: BrainModel, request: Request) -> Reply:
    request.json(required=False)
    model.update_baselines(request.window())
    return _ok({"status": "updated", "baseline": reports.baseline_json(model)})


# --- A/B testing ----------------------------------------------------------------------


def ab_start(model: BrainModel, request: Request) -> Reply:
    settings = _ab_settings(request.json())
    for required in ("testId", "rolloutPercentage"):
        if _AB_FIELDS[required] not in settings:
            raise HttpError(400, f"missing field: {required}")
    settings.setdefault("name", settings["test_id"])
    _, created = model.start_ab_test(AbTestConfig(**settings))
    return _ok({**reports.ab_test_json(model), "created": created})


def ab_update(model: BrainModel, request: Request) -> Reply:
    settings = _ab_settings(request.json())
    settings.pop("test_id", None)
    if not settings:
        raise HttpError(400, "nothing to update: send e.g. {\"rolloutPercentage\": 25}")
    model.update_ab_test(**settings)
    return _ok(reports.ab_test_json(model))


def ab_results(model: BrainModel, request: Request) -> Reply:
    return _ok(reports.ab_results(model, request.window()))


def ab_stop(model: BrainModel, request: Request) -> Reply:
    request.json(required=False)
    model.stop_ab_test()
    return _ok(reports.ab_test_json(model))


def ab_emergency_stop(model: BrainModel, request: Request) -> Reply:
    request.json(required=False)
    model.stop_ab_test(emergency=True)
    return _ok(reports.ab_test_json(model))


# --- feature flags --------------------------------------------------------------------


def flags_status(model: BrainModel, request: Request) -> Reply:
    return _ok(reports.flags(model))


def _set_flag(model: BrainModel, request: Request, value: bool) -> Reply:
    body = request.json()
    flag = _text(body, "flag")
    if "value" in body:
        _boolean("value", body["value"])
    model.set_flag(flag, value)
    return _ok({"flag": flag, "enabled": value, **reports.flags(model)["routing"]})


def flags_enable(model: BrainModel, request: Request) -> Reply:
    return _set_flag(model, request, True)


def flags_disable(model: BrainModel, request: Request) -> Reply:
    return _set_flag(model, request, False)


def flags_delete(model: BrainModel, request: Request) -> Reply:
    flag = request.params["flag"]
    deleted = model.delete_flag(flag)
    return _ok({"flag": flag, "deleted": deleted, **reports.flags(model)["routing"]})


# --- memory, alerts, diagnostics ------------------------------------------------------


def memory_start(model: BrainModel, request: Request) -> Reply:
    request.json(required=False)
    return _ok({"status": "running", "since": model.start(MEMORY_MANAGEMENT)})


def memory_stats(model: BrainModel, request: Request) -> Reply:
    return _ok(reports.memory_stats(model))


def memory_cleanup(model: BrainModel, request: Request) -> Reply:
    request.json(required=False)
    return _ok(reports.cleanup(model.cleanup_memory(), model))


def memory_leaks(model: BrainModel, request: Request) -> Reply:
    return _ok(reports.memory_leaks(model))


def alerts_emergency(model: BrainModel, request: Request) -> Reply:
    message = _text(request.json(), "message")
    alert = model.raise_emergency_alert(message)
    return _ok({"delivered": True, "alert": reports.alert_json(alert)})


def performance_comparison(model: BrainModel, request: Request) -> Reply:
    return _ok(reports.performance_comparison(model, request.window()))


def tools_performance(model: BrainModel, request: Request) -> Reply:
    return _ok(reports.tools_performance(model, request.window()))


def system_load(model: BrainModel, request: Request) -> Reply:
    return _ok(reports.system_load(model, request.window()))


def errors_analysis(model: BrainModel, request: Request) -> Reply:
    return _ok(reports.error_analysis(model, request.window()))


def logs_errors(model: BrainModel, request: Request) -> Reply:
    return _ok(reports.error_logs(model, request.integer("limit", 100, 1, 1000)))


def handle(route: Route, model: BrainModel, request: Request) -> Reply:
    """Run a handler under the model's lock, on traffic brought up to now; conflicts are 409."""
    with model.lock:
        model.catch_up()
        try:
            return route.handler(model, request)
        except Conflict as exc:
            return HttpError(409, str(exc)).reply()


ROUTES = [
    Route("GET", "/api/brain", brain_health),
    Route("POST", "/api/brain", brain_chat),
    Route("POST", "/api/brain/test", brain_test),
    Route("POST", f"{_ADMIN}/dashboard/start", dashboard_start),
    Route("GET", f"{_ADMIN}/dashboard/metrics", dashboard_metrics, metric_read=True),
    Route("GET", f"{_ADMIN}/dashboard/alerts", dashboard_alerts, metric_read=True),
    Route("POST", f"{_ADMIN}/dashboard/update-baselines", dashboard_update_baselines),
    Route("POST", f"{_ADMIN}/ab-testing/start", ab_start),
    Route("POST", f"{_ADMIN}/ab-testing/update", ab_update),
    Route("GET", f"{_ADMIN}/ab-testing/results", ab_results, metric_read=True),
    Route("POST", f"{_ADMIN}/ab-testing/stop", ab_stop),
    Route("POST", f"{_ADMIN}/ab-testing/emergency-stop", ab_emergency_stop),
    Route("GET", f"{_ADMIN}/feature-flags/status", flags_status),
    Route("POST", f"{_ADMIN}/feature-flags/enable", flags_enable),
    Route("POST", f"{_ADMIN}/feature-flags/disable", flags_disable),
    Route("DELETE", f"{_ADMIN}/feature-flags/{{flag}}", flags_delete),
    Route("POST", f"{_ADMIN}/memory/start", memory_start),
    Route("GET", f"{_ADMIN}/memory/stats", memory_stats, metric_read=True),
    Route("POST", f"{_ADMIN}/memory/cleanup", memory_cleanup),
    Route("GET", f"{_ADMIN}/memory/leaks", memory_leaks, metric_read=True),
    Route("POST", f"{_ADMIN}/alerts/emergency", alerts_emergency),
    Route("GET", f"{_ADMIN}/performance/comparison", performance_comparison, metric_read=True),
    Route("GET", f"{_ADMIN}/tools/performance", tools_performance, metric_read=True),
    Route("GET", f"{_ADMIN}/system/load", system_load, metric_read=True),
    Route("GET", f"{_ADMIN}/errors/analysis", errors_analysis, metric_read=True),
    Route("GET", f"{_ADMIN}/logs/errors", logs_errors, metric_read=True),
]
