"""Tracked field changes of CRM records, announced to whoever records history.

`crm` does not import `feed` (imports go feed -> crm), so the feed subscribes here at start-up
and turns each announcement into a `change` activity. Announcements are made inside the
transaction of the change, so the history and the change commit together.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from crm.models import Account, Opportunity, User

# Which fields of which records are tracked, with the label people read.
TRACKED = {
    "opportunity": {
        "stage": "Stage",
        "amount": "Amount",
        "close_date": "Close date",
        "owner": "Owner",
    },
    "account": {"owner": "Owner"},
}


@dataclass(frozen=True)
class FieldChange:
    field: str
    label: str
    old: str
    new: str


@dataclass(frozen=True)
class RecordChanged:
    actor: User
    account: Account
    record: Account | Opportunity
    changes: tuple[FieldChange, ...]

    @property
    def record_key(self) -> str:
        return f"{self.record._meta.model_name}:{self.record.pk}"


Listener = Callable[[RecordChanged], object]
_listeners: list[Listener] = []


def listen(listener: Listener) -> None:
    if listener not in _listeners:
        _listeners.append(listener)


def shown(record: Any, field: str) -> str:
    """A field's value as people read it (display names, choice labels, plain numbers)."""
    value = getattr(record, field)
    if value is None:
        return ""
    if isinstance(value, User):
        return value.display_name
    if isinstance(value, Decimal):
        return f"{value:,.2f}"
    display = getattr(record, f"get_{field}_display", None)
    if display is not None:
        return str(display())
    return str(value)


def snapshot(record: Account | Opportunity) -> dict[str, str]:
    kind = record._meta.model_name or ""
    return {field: shown(record, field) for field in TRACKED.get(kind, {})}


def announce(
    *, actor: User, account: Account, record: Account | Opportunity, before: dict[str, str]
) -> None:
    """Tell the listeners which tracked fields of `record` changed since `before` (a snapshot)."""
    kind = record._meta.model_name or ""
    after = snapshot(record)
    changes = tuple(
        FieldChange(field, TRACKED[kind][field], before[field], after[field])
        for field in TRACKED.get(kind, {})
        if before.get(field) != after.get(field)
    )
    if not changes:
        return
    event = RecordChanged(actor=actor, account=account, record=record, changes=changes)
    for listener in _listeners:
        listener(event)
