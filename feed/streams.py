"""The stream kinds the feed serves over `/ws/`, and the outbox streams behind them.

| client stream   | who may subscribe              | outbox streams it reads                   |
|-----------------|--------------------------------|-------------------------------------------|
| `account:<id>`  | whoever can see the account    | `account:<id>`                            |
| `home`          | any user                       | `account:<id>` of each followed account,  |
|                 |                                | `thread:<id>` of each followed thread,    |
|                 |                                | `user:<own id>` (follow changes); muted   |
|                 |                                | threads left out                          |
| `team:<id>`     | the team's managers and admins | `team:<id>` (activity by its members)     |
| `notifications` | any user (their own)           | `notifications:<own id>`                  |
| `requests`      | any user                       | `requests:<team id>` of each team whose   |
|                 |                                | accounts they all see, and `account:<id>` |
|                 |                                | of each other account they can see        |

`requests` is the support queue's stream. Request events go to `requests:<team of the account>`
besides the account's own stream, so support staff (who see every account) read one source per
team instead of ten thousand account streams; a rep's owned or granted accounts outside their
teams come through the account streams, whose other events the page ignores.
"""

from __future__ import annotations

from typing import Any

from crm.models import Account, Team
from crm.visibility import can_see_account, people_who_can_see, visible_accounts
from feed import events
from feed.queries import followed_account_ids, followed_thread_ids, muted_thread_ids
from realtime.outbox import streams_head
from realtime.streams import StreamKind, register


def _is_active_user(user: Any) -> bool:
    return bool(getattr(user, "is_authenticated", False) and user.is_active)


def _account_sources(user: Any, account_id: int | None) -> frozenset[str]:
    return frozenset({events.account_stream(account_id or 0)})


def _account_watchers(user_ids: set[int], account_id: int | None) -> set[int]:
    """Which of `user_ids` may see the account: the policy read backwards, one query for all."""
    account = Account.objects.filter(pk=account_id or 0).first()
    if account is None:
        return set()
    people = people_who_can_see(account).filter(pk__in=user_ids)
    return set(people.values_list("pk", flat=True))


def _notifications_withheld(user: Any, arg: int | None, messages: list[dict[str, Any]]) -> set[int]:
    """Notifications replayed by a catch-up whose account the reader can no longer see: their
    titles name it ("Bob mentioned you on Acme"). The inbox API leaves them out the same way."""
    about = {
        m["id"]: m["data"].get("account")
        for m in messages
        if m["type"] == "notification.created" and isinstance(m.get("data"), dict)
    }
    if not about:
        return set()
    seen = set(
        visible_accounts(user).filter(pk__in=set(about.values())).values_list("pk", flat=True)
    )
    return {event_id for event_id, account_id in about.items() if account_id not in seen}


def _home_sources(user: Any, arg: int | None) -> frozenset[str]:
    followed = {events.account_stream(pk) for pk in followed_account_ids(user)}
    threads = {f"thread:{pk}" for pk in followed_thread_ids(user)}
    return frozenset({*followed, *threads, events.user_stream(user.pk)})


def _home_skips(user: Any, arg: int | None) -> frozenset[str]:
    return frozenset(f"thread:{pk}" for pk in muted_thread_ids(user))


def _requests_sources(user: Any, arg: int | None) -> frozenset[str]:
    from crm.models import User

    if user.is_admin or user.role == User.Role.SUPPORT:
        teams = set(Team.objects.values_list("pk", flat=True))
    else:
        teams = set(Team.objects.filter(managers=user.pk).values_list("pk", flat=True))
        if user.team_id is not None:
            teams.add(user.team_id)
    others = visible_accounts(user).exclude(team_id__in=teams).values_list("pk", flat=True)
    return frozenset(
        {events.requests_stream(pk) for pk in teams} | {events.account_stream(pk) for pk in others}
    )


def can_watch_team(user: Any, team_id: int | None) -> bool:
    if not _is_active_user(user) or team_id is None:
        return False
    if user.is_admin:
        return Team.objects.filter(pk=team_id).exists()
    if user.role != "manager":
        return False  # as crm.visibility: only the manager role sees managed teams
    return Team.objects.filter(pk=team_id, managers=user.pk).exists()


def register_streams() -> None:
    register(
        StreamKind(
            kind="account",
            takes_arg=True,
            can_see=lambda user, pk: pk is not None and can_see_account(user, pk),
            sources=_account_sources,
            static_sources=True,
            has_presence=True,
            who_can_see=_account_watchers,
        )
    )
    register(
        StreamKind(
            kind="home",
            takes_arg=False,
            can_see=lambda user, _: _is_active_user(user),
            sources=_home_sources,
            skips=_home_skips,
            refresh_on=frozenset({events.FOLLOW_CHANGED}),
        )
    )
    register(
        StreamKind(
            kind="team",
            takes_arg=True,
            can_see=can_watch_team,
            sources=lambda user, pk: frozenset({events.team_stream(pk or 0)}),
            static_sources=True,
        )
    )
    register(
        StreamKind(
            kind="requests",
            takes_arg=False,
            can_see=lambda user, _: _is_active_user(user),
            sources=_requests_sources,
        )
    )
    register(
        StreamKind(
            kind="notifications",
            takes_arg=False,
            can_see=lambda user, _: _is_active_user(user),
            sources=lambda user, _: frozenset({events.notifications_stream(user.pk)}),
            static_sources=True,
            withheld=_notifications_withheld,
        )
    )


def account_stream_cursor(account_id: int) -> str:
    """The cursor a page rendered now hands to its socket for `account:<id>`."""
    return str(streams_head({events.account_stream(account_id)}))


def home_stream_cursor(user: Any) -> str:
    return str(streams_head(set(_home_sources(user, None))))


def requests_stream_cursor(user: Any) -> str:
    """The cursor the queue page hands to its socket for `requests`."""
    return str(streams_head(set(_requests_sources(user, None))))


def team_stream_cursor(team_id: int) -> str:
    return str(streams_head({events.team_stream(team_id)}))
