"""Server-rendered pages of the feed: the home feed, an account's 360 page and its forms.

Every form posts to a view here, which calls one action and redirects back (post/redirect/get);
errors come back as messages on the page, never as a 500.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.views.decorators.http import require_GET, require_POST

from crm.models import User
from crm.queries import account_summary, merged_survivor_id
from crm.visibility import get_visible_account
from feed import actions
from feed.inputs import new_activity
from feed.mentions import mention_warnings
from feed.models import Activity, Follow, RequestQueue
from feed.queries import (
    account_overview,
    account_timeline,
    follow_choice,
    followed_account_names,
    get_visible_activity,
    home_feed,
    is_following,
)
from feed.streams import account_stream_cursor, home_stream_cursor


@login_required
def home(request: HttpRequest) -> HttpResponse:
    """The home feed, live: the page subscribes to `home` from the cursor read before the query."""
    cursor = home_stream_cursor(request.user)
    before = request.GET.get("before")
    try:
        page = home_feed(request.user, before=before)
    except ValidationError:
        page, before = home_feed(request.user), None
    context = {
        "timeline": page,
        "cursor": cursor,
        "is_first_page": not before,
        # Live items name their account as rendered ones do.
        "account_names": followed_account_names(request.user),
    }
    return render(request, "feed/home.html", context)


@login_required
def account_detail(request: HttpRequest, account_id: int) -> HttpResponse:
    """The 360 page: key facts, contacts, opportunities, open work, followers, the timeline.

    A merged-away account redirects to the account it was merged into (when that one is visible).
    """
    survivor_id = merged_survivor_id(account_id)
    if survivor_id is not None:
        survivor = get_visible_account(request.user, survivor_id)
        messages.info(request, f"That account was merged into {survivor.name}.")
        return redirect("account-detail", account_id=survivor.pk)
    account = account_summary(request.user, account_id)
    kind = request.GET.get("kind") or None
    if kind not in (None, *Activity.Kind.values):
        kind = None
    author = (request.GET.get("author") or "").strip()[:150] or None
    q = (request.GET.get("q") or "").strip()[:200] or None
    # The cursor is read before the timeline: an event committed in between shows up both in the
    # page and over the socket, and the page drops the copy, rather than being missed.
    cursor = account_stream_cursor(account.pk)
    try:
        timeline = account_timeline(
            request.user, account, before=request.GET.get("before"), kind=kind, author=author, q=q
        )
    except ValidationError:
        timeline = account_timeline(request.user, account, kind=kind, author=author, q=q)
    overview = account_overview(request.user, account)
    context = {
        "account": account,
        "timeline": timeline,
        "overview": overview,
        "cursor": cursor,
        "kind": kind,
        "author": author,
        "q": q,
        "is_filtered": bool(kind or author or q),
        "kinds": Activity.Kind.choices,
        "is_first_page": not request.GET.get("before"),
        "is_following": is_following(request.user, account),
        "follow": follow_choice(request.user, account),
        "deliveries": Follow.Delivery.choices,
        "now": timezone.now(),
        "queues": RequestQueue.objects.all(),
        "priorities": actions.PRIORITIES,
    }
    return render(request, "feed/account_detail.html", context)


@login_required
def activity_history(request: HttpRequest, activity_id: int) -> HttpResponse:
    activity = get_visible_activity(request.user, activity_id)
    revisions = activity.revisions.select_related("editor")
    return render(
        request, "feed/activity_history.html", {"activity": activity, "revisions": revisions}
    )


@login_required
@require_GET
def activity_item(request: HttpRequest, activity_id: int) -> HttpResponse:
    """One activity as the account page renders it in its timeline (`?on=home`: as the home page
    does, with its account and the thread it replies to), for live.js to show an activity that
    arrives over the socket exactly as a reload would: the same buttons for this reader, the same
    facts. 404 when the reader may not see it (or it was deleted meanwhile)."""
    activity = get_visible_activity(request.user, activity_id)
    context = {"activity": activity, "show_account": request.GET.get("on") == "home"}
    response = render(request, "feed/_activity.html", context)
    response["Cache-Control"] = "no-store"  # buttons and likes change; never a stale copy
    return response


def _back(account_id: int, anchor: str = "") -> HttpResponse:
    response = redirect("account-detail", account_id=account_id)
    if anchor:
        response["Location"] += f"#{anchor}"
    return response


def _when(raw: str | None, label: str, *, required: bool = False) -> dt.datetime | None:
    """A datetime from a form's datetime-local field, in the server's time zone."""
    if not raw:
        if required:
            raise ValidationError(f"Say when: {label} is missing.")
        return None
    parsed = parse_datetime(raw)
    if parsed is None:
        raise ValidationError(f"{label} is not a date and time.")
    return timezone.make_aware(parsed) if timezone.is_naive(parsed) else parsed


def _form_data(form: Any) -> tuple[str, dict[str, Any]]:
    """The composer's form as the plain values `feed.inputs.new_activity` takes."""
    kind = form.get("kind", "post")
    contact = form.get("contact") or None
    if contact is not None and not contact.isdecimal():
        raise ValidationError("No such contact on this account.")
    if kind == "post":
        return kind, {"body": form.get("body", "")}
    if kind == "task":
        return kind, {
            "subject": form.get("subject", ""),
            "body": form.get("body", ""),
            "assignee": form.get("assignee", "").strip().lstrip("@"),
            "due_at": _when(form.get("due_at"), "Due"),
            "contact": int(contact) if contact else None,
        }
    if kind == "call":
        minutes = form.get("duration_minutes", "")
        if minutes and (not minutes.isdecimal() or int(minutes) > 24 * 60):
            raise ValidationError("Duration is a number of minutes (at most a day).")
        return kind, {
            "contact": int(contact) if contact else None,
            "body": form.get("body", ""),
            "occurred_at": _when(form.get("occurred_at"), "When"),
            "duration_minutes": int(minutes) if minutes else None,
            "outcome": form.get("outcome", "connected")[:40],
        }
    if kind == "meeting":
        contacts = form.getlist("contacts")
        if not all(raw.isdecimal() for raw in contacts):
            raise ValidationError("No such contact on this account.")
        return kind, {
            "subject": form.get("subject", ""),
            "body": form.get("body", ""),
            "starts_at": _when(form.get("starts_at"), "Starts", required=True),
            "ends_at": _when(form.get("ends_at"), "Ends"),
            "attendees": [
                n.lstrip("@") for n in form.get("attendees", "").replace(",", " ").split()
            ],
            "contacts": [int(raw) for raw in contacts],
            "decisions": [d for d in form.get("decisions", "").splitlines() if d.strip()],
            "action_items": [
                _action_item(line)
                for line in form.get("action_items", "").splitlines()
                if line.strip()
            ],
        }
    if kind == "request":
        queue = form.get("queue") or None
        if queue is not None and not queue.isdecimal():
            raise ValidationError("No such queue.")
        return kind, {
            "subject": form.get("subject", ""),
            "body": form.get("body", ""),
            "priority": form.get("priority", "normal"),
            "queue": int(queue) if queue else None,
        }
    raise ValidationError("Choose what to write: a post, a meeting, a call, a task or a request.")


# "Send the contract to legal @bob": a line of the meeting form that ends with a mention is
# bob's task, as a note-taker writes it; the API takes the assignee as its own field.
_TRAILING_MENTION = re.compile(r"(?:^|\s)@([\w.+-]+)\s*$")


def _action_item(line: str) -> dict[str, str]:
    found = _TRAILING_MENTION.search(line)
    subject = line[: found.start()].strip() if found else ""
    if found is None or not subject:
        return {"subject": line.strip()}
    return {"subject": subject, "assignee": found.group(1)}


@login_required
@require_POST
def compose(request: HttpRequest, account_id: int) -> HttpResponse:
    account = get_visible_account(request.user, account_id)
    try:
        kind, data = _form_data(request.POST)
        activity = new_activity(kind=kind, data=data, user=request.user, account=account)  # type: ignore[arg-type]
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
        return _back(account.pk, "composer")
    for warning in mention_warnings(f"{activity.subject}\n{activity.body}", account):
        messages.warning(request, warning["detail"])
    return _back(account.pk, f"activity-{activity.pk}")


@login_required
@require_POST
def act(request: HttpRequest, activity_id: int, verb: str) -> HttpResponse:
    """One form button on an activity: reply, like, edit, delete, tick off, follow or mute."""
    activity = get_visible_activity(request.user, activity_id)
    user: User = request.user  # type: ignore[assignment]
    anchor = f"activity-{actions.thread_root(activity).pk}"
    try:
        if verb == "reply":
            reply = actions.add_comment(
                actor=user, parent=activity, body=request.POST.get("body", "")
            )
            for warning in mention_warnings(reply.body, activity.account):
                messages.warning(request, warning["detail"])
        elif verb in ("like", "unlike"):
            actions.set_reaction(actor=user, activity=activity, kind="like", is_on=verb == "like")
        elif verb == "edit":
            actions.edit_activity(
                actor=user,
                activity=activity,
                body=request.POST.get("body"),
                subject=request.POST.get("subject"),
            )
        elif verb == "delete":
            actions.delete_activity(actor=user, activity=activity)
        elif verb in ("done", "undone"):
            actions.set_task_done(actor=user, task=activity, is_done=verb == "done")
        elif verb in ("follow", "mute"):
            actions.set_thread_subscription(user=user, thread=activity, is_muted=verb == "mute")
        elif verb == "unmute":
            actions.clear_thread_subscription(user=user, thread=activity)
        else:
            raise ValidationError("Unknown action.")
    except (ValidationError, PermissionDenied) as error:
        text = " ".join(error.messages) if isinstance(error, ValidationError) else str(error)
        messages.error(request, text)
    return _back(activity.account_id, anchor)


@login_required
@require_POST
def follow(request: HttpRequest, account_id: int) -> HttpResponse:
    account = get_visible_account(request.user, account_id)
    user: User = request.user  # type: ignore[assignment]
    if request.POST.get("following") == "no":
        actions.unfollow_account(user=user, account=account)
        if is_following(user, account):
            messages.info(request, "You still follow it as its owner or account-team member.")
    elif request.POST.get("preferences") == "yes":
        kinds = request.POST.getlist("kinds")
        try:
            actions.follow_account(
                user=user,
                account=account,
                kinds=kinds,
                delivery=request.POST.get("delivery", ""),
            )
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
        else:
            messages.success(request, "Saved what you follow of this account, and how.")
    else:
        actions.follow_account(user=user, account=account)
    return _back(account.pk)
