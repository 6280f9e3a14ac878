"""What the feed pushes, and to which outbox stream. Called by actions inside their transaction.

Every event's `data` has the same JSON shape as the REST API's answer for the same object.
"""

from __future__ import annotations

from feed.models import Activity
from feed.serializers import activity_data
from realtime.outbox import record_event, record_events

ACTIVITY_CREATED = "activity.created"
ACTIVITY_UPDATED = "activity.updated"
ACTIVITY_DELETED = "activity.deleted"
FOLLOW_CHANGED = "follow.changed"


def account_stream(account_id: int) -> str:
    return f"account:{account_id}"


def team_stream(team_id: int) -> str:
    return f"team:{team_id}"


def requests_stream(team_id: int) -> str:
    """Every event of a request on an account of team `team_id` (the support queue's source)."""
    return f"requests:{team_id}"


def user_stream(user_id: int) -> str:
    return f"user:{user_id}"


def notifications_stream(user_id: int) -> str:
    return f"notifications:{user_id}"


def thread_topic(activity: Activity) -> str:
    """Every event of a thread (its root and replies) also goes to the thread's followers."""
    return f"thread:{activity.parent_id or activity.pk}"


def _teams_of(activity: Activity) -> list[int]:
    """The team streams an activity's events go to: its author's team and, for work given to
    someone (a task, a request), its assignee's team, each only on the team's own accounts.

    `team:<id>` is checked once, at subscription (managers of the team, admins), so an account
    outside the team (a grant elsewhere) would reach managers who cannot see it. The assignee's
    team hears because the dashboard counts work by assignee: a manager's task ticked off by a
    rep changes the rep's open work and tasks done.
    """
    people = [activity.author]
    if activity.kind in (Activity.Kind.TASK, Activity.Kind.REQUEST):
        people.append(activity.assignee)
    teams = [person.team_id for person in people if person is not None]
    return [t for t in dict.fromkeys(teams) if t is not None and t == activity.account.team_id]


def _beside_the_account(activity: Activity) -> list[str]:
    """The streams an activity's event goes to besides its account's: the teams of the people
    whose numbers it moves (the managers' dashboard), and for a request the support queue of the
    account's team."""
    streams = [team_stream(team_id) for team_id in _teams_of(activity)]
    if activity.kind == Activity.Kind.REQUEST:
        streams.append(requests_stream(activity.account.team_id))
    return streams


def _announced(activity: Activity, type: str) -> list[tuple[str, str, dict[str, object], str]]:
    """The outbox rows (stream, type, data, topic) of one event about `activity`."""
    data = activity_data(activity)
    rows = [(account_stream(activity.account_id), type, data, thread_topic(activity))]
    return rows + [(stream, type, data, "") for stream in _beside_the_account(activity)]


def activity_created(activity: Activity) -> None:
    """To the account's followers and viewers; to the author's team's managers; a request also
    to the support queue. One outbox write and one channel-layer message for all its streams
    (a post by a team member is two rows: one lock and one publish, not two of each)."""
    record_events(_announced(activity, ACTIVITY_CREATED))


def activities_created(activities: list[Activity]) -> None:
    """`activity_created` for many activities at once, in order (one outbox write)."""
    record_events([row for a in activities for row in _announced(a, ACTIVITY_CREATED)])


def activity_updated(activity: Activity) -> None:
    """An edit, a reaction, a task ticked off, a request moved on: subscribers replace what they
    show. A request's manager sees it move on too (the team ticker), as does the queue."""
    record_events(_announced(activity, ACTIVITY_UPDATED))


def activity_deleted(activity: Activity) -> None:
    """Subscribers remove it; the data says only which one it was. The teams whose numbers it
    counted in hear too (the dashboard's ticker and panels)."""
    data = {"id": activity.pk, "account": activity.account_id, "parent": activity.parent_id}
    record_event(
        stream=account_stream(activity.account_id),
        type=ACTIVITY_DELETED,
        data=data,
        topic=thread_topic(activity),
    )
    for team_id in _teams_of(activity):
        record_event(stream=team_stream(team_id), type=ACTIVITY_DELETED, data=data)


def account_merged(*, loser_id: int, survivor_id: int) -> None:
    """Subscribers of the merged-away account learn where its history went."""
    record_event(
        stream=account_stream(loser_id),
        type="account.merged",
        data={"account": loser_id, "merged_into": survivor_id},
    )


def follow_changed(
    *, user_id: int, account_id: int, is_following: bool, thread_id: int | None = None
) -> None:
    """To the user's own home streams, which then read their sources again."""
    data: dict[str, object] = {"account": account_id, "following": is_following}
    if thread_id is not None:
        data["thread"] = thread_id
    record_event(stream=user_stream(user_id), type=FOLLOW_CHANGED, data=data)
