"""`/healthz/`: 200 when the database (and Redis, when configured) answer, else 503."""

from __future__ import annotations

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache


def _database_ok() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            return cursor.fetchone() == (1,)
    except Exception:
        return False


def _redis_status() -> str:
    if not settings.REDIS_URL:
        return "not configured"
    import redis

    try:
        client = redis.Redis.from_url(
            settings.REDIS_URL, socket_timeout=1, socket_connect_timeout=1
        )
        try:
            return "ok" if client.ping() else "down"
        finally:
            client.close()
    except Exception:
        return "down"


@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    database = "ok" if _database_ok() else "down"
    redis_status = _redis_status()
    healthy = database == "ok" and redis_status in ("ok", "not configured")
    return JsonResponse(
        {"status": "ok" if healthy else "unavailable", "database": database, "redis": redis_status},
        status=200 if healthy else 503,
    )
