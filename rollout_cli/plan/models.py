"""The plan language, version 1, as immutable pydantic models.

Field names are the YAML keys (``pass`` and ``json`` through aliases). Cross-references
(metric and check names, template variables, duplicate stage names) are checked in
``semantics``; style warnings live in ``lint``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    PlainSerializer,
    PlainValidator,
    Tag,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from rollout_cli.plan.durations import format_duration, parse_duration
from rollout_cli.plan.expressions import Threshold, parse_threshold

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


def _duration(value: object) -> float:
    seconds = parse_duration(value)
    if seconds < 0:
        raise ValueError("a duration cannot be negative")
    return seconds


Duration = Annotated[float, PlainValidator(_duration), PlainSerializer(format_duration),
                     WithJsonSchema(_DURATION_SCHEMA)]

ThresholdExpr = Annotated[
    Threshold,
    PlainValidator(parse_threshold),
    PlainSerializer(str),
    WithJsonSchema({"type": "string",
                    "pattern": _THRESHOLD_PATTERN,
                    "description": "A comparison: '>= 0.95', '< 0.90', '> +20%', '> 50/h'."}),
]


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


BakeSpec = Annotated[
    Bake, PlainValidator(_bake), PlainSerializer(str),
    WithJsonSchema({"type": "string", "description": "A duration (2h) or a range (2h..4h)."}),
]


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


RequestLineSpec = Annotated[
    RequestLine, PlainValidator(_request_line), PlainSerializer(str),
    WithJsonSchema({"type": "string", "pattern": r"^[A-Za-z]+\s+\S+$",
                    "description": "Method and path or URL: 'POST /api/x'."}),
]


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


JMESPath = Annotated[str, PlainValidator(_jmespath),
                     WithJsonSchema({"type": "string", "description": "A JMESPath expression."})]


def _status_list(value: object) -> tuple[int, ...]:
    items = value if isinstance(value, list) else [value]
    statuses = []
    for item in items:
        if isinstance(item, bool) or not isinstance(item, int) or not 100 <= item <= 599:
            raise ValueError(f"expected an HTTP status code (100-599), got {item!r}")
        statuses.append(item)
    return tuple(statuses)


StatusSpec = Annotated[
    tuple[int, ...], PlainValidator(_status_list), PlainSerializer(list),
    WithJsonSchema({"oneOf": [{"type": "integer"},
                              {"type": "array", "items": {"type": "integer"}}]}),
]


def _argv_or_command(value: object) -> str | tuple[str, ...]:
    if isinstance(value, str) and value.strip():
        return value
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise ValueError("expected a command string or a non-empty list of arguments")


CommandLine = Annotated[
    str | tuple[str, ...], PlainValidator(_argv_or_command),
    PlainSerializer(lambda v: v if isinstance(v, str) else list(v)),
    WithJsonSchema({"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]}),
]


def _verify(value: object) -> bool | str:
    if isinstance(value, bool) or (isinstance(value, str) and value):
        return value
    raise ValueError("expected true, false or the path of a CA bundle")


VerifySpec = Annotated[bool | str, PlainValidator(_verify), PlainSerializer(lambda v: v),
                       WithJsonSchema({"oneOf": [{"type": "boolean"}, {"type": "string"}]})]

Percentage = Annotated[float, Field(ge=0, le=100)]


def _http_url(value: str, what: str) -> str:
    if not re.match(r"^https?://[^/\s]+", value):
        raise ValueError(f"{what} {value!r} must be an http:// or https:// URL")
    return value.rstrip("/")


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=False)


class RetrySpec(Model):
    attempts: int = Field(4, ge=1, le=50, description="Total tries, first one included.")
    backoff: Duration = 1.0
    max_backoff: Duration = 30.0
    deadline: Duration | None = None


class Target(Model):
    base_url: str = Field(description="Where relative request paths go.")
    headers: dict[str, str] = {}
    timeout: Duration = 10.0
    retry: RetrySpec = RetrySpec()
    verify: VerifySpec = True

    _base_url = field_validator("base_url")(lambda v: _http_url(v, "base_url"))


class Expect(Model):
    status: StatusSpec | None = None
    condition: JMESPath | None = Field(
        None, description="JMESPath over the JSON response; must be true.")


class RequestStep(Model):
    name: str | None = None
    request: RequestLineSpec
    headers: dict[str, str] = {}
    json_body: Any = Field(None, alias="json")
    body: str | None = None
    expect: Expect | None = None
    capture: dict[str, JMESPath] = {}
    idempotent: bool | None = Field(
        None, description="Safe to send twice? Default: true for GET/HEAD/OPTIONS/PUT/DELETE.")
    timeout: Duration | None = None
    retry: RetrySpec | None = None

    @model_validator(mode="after")
    def _one_body(self) -> RequestStep:
        if self.json_body is not None and self.body is not None:
            raise ValueError("give either `json:` or `body:`, not both")
        return self

    @property
    def is_idempotent(self) -> bool:
        if self.idempotent is not None:
            return self.idempotent
        return self.request.method in IDEMPOTENT_METHODS

    @property
    def label(self) -> str:
        return self.name or str(self.request)


class RunStep(Model):
    name: str | None = None
    run: CommandLine
    shell: bool = Field(False, description="Run through /bin/sh; off unless asked.")
    timeout: Duration = 600.0
    expect_exit: int = 0
    cwd: str | None = None
    env: dict[str, str] = {}
    idempotent: bool = Field(False, description="Safe to run twice after a crash?")

    @model_validator(mode="after")
    def _shell_needs_string(self) -> RunStep:
        if self.shell and not isinstance(self.run, str):
            raise ValueError("`shell: true` needs `run:` as one command string")
        return self

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
    if isinstance(value, RequestStep):
        return "request"
    if isinstance(value, RunStep):
        return "run"
    return None


Step = Annotated[
    Annotated[RequestStep, Tag("request")] | Annotated[RunStep, Tag("run")],
    Discriminator(_step_kind, custom_error_type="step_kind",
                  custom_error_message="a step needs a `request:` or a `run:` key"),
]


class HttpQuery(Model):
    get: str | None = None
    post: str | None = None
    headers: dict[str, str] = {}
    json_body: Any = Field(None, alias="json")

    @model_validator(mode="after")
    def _one_method(self) -> HttpQuery:
        if (self.get is None) == (self.post is None):
            raise ValueError("an http metric needs exactly one of `get:` or `post:`")
        return self

    @property
    def method(self) -> str:
        return "GET" if self.get is not None else "POST"

    @property
    def path(self) -> str:
        return self.get if self.get is not None else self.post  # type: ignore[return-value]


class PrometheusQuery(Model):
    url: str
    query: str = Field(description="PromQL; {{ percentage }}, {{ stage }}, {{ interval }} allowed.")
    range: Duration | None = Field(None, description="Query a range this long (a series).")
    step: Duration | None = None
    headers: dict[str, str] = {}

    _url = field_validator("url")(lambda v: _http_url(v, "prometheus url"))


class Metric(Model):
    description: str | None = None
    http: HttpQuery | None = None
    prometheus: PrometheusQuery | None = None
    select: JMESPath | None = None
    unit: str | None = None

    @model_validator(mode="after")
    def _one_provider(self) -> Metric:
        if (self.http is None) == (self.prometheus is None):
            raise ValueError("a metric needs exactly one provider: `http:` or `prometheus:`")
        if self.http is not None and self.select is None:
            raise ValueError("an http metric needs `select:` (JMESPath into the response)")
        if self.prometheus is not None and self.select is not None:
            raise ValueError("`select:` is for http metrics; PromQL selects by itself")
        return self


class Check(Model):
    description: str | None = None
    metric: str
    baseline: str | None = Field(None, description="Compare against this metric, in %.")
    window: Duration | None = None
    aggregate: Literal["last", "mean", "min", "max", "p50", "p95", "p99"] | None = None
    trend: Duration | None = Field(None, description="Slope per hour over this window.")
    pass_: ThresholdExpr | None = Field(None, alias="pass")
    fail: ThresholdExpr | None = None
    min_samples: int = Field(1, ge=1)
    no_data: Literal["fail", "inconclusive", "ignore"] = "inconclusive"
    dry_run: bool = Field(False, description="Evaluate and show, never act.")

    @field_validator("pass_", "fail")
    @classmethod
    def _kind_fits(cls, value: Threshold | None, info: Any) -> Threshold | None:
        if value is None:
            return value
        if info.data.get("trend") is not None:
            if value.kind != "slope":
                raise ValueError(f"{value.text!r}: a trend check compares a slope; "
                                 f"write it per hour, like '> 50/h'")
        elif info.data.get("baseline") is not None:
            if value.kind != "relative":
                raise ValueError(f"{value.text!r}: a baseline check compares in %, "
                                 f"like '> +20%'")
        elif value.kind == "relative":
            raise ValueError(f"{value.text!r} is relative (%), but the check has no "
                             f"`baseline:`; write 0.95 for 95%")
        elif value.kind == "slope":
            raise ValueError(f"{value.text!r} is a slope, but the check has no `trend:` window")
        return value

    @model_validator(mode="after")
    def _shape(self) -> Check:
        if self.pass_ is None and self.fail is None:
            raise ValueError("a check needs `pass:`, `fail:` or both")
        if self.trend is not None and (self.baseline is not None or self.aggregate is not None):
            raise ValueError("`trend:` cannot be combined with `baseline:` or `aggregate:`")
        if self.aggregate not in (None, "last") and self.window is None:
            raise ValueError(f"aggregate {self.aggregate!r} needs a `window:`")
        return self

    @property
    def effective_aggregate(self) -> str:
        if self.aggregate:
            return self.aggregate
        return "mean" if self.window else "last"

    @property
    def span(self) -> float:
        """How much history the check looks at, in seconds."""
        return self.trend or self.window or 0.0


class AnalysisSpec(Model):
    interval: Duration | None = None
    initial_delay: Duration | None = None
    checks: list[str] | None = None
    failure_limit: int | None = Field(None, ge=0)
    inconclusive_limit: int | None = Field(None, ge=0)
    consecutive_error_limit: int | None = Field(None, ge=0)
    on_inconclusive: Literal["pause", "rollback", "continue"] | None = None
    on_failure: Literal["rollback", "pause"] | None = None
    on_error: Literal["pause", "rollback"] | None = None


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
        given = {k: getattr(spec, k) for k in type(spec).model_fields
                 if getattr(spec, k) is not None}
        if "checks" in given:
            given["checks"] = tuple(given["checks"])
        return Analysis(**{**self.__dict__, **given})


class Stage(Model):
    name: str = Field(pattern=SLUG)
    description: str | None = None
    percentage: Percentage | None = None
    steps: list[Step] = []
    bake: BakeSpec | None = None
    gate: Literal["auto", "manual"] = "auto"
    analysis: AnalysisSpec | None = None


class Notify(Model):
    webhook: str = Field(description="Webhook URL; treated as a secret.")
    format: Literal["json", "slack"] = "json"
    on: list[Literal[(*NOTIFY_EVENTS, "rollback")]] = list(NOTIFY_EVENTS)  # type: ignore[valid-type]
    timeout: Duration = 5.0

    @property
    def events(self) -> frozenset[str]:
        expanded = set(self.on)
        if "rollback" in expanded:
            expanded |= {"rollback-started", "rollback-completed", "rollback-failed"}
            expanded.discard("rollback")
        return frozenset(expanded)


class Plan(Model):
    version: Literal[1]
    name: str = Field(pattern=SLUG)
    description: str | None = None
    secrets: list[str] = Field([], description="Environment variables whose values are secret.")
    target: Target
    traffic: RequestStep | None = Field(None, description="The request that applies a percentage.")
    metrics: dict[str, Metric] = {}
    checks: dict[str, Check] = {}
    analysis: AnalysisSpec | None = Field(None, description="Defaults for stages with traffic.")
    background: AnalysisSpec | None = Field(None, description="Runs across all traffic stages.")
    stages: list[Stage] = Field(min_length=1)
    rollback: list[Step] = []
    notify: list[Notify] = []

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
    def captured_names(self) -> tuple[str, ...]:
        return tuple(name for _, step in self.steps() if isinstance(step, RequestStep)
                     for name in step.capture)

    def stage_index(self, name: str) -> int:
        for index, stage in enumerate(self.stages):
            if stage.name == name:
                return index
        raise KeyError(name)
