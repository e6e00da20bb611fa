"""Fixtures for the notification tests: a webhook receiver on 127.0.0.1, and the rollout
fixtures (sandbox target, operator, fast plan) shared with tests/rollouts."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.drivers.doubles import ScriptedServer
from tests.rollouts.conftest import clean_env, fast_plan, operator, target  # noqa: F401


class Receiver(ScriptedServer):
    """A webhook receiver that records what it was posted; answers 200 unless scripted."""

    def bodies(self) -> list[Any]:
        return [json.loads(request.body) for request in self.requests]

    def webhook(self, path: str = "/services/T0/B0/secret-token-1234") -> str:
        return self.url + path


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    server.start()
    yield server
    server.stop()
