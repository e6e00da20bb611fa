"""`rollout agent` drives what `rollout start` handed over, one agent per state directory,
and a driver killed or stopped mid-rollout is taken over without a call sent twice.

Everything is real: the agent and the followers are `python -m rollout_cli` processes, the
target is the sandbox on loopback, and the journal and the sandbox's call log are read
from outside.
"""

from __future__ import annotations

import fcntl
import json
import re
import signal
import time
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.agent.conftest import Agent, agent_plan, wait_for
from tests.rollouts.conftest import ON_EVERY_STORE, Operator, Target, read_until, serve

STAGES = ["canary-10", "canary-25", "canary-50", "canary-75", "full"]
NOBODY = "nobody is driving: run `rollout agent` or `rollout resume --follow`"


def _phase(operator: Operator) -> str:
    return str(operator.status()["phase"])


def rollout_dir(operator: Operator, rollout_id: str) -> Path:
    [found] = operator.state_dir.glob(f"rollouts/{rollout_id}")
    return found


def _sent_once(operator: Operator, target: Target, rollout_id: str | None = None) -> None:
    """Every call the journal (of ``rollout_id``; default: the only rollout) names as not
    idempotent reached the target (that rollout's own) as often as the journal intended
    it: a takeover re-sent none."""
    intended = Counter((event["line"].split(" ")[0], urlsplit(event["line"].split(" ")[1]).path)
                       for event in operator.events(rollout_id)
                       if event["type"] == "intent" and not event["idempotent"]
                       and event["line"].split(" ")[1].startswith(target.url))
    received = Counter((method, path) for method, path, _ in target.changes())
    assert intended, "the plan sends no non-idempotent call; the check would prove nothing"
    for call, count in intended.items():
        assert received[call] == count, (call, received[call], count)


def test_the_agent_finishes_a_rollout_that_start_handed_over(
        operator: Operator, target: Target, start_agent, tmp_path: Path):
    plan = agent_plan(tmp_path / "plan.yaml", gates="auto", bakes={"canary-10": "2s"})
    started = operator("start", str(plan))
    assert started.code == 3, started.err                   # baking at canary-10
    assert operator.status()["driven_by"] == NOBODY
    assert "driver    " + NOBODY in operator("status").out

    agent = start_agent("--name", "eu-1")
    driven = wait_for(lambda: operator.status()["driver"], 10, "driven by the agent")
    assert driven["name"] == "agent eu-1" and driven["pid"] == agent.process.pid
    assert (f"driven by agent eu-1 {driven['who']}, pid {agent.process.pid}"
            in operator("status").out)

    wait_for(lambda: _phase(operator) == "succeeded", 60, "succeeded")
    assert target.outcome()["percentage"] == 100
    assert operator.status()["driven_by"] is None            # ended: nobody needs to
    code, log = agent.stop()
    assert code == 0, log
    assert "succeeded" in log and "stopped; its leases are released" in log


def test_a_second_agent_on_the_directory_exits_4_and_sigterm_lets_go(
        operator: Operator, target: Target, start_agent, tmp_path: Path):
    plan = agent_plan(tmp_path / "plan.yaml")
    assert operator("start", str(plan)).code == 3            # at canary-10's manual gate
    first = start_agent("--name", "one")
    wait_for(lambda: operator.status()["driver"], 10, "driven by the first agent")

    second = operator.process("agent", "--listen", "127.0.0.1:0", "--name", "two",
                              timeout=30)
    assert second.code == 4, second.err
    assert f"Pid:       {first.process.pid}" in second.err
    assert "Operation: agent one" in second.err
    assert "another agent drives the rollouts of" in second.err
    assert "--lock-timeout" not in second.err and "Traceback" not in second.err

    code, log = first.stop(signal.SIGTERM)
    assert code == 0, log
    status = operator.status()
    assert status["phase"] == "waiting-gate" and status["driven_by"] == NOBODY
    lease = operator.store.open(status["rollout"]).lease()
    assert lease is not None and lease.expires == 0.0        # released, not left to expire


def test_a_follower_takes_over_from_a_killed_agent_without_sending_a_call_twice(
        operator: Operator, target: Target, start_agent, tmp_path: Path):
    plan = agent_plan(tmp_path / "plan.yaml", gates="auto", bake="1s", strict_start=True)
    ttl = {"ROLLOUT_LEASE_TTL": "3"}
    assert operator("start", str(plan)).code == 3
    agent = start_agent("--name", "doomed", env=ttl)
    wait_for(lambda: operator.status()["driver"], 10, "driven by the agent")
    follower = operator.spawn("resume", "--follow", env=ttl)
    watching = read_until(follower, r"driven by agent doomed .*: watching", 30, "stderr")
    assert f"pid {agent.process.pid}" in watching

    wait_for(lambda: operator.status()["stage"] == "canary-50", 60, "at canary-50")
    agent.process.kill()                                     # SIGKILL: no goodbye
    killed = time.time()
    agent.process.wait()
    taken = wait_for(lambda: (operator.status()["driver"] or {}).get("name")
                     == "resume --follow", 10, "taken over")
    took = time.time() - killed
    assert taken and took < 3 + 1

    finished = operator.finish(follower, timeout=90)
    assert finished.code == 0, finished.err
    assert _phase(operator) == "succeeded"
    _sent_once(operator, target)


def test_a_stopped_driver_is_taken_over_once_its_lease_expires_and_then_stands_down(
        operator: Operator, target: Target, start_agent, tmp_path: Path):
    """SIGSTOP, not SIGKILL: the agent's process is alive but silent (a hung host), so only
    the lease's expiry frees the rollout; woken up, it finds its lease taken (the token
    moved on) and watches instead of driving."""
    plan = agent_plan(tmp_path / "plan.yaml", gates="auto", bake="1s", strict_start=True)
    ttl = {"ROLLOUT_LEASE_TTL": "2"}
    assert operator("start", str(plan)).code == 3
    agent = start_agent("--name", "frozen", env=ttl)
    wait_for(lambda: operator.status()["driver"], 10, "driven by the agent")
    rollout_id = operator.status()["rollout"]
    rollout = operator.store.open(rollout_id)
    token = rollout.lease().token
    follower = operator.spawn("resume", "--follow", env=ttl)
    read_until(follower, r"driven by agent frozen .*: watching", 30, "stderr")
    wait_for(lambda: operator.status()["stage"] == "canary-25", 60, "at canary-25")
    guard = rollout_dir(operator, rollout_id) / ".lease.json.guard"

    def stopped_between_ticks() -> bool:
        """Stopped holding neither the rollout's lock (inside a tick) nor the lease file's
        guard (inside a heartbeat): either would stop everyone, not only the agent."""
        agent.process.send_signal(signal.SIGSTOP)
        with guard.open("rb") as file:
            try:
                fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
                fcntl.flock(file, fcntl.LOCK_UN)
                beating = False
            except BlockingIOError:
                beating = True
        if not beating and (rollout.lock_holder() or {}).get("pid") != agent.process.pid:
            return True
        agent.process.send_signal(signal.SIGCONT)
        return False
    wait_for(stopped_between_ticks, 10, "stopped between two ticks", every=0.1)
    stopped = time.time()
    wait_for(lambda: (operator.status()["driver"] or {}).get("name") == "resume --follow",
             15, "taken over by the follower")
    took = time.time() - stopped
    assert took < 2 + 2
    assert rollout.lease().token == token + 1

    agent.process.send_signal(signal.SIGCONT)
    finished = operator.finish(follower, timeout=90)
    assert finished.code == 0, finished.err
    assert _phase(operator) == "succeeded"
    _sent_once(operator, target)
    code, log = agent.stop()
    assert code == 0
    assert "driven by resume --follow" in log and ": watching" in log


def test_status_json_names_the_driver(operator: Operator, target: Target, start_agent,
                                      tmp_path: Path):
    plan = agent_plan(tmp_path / "plan.yaml")
    assert operator("start", str(plan)).code == 3
    assert json.loads(operator("status", "--output", "json").out)["driver"] is None
    agent = start_agent("--name", "json")
    driver = wait_for(lambda: operator.status()["driver"], 10, "driven")
    assert {driver["name"], driver["pid"]} == {"agent json", agent.process.pid}
    assert driver["expires"] > time.time()


def test_a_run_started_beside_an_agent_drives_its_own_rollout_and_the_agent_watches(
        operator: Operator, target: Target, start_agent, tmp_path: Path):
    """`rollout run --auto-approve` holds its rollout's lease from its creation: the agent,
    which would wait at the manual gates for a person, only watches it."""
    agent = start_agent("--name", "beside")
    plan = agent_plan(tmp_path / "plan.yaml", bakes={"canary-10": "2s", "canary-25": "2s"})
    ran = operator.process("run", str(plan), "--auto-approve", timeout=60)
    assert ran.code == 0, ran.err
    assert _phase(operator) == "succeeded"
    wait_for(lambda: "driven by start --follow" in agent.text, 5, "the agent watching")
    assert ": watching" in agent.text
    code, _ = agent.stop()
    assert code == 0


@ON_EVERY_STORE
def test_an_operators_pause_and_resume_reach_the_driving_agent_within_a_second(
        operator: Operator, target: Target, start_agent, tmp_path: Path):
    """A one-shot `pause` journals; the agent, measuring every 500 ms, stops measuring
    within a second. `resume` journals; it measures again."""
    plan = agent_plan(tmp_path / "plan.yaml", analysis=True, bakes={"canary-10": "1h"})
    assert operator("start", str(plan)).code == 3
    agent = start_agent("--name", "steady")

    def measured() -> int:
        return sum(event["type"] == "measured" for event in operator.events())
    wait_for(lambda: measured() >= 3, 30, "measuring at canary-10")
    assert operator("pause", "--reason", "looking at a graph").code == 3
    wait_for(lambda: "looking at a graph" in agent.text, 1.0, "the agent sees the pause")
    held = measured()
    time.sleep(2.0)   # four analysis intervals of a real process: nothing may be measured
    assert measured() == held
    assert operator.status()["driver"]["name"] == "agent steady"

    assert operator("resume").code == 3                      # baking again, one-shot
    wait_for(lambda: measured() >= held + 3, 10, "measuring again")


@pytest.mark.parametrize("operator", ["postgres"], indirect=True)
def test_agents_on_one_database_share_it_and_one_takes_over_when_the_other_is_killed(
        operator: Operator, target: Target, start_agent, tmp_path: Path):
    """Two agents on one PostgreSQL store (two machines in production): both run, the
    rollout's lease lets one drive; SIGKILL that one and the other drives on."""
    plan = agent_plan(tmp_path / "plan.yaml", gates="auto", bake="1s", strict_start=True)
    ttl = {"ROLLOUT_LEASE_TTL": "3"}
    assert operator("start", str(plan)).code == 3
    first = start_agent("--name", "one", env=ttl)
    wait_for(lambda: (operator.status()["driver"] or {}).get("name") == "agent one", 10,
             "driven by agent one")
    second = start_agent("--name", "two", env=ttl)       # no exit 4 on a shared store
    wait_for(lambda: operator.status()["stage"] == "canary-50", 60, "at canary-50")
    assert operator.status()["driver"]["name"] == "agent one"

    first.process.kill()
    killed = time.time()
    first.process.wait()
    wait_for(lambda: (operator.status()["driver"] or {}).get("name") == "agent two", 10,
             "taken over by agent two")
    assert time.time() - killed < 3 + 1

    wait_for(lambda: _phase(operator) == "succeeded", 90, "succeeded")
    _sent_once(operator, target)
    code, log = second.stop()
    assert code == 0, log


def _named_plan(path: Path, name: str, url: str) -> Path:
    """The demo plan (auto gates, 2 s bakes, a start never re-sent) as ``name``, on the
    sandbox at ``url``: several such rollouts may be active at once."""
    agent_plan(path, gates="auto", bake="2s", strict_start=True)
    text = path.read_text().replace("name: brain-api-demo", f"name: {name}")
    path.write_text(re.sub(r"base_url: .*", f"base_url: {url}", text))
    return path


@pytest.mark.parametrize("operator", ["postgres"], indirect=True)
def test_three_agents_share_three_rollouts_and_the_killed_ones_are_taken_over(
        operator: Operator, target: Target, start_agent, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]):
    """Three agents on one PostgreSQL, three rollouts on three sandboxes. SIGKILL the
    agent driving most of them: the other two drive every one of them again within the
    lease time plus a second, none re-sends a non-idempotent call, and every rollout
    succeeds as an uninterrupted run would."""
    ttl = {"ROLLOUT_LEASE_TTL": "3"}
    with serve() as second, serve() as third:
        targets = {"brain-api-a": target, "brain-api-b": second, "brain-api-c": third}
        for name, sandbox in targets.items():
            plan = _named_plan(tmp_path / f"{name}.yaml", name, sandbox.url)
            assert operator("start", str(plan)).code == 3, name
        ids = {meta.plan_name: meta.id for meta in operator.store.list()}
        assert set(ids) == set(targets)
        agents = [start_agent("--name", name, env=ttl) for name in ("one", "two", "three")]

        def drivers() -> dict[str, str | None]:
            now = time.time()
            found = {}
            for name, rollout_id in ids.items():
                lease = operator.store.open(rollout_id).lease()
                found[name] = (lease.driver.name if lease is not None and lease.live(now)
                               else None)
            return found

        def phase(rollout_id: str) -> str:
            shown = json.loads(operator("status", rollout_id, "--output", "json").out)
            return str(shown["phase"])

        wait_for(lambda: all(drivers().values()), 15, "all three driven")
        wait_for(lambda: all(_stage_index(operator, i) >= 1 for i in ids.values()),
                 60, "all three past canary-10")
        held = Counter(drivers().values())
        doomed_name, _ = held.most_common(1)[0]
        assert doomed_name is not None
        doomed = next(a for a in agents if _agent_name(a) == doomed_name)
        mine = [name for name, driver in drivers().items() if driver == doomed_name]
        assert all(phase(ids[name]) != "succeeded" for name in mine)
        doomed.process.kill()
        killed = time.time()
        doomed.process.wait()

        def taken() -> bool:
            now = drivers()
            return all(now[name] not in (None, doomed_name) for name in mine)
        wait_for(taken, 10, "taken over by the surviving agents", every=0.02)
        took = time.time() - killed
        with capsys.disabled():     # the `rollout` fixture captures; the figure is for people
            print(f"\n{doomed_name} killed holding {len(mine)} of 3 rollouts; taken over "
                  f"by {sorted(set(drivers().values()))} in {took:.2f} s")
        assert took < 3 + 1

        for name, rollout_id in ids.items():
            wait_for(lambda rid=rollout_id: phase(rid) == "succeeded", 120, f"{name} succeeded")
            assert targets[name].outcome()["percentage"] == 100
            _sent_once(operator, targets[name], rollout_id)
        for agent in agents:
            if agent is not doomed:
                code, log = agent.stop()
                assert code == 0, log


def _agent_name(agent: Agent) -> str:
    args = list(agent.process.args)  # type: ignore[arg-type]
    return f"agent {args[args.index('--name') + 1]}"


def _stage_index(operator: Operator, rollout_id: str) -> int:
    shown = json.loads(operator("status", rollout_id, "--output", "json").out)
    return STAGES.index(shown["stage"]) if shown["stage"] in STAGES else -1
