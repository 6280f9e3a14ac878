"""The safety-net access re-check, batched: one database round per process, not one per socket.

Whatever narrows access is announced and re-checked at once, per user (realtime.channel). What is
not announced (a session that simply expires, a team's managers edited in the admin) is caught by
re-checking, at delivery, every subscription whose last verdict is older than
`ACCESS_RECHECK_SECONDS`. On an account that has been quiet that long, every follower's verdict is
stale at the same post: asked one socket at a time that was two queries per socket, and a post to
1,000 followers after a quiet minute took 0.56 s to reach the last one (docs/benchmarks.md). Here
the hub gathers the sockets that asked and answers them together: one query for the users still
active, one per session-authenticated socket (a browser: one per person), and per stream one
question for every user on it where the stream kind can answer for many (`who_can_see`).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth import get_user_model

from realtime.streams import StreamKind


@dataclass(frozen=True)
class Question:
    """One socket's stale subscriptions: (client stream name, kind, argument) each."""

    user: Any
    session: Any  # the socket's session for a browser (cookie) connection, else None
    streams: tuple[tuple[str, StreamKind, int | None], ...]
    asked_at: float  # time.monotonic() when asked: later subscriptions have verdicts of their own


@dataclass
class Verdict:
    """The answer for one socket: whether it may stay open, and which streams it lost."""

    is_valid: bool = True
    lost: set[str] = field(default_factory=set)


def decide(questions: list[Question]) -> list[Verdict]:
    """The verdicts for `questions`, in order. Reads the database; run it in a worker thread."""
    user_ids = {q.user.pk for q in questions}
    active = set(
        get_user_model()
        .objects.filter(pk__in=user_ids, is_active=True)
        .values_list("pk", flat=True)
    )
    verdicts = [Verdict(is_valid=_is_valid(q, active)) for q in questions]
    # Who asks about each stream: (kind, arg) -> indexes of the questions.
    asking: dict[tuple[StreamKind, int | None], list[int]] = defaultdict(list)
    for index, question in enumerate(questions):
        if verdicts[index].is_valid:
            for _name, kind, arg in question.streams:
                asking[kind, arg].append(index)
    for (kind, arg), indexes in asking.items():
        allowed = _allowed(kind, arg, [questions[i].user for i in indexes])
        for index in indexes:
            if questions[index].user.pk not in allowed:
                names = [n for n, k, a in questions[index].streams if (k, a) == (kind, arg)]
                verdicts[index].lost.update(names)
    return verdicts


def _is_valid(question: Question, active: set[int]) -> bool:
    if question.user.pk not in active:
        return False
    session = question.session
    if session is None:
        return True  # a ticket connection: its user being active is all there is to check
    key = getattr(session, "session_key", None)
    return bool(key) and bool(session.exists(key))  # logged out or expired otherwise


def _allowed(kind: StreamKind, arg: int | None, users: list[Any]) -> set[int]:
    """Ids of `users` who may still see `kind:arg`."""
    if kind.who_can_see is not None:
        return kind.who_can_see({user.pk for user in users}, arg)
    return {user.pk for user in users if kind.can_see(user, arg)}
