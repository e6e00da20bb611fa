"""Metric providers, by the plan key that names them (``http``, ``prometheus``).

A provider is one module of this package whose ``PROVIDER`` is a ``Provider``: its plan key,
the model of what is under that key, the keys it adds beside it, how it builds its requests
and how it reads their answers into a value. The registry imports every module here whose
name does not start with ``_`` the first time a plan is read; ``register`` adds one from
elsewhere (a test's, a plugin's). Nothing else names a provider: the plan's ``Metric``
model, its JSON Schema, validation, ``MetricFetcher`` and `rollout simulate` ask the
registry.

Errors: a provider raises ``ProviderError`` for a measurement that failed (the message is
shown to the operator) and ValueError from ``check`` for keys that do not fit together.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping

from rollout_cli.providers._numbers import ProviderError, Value
from rollout_cli.providers._provider import Provider

__all__ = ["Provider", "ProviderError", "Value", "register", "registered", "unregister"]

_registered: dict[str, Provider] | None = None
_building = threading.Lock()


def registered() -> Mapping[str, Provider]:
    """Every provider by its plan key. The mapping is replaced, never changed, when one is
    registered, so a model built from it can tell that it is out of date."""
    global _registered
    if _registered is None:
        with _building:   # once, and never seen half-built (the agent's threads)
            if _registered is None:
                found: dict[str, Provider] = {}
                for provider in _built_in():
                    found = _with(found, provider)
                _registered = found
    return _registered


def register(provider: Provider) -> None:
    """Add ``provider``; ValueError if its key, or a key beside it, is taken."""
    global _registered
    _registered = _with(registered(), provider)


def unregister(key: str) -> None:
    global _registered
    _registered = {k: p for k, p in registered().items() if k != key}


def _built_in() -> list[Provider]:
    import importlib
    import pkgutil

    return [importlib.import_module(f"{__name__}.{module.name}").PROVIDER
            for module in pkgutil.iter_modules(__path__) if not module.name.startswith("_")]


def _with(providers: Mapping[str, Provider], provider: Provider) -> dict[str, Provider]:
    from rollout_cli.plan.fields import fields_of
    from rollout_cli.plan.models import Metric

    taken = {key: "every metric" for key in fields_of(Metric)}
    for other in providers.values():
        taken[other.key] = f"the {other.key} provider"
        taken.update((key, f"the {other.key} provider") for key in other.beside)
    for key in (provider.key, *provider.beside):
        if key in taken:
            raise ValueError(f"metric provider {provider.key!r}: the key {key!r} is taken "
                             f"by {taken[key]}")
    return {**providers, provider.key: provider}
