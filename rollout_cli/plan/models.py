"""The plan language, version 1, as immutable models declared with ``fields``.

Field names are the YAML keys (``pass`` and ``json`` through aliases). Cross-references
(metric and check names, template variables, duplicate stage names) are checked in
``semantics``; style warnings live in ``lint``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from rollout_cli.plan.durations import format_duration, parse_duration
from rollout_cli.plan.expressions import Threshold, parse_threshold
from rollout_cli.plan.fields import (
    AnyValue,
    Boolean,
    Integer,
    Issue,
    Kind,
    ListOf,
    Loc,
    MapOf,
    Model,
    Nested,
    Number,
    OneOf,
    Optional,
    Parsed,
    Refused,
    Tagged,
    Text,
    dump_model,
    field,
    fields_of,
    parse_model,
)

if TYPE_CHECKING:
    from rollout_cli.providers import Provider

METHODS = ("GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE")
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
AGGREGATES = ("last", "mean", "min", "max", "p50", "p95", "p99")
NOTIFY_EVENTS = (
    "started", "stage-started", "stage-completed", "gate-waiting", "paused",
    "rollback-started", "rollback-completed", "rollback-failed", "succeeded", "failed",
)
SLUG = r"^[a-z0-9][a-z0-9._-]*$"

_THRESHOLD_PATTERN = (r"^\s*(>=|<=|==|!=|>|<)\s*[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?\s*"
                      r"(%|/[smhd])?\s*$")
_DURATION_PATTERN = r"^(0|(\d+(\.\d+)?(ms|s|m|h|d))+|\$\{.+\})$"
_DURATION_SCHEMA = {"type": "string", "pattern": _DURATION_PATTERN,
                    "description": "A duration: 500ms, 30s, 5m, 2h, 1h30m, 1d."}


def _positive_duration(value: object) -> float:
    seconds = parse_duration(value)
    if seconds <= 0:
        raise Refused("must be longer than 0", "write a positive duration, like 30s, or leave "
                                               "the key out for its default")
    return seconds


DURATION = Parsed(parse_duration, _DURATION_SCHEMA, format_duration)
# Timeouts, deadlines, intervals and windows: 0 would never wait, or never stop asking.
POSITIVE_DURATION = Parsed(_positive_duration, _DURATION_SCHEMA, format_duration)
_THRESHOLD_SCHEMA = {"type": "string", "pattern": _THRESHOLD_PATTERN,
                     "description": "A comparison: '>= 0.95', '< 0.90', '> +20%', '> 50/h'."}


def _band(example: str) -> Parsed:
    """A check's `pass:` or `fail:`: left out, or a comparison; never null, which a key
    followed by nothing gives, because a forgotten band flips what the other one means."""
    def read(value: object) -> Threshold:
        if value is None:
            raise Refused("has no value",
                          f"write a comparison like {example!r}, or leave the key out")
        return parse_threshold(value)

    return Parsed(read, _THRESHOLD_SCHEMA)


@dataclass(frozen=True)
class Bake:
    """How long a stage soaks: fixed (min == max) or a range ``2h..4h``."""

    min: float
    max: float

    def __str__(self) -> str:
        if self.min == self.max:
            return format_duration(self.min)
        return f"{format_duration(self.min)}..{format_duration(self.max)}"


def _bake(value: object) -> Bake:
    if isinstance(value, str) and ".." in value:
        low, _, high = value.partition("..")
        bake = Bake(parse_duration(low), parse_duration(high))
        if bake.max < bake.min:
            raise ValueError(f"bake range {value!r} ends before it starts")
        return bake
    seconds = parse_duration(value)
    return Bake(seconds, seconds)


BAKE = Parsed(_bake, {"type": "string", "description": "A duration (2h) or a range (2h..4h)."})


@dataclass(frozen=True)
class RequestLine:
    """``POST /api/x`` or ``GET https://host/path``."""

    method: str
    target: str

    def __str__(self) -> str:
        return f"{self.method} {self.target}"


def _request_line(value: object) -> RequestLine:
    if not isinstance(value, str):
        raise ValueError("expected 'METHOD /path', like 'POST /api/admin/ab-testing/update'")
    parts = value.strip().split(None, 1)
    if len(parts) != 2:
        raise ValueError(f"expected 'METHOD /path', got {value!r}")
    method, target = parts[0].upper(), parts[1].strip()
    if method not in METHODS:
        raise ValueError(f"unknown HTTP method {parts[0]!r}; use one of {', '.join(METHODS)}")
    if not (target.startswith("/") or re.match(r"^https?://", target)
            or target.startswith("{{")):
        raise ValueError(f"request target {target!r} must be a path (/...) or an http(s) URL")
    return RequestLine(method, target)


REQUEST_LINE = Parsed(_request_line, {
    "type": "string", "pattern": r"^[A-Za-z]+\s+\S+$",
    "description": "Method and path or URL: 'POST /api/x'."})


def _jmespath(value: object) -> str:
    import jmespath
    from jmespath.exceptions import JMESPathError

    if not isinstance(value, str) or not value.strip():
        raise ValueError("expected a JMESPath expression, like 'variants.modern.successRate'")
    try:
        jmespath.compile(value)
    except JMESPathError as exc:
        raise ValueError(f"bad JMESPath expression {value!r}: {exc}") from None
    return value


JMESPATH = Parsed(_jmespath, {"type": "string", "description": "A JMESPath expression."},
                  lambda v: v)


def _status_list(value: object) -> tuple[int, ...]:
    items = value if isinstance(value, list) else [value]
    statuses = []
    for item in items:
        if isinstance(item, bool) or not isinstance(item, int) or not 100 <= item <= 599:
            raise ValueError(f"expected an HTTP status code (100-599), got {item!r}")
        statuses.append(item)
    return tuple(statuses)


STATUS = Parsed(_status_list, {"oneOf": [{"type": "integer"},
                                         {"type": "array", "items": {"type": "integer"}}]},
                list)


def _argv_or_command(value: object) -> str | tuple[str, ...]:
    if isinstance(value, str) and value.strip():
        return value
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise ValueError("expected a command string or a non-empty list of arguments")


COMMAND_LINE = Parsed(_argv_or_command, {"oneOf": [{"type": "string"},
                                                   {"type": "array", "items": {"type": "string"}}]},
                      lambda v: v if isinstance(v, str) else list(v))


def _verify(value: object) -> bool | str:
    if isinstance(value, bool) or (isinstance(value, str) and value):
        return value
    raise ValueError("expected true, false or the path of a CA bundle")


VERIFY = Parsed(_verify, {"oneOf": [{"type": "boolean"}, {"type": "string"}]}, lambda v: v)



def _http_url(what: str) -> Parsed:
    def read(value: object) -> str:
        if not isinstance(value, str):
            raise ValueError(f"{what} must be a string, like 'http://127.0.0.1:8080'")
        if not re.match(r"^https?://[^/\s]+", value):
            raise ValueError(f"{what} {value!r} must be an http:// or https:// URL")
        return value.rstrip("/")

    return Parsed(read, {"type": "string"})


TEXT = Text()
NAME = Text(SLUG, "lowercase letters, digits, '.', '_' or '-', starting with a letter or digit")
HEADERS = MapOf(TEXT)
MAYBE_TEXT = Optional(TEXT)
MAYBE_DURATION = Optional(DURATION)
MAYBE_POSITIVE_DURATION = Optional(POSITIVE_DURATION)
MAYBE_COUNT = Optional(Integer(ge=0))


ON_FAILURE = OneOf("rollback", "abort")
ON_FAILURE_TEXT = ("A stage step that fails (after its retries): `rollback` runs the plan's "
                   "rollback; `abort` fails the rollout without it (a read-only precondition "
                   "before traffic moved).")


class RetrySpec(Model):
    attempts: int = field(Integer(ge=1, le=50), 4,
                          description="Total tries, first one included.")
    backoff: float = field(DURATION, 1.0)
    max_backoff: float = field(DURATION, 30.0)
    deadline: float | None = field(MAYBE_POSITIVE_DURATION, None)


class Target(Model):
    base_url: str = field(_http_url("base_url"), description="Where relative request paths go.")
    headers: Mapping[str, str] = field(HEADERS, {})
    timeout: float = field(POSITIVE_DURATION, 10.0)
    retry: RetrySpec = field(Nested(RetrySpec), RetrySpec())
    verify: bool | str = field(VERIFY, True)


class Expect(Model):
    status: tuple[int, ...] | None = field(Optional(STATUS), None)
    condition: str | None = field(Optional(JMESPATH), None,
                                  description="JMESPath over the JSON response; must be true.")


class RequestStep(Model):
    name: str | None = field(MAYBE_TEXT, None)
    request: RequestLine = field(REQUEST_LINE)
    headers: Mapping[str, str] = field(HEADERS, {})
    json_body: Any = field(AnyValue(), None, key="json")
    body: str | None = field(MAYBE_TEXT, None)
    expect: Expect | None = field(Optional(Nested(Expect)), None)
    capture: Mapping[str, str] = field(MapOf(JMESPATH), {})
    idempotent: bool | None = field(
        Optional(Boolean()), None,
        description="Safe to send twice? Default: true for GET/HEAD/OPTIONS/PUT/DELETE.")
    timeout: float | None = field(MAYBE_POSITIVE_DURATION, None)
    retry: RetrySpec | None = field(Optional(Nested(RetrySpec)), None)
    on_failure: Literal["rollback", "abort"] = field(ON_FAILURE, "rollback",
                                                     description=ON_FAILURE_TEXT)

    def _check(self) -> None:
        if self.json_body is not None and self.body is not None:
            raise ValueError("give either `json:` or `body:`, not both")

    @property
    def is_idempotent(self) -> bool:
        if self.idempotent is not None:
            return self.idempotent
        return self.request.method in IDEMPOTENT_METHODS

    @property
    def label(self) -> str:
        return self.name or str(self.request)


class RunStep(Model):
    name: str | None = field(MAYBE_TEXT, None)
    run: str | tuple[str, ...] = field(COMMAND_LINE)
    shell: bool = field(Boolean(), False, description="Run through /bin/sh; off unless asked.")
    timeout: float = field(POSITIVE_DURATION, 600.0)
    expect_exit: int = field(Integer(), 0)
    cwd: str | None = field(MAYBE_TEXT, None)
    env: Mapping[str, str] = field(HEADERS, {})
    idempotent: bool = field(Boolean(), False, description="Safe to run twice after a crash?")
    on_failure: Literal["rollback", "abort"] = field(ON_FAILURE, "rollback",
                                                     description=ON_FAILURE_TEXT)

    def _check(self) -> None:
        if self.shell and not isinstance(self.run, str):
            raise ValueError("`shell: true` needs `run:` as one command string")

    @property
    def label(self) -> str:
        return self.name or (self.run if isinstance(self.run, str) else " ".join(self.run))


def _step_kind(value: Any) -> str | None:
    if isinstance(value, dict):
        if "request" in value:
            return "request"
        if "run" in value:
            return "run"
    return None


STEP = Tagged(_step_kind, {"request": RequestStep, "run": RunStep},
              "a step needs a `request:` or a `run:` key",
              "e.g. `- request: GET /health` or `- run: [npm, run, build]`")


class Metric(Model):
    """A named measurement: exactly one provider's key (`http:`, `prometheus:`, ...), the
    keys that provider adds beside it (`select:` for http), and the keys every metric has.

    Providers are ``rollout_cli.providers``, one module each. A plan's metrics are parsed by
    ``metric_model()``, a subclass of this one with every registered provider's keys added
    to its own; it checks that exactly one provider's key is given, and none of the keys
    another provider adds, and leaves the rest to that provider's ``check``.
    """

    description: str | None = field(MAYBE_TEXT, None)
    unit: str | None = field(MAYBE_TEXT, None)

    _providers: ClassVar[Mapping[str, Provider]] = {}   # by key, in ``metric_model()``
    _owners: ClassVar[dict[str, str]] = {}   # a key beside a provider's -> that provider's

    @property
    def provider(self) -> Provider:
        """The provider this metric names."""
        for key, provider in self._providers.items():
            if self.__dict__[key] is not None:
                return provider
        raise LookupError("a metric names no provider")   # refused by _check

    @property
    def query(self) -> Any:
        """What is under the provider's key: an ``HttpQuery``, a ``PrometheusQuery``, ..."""
        return self.__dict__[self.provider.key]

    def beside(self, key: str) -> Any:
        """A key the provider adds beside its own (``select``); None when left out."""
        return self.__dict__[key]

    def _check(self) -> None:
        named = [key for key in self._providers if self.__dict__[key] is not None]
        if len(named) != 1:
            keys = [f"`{key}:`" for key in self._providers]
            either = " or ".join(keys) if len(keys) < 3 else \
                f"{', '.join(keys[:-1])} or {keys[-1]}"
            raise ValueError(f"a metric needs exactly one provider: {either}")
        provider = self._providers[named[0]]
        for key, owner in self._owners.items():
            if owner != provider.key and self.__dict__[key] is not None:
                raise ValueError(f"`{key}:` is for {owner} metrics"
                                 + (f"; {provider.alone}" if provider.alone else ""))
        provider.check(self)


_built: dict[str, Any] = {}


def metric_model() -> type[Metric]:
    """``Metric`` with the keys of every registered provider, in the order the schema shows
    them: description, each provider's key, the keys beside them, unit. Built again when
    the registry changes."""
    from rollout_cli.providers import registered

    providers = registered()
    if _built.get("from") is not providers:
        own = fields_of(Metric)
        declared: dict[str, Any] = {"description": own["description"]}
        declared.update((key, field(Optional(Nested(provider.query)), None))
                        for key, provider in providers.items())
        declared.update((key, beside) for provider in providers.values()
                        for key, beside in provider.beside.items())
        declared.update((key, f) for key, f in own.items() if key not in declared)
        owners = {key: provider.key for provider in providers.values()
                  for key in provider.beside}
        _built["model"] = type("Metric", (Metric,), {
            **declared, "__module__": __name__, "__qualname__": "Metric",
            "_providers": providers, "_owners": owners})
        _built["from"] = providers
    return _built["model"]  # type: ignore[no-any-return]


class _Registered(Kind):
    """A metric as ``metric_model()`` reads it, whatever providers are registered then."""

    def parse(self, value: Any, loc: Loc, issues: list[Issue]) -> Any:
        return parse_model(metric_model(), value, loc, issues)

    def schema(self, defs: dict[str, Any]) -> dict[str, Any]:
        return Nested(metric_model()).schema(defs)

    def dump(self, value: Any) -> Any:
        return dump_model(value)


def _threshold_fits(value: Threshold, check: dict[str, Any]) -> None:
    """A threshold's kind must match the check's: slope for a trend, % for a baseline."""
    if check.get("compare") is not None:
        raise ValueError("a compare check judges by its interval against `allowed:`, not by "
                         "`pass:` or `fail:`; leave them out")
    if check.get("trend") is not None:
        if value.kind != "slope":
            raise ValueError(f"{value.text!r}: a trend check compares a slope; "
                             f"write it per hour, like '> 50/h'")
    elif check.get("baseline") is not None:
        if value.kind != "relative":
            raise ValueError(f"{value.text!r}: a baseline check compares in %, like '> +20%'")
    elif value.kind == "relative":
        ratio = f"{value.op} {value.value:g}"
        raise ValueError(f"{value.text!r} is relative (%), but the check has no "
                         f"`baseline:`; for a ratio write {ratio!r}")
    elif value.kind == "slope":
        raise ValueError(f"{value.text!r} is a slope, but the check has no `trend:` window")


@dataclass(frozen=True)
class Allowed:
    """How much worse than the baseline a compare check tolerates: ``+5%`` of the
    baseline's level (``relative``) or ``+200`` in the metric's unit, on the worse side."""

    value: float
    relative: bool
    text: str

    def __str__(self) -> str:
        return self.text


_ALLOWED = re.compile(r"^\s*\+?\s*(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?\s*(%?)\s*$")


def _allowed(value: object) -> Allowed:
    if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
        return Allowed(float(value), False, f"+{value:g}")
    match = _ALLOWED.match(value) if isinstance(value, str) else None
    if match is None:
        raise Refused(f"{value!r} is not an allowed change",
                      "write how much worse is tolerated: '+5%' of the baseline, or '+200' "
                      "in the metric's unit ('+0.005' is half a point of a rate)")
    number = float(value.strip().lstrip("+").rstrip("%").strip())  # type: ignore[union-attr]
    relative = bool(match.group(4))
    return Allowed(number / 100 if relative else number, relative,
                   "+" + value.strip().lstrip("+").strip())  # type: ignore[union-attr]


ALLOWED = Parsed(_allowed, {
    "oneOf": [{"type": "number", "minimum": 0},
              {"type": "string", "pattern": r"^\s*\+?\s*(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?"
                                            r"\s*%?\s*$"}],
    "description": "How much worse than the baseline is tolerated: '+5%' or '+200'."})

COMPARE_METHODS = ("mann-whitney", "sequential")


class Compare(Model):
    """A compare check's statistics (engine/compare.py): an interval for the canary's change
    against its baseline, judged against the allowed change."""

    method: Literal["mann-whitney", "sequential"] = field(
        OneOf(*COMPARE_METHODS),
        description="mann-whitney: two sets of measurements (latency); sequential: two "
                    "proportions from counts (errors over requests), anytime-valid.")
    confidence: float = field(Number(ge=0.5, le=0.9999), 0.98,
                              description="Of the interval: 0.98 is a 98% interval.")
    allowed_: Allowed | None = field(
        Optional(ALLOWED), None, key="allowed",
        description="How much worse is tolerated: '+5%' or '+200'; default: none ('+0%' "
                    "for mann-whitney, '+0' for sequential).")
    worse: Literal["higher", "lower"] = field(OneOf("higher", "lower"), "higher",
                                              description="Which way is a regression.")
    min_samples: int | None = field(
        Optional(Integer(ge=3)), None,
        description="Per side: values for mann-whitney (default 50), trials for "
                    "sequential (default 200).")
    trials: str | None = field(MAYBE_TEXT, None,
                               description="sequential: the metric counting the canary's "
                                           "trials (requests); `metric:` counts its events.")
    baseline_trials: str | None = field(MAYBE_TEXT, None,
                                        description="sequential: the baseline's trials.")

    def _check(self) -> None:
        if self.method == "sequential":
            if self.trials is None or self.baseline_trials is None:
                raise ValueError("a sequential compare needs `trials:` and `baseline_trials:`"
                                 " (the metrics that count requests; `metric:` and "
                                 "`baseline:` count errors)")
            if self.allowed_ is not None and self.allowed_.relative:
                raise ValueError(f"allowed {self.allowed.text!r}: a sequential compare "
                                 "allows a difference of proportions; write '+0.005' for "
                                 "half a point")
        elif self.trials is not None or self.baseline_trials is not None:
            raise ValueError("`trials:` and `baseline_trials:` are for method: sequential")

    @property
    def allowed(self) -> Allowed:
        if self.allowed_ is not None:
            return self.allowed_
        return Allowed(0.0, self.method == "mann-whitney",
                       "+0%" if self.method == "mann-whitney" else "+0")

    @property
    def least(self) -> int:
        """The samples (mann-whitney) or trials (sequential) each side needs."""
        if self.min_samples is not None:
            return self.min_samples
        return 50 if self.method == "mann-whitney" else 200


class Check(Model):
    description: str | None = field(MAYBE_TEXT, None)
    metric: str = field(TEXT)
    baseline: str | None = field(MAYBE_TEXT, None,
                                 description="Compare against this metric, in %.")
    window: float | None = field(MAYBE_POSITIVE_DURATION, None)
    aggregate: str | None = field(Optional(OneOf(*AGGREGATES)), None)
    trend: float | None = field(MAYBE_POSITIVE_DURATION, None,
                                description="Slope per hour over this window.")
    compare: Compare | None = field(Optional(Nested(Compare)), None,
                                    description="Judge the change against `baseline:` "
                                                "with its uncertainty, not by thresholds.")
    pass_: Threshold | None = field(_band(">= 0.95"), None, key="pass", check=_threshold_fits)
    fail: Threshold | None = field(_band("< 0.90"), None, check=_threshold_fits)
    min_samples: int = field(Integer(ge=1), 1)
    no_data: Literal["fail", "inconclusive", "ignore"] = field(
        OneOf("fail", "inconclusive", "ignore"), "inconclusive")
    dry_run: bool = field(Boolean(), False, description="Evaluate and show, never act.")

    def _check(self) -> None:
        if self.compare is not None:
            if self.baseline is None:
                raise ValueError("a compare check needs `baseline:` (the metric to compare "
                                 "with)")
            clash = [f"`{key}:`" for key, value in (
                ("pass", self.pass_), ("fail", self.fail), ("trend", self.trend),
                ("aggregate", self.aggregate)) if value is not None]
            if clash:
                raise ValueError(f"a compare check judges by its interval; {', '.join(clash)}"
                                 f" cannot be combined with `compare:`")
            if self.window is None:
                raise ValueError("a compare check needs `window:`: how far back it takes "
                                 "samples (a sequential one: at least the stage's bake)")
            return
        if self.pass_ is None and self.fail is None:
            raise ValueError("a check needs `pass:`, `fail:` or both")
        if self.trend is not None and (self.baseline is not None or self.aggregate is not None):
            raise ValueError("`trend:` cannot be combined with `baseline:` or `aggregate:`")
        if self.aggregate not in (None, "last") and self.window is None:
            raise ValueError(f"aggregate {self.aggregate!r} needs a `window:`")

    @property
    def effective_aggregate(self) -> str:
        if self.aggregate:
            return self.aggregate
        return "mean" if self.window else "last"

    @property
    def span(self) -> float:
        """How much history the check looks at, in seconds."""
        return self.trend or self.window or 0.0

    @property
    def metrics(self) -> tuple[str, ...]:
        """Every metric it reads: its own, the baseline, and a sequential compare's trials."""
        names = [self.metric, self.baseline]
        if self.compare is not None:
            names += [self.compare.trials, self.compare.baseline_trials]
        return tuple(name for name in names if name)


class AnalysisSpec(Model):
    interval: float | None = field(MAYBE_POSITIVE_DURATION, None)
    initial_delay: float | None = field(MAYBE_DURATION, None)
    checks: tuple[str, ...] | None = field(Optional(ListOf(TEXT)), None)
    failure_limit: int | None = field(MAYBE_COUNT, None)
    inconclusive_limit: int | None = field(MAYBE_COUNT, None)
    consecutive_error_limit: int | None = field(MAYBE_COUNT, None)
    on_inconclusive: str | None = field(Optional(OneOf("pause", "rollback", "continue")), None)
    on_failure: str | None = field(Optional(OneOf("rollback", "pause")), None)
    on_error: str | None = field(Optional(OneOf("pause", "rollback")), None)


@dataclass(frozen=True)
class Analysis:
    """An AnalysisSpec with every default filled in."""

    interval: float = 300.0
    initial_delay: float = 0.0
    checks: tuple[str, ...] = ()
    failure_limit: int = 0
    inconclusive_limit: int = 0
    consecutive_error_limit: int = 4
    on_inconclusive: str = "pause"
    on_failure: str = "rollback"
    on_error: str = "pause"

    def over(self, spec: AnalysisSpec | None) -> Analysis:
        if spec is None:
            return self
        given = {f.name: getattr(spec, f.name) for f in fields_of(AnalysisSpec).values()
                 if getattr(spec, f.name) is not None}
        if "checks" in given:
            given["checks"] = tuple(given["checks"])
        return Analysis(**{**self.__dict__, **given})


class Stage(Model):
    name: str = field(NAME)
    description: str | None = field(MAYBE_TEXT, None)
    percentage: float | None = field(Optional(Number(ge=0, le=100)), None)
    steps: tuple[RequestStep | RunStep, ...] = field(ListOf(STEP), [])
    bake: Bake | None = field(Optional(BAKE), None)
    gate: Literal["auto", "manual"] = field(OneOf("auto", "manual"), "auto")
    analysis: AnalysisSpec | None = field(Optional(Nested(AnalysisSpec)), None)


class Notify(Model):
    webhook: str = field(TEXT, description="Webhook URL; treated as a secret.")
    format: Literal["json", "slack"] = field(OneOf("json", "slack"), "json")
    on: tuple[str, ...] = field(ListOf(OneOf(*NOTIFY_EVENTS, "rollback")), list(NOTIFY_EVENTS))
    timeout: float = field(POSITIVE_DURATION, 5.0)

    @property
    def events(self) -> frozenset[str]:
        expanded = set(self.on)
        if "rollback" in expanded:
            expanded |= {"rollback-started", "rollback-completed", "rollback-failed"}
            expanded.discard("rollback")
        return frozenset(expanded)


def _some_labels(value: Any, given: dict[str, Any]) -> None:
    if not value:
        raise ValueError("must name at least one label (an empty match would act on "
                         "every alert)")


class Alert(Model):
    """A pushed alert (Alertmanager's webhook, received by `rollout agent`) that concerns
    the plan: a firing alert whose labels include every ``match`` label acts on its
    active rollout."""

    match: Mapping[str, str] = field(
        MapOf(TEXT), check=_some_labels,
        description="Labels the alert must carry, each with this value.")
    action: Literal["rollback", "pause"] = field(OneOf("rollback", "pause"))

    def matches(self, labels: Mapping[str, Any]) -> bool:
        return all(str(labels.get(name)) == value for name, value in self.match.items())


class Plan(Model):
    version: Literal[1] = field(OneOf(1))
    name: str = field(NAME)
    description: str | None = field(MAYBE_TEXT, None)
    secrets: tuple[str, ...] = field(ListOf(TEXT), [],
                               description="Environment variables whose values are secret.")
    target: Target = field(Nested(Target))
    traffic: RequestStep | None = field(Optional(Nested(RequestStep)), None,
                                        description="The request that applies a percentage.")
    metrics: Mapping[str, Metric] = field(MapOf(_Registered()), {})
    checks: Mapping[str, Check] = field(MapOf(Nested(Check)), {})
    analysis: AnalysisSpec | None = field(Optional(Nested(AnalysisSpec)), None,
                                          description="Defaults for stages with traffic.")
    background: AnalysisSpec | None = field(Optional(Nested(AnalysisSpec)), None,
                                            description="Runs across all traffic stages.")
    scrape_interval: float = field(
        POSITIVE_DURATION, 60.0,
        description="How often Prometheus scrapes what the queries read (its default, 1m); "
                    "sets the default {{ rate_window }}.")
    rate_window: float | None = field(
        MAYBE_POSITIVE_DURATION, None,
        description="{{ rate_window }} in queries; default: the analysis interval, and at "
                    "least 4 scrape intervals.")
    stages: tuple[Stage, ...] = field(ListOf(Nested(Stage), min_items=1))
    rollback: tuple[RequestStep | RunStep, ...] = field(ListOf(STEP), [])
    notify: tuple[Notify, ...] = field(ListOf(Nested(Notify)), [])
    alerts: tuple[Alert, ...] = field(
        ListOf(Nested(Alert)), [],
        description="Alerts pushed to `rollout agent` that roll back or pause the rollout.")

    def rate_window_for(self, analysis: Analysis) -> float:
        """``{{ rate_window }}``: as given, else the interval and at least 4 scrapes (a
        rate() over fewer points than that misses a scrape now and then)."""
        if self.rate_window is not None:
            return self.rate_window
        return max(analysis.interval, 4 * self.scrape_interval)

    @cached_property
    def default_analysis(self) -> Analysis:
        return Analysis().over(self.analysis)

    def analysis_for(self, stage: Stage) -> Analysis | None:
        """The analysis a stage runs, or None for a stage that moves no traffic."""
        return self._stage_analyses.get(stage.name)

    @cached_property
    def _stage_analyses(self) -> dict[str, Analysis | None]:
        found: dict[str, Analysis | None] = {}
        for stage in self.stages:
            resolved = None
            if stage.analysis is not None or stage.percentage is not None:
                resolved = self.default_analysis.over(stage.analysis)
            found[stage.name] = resolved if resolved and resolved.checks else None
        return found

    @cached_property
    def background_analysis(self) -> Analysis | None:
        if self.background is None:
            return None
        resolved = self.default_analysis.over(self.background)
        return resolved if resolved.checks else None

    def steps(self) -> list[tuple[str, RequestStep | RunStep]]:
        """Every step with the phase it belongs to: a stage name, 'traffic' or 'rollback'."""
        found: list[tuple[str, RequestStep | RunStep]] = []
        if self.traffic is not None:
            found.append(("traffic", self.traffic))
        for stage in self.stages:
            found.extend((stage.name, step) for step in stage.steps)
        found.extend(("rollback", step) for step in self.rollback)
        return found

    @cached_property
    def traffic_stages(self) -> tuple[int, ...]:
        """The indexes of the stages that set a percentage."""
        return tuple(i for i, stage in enumerate(self.stages) if stage.percentage is not None)

    @cached_property
    def metric_spans(self) -> dict[str, float]:
        """Per metric, the longest stretch of history any check of it looks at."""
        spans: dict[str, float] = {}
        for check in self.checks.values():
            for metric in check.metrics:
                spans[metric] = max(spans.get(metric, 0.0), check.span)
        return spans

    @cached_property
    def measured_names(self) -> dict[str, tuple[str, str | None]]:
        """What checks may name, each to its metric and part: ``x`` to ``("x", None)``, and
        for a metric split into parts, ``x.modern`` to ``("x", "modern")`` (not ``x``)."""
        names: dict[str, tuple[str, str | None]] = {}
        for name, metric in self.metrics.items():
            parts = metric.provider.parts(metric)
            names.update({f"{name}.{part}": (name, part) for part in parts} if parts
                         else {name: (name, None)})
        return names

    @cached_property
    def whole_window_metrics(self) -> frozenset[str]:
        """Names each of whose measurements is a whole stretch of points (a range query)."""
        return frozenset(name for name, (metric, _) in self.measured_names.items()
                         if self.metrics[metric].provider.whole_window(self.metrics[metric]))

    def metrics_of(self, analysis: Analysis) -> tuple[str, ...]:
        """The metrics an analysis's checks read, in order, each once."""
        found = self._analysis_metrics.get(analysis)
        if found is None:
            names = [name for check in analysis.checks for name in self.checks[check].metrics]
            found = self._analysis_metrics[analysis] = tuple(dict.fromkeys(names))
        return found

    @cached_property
    def _analysis_metrics(self) -> dict[Analysis, tuple[str, ...]]:
        return {}

    @cached_property
    def captured_names(self) -> tuple[str, ...]:
        return tuple(name for _, step in self.steps() if isinstance(step, RequestStep)
                     for name in step.capture)

    def stage_index(self, name: str) -> int:
        for index, stage in enumerate(self.stages):
            if stage.name == name:
                return index
        raise KeyError(name)
