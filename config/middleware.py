"""HTTP middleware that is wiring, not domain logic."""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.loader import render_to_string

from config.dbfaults import is_database_unavailable

log = logging.getLogger(__name__)

# No inline script anywhere: pages load their JavaScript from /static/. Styles may be inline
# because the vendored Swagger UI sets some; scripts may not.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "frame-ancestors 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "object-src 'none'",
    ]
)


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        return response


DATABASE_UNAVAILABLE = (
    "The database is not answering, so this request could not be completed. Try again in a moment."
)
RETRY_AFTER_SECONDS = 5


class DatabaseUnavailableMiddleware:
    """A request that cannot reach PostgreSQL (down, restarting, the pool out of connections past
    its timeout) is answered 503 with Retry-After: JSON under /api/, a page elsewhere.

    Django answered such a request 500, with an HTML page even to API clients, as if the request
    were at fault. Other database errors (a missing table, a deadlock, a statement timeout) stay
    500s with their tracebacks (config/dbfaults.py). The page is plain HTML: the site's layout
    reads the user, which needs the database that is missing.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not is_database_unavailable(exception):
            return None
        log.warning("database unavailable for %s %s: %s", request.method, request.path, exception)
        response: HttpResponse
        if request.path.startswith("/api/"):
            response = JsonResponse(
                {"detail": DATABASE_UNAVAILABLE, "code": "database_unavailable"}, status=503
            )
        else:
            response = HttpResponse(
                render_to_string("503.html", {"message": DATABASE_UNAVAILABLE}), status=503
            )
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response
