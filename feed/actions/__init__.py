"""The write path for the feed: one function per change, each checking access, writing in one
transaction and recording its events (published after commit)."""

from feed.actions.activities import (
    clean_text,
    create_task,
    log_activity,
    log_call,
    log_meeting,
    post_activity,
)
from feed.actions.changes import delete_activity, edit_activity, set_reaction, set_task_done
from feed.actions.follows import follow_account, unfollow_account
from feed.actions.history import convert_lead, merge_accounts, move_activity, record_field_changes
from feed.actions.mail import NewEmail, log_email, log_emails, record_invited_meeting
from feed.actions.requests import (
    PRIORITIES,
    REQUEST_STATUSES,
    claim_request,
    due_after,
    may_work_requests,
    raise_request,
    raise_request_from_email,
    update_request,
)
from feed.actions.threads import (
    add_comment,
    clear_thread_subscription,
    is_internal_note,
    set_thread_subscription,
    thread_root,
)

__all__ = [
    "PRIORITIES",
    "REQUEST_STATUSES",
    "NewEmail",
    "add_comment",
    "claim_request",
    "clean_text",
    "clear_thread_subscription",
    "convert_lead",
    "create_task",
    "delete_activity",
    "due_after",
    "edit_activity",
    "follow_account",
    "is_internal_note",
    "log_activity",
    "log_call",
    "log_email",
    "log_emails",
    "log_meeting",
    "may_work_requests",
    "merge_accounts",
    "move_activity",
    "post_activity",
    "raise_request",
    "raise_request_from_email",
    "record_field_changes",
    "record_invited_meeting",
    "set_reaction",
    "set_task_done",
    "set_thread_subscription",
    "thread_root",
    "unfollow_account",
    "update_request",
]
