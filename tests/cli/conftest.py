"""The rollouts' fixtures (a sandbox target on loopback, fast plans), for the CLI's tests."""

from tests.rollouts.conftest import clean_env, fast_plan, target  # noqa: F401
