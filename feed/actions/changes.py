"""Changing recorded activities: edits with revisions, soft deletes, task completion, reactions."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from crm.models import User
from crm.visibility import AccountNotFound, get_visible_account
from feed import events
from feed.actions.activities import clean_text
from feed.actions.touches import is_customer_facing, refresh_touches
from feed.models import Activity, AuditEntry, Reaction, Revision
from feed.serializers import SUBJECT_MAX_CHARS

EDITABLE_KINDS = {
    Activity.Kind.POST,
    Activity.Kind.COMMENT,
    Activity.Kind.MEETING,
    Activity.Kind.CALL,
    Activity.Kind.TASK,
    Activity.Kind.REQUEST,
}


def lock_visible_activity(actor: User, activity: Activity) -> Activity:
    """The activity, row-locked, if `actor` can see it and it is not deleted; else 404."""
    get_visible_account(actor, activity.account_id)
    locked = Activity.objects.select_for_update().filter(pk=activity.pk).first()
    if locked is None or locked.deleted_at is not None:
        raise AccountNotFound()
    return locked


@transaction.atomic
def edit_activity(
    *, actor: User, activity: Activity, body: str | None = None, subject: str | None = None
) -> Activity:
    """Change the text of one's own activity, keeping the previous text as a revision."""
    current = lock_visible_activity(actor, activity)
    if current.author_id != actor.pk or current.kind not in EDITABLE_KINDS:
        raise PermissionDenied("Only its author can edit this.")
    new_body = (
        current.body
        if body is None
        else clean_text(body, required=current.kind in ("post", "comment"))
    )
    new_subject = (
        current.subject
        if subject is None
        else clean_text(subject, required=False, limit=SUBJECT_MAX_CHARS)
    )
    if (new_body, new_subject) == (current.body, current.subject):
        return current
    now = timezone.now()
    Revision.objects.create(
        activity=current, editor=actor, subject=current.subject, body=current.body, edited_at=now
    )
    current.body, current.subject, current.edited_at = new_body, new_subject, now
    current.save(update_fields=["body", "subject", "edited_at"])
    events.activity_updated(current)
    return current


@transaction.atomic
def delete_activity(*, actor: User, activity: Activity) -> None:
    """Hide an activity (soft delete, audited). Only its author or an administrator may.

    Its thread goes with it, as a deleted post's comments do in Chatter: a reply left on its own
    would stay in its readers' home feeds, quoting the deleted text. Each reply is audited and
    announced as deleted by the same actor. Anyone else gets the same 404 as for an activity that
    does not exist.
    """
    current = lock_visible_activity(actor, activity)
    if current.author_id != actor.pk and not actor.is_admin:
        raise AccountNotFound()
    now = timezone.now()
    replies = list(
        Activity.objects.select_for_update()
        .filter(parent_id=current.pk, deleted_at__isnull=True)
        .order_by("id")
    )
    gone = [current, *replies]
    Activity.objects.filter(pk__in=[item.pk for item in gone]).update(deleted_at=now)
    AuditEntry.objects.bulk_create(
        AuditEntry(activity=item, actor=actor, action="deleted", at=now) for item in gone
    )
    if any(is_customer_facing(item.kind) for item in gone):
        refresh_touches([current.account_id])
    for item in reversed(gone):  # the replies first, as a reader would take them down
        events.activity_deleted(item)


@transaction.atomic
def set_task_done(*, actor: User, task: Activity, is_done: bool = True) -> Activity:
    """Tick a task off (or reopen it). Its assignee, its author or an administrator may."""
    current = lock_visible_activity(actor, task)
    if current.kind != Activity.Kind.TASK:
        raise ValidationError("Only tasks can be done.")
    if actor.pk not in (current.assignee_id, current.author_id) and not actor.is_admin:
        raise PermissionDenied("Only the assignee or the author can tick this task off.")
    if (current.done_at is not None) == is_done:
        return current
    current.done_at = timezone.now() if is_done else None
    current.save(update_fields=["done_at"])
    events.activity_updated(current)
    return current


@transaction.atomic
def set_reaction(*, actor: User, activity: Activity, kind: str, is_on: bool) -> Activity:
    """Add or take back `actor`'s reaction (idempotent); the summary on the row follows."""
    current = lock_visible_activity(actor, activity)
    if kind not in Reaction.Kind.values:
        raise ValidationError(f"Unknown reaction {kind!r}.")
    if is_on:
        _, changed = Reaction.objects.get_or_create(activity=current, user=actor, kind=kind)
    else:
        changed = bool(Reaction.objects.filter(activity=current, user=actor, kind=kind).delete()[0])
    if not changed:
        return current
    names = Reaction.objects.filter(activity=current, kind=kind).order_by("created_at", "id")
    summary = dict(current.reaction_summary)
    summary[kind] = list(names.values_list("user__username", flat=True))
    current.reaction_summary = {k: v for k, v in summary.items() if v}
    current.save(update_fields=["reaction_summary"])
    events.activity_updated(current)
    return current
