"""The Celery app. Wiring only: settings come from config.settings (CELERY_ prefix)."""

from __future__ import annotations

import datetime as dt
import os

from celery import Celery
from celery.schedules import crontab

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("tidings")
app.config_from_object("django.conf:settings", namespace="CELERY")


def _configure() -> None:
    from django.conf import settings

    conf: dict[str, object] = {
        # Reliability: a task is acknowledged only after it ran, and goes back to the queue when
        # its worker dies; JSON only; every task has a time limit.
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        "task_time_limit": 300,
        "task_soft_time_limit": 240,
        "worker_prefetch_multiplier": 1,
        "task_ignore_result": True,
        "broker_connection_retry_on_startup": True,
        # Publishing happens after commit, on the request's path, and every task we publish has
        # a row that a periodic sweep works if the message never left (happenings, inbound
        # messages, customer replies). So one immediate reconnect, for a pooled connection that a
        # Redis restart made stale, and then give up: kombu's default (three retries 0.2 s apart)
        # held each post ~0.6 s while Redis was down, for nothing the sweep would not do anyway.
        "task_publish_retry_policy": {
            "max_retries": 1,
            "interval_start": 0,
            "interval_step": 0,
            "interval_max": 0,
        },
        "timezone": "UTC",
        "beat_schedule_filename": str(settings.VAR_DIR / "celerybeat-schedule"),
    }
    if settings.CELERY_BROKER_URL.startswith("filesystem"):
        # The embedded default has no broker server: messages are files in var/celery/.
        folder = settings.CELERY_FILESYSTEM_DIR
        folder.mkdir(parents=True, exist_ok=True)
        conf["broker_transport_options"] = {
            "data_folder_in": str(folder),
            "data_folder_out": str(folder),
            "store_processed": False,
        }
    else:
        # Longer than any countdown or ETA we schedule (the longest is a day for digests), so
        # Redis never re-delivers a task that is merely waiting.
        conf["broker_transport_options"] = {"visibility_timeout": 2 * 24 * 3600}
    app.conf.update(conf)


_configure()
app.autodiscover_tasks()


def _every_sweep() -> dt.timedelta:
    from django.conf import settings

    return dt.timedelta(seconds=settings.TIDINGS_SWEEP_SECONDS)


# Periodic jobs live here, one line and one reason each. Every job is idempotent: running it
# twice (two beats, a retried task) tells nobody twice.
app.conf.beat_schedule = {
    # Meetings starting within each attendee's lead time (default 15 minutes) remind them.
    "meeting-reminders": {
        "task": "notifications.tasks.send_meeting_reminders",
        "schedule": _every_sweep(),
    },
    # Tasks falling due within a day, and ones just overdue, tell their assignees.
    "task-alerts": {"task": "notifications.tasks.send_task_alerts", "schedule": _every_sweep()},
    # Requests past their due time tell their assignee and their queue's lead (once per due time).
    "request-alerts": {
        "task": "notifications.tasks.send_request_alerts",
        "schedule": _every_sweep(),
    },
    # Emails whose batching wait is over go out, grouped per person and account.
    "flush-email-batches": {"task": "notifications.tasks.flush_emails", "schedule": _every_sweep()},
    # Happenings whose task never ran (lost message, killed worker) are worked here.
    "sweep-happenings": {
        "task": "notifications.tasks.sweep_happenings",
        "schedule": _every_sweep(),
    },
    # Digests go out hourly to those whose local digest hour has come (once a day or week each).
    "digests": {"task": "notifications.tasks.send_digests", "schedule": crontab(minute=5)},
    # The event outbox keeps TIDINGS_EVENT_RETENTION_DAYS of events; older cursors resync.
    "prune-realtime-events": {
        "task": "realtime.tasks.prune_events",
        "schedule": crontab(minute=41, hour=3),
    },
    # Tickets are single-use and expire within a minute; drop dead rows to keep the table small.
    "prune-expired-realtime-tickets": {
        "task": "realtime.tasks.prune_expired_tickets",
        "schedule": crontab(minute="*/10"),
    },
    # An inbound message whose task was lost (broker down at accept, worker killed) is queued
    # again; processing is idempotent, so a message queued twice is still posted once.
    "requeue-stale-inbound-emails": {
        "task": "integrations.tasks.requeue_stale_inbound_emails",
        "schedule": crontab(minute="*/5"),
    },
    # A support reply to a customer whose task was lost (broker down, worker killed) is sent here;
    # each reply is marked sent in the transaction that sends it, so it goes out once.
    "deliver-pending-customer-replies": {
        "task": "integrations.tasks.deliver_pending_customer_replies",
        "schedule": _every_sweep(),
    },
    # Mailgun tokens are refused for replay only while their timestamp is still accepted.
    "prune-webhook-tokens": {
        "task": "integrations.tasks.prune_webhook_tokens",
        "schedule": crontab(minute=17, hour="*/6"),
    },
}
