"""A driver's lease (reconcile/driving.py) on the directory store, on an injected clock:
taken, kept fresh, lost to another driver when it lapsed, released."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime
from pathlib import Path

from rollout_cli.reconcile.driving import Driving, lease_ttl
from rollout_cli.store import open_store
from rollout_cli.store.identity import who
from rollout_cli.store.lease import Driver
from rollout_cli.store.protocol import RolloutMeta


class Clock:
    def __init__(self, now: float = 1000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


def _rollout(tmp_path: Path):  # type: ignore[no-untyped-def]
    plan = tmp_path / "plan.yaml"
    plan.write_text("version: 1\nname: brain-api\n")
    meta = RolloutMeta.for_plan("brain-api", plan, datetime(2026, 12, 6, tzinfo=UTC))
    return open_store(tmp_path / "state").create(meta)


def test_a_driver_whose_lapsed_lease_was_taken_stands_down(tmp_path: Path):
    rollout, clock = _rollout(tmp_path), Clock()
    frozen = Driving(rollout, Driver.here("agent a"), ttl=15, now=clock)
    taker = Driving(rollout, Driver.here("resume --follow"), ttl=15, now=clock)
    try:
        assert frozen.take() is not None and frozen.check()
        assert taker.take() is None                       # live: only watch

        clock.now += 20                                   # frozen slept through its beats
        assert taker.take() is not None
        assert not frozen.check() and frozen.lost.is_set()
        assert rollout.lease().driver.name == "resume --follow"
        assert rollout.lease().token == 2
    finally:
        frozen.release()
        taker.release()


def test_a_fresh_lease_is_checked_without_a_write_and_an_aging_one_is_renewed(
        tmp_path: Path):
    rollout, clock = _rollout(tmp_path), Clock()
    driving = Driving(rollout, Driver.here("agent a"), ttl=15, now=clock)
    try:
        driving.take()
        clock.now += 4
        assert driving.check() and rollout.lease().expires == 1015.0
        clock.now += 7                                    # 4 s left: less than ttl / 3
        assert driving.check() and rollout.lease().expires == 1026.0
        assert rollout.lease().token == 1
    finally:
        driving.release()
    assert rollout.lease().expires == 0.0                 # released: free at once
    assert not driving.check()


def test_the_lease_of_a_driver_gone_from_this_host_is_free_at_once(tmp_path: Path):
    rollout = _rollout(tmp_path)
    gone = subprocess.Popen(["true"])
    gone.wait()                                           # its pid runs no more
    dead = Driver("agent killed", who(), gone.pid, "dead0000")
    rollout.take_lease(dead, ttl=15, now=1000.0)
    assert not rollout.lease().live(1001.0)
    taken = rollout.take_lease(Driver.here("resume --follow"), ttl=15, now=1001.0)
    assert taken is not None and taken.token == 2
    elsewhere = Driver("agent far", "ops@another-host", gone.pid, "far00000")
    assert rollout.take_lease(elsewhere, ttl=15, now=1002.0) is None   # can't tell: live


def test_the_lease_time_comes_from_the_environment_for_tests_only():
    assert lease_ttl({}) == 15.0
    assert lease_ttl({"ROLLOUT_LEASE_TTL": "3"}) == 3.0
    assert lease_ttl({"ROLLOUT_LEASE_TTL": "soon"}) == 15.0
    assert lease_ttl({"ROLLOUT_LEASE_TTL": "0"}) == 15.0
