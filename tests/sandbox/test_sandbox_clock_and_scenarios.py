"""Clocks, durations and scenario loading."""

from __future__ import annotations

import statistics
from collections.abc import Callable
from pathlib import Path

import pytest

from rollout_cli.errors import UsageError
from rollout_cli.sandbox import PRESETS, ScaledClock, VirtualClock, load_scenario

from .conftest import Sim


def test_a_virtual_clock_moves_only_forward_when_told() -> None:
    clock = VirtualClock(start=100.0)
    assert clock.now() == 100.0
    assert clock.advance(30) == 130.0
    assert clock.now() == 130.0
    with pytest.raises(ValueError, match="negative"):
        clock.advance(-1)
    assert clock.now() == 130.0


def test_a_scaled_clock_multiplies_real_elapsed_time() -> None:
    real = [1000.0]
    clock = ScaledClock(time_scale=120.0, real=lambda: real[0])
    assert clock.now() == 0.0
    real[0] += 1.5
    assert clock.now() == 180.0
    with pytest.raises(ValueError):
        ScaledClock(time_scale=0)


@pytest.mark.parametrize(("window", "shown"), [
    ("30s", "30s"), ("5m", "5m"), ("90s", "1m30s"), ("1m30s", "1m30s"), ("1h", "1h"),
])
def test_windows_are_spelled_as_in_plans(
    make_sim: Callable[..., Sim], window: str, shown: str
) -> None:
    # A plan's `window={{ interval }}` renders an interval of 90s as 1m30s.
    sim = make_sim()
    sim.advance("2h")
    results = sim.results(window)
    assert results["window"] == shown
    seconds = {"30s": 30, "5m": 300, "90s": 90, "1m30s": 90, "1h": 3600}[window]
    assert results["variants"]["legacy"]["requests"] == pytest.approx(20 * seconds, rel=0.25)


@pytest.mark.parametrize("window", ["300", "soon", "5 minutes", "-5m"])
def test_a_window_without_a_unit_or_with_a_bad_one_is_refused(
    make_sim: Callable[..., Sim], window: str
) -> None:
    response = make_sim().client.get("/api/admin/ab-testing/results", params={"window": window})
    assert response.status_code == 400
    assert "write it like 30s, 5m" in response.json()["error"]


@pytest.mark.parametrize(("after", "seconds"), [
    ("90", 90.0), ("2.5", 2.5), ("0", 0.0), ("30s", 30.0), ("1h30m", 5400.0), ("2d", 172800.0),
])
def test_scenario_durations_are_seconds_or_spelled_as_in_plans(
    tmp_path: Path, after: str, seconds: float
) -> None:
    path = tmp_path / "spike.yaml"
    path.write_text(f"error_spike: {{after: {after}}}\n")
    spike = load_scenario(str(path)).error_spike
    assert spike is not None and spike.after == seconds


@pytest.mark.parametrize("after", ["-5", ".inf", "true", "soon", "'90'", "5 minutes"])
def test_a_bad_scenario_duration_says_where(tmp_path: Path, after: str) -> None:
    path = tmp_path / "spike.yaml"
    path.write_text(f"error_spike: {{after: {after}}}\n")
    with pytest.raises(UsageError, match=r"error_spike\.after: "):
        load_scenario(str(path))


def test_every_named_scenario_loads() -> None:
    assert set(PRESETS) == {
        "healthy", "degrade-at-50", "subtle-degrade", "noisy-healthy", "error-spike",
        "memory-leak", "flaky-admin", "slow-metrics", "no-traffic",
    }
    for name in PRESETS:
        assert load_scenario(name).name == name


def test_a_scenario_file_overlays_its_base_preset(tmp_path: Path) -> None:
    path = tmp_path / "rough-day.yaml"
    path.write_text(
        "base: error-spike\n"
        "requests_per_second: 40\n"
        "modern: {success_rate: 0.9}\n"
        "error_spike: {after: 30m}\n"
        "faults: {flaky_fraction: 0.1, slow_metrics_delay: 2s}\n"
    )
    scenario = load_scenario(str(path))
    assert scenario.name == "rough-day"
    assert scenario.requests_per_second == 40
    assert scenario.modern.success_rate == 0.9
    assert scenario.modern.latency_mean_ms == PRESETS["healthy"].modern.latency_mean_ms
    assert scenario.error_spike is not None
    assert (scenario.error_spike.after, scenario.error_spike.error_rate) == (1800.0, 0.25)
    assert (scenario.faults.flaky_fraction, scenario.faults.slow_metrics_delay) == (0.1, 2.0)


def test_a_scenario_files_knobs_drive_the_traffic(
    make_sim: Callable[..., Sim], tmp_path: Path
) -> None:
    path = tmp_path / "spike-soon.yaml"
    path.write_text("modern: {success_rate: 0.9}\nerror_spike: {after: 20m, error_rate: 0.5}\n")
    sim = make_sim(str(path))
    sim.start_test(50)
    sim.advance("15m")
    assert sim.modern()["errorRate"] == pytest.approx(0.10, abs=0.03)
    sim.advance("15m")
    assert sim.modern()["errorRate"] == pytest.approx(0.50, abs=0.05)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("modern: {success_rate: 1.5}", "modern: success_rate must be between 0 and 1, got 1.5"),
        ("moden: {}", "moden: unknown setting (known: name, description,"),
        ("error_spike: {after: soon}", "error_spike.after: bad duration 'soon'"),
        ("requests_per_second: lots", "requests_per_second: expected a number, got 'lots'"),
        ("thresholds: {min_requests: 2.5}", "thresholds.min_requests: expected an integer"),
        ("modern: {latency_p95_ms: 100}", "latency p95 must be above the mean"),
        ("base: stormy", "base: unknown preset 'stormy'"),
        ("faults: 3", "faults: expected a mapping"),
        ("- a list", "expected a mapping of scenario settings"),
        ("modern: {success_rate: [", "is not valid YAML"),
        ("auto_rollback_window: 90s", "whole minutes"),
    ],
)
def test_an_invalid_scenario_file_says_what_is_wrong(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text + "\n")
    with pytest.raises(UsageError) as caught:
        load_scenario(str(path))
    assert message in str(caught.value)
    assert str(path) in str(caught.value)


def test_a_scenario_can_drop_a_section_of_its_base(tmp_path: Path) -> None:
    path = tmp_path / "calm.yaml"
    path.write_text("base: degrade-at-50\ndegradation: null\n")
    assert load_scenario(str(path)).degradation is None


def test_subtle_degrade_is_8_percent_slower_and_1_point_worse_than_legacy_from_25(make_sim):
    sim = make_sim("subtle-degrade", seed=2)
    sim.start_test(25)
    sim.advance("30m")
    modern, legacy = sim.modern("30m"), sim.legacy("30m")
    assert modern["p95LatencyMs"] == pytest.approx(legacy["p95LatencyMs"] * 1.08, rel=1e-3)
    assert modern["errorRate"] - legacy["errorRate"] == pytest.approx(0.01, abs=0.005)


def test_noisy_healthy_jitters_latency_without_a_real_difference(make_sim):
    sim = make_sim("noisy-healthy", seed=2)
    sim.start_test(50)
    sim.advance("1h")
    modern, legacy = sim.modern("1h"), sim.legacy("1h")
    samples = modern["latencySamplesMs"]
    assert len(samples) > 300                       # a point per 10 s with requests
    spread = statistics.pstdev(samples) / statistics.mean(samples)
    assert spread > 0.2                             # jitter on top of a few requests each
    assert statistics.median(samples) == pytest.approx(statistics.median(
        legacy["latencySamplesMs"]), rel=0.05)
