"""``${VAR}`` and ``${VAR:-default}`` interpolation from the environment.

Interpolation runs over the raw document before validation so that a missing
variable is reported at the place that names it. ``$${`` writes a literal ``${``.
Values of variables that hold secrets are collected so every output can mask them; one
too short to be masked safely is refused.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from rollout_cli.errors import Problem
from rollout_cli.plan.yaml_source import Path, Positions
from rollout_cli.redact import MIN_SECRET_LENGTH, is_secret_name

_REFERENCE = re.compile(r"\$\$\{|\$\{([^}]*)\}")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass
class Interpolation:
    env: Mapping[str, str]
    secret_names: set[str]
    positions: Positions
    problems: list[Problem] = field(default_factory=list)
    secret_values: set[str] = field(default_factory=set)
    used: set[str] = field(default_factory=set)
    too_short: set[str] = field(default_factory=set)   # secrets refused, by name

    def walk(self, value: Any, path: Path) -> Any:
        if isinstance(value, str):
            return self._string(value, path)
        if isinstance(value, dict):
            return {k: self.walk(v, (*path, k)) for k, v in value.items()}
        if isinstance(value, list):
            return [self.walk(v, (*path, i)) for i, v in enumerate(value)]
        return value

    def _string(self, text: str, path: Path) -> str:
        if "$" not in text:
            return text
        return _REFERENCE.sub(lambda match: self._replace(match, path), text)

    def _replace(self, match: re.Match[str], path: Path) -> str:
        if match.group(0) == "$${":
            return "${"
        inner = match.group(1)
        name, sep, default = inner.partition(":-")
        if not _NAME.fullmatch(name):
            self.problems.append(self.positions.problem(
                path, f"bad environment reference ${{{inner}}}",
                "write ${NAME} or ${NAME:-default}"))
            return match.group(0)
        self.used.add(name)
        value = self.env.get(name)
        if value is None or (sep and value == ""):
            if not sep:
                self.problems.append(self.positions.problem(
                    path, f"environment variable {name} is not set",
                    f"export {name}, or give a default: ${{{name}:-value}}"))
                return ""
            value = default
        if name in self.secret_names or is_secret_name(name):
            self._secret(name, value, path)
        return value

    def _secret(self, name: str, value: str, path: Path) -> None:
        if value and len(value) < MIN_SECRET_LENGTH and name not in self.too_short:
            # Never the value itself, not even its first character.
            self.too_short.add(name)
            count = f"{len(value)} character{'s' if len(value) != 1 else ''}"
            self.problems.append(self.positions.problem(
                path, f"secret {name} is {count} long",
                f"a secret shorter than {MIN_SECRET_LENGTH} characters cannot be masked in "
                "what rollout prints and stores; give the real one, or an empty value to "
                "turn off what uses it"))
        self.secret_values.add(value)


def interpolate(data: Any, positions: Positions, env: Mapping[str, str],
                secret_names: set[str]) -> Interpolation:
    """Resolve references everywhere in ``data``; the result is in ``.data``."""
    job = Interpolation(env, secret_names, positions)
    job.data = job.walk(data, ())  # type: ignore[attr-defined]
    return job
