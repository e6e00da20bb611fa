"""Secrets never leave the process: one redactor for every printed or stored string."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import unquote_plus, urlsplit, urlunsplit

MASK = "***"
# Shorter values would mask innocent text ("1", "a"), so the redactor skips them; the plan
# loader refuses a secret this short rather than let it be printed.
MIN_SECRET_LENGTH = 4
# The names of secrets: headers, variables, JSON keys, query parameters. "key" alone only as
# a whole word (x-api-key, key), not inside another ("monkey", "keyboard").
_SECRET_WORDS = ("authorization", "token", "secret", "password", "passwd", "cookie",
                 "webhook", "credential")
SECRET_NAME = re.compile("|".join((*_SECRET_WORDS, r"api[-_]?key", r"(^|[-_])key$")),
                         re.IGNORECASE)
# Query parameters that carry credentials under other names (signed URLs, sessions).
_SECRET_QUERY_NAME = re.compile(r"sig(nature)?$|auth|session", re.IGNORECASE)


@functools.lru_cache(maxsize=1024)  # every answer's headers and keys ask again
def is_secret_name(name: str) -> bool:
    """True for a header, variable or JSON key name that conventionally holds a secret."""
    return bool(SECRET_NAME.search(name))


def is_secret_query_name(name: str) -> bool:
    """True for a URL query parameter that may carry a credential."""
    return is_secret_name(name) or bool(_SECRET_QUERY_NAME.search(name))


def may_name_secret(text: str) -> bool:
    """False when no part of ``text`` can be a secret's name: a test of substrings, much
    cheaper than walking a parsed JSON document key by key."""
    lowered = text.lower()
    return "key" in lowered or any(word in lowered for word in _SECRET_WORDS)


class Redactor:
    """Replaces every known secret value, wherever it appears, with ``***``."""

    def __init__(self, secrets: Iterable[str] = ()):
        # Very short values would mask innocent text ("1", "a"); they are still masked
        # where they stand whole in a secret-named header.
        self._secrets = sorted({s for s in secrets if len(s) >= MIN_SECRET_LENGTH}, key=len,
                               reverse=True)

    def add(self, value: str) -> None:
        if len(value) >= MIN_SECRET_LENGTH and value not in self._secrets:
            self._secrets.append(value)
            self._secrets.sort(key=len, reverse=True)

    def text(self, value: str) -> str:
        for secret in self._secrets:
            if secret in value:
                value = value.replace(secret, MASK)
        return value

    def headers(self, headers: Mapping[str, str]) -> dict[str, str]:
        return {
            name: (MASK if is_secret_name(name) and value else self.text(value))
            for name, value in headers.items()
        }

    def data(self, value: Any) -> Any:
        """Redact a JSON-like structure: strings by value, mapping entries by key name."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, Mapping):
            return {
                k: (MASK if isinstance(k, str) and is_secret_name(k) and isinstance(v, str) and v
                    else self.data(v))
                for k, v in value.items()
            }
        if isinstance(value, list | tuple):
            return [self.data(v) for v in value]
        return value


def redact_url(url: str, redactor: Redactor) -> str:
    """The URL with userinfo and secret-looking query values masked, then redacted."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, host = netloc.rpartition("@")
        user, has_password, _ = userinfo.partition(":")
        # A bare user part is usually a token (https://TOKEN@host), so it goes too.
        netloc = f"{user}:{MASK}@{host}" if has_password else f"{MASK}@{host}"
    query = "&".join(_redact_query_pair(pair) for pair in parts.query.split("&"))
    query = query if parts.query else ""
    safe = urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
    return redactor.text(safe)


def _redact_query_pair(pair: str) -> str:
    name, has_value, value = pair.partition("=")
    if has_value and value and is_secret_query_name(unquote_plus(name)):
        return f"{name}={MASK}"
    return pair
