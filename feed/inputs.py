"""New activities from what a client sent: one translation for the API and the pages.

Both doors validate their own format (DRF serializers, form fields) into plain values, then call
`new_activity`, which resolves people and contacts within the account and calls the action for
the kind. Problems are raised as ValidationError keyed by the field.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError

from crm.models import Account, Contact, User
from feed import actions
from feed.models import Activity, RequestQueue


def person(username: str, field: str) -> User:
    user = User.objects.filter(username=username, is_active=True).first()
    if user is None:
        raise ValidationError({field: f"No active user is called {username!r}."})
    return user


def contact_of(account: Account, contact_id: int | None) -> Contact | None:
    if contact_id is None:
        return None
    contact = Contact.objects.filter(account=account, pk=contact_id).first()
    if contact is None:
        raise ValidationError({"contact": "No such contact on this account."})
    return contact


def new_activity(*, kind: str, data: dict[str, Any], user: User, account: Account) -> Activity:
    """Turn a validated request into the action for its kind."""
    if kind == "post":
        return actions.post_activity(author=user, account=account, body=data["body"])
    if kind == "task":
        assignee = person(data["assignee"], "assignee") if data.get("assignee") else None
        return actions.create_task(
            actor=user,
            account=account,
            subject=data["subject"],
            body=data.get("body", ""),
            assignee=assignee,
            due_at=data.get("due_at"),
            contact=contact_of(account, data.get("contact")),
        )
    if kind == "call":
        minutes = data.get("duration_minutes")
        return actions.log_call(
            actor=user,
            account=account,
            contact=contact_of(account, data.get("contact")),
            subject=data.get("subject", ""),
            body=data.get("body", ""),
            occurred_at=data.get("occurred_at"),
            duration_seconds=None if minutes is None else minutes * 60,
            outcome=data["outcome"],
        )
    if kind == "meeting":
        items = [
            {
                "subject": item["subject"],
                "assignee": person(item["assignee"], "action_items")
                if item.get("assignee")
                else None,
                "due_at": item.get("due_at"),
            }
            for item in data.get("action_items", [])
        ]
        return actions.log_meeting(
            actor=user,
            account=account,
            subject=data["subject"],
            body=data.get("body", ""),
            starts_at=data["starts_at"],
            ends_at=data.get("ends_at"),
            users=[person(name, "attendees") for name in dict.fromkeys(data.get("attendees", []))],
            contacts=[contact_of(account, pk) for pk in dict.fromkeys(data.get("contacts", []))],  # type: ignore[misc]
            decisions=data.get("decisions", []),
            action_items=items,
        )
    return actions.raise_request(
        actor=user,
        account=account,
        subject=data["subject"],
        body=data.get("body", ""),
        priority=data.get("priority") or "normal",
        queue=queue_of(data.get("queue")),
        due_at=data.get("due_at"),
    )


def queue_of(queue_id: int | None) -> RequestQueue | None:
    if queue_id is None:
        return None
    queue = RequestQueue.objects.filter(pk=queue_id).first()
    if queue is None:
        raise ValidationError({"queue": "No such queue."})
    return queue
