"""What happened in the feed, announced to whoever tells people about it.

`feed` never imports `notifications` (imports go notifications -> feed), so the notifications
app listens here at start-up, as the feed listens to `crm.changes`. Actions announce inside their
transaction, after the change is written, so a listener's own rows commit with the change.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from feed.models import Activity

CREATED = "created"
ASSIGNED = "assigned"
STATUS_CHANGED = "status_changed"


@dataclass(frozen=True)
class Happening:
    """`what` happened to `activity`, done by `actor_id` (None: the system)."""

    what: str
    activity: Activity
    actor_id: int | None
    previous_status: str = ""


Listener = Callable[[Happening], object]
ManyListener = Callable[[list[Happening]], object]
_listeners: list[Listener] = []
# A listener's way of taking many happenings at once (bulk writes: the inbound email worker).
_many: dict[Listener, ManyListener] = {}
_is_quiet: contextvars.ContextVar[bool] = contextvars.ContextVar("feed_quiet", default=False)


def listen(listener: Listener, *, many: ManyListener | None = None) -> None:
    """Call `listener` for each happening; `many`, when given, takes a batch in one call."""
    if listener not in _listeners:
        _listeners.append(listener)
    if many is not None:
        _many[listener] = many


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Record history without telling anyone: demo data and bulk back-fills of old records."""
    token = _is_quiet.set(True)
    try:
        yield
    finally:
        _is_quiet.reset(token)


def announce(happening: Happening) -> None:
    if _is_quiet.get():
        return
    for listener in _listeners:
        listener(happening)


def announce_many(batch: list[Happening]) -> None:
    """`announce` for a batch written together: each listener takes it in one call if it can."""
    if _is_quiet.get() or not batch:
        return
    for listener in _listeners:
        if listener in _many:
            _many[listener](batch)
        else:
            for happening in batch:
                listener(happening)
