"""Property-based: any text given as a plan, and any check expression, ends in a valid
plan that the drivers can send, or a located PlanError, never a traceback.
ROLLOUT_FUZZ_EXAMPLES raises the budget."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rollout_cli.errors import PlanError
from rollout_cli.plan import load_text
from rollout_cli.plan.dryrun import build
from rollout_cli.plan.expressions import parse_threshold
from rollout_cli.plan.lint import lint
from tests.conftest import PLANS
from tests.plan.test_broken_plans import BASE
from tests.plan.test_sendable import send_everything

EXAMPLES = int(os.environ.get("ROLLOUT_FUZZ_EXAMPLES", "300"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None,
                suppress_health_check=[HealthCheck.too_slow])
SEEDS = [BASE, (PLANS / "brain-api-demo.yaml").read_text()]


def _loads_or_locates(text: str) -> None:
    """Refused with locations, or valid, and then the dry run, the lint and every call,
    measurement and notification of the plan work without an exception."""
    try:
        loaded = load_text(text, "fuzz.yaml", {})
    except PlanError as error:
        assert error.problems
        for problem in error.problems:
            assert problem.line >= 1 and problem.column >= 1 and problem.message
        return
    build(loaded)
    lint(loaded)
    send_everything(loaded)


@FUZZ
@given(st.sampled_from(SEEDS), st.integers(0, 10_000), st.integers(0, 40),
       st.text(alphabet=st.sampled_from(list(":-[]{},'\"!&*#|>%@` \n\tax01.${}")), max_size=12))
def test_mutated_plans_load_or_fail_located(seed, at, cut, insert):
    position = at % (len(seed) + 1)
    _loads_or_locates(seed[:position] + insert + seed[position + cut:])


@FUZZ
@given(st.text(max_size=200))
def test_arbitrary_text_loads_or_fails_located(text):
    _loads_or_locates(text)


VALUES = st.one_of(st.none(), st.booleans(), st.integers(-5, 500), st.floats(allow_nan=True),
                   st.text(max_size=20), st.lists(st.integers(), max_size=3),
                   st.dictionaries(st.text(max_size=5), st.integers(), max_size=2))
KEYS = ["bake", "percentage", "gate", "name", "steps", "analysis", "bakee"]


@FUZZ
@given(st.dictionaries(st.sampled_from(KEYS), VALUES, max_size=5))
def test_generated_stages_load_or_fail_located(stage):
    import yaml

    document = yaml.safe_load(BASE)
    document["stages"] = [{"name": "one", **stage}]
    _loads_or_locates(yaml.safe_dump(document))


THRESHOLDS = st.sampled_from([">= 0.95", "< 0.90", "> +20%", "<= +0%", "> 50/h", "== 0"])
CHECK_KEYS = {"pass": THRESHOLDS, "fail": THRESHOLDS, "baseline": st.just("ok_rate"),
              "window": st.sampled_from(["5m", "0"]), "trend": st.sampled_from(["1h", "0"]),
              "aggregate": st.sampled_from(["mean", "p95", "last"]), "min_samples": VALUES,
              "no_data": st.sampled_from(["fail", "ignore"]), "metric": st.just("ok_rate")}


@FUZZ
@given(st.fixed_dictionaries({}, optional={key: st.one_of(st.none(), VALUES, values)
                                           for key, values in CHECK_KEYS.items()}))
def test_generated_checks_load_or_fail_located(check):
    import yaml

    document = yaml.safe_load(BASE)
    document["checks"] = {"ok": check}
    _loads_or_locates(yaml.safe_dump(document))


@FUZZ
@given(st.text(alphabet=st.sampled_from(list("<>=!+-.0123456789eE%/smhd x")), max_size=16))
def test_expressions_parse_or_refuse_with_a_message(text):
    try:
        threshold = parse_threshold(text)
    except ValueError as refused:
        assert str(refused)
    else:
        assert threshold.op in (">=", "<=", "==", "!=", ">", "<")
        assert threshold.holds(threshold.value) in (True, False)
