"""The deployment examples in examples/agent/ run `rollout agent` with options it has, and
say what the README says about them (two replicas on PostgreSQL, /healthz, SIGTERM)."""

from __future__ import annotations

import re
import shlex

import yaml

from tests.conftest import ROOT

EXAMPLES = ROOT / "examples" / "agent"


def _accepted(rollout, args: list[str]) -> None:
    """`rollout agent ARGS --help` parses ARGS first: an unknown option exits 2."""
    result = rollout(*args, "--help")
    assert result.code == 0, (args, result.err)


def test_the_systemd_unit_runs_the_agent_with_options_it_has(rollout):
    unit = (EXAMPLES / "rollout-agent.service").read_text()
    exec_start = re.search(r"^ExecStart=(.+)$", unit, re.MULTILINE)
    assert exec_start is not None
    argv = shlex.split(exec_start.group(1).replace("%H", "host"))
    assert argv[0].endswith("/rollout") and argv[1] == "agent"
    _accepted(rollout, argv[1:])
    assert "KillSignal=SIGTERM" in unit and "Restart=on-failure" in unit


def test_the_containerfile_runs_the_agent_and_checks_healthz(rollout):
    text = (EXAMPLES / "Containerfile").read_text()
    cmd = re.search(r"^CMD (\[.+\])$", text, re.MULTILINE)
    assert cmd is not None
    argv = yaml.safe_load(cmd.group(1))
    assert argv[:2] == ["rollout", "agent"]
    _accepted(rollout, argv[1:])
    assert "/healthz" in text and "STOPSIGNAL SIGTERM" in text
    assert "'.[postgres]'" in text                  # the Kubernetes example's image


def test_the_kubernetes_deployment_runs_two_agents_on_one_postgresql(rollout):
    documents = [d for d in yaml.safe_load_all((EXAMPLES / "kubernetes.yaml").read_text()) if d]
    deployment = next(d for d in documents if d["kind"] == "Deployment")
    assert deployment["spec"]["replicas"] == 2
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    args = container["args"]
    assert args[:2] == ["rollout", "agent"]
    env = {e["name"]: e for e in container["env"]}
    assert args[args.index("--state") + 1] == "$(ROLLOUT_STATE_URL)"
    assert env["ROLLOUT_STATE_URL"]["valueFrom"]["secretKeyRef"]["key"] == "state-url"
    assert container["readinessProbe"]["httpGet"]["path"] == "/healthz"
    url = "postgresql://rollout:pw@127.0.0.1:5432/rollouts?schema=rollout"
    _accepted(rollout, [url if a == "$(ROLLOUT_STATE_URL)" else a for a in args[1:]]
              + ["--name", "pod"])
    assert any(d["kind"] == "Service" for d in documents)


def test_the_kubernetes_agent_finds_plans_at_the_path_ci_gave_from_the_repository_root():
    documents = [d for d in yaml.safe_load_all((EXAMPLES / "kubernetes.yaml").read_text()) if d]
    pod = next(d for d in documents if d["kind"] == "Deployment")["spec"]["template"]["spec"]
    container = pod["containers"][0]
    [mount] = container["volumeMounts"]
    assert mount["mountPath"] == container["workingDir"] + "/plans"
