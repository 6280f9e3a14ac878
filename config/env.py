"""Typed readers for environment variables.

Every setting that comes from the environment goes through one of these helpers, so a bad value
fails at start with a message that names the variable instead of surfacing later as a strange bug.
"""

from __future__ import annotations

import os
from urllib.parse import urlparse

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default).strip()


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name}={raw!r} is not a boolean; use true or false.")


def env_int(name: str, default: int, *, minimum: int = 0, maximum: int = 2**31) -> int:
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not a whole number.") from None
    if not minimum <= value <= maximum:
        raise ImproperlyConfigured(f"{name}={value} is outside {minimum}..{maximum}.")
    return value


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return list(default)
    return [item.strip() for item in raw.split(",") if item.strip()]


def env_url(name: str, *, schemes: tuple[str, ...]) -> str:
    """Return the URL in `name`, or "" when unset; raise when it is set but unusable."""
    raw = env_str(name)
    if not raw:
        return ""
    parsed = urlparse(raw)
    if parsed.scheme not in schemes:
        allowed = ", ".join(f"{s}://" for s in schemes)
        raise ImproperlyConfigured(
            f"{name} must start with one of {allowed} (got {parsed.scheme!r})."
        )
    if parsed.scheme not in {"sqlite", "unix"} and not parsed.hostname:
        raise ImproperlyConfigured(f"{name} has no host name.")
    return raw


def env_durations(name: str, default: str) -> dict[str, str]:
    """`key=4h,other=2bd` as {"key": "4h", "other": "2bd"}: hours (h) or business days (bd).

    Fails loudly on anything else, at start-up rather than when the first request is raised."""
    raw = env_str(name, default)
    chosen: dict[str, str] = {}
    for part in filter(None, (piece.strip() for piece in raw.split(","))):
        key, _, value = part.partition("=")
        value = value.strip().lower()
        number = value.removesuffix("bd").removesuffix("h")
        if not key.strip() or not number.isdigit() or value == number or int(number) > 10_000:
            raise ImproperlyConfigured(f"{name}: {part!r} is not key=<hours>h or key=<days>bd.")
        chosen[key.strip()] = value
    return chosen
