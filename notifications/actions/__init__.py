"""The write path of notifications: one function per change, each in one transaction."""

from notifications.actions.email import flush_emails, send_digests
from notifications.actions.happenings import (
    note_happening,
    note_happenings,
    notify_happening,
    notify_happenings,
    sweep_happenings,
)
from notifications.actions.inbox import announce, mark_read, notify
from notifications.actions.preferences import (
    check_schedule,
    set_preferences,
    set_schedule,
    unsubscribe,
    unsubscribe_token,
    update_preferences,
)
from notifications.actions.reminders import (
    send_meeting_reminders,
    send_request_alerts,
    send_task_alerts,
)

__all__ = [
    "announce",
    "check_schedule",
    "flush_emails",
    "mark_read",
    "note_happening",
    "note_happenings",
    "notify",
    "notify_happening",
    "notify_happenings",
    "send_digests",
    "send_meeting_reminders",
    "send_request_alerts",
    "send_task_alerts",
    "set_preferences",
    "set_schedule",
    "sweep_happenings",
    "unsubscribe",
    "unsubscribe_token",
    "update_preferences",
]
