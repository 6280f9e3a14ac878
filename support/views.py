"""The support pages: the queue (`/requests/`) and one request (`/requests/<id>/`).

Every button is a form that posts to `work_request`, which calls one action of `feed.actions`
and redirects back (post/redirect/get); refusals come back as messages, never as a 500.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from crm.models import Team, User
from crm.queries import account_summary
from feed import actions
from feed.models import Activity, RequestQueue
from feed.streams import account_stream_cursor, requests_stream_cursor
from integrations.queries import customer_conversation
from integrations.support.replies import may_reply_to_customers, reply_to_customer
from support.queries import (
    QUEUE_LIMIT,
    QueueFilters,
    get_visible_request,
    request_account_id,
    request_history,
    request_queue,
    request_workers,
)

VERBS = ("claim", "assign", "status", "resolve", "priority", "comment")


@login_required
def queue(request: HttpRequest) -> HttpResponse:
    """Open requests on accounts the reader can see, soonest due first, live."""
    filters = QueueFilters.from_query(request.GET)
    # Read before the list, so an event committed in between arrives twice rather than never.
    cursor = requests_stream_cursor(request.user)
    rows = request_queue(request.user, filters)
    user: User = request.user  # type: ignore[assignment]
    context = {
        "rows": rows,
        "filters": filters,
        "cursor": cursor,
        "now": timezone.now(),
        "teams": Team.objects.all(),
        "queues": RequestQueue.objects.all(),
        "priorities": actions.PRIORITIES,
        "statuses": actions.REQUEST_STATUSES,
        "may_work": actions.may_work_requests(user),
        "is_filtered": request.GET.urlencode() != "",
        "limit": QUEUE_LIMIT,
    }
    return render(request, "support/queue.html", context)


@login_required
def request_detail(request: HttpRequest, request_id: int) -> HttpResponse:
    """One request: its thread, its history, and its account's key facts beside it; live.

    The account stream's cursor is read before the request and its replies, so an event committed
    in between arrives over the socket rather than being missed (the page drops copies).
    """
    account_id = request_account_id(request_id)
    cursor = account_stream_cursor(account_id) if account_id is not None else None
    item = get_visible_request(request.user, request_id)
    user: User = request.user  # type: ignore[assignment]
    conversation = customer_conversation(item)
    context = {
        "item": item,
        "replies": [reply for reply in item.replies.all() if reply.deleted_at is None],
        # The composer's second mode: a reply to the customer, when one wrote in.
        "customer": conversation.customer if conversation is not None else None,
        "may_reply_to_customer": conversation is not None and may_reply_to_customers(user, item),
        "support_address": settings.TIDINGS_SUPPORT_ADDRESS,
        "history": request_history(item),
        "account": account_summary(request.user, item.account_id),
        "workers": request_workers(item),
        "statuses": actions.REQUEST_STATUSES,
        "priorities": actions.PRIORITIES,
        "may_work": actions.may_work_requests(user),
        "may_move": actions.may_work_requests(user) or item.assignee_id == user.pk,
        "now": timezone.now(),
        "cursor": cursor if account_id == item.account_id else None,
    }
    return render(request, "support/request_detail.html", context)


def _assignee(username: str) -> User:
    person = User.objects.filter(username=username.strip().lstrip("@"), is_active=True).first()
    if person is None:
        raise ValidationError(f"Nobody active is called {username!r}.")
    return person


def _do(verb: str, user: User, item: Activity, form: QueryDict) -> None:
    get = form.get
    if verb == "claim":
        actions.claim_request(actor=user, request=item)
    elif verb == "assign":
        actions.update_request(actor=user, request=item, assignee=_assignee(get("assignee", "")))
    elif verb == "status":
        actions.update_request(actor=user, request=item, status=get("status", ""))
    elif verb == "resolve":
        actions.update_request(
            actor=user, request=item, status="resolved", resolution=get("resolution", "")
        )
    elif verb == "priority":
        actions.update_request(actor=user, request=item, priority=get("priority", ""))
    elif verb == "comment":
        # One composer, three buttons: an internal note, a reply to the customer (mail), or a
        # plain reply in the thread (requests raised in Tidings).
        mode = get("mode", "")
        if mode == "customer":
            reply_to_customer(actor=user, request=item, body=get("body", ""))
        else:
            actions.add_comment(
                actor=user, parent=item, body=get("body", ""), is_internal=mode == "note"
            )
    else:
        raise ValidationError("Unknown action.")


@login_required
@require_POST
def work_request(request: HttpRequest, request_id: int, verb: str) -> HttpResponse:
    """One button on a request: claim, assign, move its status, resolve, re-rank, or reply.

    Only what the verb names is read from the form, so a posted `author` or `account` changes
    nothing; who may do what is the action's rule (`feed.actions.update_request`).
    """
    item = get_visible_request(request.user, request_id)
    user: User = request.user  # type: ignore[assignment]
    try:
        _do(verb, user, item, request.POST)
    except (ValidationError, PermissionDenied) as error:
        text = " ".join(error.messages) if isinstance(error, ValidationError) else str(error)
        messages.error(request, text)
    back = request.POST.get("next", "")
    # Back to the queue with its filters; only a path of this site's queue, never elsewhere.
    if back.startswith("/requests/") and url_has_allowed_host_and_scheme(
        back, allowed_hosts={request.get_host()}
    ):
        return redirect(back)
    return redirect("request-detail", request_id=item.pk)
