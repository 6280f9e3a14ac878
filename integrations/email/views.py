"""HTTP of the email integration: the raw MIME endpoint, the triage page and attachment downloads.

The raw endpoint authenticates itself (an HMAC of the body), so it is the one CSRF-exempt view
here; the triage forms carry CSRF tokens like every page.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import logging
import threading
import time

import psycopg
from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.db import DatabaseError, close_old_connections, connection
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


# How long a thread that accepts raw posts keeps its database connection between posts.
KEEP_CONNECTION_SECONDS = 30.0
_kept = threading.local()


def _take_kept_connection() -> bool:
    """Keep this accept thread's database connection from one post to the next.

    With the pool (CONN_MAX_AGE 0), `close_old_connections` gave the connection back after each
    post and the next post took one again, which the pool checks with a round trip: as much
    time as the INSERT itself (docs/benchmarks-inbound.md). The thread keeps it instead, and
    gives it back after KEEP_CONNECTION_SECONDS (so the pool still renews its connections) or
    when storing failed (`_drop_kept_connection`: the next post takes a fresh, checked one).
    Answers whether the connection was kept from an earlier post.
    """
    taken = getattr(_kept, "at", None)
    if taken is not None and time.monotonic() - taken <= KEEP_CONNECTION_SECONDS:
        return connection.connection is not None
    close_old_connections()
    _kept.at = time.monotonic()
    return False


def _connection_is_broken() -> bool:
    raw = connection.connection
    return raw is None or raw.closed or bool(getattr(raw, "broken", False))


def _drop_kept_connection() -> None:
    _kept.at = None
    with contextlib.suppress(DatabaseError):  # a connection that died cannot close cleanly
        connection.close()


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
    in_pool = settings.TIDINGS_INBOUND_ACCEPT_IN_POOL
    kept = in_pool and _take_kept_connection()
    try:
        try:
            accepted = actions.accept_inbound_email(raw=body)
        except (DatabaseError, psycopg.Error):
            if not (kept and _connection_is_broken()):
                raise
            # The connection kept since an earlier post died meanwhile (a restart, a failover):
            # once more on a fresh one, as the pool's check would have given. The INSERT is
            # idempotent: had the first one committed, this one answers it as the duplicate.
            _drop_kept_connection()
            _take_kept_connection()
            accepted = actions.accept_inbound_email(raw=body)
    except (DatabaseError, psycopg.Error):
        # The accepting INSERT runs on a raw psycopg cursor, whose errors are not Django's.
        # The only 5xx: nothing was stored, so the sender must try again.
        log.exception("storing an inbound message failed")
        if in_pool:
            _drop_kept_connection()
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
