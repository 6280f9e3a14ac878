"""The periodic jobs: meeting reminders and task alerts, each idempotent; and their schedule."""

from __future__ import annotations

import datetime as dt
import zoneinfo

from django.utils import timezone

from config.celery import app
from feed import actions as feed
from notifications import actions
from notifications.models import Notification
from tests.conftest import Cast


def meeting_in(cast: Cast, minutes: int) -> int:
    meeting = feed.log_meeting(
        actor=cast.owner,
        account=cast.account,
        subject="Pricing review",
        starts_at=timezone.now() + dt.timedelta(minutes=minutes),
        users=[cast.owner, cast.teammate],
    )
    return meeting.pk


def reminders() -> list[tuple[str, str]]:
    rows = Notification.objects.filter(kind="meeting_reminder").order_by("recipient__username")
    return list(rows.values_list("recipient__username", "title"))


def test_attendees_are_reminded_once_within_their_lead_time(cast: Cast) -> None:
    meeting_in(cast, 10)
    now = timezone.now()
    assert actions.send_meeting_reminders(now) == 2
    assert actions.send_meeting_reminders(now + dt.timedelta(minutes=1)) == 0  # idempotent
    assert [name for name, _ in reminders()] == ["alice", "bob"]
    assert "Pricing review" in reminders()[0][1]


def test_lead_time_is_per_person(cast: Cast) -> None:
    actions.set_schedule(user=cast.teammate, reminder_minutes=60)
    meeting_in(cast, 45)
    assert actions.send_meeting_reminders(timezone.now()) == 1
    assert [name for name, _ in reminders()] == ["bob"]


def test_started_meeting_reminds_nobody(cast: Cast) -> None:
    feed.log_meeting(
        actor=cast.owner,
        account=cast.account,
        subject="Kickoff",
        starts_at=timezone.now() - dt.timedelta(minutes=1),
        users=[cast.teammate],
    )
    assert actions.send_meeting_reminders(timezone.now()) == 0


def test_task_falls_due_then_overdue_each_told_once(cast: Cast) -> None:
    due = timezone.now() + dt.timedelta(hours=2)
    feed.create_task(
        actor=cast.owner, account=cast.account, subject="Quote", assignee=cast.teammate, due_at=due
    )
    assert actions.send_task_alerts(timezone.now()) == 1
    assert actions.send_task_alerts(timezone.now()) == 0
    assert actions.send_task_alerts(due + dt.timedelta(minutes=1)) == 1
    assert actions.send_task_alerts(due + dt.timedelta(minutes=2)) == 0
    kinds = Notification.objects.filter(recipient=cast.teammate).values_list("kind", flat=True)
    assert sorted(kinds) == ["task_due", "task_overdue"]


def test_done_task_raises_no_alert(cast: Cast) -> None:
    task = feed.create_task(
        actor=cast.owner,
        account=cast.account,
        subject="Quote",
        due_at=timezone.now() - dt.timedelta(hours=1),
    )
    feed.set_task_done(actor=cast.owner, task=task)
    assert actions.send_task_alerts(timezone.now()) == 0


def test_celery_is_set_for_reliability() -> None:
    conf = app.conf
    assert conf.task_acks_late is True
    assert conf.task_reject_on_worker_lost is True
    assert conf.task_serializer == "json" and conf.accept_content == ["json"]
    assert conf.task_time_limit and conf.task_soft_time_limit < conf.task_time_limit
    # Longer than every countdown or periodic interval, so Redis never re-delivers a waiting task.
    timeout = conf.broker_transport_options.get("visibility_timeout", 2 * 24 * 3600)
    longest_schedule = max(
        entry["schedule"].total_seconds() if isinstance(entry["schedule"], dt.timedelta) else 3600
        for entry in conf.beat_schedule.values()
    )
    assert timeout > 24 * 3600 > longest_schedule


def test_every_periodic_job_names_a_registered_task() -> None:
    app.autodiscover_tasks(force=True)  # what a worker does at start-up
    jobs = {entry["task"] for entry in app.conf.beat_schedule.values()}
    assert {
        "notifications.tasks.send_meeting_reminders",
        "notifications.tasks.send_task_alerts",
        "notifications.tasks.flush_emails",
        "notifications.tasks.sweep_happenings",
        "notifications.tasks.send_digests",
    } <= jobs
    assert jobs <= set(app.tasks)


def test_the_schedule_says_why_for_each_job() -> None:
    from pathlib import Path

    import config.celery

    source = Path(config.celery.__file__).read_text()
    block = source[source.index("app.conf.beat_schedule = {") :]
    entries = [line for line in block.splitlines() if line.strip().startswith('"') and "{" in line]
    comments = [line for line in block.splitlines() if line.strip().startswith("#")]
    assert len(comments) >= len(entries) == len(app.conf.beat_schedule)


def test_a_reminder_tells_the_time_in_the_readers_time_zone(cast: Cast) -> None:
    actions.set_schedule(user=cast.teammate, timezone="Asia/Tokyo")
    starts_at = timezone.now() + dt.timedelta(minutes=10)
    feed.log_meeting(
        actor=cast.owner,
        account=cast.account,
        subject="Pricing review",
        starts_at=starts_at,
        users=[cast.owner, cast.teammate],
    )
    actions.send_meeting_reminders(timezone.now())
    titles = dict(reminders())
    tokyo = starts_at.astimezone(zoneinfo.ZoneInfo("Asia/Tokyo")).strftime("%H:%M JST")
    assert titles["bob"].endswith(f"starts at {tokyo}")
    assert titles["alice"].endswith(f"starts at {starts_at.astimezone(dt.UTC):%H:%M} UTC")


def test_every_task_of_ours_can_be_queued() -> None:
    """Celery refuses to send a task whose soft time limit is above its hard one (a task's own
    `time_limit` under the app's default `task_soft_time_limit` is such a task): it would never run,
    from the write path or from beat. Each is sent here for real, on an in-memory broker."""
    import inspect

    app.autodiscover_tasks(force=True)
    ours = {name: task for name, task in app.tasks.items() if not name.startswith("celery.")}
    assert "integrations.tasks.deliver_customer_reply" in ours
    refused = {}
    with app.connection_for_write("memory://") as connection:
        for name, task in sorted(ours.items()):
            parameters = inspect.signature(task.run).parameters.values()
            args = [1 for p in parameters if p.default is inspect.Parameter.empty]
            try:
                task.apply_async(args=args, connection=connection)
            except ValueError as error:
                refused[name] = str(error)
    assert refused == {}
