"""The benchmark's own PostgreSQL database and Redis database, and the people in them.

`tidings_bench` is dropped and created afresh, migrated with `manage.py migrate`, and seeded through
the project's actions in this process (Django configured by `configure_django`): one team, its
members as followers (team members see the team's accounts), one account owned by `bench-owner`.
Users have no action of their own; like `seed_demo`, they are created through the model.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from typing import Any

import psycopg
import redis

from bench.env import (
    DATABASE_URL,
    DB_NAME,
    NAIVE_TABLE,
    PG_HOST,
    PG_PORT,
    PG_USER,
    REDIS_URL,
)
from bench.servers import REPO_ROOT

__all__ = ["DATABASE_URL", "REDIS_URL"]

POSTER = "bench-owner"
POSTER_PASSWORD = "bench-owner-password-not-secret"  # noqa: S105 - throwaway bench user


@dataclass
class Cast:
    account_id: int
    poster: str
    follower_ids: list[int]
    follower_tokens: list[str]


def _admin_connection() -> psycopg.Connection[Any]:
    return psycopg.connect(
        host=PG_HOST, port=PG_PORT, user=PG_USER, dbname="postgres", autocommit=True
    )


def recreate_database() -> None:
    with _admin_connection() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{DB_NAME}"')


def drop_database() -> None:
    with _admin_connection() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')


def postgres_version() -> str:
    with _admin_connection() as conn:
        row = conn.execute("SHOW server_version").fetchone()
    return str(row[0]) if row else "?"


def create_naive_table() -> None:
    """The naive peer saves each post here (one INSERT, like any app saving a post)."""
    with psycopg.connect(
        host=PG_HOST, port=PG_PORT, user=PG_USER, dbname=DB_NAME, autocommit=True
    ) as conn:
        conn.execute(
            f"CREATE TABLE {NAIVE_TABLE} (id bigserial PRIMARY KEY, account_id bigint NOT NULL,"
            " body text NOT NULL, created_at timestamptz NOT NULL DEFAULT now())"
        )


def flush_redis() -> None:
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.flushdb()
    finally:
        client.close()


def redis_version() -> str:
    client = redis.Redis.from_url(REDIS_URL)
    try:
        return str(client.info("server").get("redis_version", "?"))
    finally:
        client.close()


def migrate(env: dict[str, str]) -> None:
    done = subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"manage.py migrate failed:\n{done.stdout}\n{done.stderr}")


def configure_django() -> None:
    """Set up Django in this process (for seeding and tickets), on the benchmark database only.

    bench.env.prepare() must have run before anything imported `config`.
    """
    import django
    from django.conf import settings

    django.setup()
    database = settings.DATABASES["default"]
    if database["NAME"] != DB_NAME or "postgresql" not in database["ENGINE"]:
        raise RuntimeError(
            f"refusing to seed {database['ENGINE']} {database['NAME']!r}: settings were loaded "
            "before bench.env.prepare() pointed DATABASE_URL at the benchmark database"
        )


def seed(followers: int) -> Cast:
    from django.contrib.auth.hashers import make_password
    from django.db import connection, transaction
    from rest_framework.authtoken.models import Token

    from crm import actions
    from crm.models import User

    with transaction.atomic():
        admin = User.objects.create_user("bench-admin", role=User.Role.ADMIN)
        team = actions.create_team(actor=admin, name="Bench team")
        owner = User.objects.create_user(
            POSTER, password=POSTER_PASSWORD, role=User.Role.REP, team=team
        )
        unusable = make_password(None)
        members = User.objects.bulk_create(
            User(username=f"bench-f{i:04d}", role=User.Role.REP, team=team, password=unusable)
            for i in range(followers)
        )
        tokens = Token.objects.bulk_create(
            Token(key=Token.generate_key(), user=member) for member in members
        )
        account = actions.create_account(actor=owner, name="Bench Account", owner=owner)
    connection.close()
    return Cast(
        account_id=account.pk,
        poster=POSTER,
        follower_ids=[member.pk for member in members],
        follower_tokens=[token.key for token in tokens],
    )


def issue_tickets(user_ids: list[int]) -> list[str]:
    """One fresh WebSocket ticket per user, via realtime.tickets (runs in a worker thread)."""
    from django.db import connection, transaction

    from crm.models import User
    from realtime.tickets import issue_ticket

    try:
        with transaction.atomic():
            users = User.objects.in_bulk(user_ids)
            return [issue_ticket(user=users[pk])[0] for pk in user_ids]
    finally:
        connection.close()


def access_recheck_seconds() -> float:
    from realtime.consumers import ACCESS_RECHECK_SECONDS

    return float(ACCESS_RECHECK_SECONDS)
