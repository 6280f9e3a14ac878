"""HTTP of the email integration: the raw MIME endpoint, the triage page and attachment downloads.

The raw endpoint authenticates itself (an HMAC of the body), so it is the one CSRF-exempt view
here; the triage forms carry CSRF tokens like every page.
"""

from __future__ import annotations

import hashlib
import hmac
import logging

import psycopg
from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.db import DatabaseError, close_old_connections
from django.http import FileResponse, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from crm.visibility import AccountNotFound, get_visible_account, visible_accounts
from integrations import actions
from integrations.queries import (
    get_visible_attachment,
    get_visible_inbound_email,
    noise_kept_out,
    rematchable_ids,
    sees_all_inbound,
    triage_queue,
)

log = logging.getLogger(__name__)
SIGNATURE_HEADER = "HTTP_X_TIDINGS_SIGNATURE"


def signature_is_valid(body: bytes, header: str, secret: str) -> bool:
    """`header` is "sha256=<hex HMAC-SHA256 of body keyed with secret>"; compared in constant
    time. No secret configured means no message is genuine."""
    scheme, _, given = header.strip().partition("=")
    if not secret or scheme.lower() != "sha256" or not given:
        return False
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    # Bytes, not str: compare_digest refuses non-ASCII text with a TypeError (a 500 for anyone
    # who sends "sha256=é").
    return hmac.compare_digest(expected.encode(), given.strip().lower().encode())


def read_limited_body(request: HttpRequest, limit: int) -> bytes | None:
    """The body, or None when it is larger than `limit` (judged by Content-Length first, so an
    announced 1 GB is refused without reading it)."""
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > limit:
        return None
    # Not request.body: that is capped by DATA_UPLOAD_MAX_MEMORY_SIZE (2.5 MB), far below the
    # 30 MB mail we accept.
    body = request.read(limit + 1)
    return None if len(body) > limit else body


@csrf_exempt
@require_POST
async def inbound_raw(request: HttpRequest) -> JsonResponse:
    """POST one raw RFC 5322 message; see DESIGN.md section 6 for the answers.

    Under daphne, `integrations.email.asgi` answers this route before Django's request machinery
    (measured: the middleware stack cost more than storing the message); this view serves the
    same answers to the test client and any other server.
    """
    body = read_limited_body(request, settings.TIDINGS_INBOUND_MAX_BYTES)
    header = request.META.get(SIGNATURE_HEADER, "")
    in_pool = settings.TIDINGS_INBOUND_ACCEPT_IN_POOL
    status, answer = await sync_to_async(accept_raw, thread_sensitive=not in_pool)(body, header)
    return JsonResponse(answer, status=status)


def accept_raw(body: bytes | None, signature: str) -> tuple[int, dict[str, object]]:
    """The answer (status, JSON) to a raw post of `body` (None: over the size limit) signed
    `signature`; stores the message when it is genuine."""
    if body is None:
        limit = settings.TIDINGS_INBOUND_MAX_BYTES
        return 413, {"detail": f"The message is larger than {limit} bytes."}
    if not signature_is_valid(body, signature, settings.TIDINGS_INBOUND_SECRET):
        return 403, {"detail": "The X-Tidings-Signature header does not match the body."}
    if not body.strip():
        return 400, {"detail": "The body is empty; send one raw RFC 5322 message."}
    if settings.TIDINGS_INBOUND_ACCEPT_IN_POOL:
        # This pool thread's connection outlives the request: drop it if it broke or aged out.
        close_old_connections()
    try:
        accepted = actions.accept_inbound_email(raw=body)
    except (DatabaseError, psycopg.Error):
        # The accepting INSERT runs on a raw psycopg cursor, whose errors are not Django's.
        # The only 5xx: nothing was stored, so the sender must try again.
        log.exception("storing an inbound message failed")
        return 503, {"detail": "The message could not be stored; try again."}
    if accepted.is_duplicate:
        return 200, {"id": accepted.inbound.pk, "status": "duplicate"}
    return 202, {"id": accepted.inbound.pk, "status": "queued"}


@login_required
@require_GET
def triage(request: HttpRequest) -> HttpResponse:
    """Unmatched mail the user may work, with the accounts they may assign it to."""
    queue = triage_queue(request.user)
    accounts = visible_accounts(request.user).only("pk", "name").order_by("name")[:500]
    context = {
        "queue": queue,
        "accounts": accounts,
        "rematchable": sum(m.suggested_contact is not None for m in queue),  # type: ignore[attr-defined,misc]
        "sees_all": sees_all_inbound(request.user),
        "noise": noise_kept_out(request.user),
    }
    return render(request, "integrations/triage.html", context)


@login_required
@require_POST
def triage_assign(request: HttpRequest, inbound_id: int) -> HttpResponse:
    inbound = get_visible_inbound_email(request.user, inbound_id)
    try:
        account = get_visible_account(request.user, request.POST.get("account", ""))
        actions.assign_inbound_email(
            actor=request.user,  # type: ignore[arg-type]
            inbound=inbound,
            account=account,
            teach=request.POST.get("teach", ""),
        )
    except AccountNotFound:
        messages.error(request, "Choose an account you can see.")
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, f"“{inbound.subject or 'The message'}” is now on {account.name}.")
    return redirect("email-triage")


@login_required
@require_POST
def triage_rerun(request: HttpRequest, inbound_id: int) -> HttpResponse:
    inbound = get_visible_inbound_email(request.user, inbound_id)
    try:
        actions.rerun_inbound_email(actor=request.user, inbound=inbound)  # type: ignore[arg-type]
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, "Queued again; it is matched with today's contacts and rules.")
    return redirect("email-triage")


@login_required
@require_POST
def triage_rematch(request: HttpRequest) -> HttpResponse:
    """Re-run every unmatched message whose sender has since become a contact."""
    count = 0
    for inbound_id in rematchable_ids(request.user):
        inbound = get_visible_inbound_email(request.user, inbound_id)
        actions.rerun_inbound_email(actor=request.user, inbound=inbound)  # type: ignore[arg-type]
        count += 1
    messages.success(request, f"{count} message{'s' if count != 1 else ''} queued for re-matching.")
    return redirect("email-triage")


@login_required
@require_GET
def attachment_download(request: HttpRequest, attachment_id: int) -> FileResponse:
    """An attachment, to people who can see the account; always a download, typed by content."""
    attachment = get_visible_attachment(request.user, attachment_id)
    response = FileResponse(
        attachment.file.open("rb"),
        as_attachment=True,
        filename=attachment.filename,
        content_type=attachment.content_type,
    )
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response
