"""Start-up cost of the `rollout` command, as a ratio to `python -c "import typer"`.

Times what a user runs: the `rollout` console script installed next to this interpreter
(`python -m rollout_cli` when there is none; the first line of output says which), with
byte code cached as in any installed copy (in a scratch PYTHONPYCACHEPREFIX, so also where
PYTHONDONTWRITEBYTECODE is set and nothing is written into the checkout). Each command
runs N times as a subprocess, every run next to a run of the floor and the commands in a
shuffled order each round, so that a busy machine slows both alike; the ratio is
median(command) / median(floor). Prints, per command, the median wall time, the ratio,
the target and PASS or MISS, and, for a shared machine, the same ratio of CPU time (user +
system), which waiting for a CPU does not inflate. Exits 1 on a miss, 2 when a command
does not end as it should (a broken command is never timed as a fast one) or the demo
that makes the finished rollout fails.

    python bench/startup.py [N]      # default 15

Targets (issue 7, "Start-up"): --help and --version within 1.5x of the floor, validate of
plans/brain-api.yaml within 2.5x. `status` gets two cases, with targets set from
validate's, the command whose work they resemble:

- no rollouts (an empty state directory: status says so and exits 2): 2.5x. It reads one
  directory, strictly less than validate's parse and check of a 48-hour plan, so it gets
  no more than validate's budget;
- one finished rollout (the demo, run first: 9 stages, ~165 journal events, 24 analysis
  rounds): 3.5x. Status loads that rollout's plan the way validate loads one (the checks'
  thresholds come from it), then folds the journal and prints every check's history:
  validate's 2.5x plus 1.0x.

One row is for reference, without a target: `rollout validate --help`, what naming a
subcommand costs before rollout's own code runs. (Typer 0.29 coerces each option through a
pydantic TypeAdapter, about 0.17 s of CPU per command; pyproject.toml keeps typer < 0.29.)
"""

from __future__ import annotations

import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PLAN = ROOT / "plans" / "brain-api.yaml"
FLOOR = [sys.executable, "-c", "import typer"]

Case = tuple[str, list[str], int, float | None]  # label, arguments, exit code, target ratio


def rollout_command() -> tuple[list[str], str]:
    """The console script next to this interpreter (what `pip install` gives users)."""
    script = Path(sys.executable).parent / "rollout"
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)], f"console script {script}"
    found = shutil.which("rollout")
    if found:
        return [found], f"console script {found} (from PATH)"
    return [sys.executable, "-m", "rollout_cli"], f"{sys.executable} -m rollout_cli"


def environment(scratch: Path) -> dict[str, str]:
    """Byte code cached under ``scratch``: without it (PYTHONDONTWRITEBYTECODE) every run
    would compile the project's modules again, which no user's run does."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONDONTWRITEBYTECODE", "ROLLOUT_STATE", "ROLLOUT_STATE_DIR",
                        "ROLLOUT_DEBUG")}
    env["PYTHONPYCACHEPREFIX"] = str(scratch / "pycache")
    return env


def run(argv: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float, int]:
    """Wall seconds, CPU seconds (user + system) and exit code of one run."""
    started = time.perf_counter()
    child = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)
    elapsed = time.perf_counter() - started
    return elapsed, usage.ru_utime + usage.ru_stime, os.waitstatus_to_exitcode(status)


def cases(scratch: Path, rollout: list[str], env: dict[str, str]) -> list[Case]:
    """The commands, after making the finished rollout `status` shows (the demo at 20x
    speed: a few seconds)."""
    finished = scratch / "finished"
    demo = subprocess.run([*rollout, "demo", "--speed", "20", "--output", "json",
                           "--state-dir", str(finished)], cwd=scratch, env=env,
                          capture_output=True, text=True, check=False)
    if demo.returncode != 0:
        print(f"setup: `rollout demo` exited {demo.returncode}: {demo.stderr[-500:]}",
              file=sys.stderr)
        raise SystemExit(2)
    return [
        ("--help", ["--help"], 0, 1.5),
        ("--version", ["--version"], 0, 1.5),
        ("validate plans/brain-api.yaml", ["validate", str(PLAN)], 0, 2.5),
        ("status (no rollouts)", ["status", "--state-dir", str(scratch / "empty")], 2, 2.5),
        ("status (one finished)", ["status", "--state-dir", str(finished)], 0, 3.5),
        ("validate --help (reference)", ["validate", "--help"], 0, None),
    ]


Runs = list[tuple[float, float]]  # (wall, cpu) seconds


def measure(rollout: list[str], runs: int, scratch: Path, env: dict[str, str],
            todo: list[Case]) -> tuple[Runs, dict[str, Runs]]:
    """The floor's and each case's runs; SystemExit(2) on a wrong exit code. Round 0 is
    the untimed warm-up (byte code, page cache) and checks every exit code."""
    run(FLOOR, scratch, env)
    floor: Runs = []
    times: dict[str, Runs] = {label: [] for label, *_ in todo}
    rng = random.Random(0)
    for index in range(runs + 1):
        order = list(todo) if index == 0 else rng.sample(todo, len(todo))
        for label, args, expected, _ in order:
            if index:
                floor.append(run(FLOOR, scratch, env)[:2])
            elapsed, cpu, code = run([*rollout, *args], scratch, env)
            if code != expected:
                print(f"rollout {label}: exit {code}, expected {expected}", file=sys.stderr)
                raise SystemExit(2)
            if index:
                times[label].append((elapsed, cpu))
    return floor, times


def report(floor: Runs, times: dict[str, Runs], todo: list[Case]) -> int:
    """Print the table; the number of missed targets."""
    base, base_cpu = (statistics.median(f[i] for f in floor) for i in (0, 1))
    print(f"{'':<40}{'wall':>8}     {'ratio':<7}{'target':<10}{'':<6}{'cpu ratio':>10}")
    print(f"{'floor: python -c ' + repr('import typer'):<40}{base * 1000:8.1f} ms")
    missed = 0
    for label, _, _, target in todo:
        median, cpu = (statistics.median(t[i] for t in times[label]) for i in (0, 1))
        ratio = median / base
        if target is None:
            verdict, goal = "", "-"
        else:
            verdict, goal = ("PASS" if ratio <= target else "MISS"), f"<= {target:.1f}x"
            missed += ratio > target
        print(f"{'rollout ' + label:<40}{median * 1000:8.1f} ms  {ratio:5.2f}x  {goal:<10}"
              f"{verdict:<6}{cpu / base_cpu:9.2f}x")
    return missed


def main(runs: int) -> int:
    rollout, how = rollout_command()
    scratch = Path(tempfile.mkdtemp(prefix="rollout-startup-"))
    try:
        env = environment(scratch)
        todo = cases(scratch, rollout, env)
        floor, times = measure(rollout, runs, scratch, env, todo)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print(f"rollout: {how}; {runs} runs each, interleaved with the floor; byte code cached")
    return 1 if report(floor, times, todo) else 0


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]) if len(sys.argv) > 1 else 15))
