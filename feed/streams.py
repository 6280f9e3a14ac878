"""The stream kinds the feed serves over `/ws/`."""

from __future__ import annotations

from typing import Any

from crm.visibility import can_see_account
from realtime.outbox import stream_head
from realtime.streams import StreamKind, register


def _can_see_account_stream(user: Any, account_id: int | None) -> bool:
    return account_id is not None and can_see_account(user, account_id)


def register_streams() -> None:
    register(StreamKind(kind="account", takes_arg=True, can_see=_can_see_account_stream))


def account_stream_cursor(account_id: int) -> str:
    """The cursor a page rendered now hands to its socket for `account:<id>`."""
    from feed.events import account_stream

    return str(stream_head(account_stream(account_id)))
