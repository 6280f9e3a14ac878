"""The registry of stream kinds.

The transport knows nothing of the CRM: apps register the stream kinds they serve (`feed` registers
"account", "home", "team" and "notifications"). Each kind answers who may subscribe, and which
outbox streams ("sources") a subscription reads: `account:7` reads the source `account:7`; `home`
reads the sources of every account the user follows.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

STREAM_NAME = re.compile(r"^(?P<kind>[a-z]{1,20})(?::(?P<arg>[0-9]{1,18}))?$")


@dataclass(frozen=True)
class StreamKind:
    kind: str
    # Whether the stream takes a numeric argument ("account:12") or none ("home").
    takes_arg: bool
    # can_see(user, arg) -> bool and sources(user, arg) -> outbox stream names. Both run in a
    # worker thread (they query the database) and are asked again while a subscription lives.
    can_see: Callable[[Any, int | None], bool]
    sources: Callable[[Any, int | None], frozenset[str]]
    # Event types that change this subscription's sources (a follow): re-read them at once.
    refresh_on: frozenset[str] = frozenset()
    # Whether the sources depend only on the stream's argument (never re-read once known).
    static_sources: bool = False
    # Whether subscribers are told who else has the stream open (`presence.changed`).
    has_presence: bool = False
    # skips(user, arg) -> topics whose events this subscription leaves out (muted threads).
    skips: Callable[[Any, int | None], frozenset[str]] = lambda user, arg: frozenset()
    # who_can_see(user ids, arg) -> those of them who may see it, in one question for many users
    # (the batched access re-check, realtime/verdicts.py); None: can_see is asked per user.
    who_can_see: Callable[[set[int], int | None], set[int]] | None = None
    # withheld(user, arg, events) -> ids of the events (outbox messages) a catch-up must not
    # replay: for a stream anyone may open whose events each concern something the reader may
    # since have lost (a notification about an account). Live events were checked when written.
    withheld: Callable[[Any, int | None, list[dict[str, Any]]], set[int]] | None = None


_KINDS: dict[str, StreamKind] = {}


def register(kind: StreamKind) -> None:
    _KINDS[kind.kind] = kind


def resolve(name: object) -> tuple[StreamKind, int | None] | None:
    """The kind and argument of a client-given stream name, or None when it names nothing."""
    if not isinstance(name, str):
        return None
    match = STREAM_NAME.match(name)
    if match is None:
        return None
    kind = _KINDS.get(match["kind"])
    if kind is None:
        return None
    arg = match["arg"]
    if kind.takes_arg != (arg is not None):
        return None
    return kind, int(arg) if arg is not None else None
