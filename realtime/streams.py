"""The registry of stream kinds.

The transport knows nothing of the CRM: apps register the stream kinds they serve ("account" from
`feed`), each answering who may subscribe and who may receive an event, at delivery time.
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
    # can_see(user, arg) -> bool; runs in a worker thread (it may query the database).
    can_see: Callable[[Any, int | None], bool]


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
