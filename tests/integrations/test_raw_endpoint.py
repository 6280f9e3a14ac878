"""POST /integrations/email/inbound/raw/: the answers of DESIGN.md section 6."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from django.db import connection
from django.test import Client

from integrations.models import InboundEmail
from tests import services
from tests.conftest import Cast
from tests.integrations.messages import email, post_raw, signature


def test_a_signed_message_is_stored_and_queued(db: Any) -> None:
    raw = email(message_id="<queued@mail.acme.example>")
    response = post_raw(Client(), raw)
    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "queued"
    stored = InboundEmail.objects.get(pk=body["id"])
    assert stored.raw_bytes == raw and stored.message_id == "queued@mail.acme.example"
    assert stored.status == InboundEmail.Status.QUEUED


def test_processing_is_scheduled_only_after_commit(
    db: Any, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks() as callbacks:
        response = post_raw(Client(), email())
    assert response.status_code == 202
    assert len(callbacks) == 1


def test_the_same_message_id_again_is_a_duplicate_of_the_first(db: Any) -> None:
    raw = email(message_id="<twice@mail.acme.example>")
    first = post_raw(Client(), raw).json()
    # A provider re-sends with its own headers added: still the same message.
    again = post_raw(Client(), b"X-Provider-Retry: 1\r\n" + raw)
    assert again.status_code == 200
    assert again.json() == {"id": first["id"], "status": "duplicate"}
    assert InboundEmail.objects.count() == 1


def test_a_message_without_message_id_is_deduplicated_by_its_bytes(db: Any) -> None:
    raw = email(message_id="")
    first = post_raw(Client(), raw)
    second = post_raw(Client(), raw)
    assert (first.status_code, second.status_code) == (202, 200)
    assert InboundEmail.objects.count() == 1


@pytest.mark.parametrize(
    "header",
    [
        "",
        "sha256=",
        "sha256=00",
        "md5=abc",
        "sha256=é",
        signature(b"another body"),
        signature(b"x", "wrong"),
    ],
)
def test_a_bad_signature_is_refused_and_nothing_is_stored(db: Any, header: str) -> None:
    response = post_raw(Client(), email(), sign=header)
    assert response.status_code == 403
    assert not InboundEmail.objects.exists()


def test_without_a_configured_secret_every_message_is_refused(db: Any, settings: Any) -> None:
    raw = email()
    settings.TIDINGS_INBOUND_SECRET = ""
    assert post_raw(Client(), raw, sign=signature(raw, "")).status_code == 403


def test_a_message_over_the_limit_is_413(db: Any, settings: Any) -> None:
    settings.TIDINGS_INBOUND_MAX_BYTES = 5000
    raw = email(body="x" * 6000)
    response = post_raw(Client(), raw)
    assert response.status_code == 413
    assert not InboundEmail.objects.exists()
    small = email(body="x" * 100)
    assert post_raw(Client(), small).status_code == 202


def test_thirty_megabytes_are_accepted_by_default(db: Any) -> None:
    raw = email(attachments=[("big.bin", "application/octet-stream", b"\x01" * (21 * 1024 * 1024))])
    assert 29 * 1024 * 1024 > len(raw) > 28 * 1024 * 1024
    assert post_raw(Client(), raw).status_code == 202


@pytest.mark.parametrize(
    "raw",
    [
        b"not a message at all",
        b"\x00\xff\xfe garbage \x00",
        b"Content-Type: multipart/mixed; boundary=\r\n\r\n--\r\n",
        b":::\r\n\r\n",
    ],
)
def test_malformed_messages_are_accepted_never_a_500(db: Any, raw: bytes) -> None:
    response = post_raw(Client(), raw)
    assert response.status_code == 202


def test_an_empty_body_is_a_clear_400(db: Any) -> None:
    assert post_raw(Client(), b"").status_code == 400


def test_only_post(db: Any) -> None:
    assert Client().get("/integrations/email/inbound/raw/").status_code == 405


@pytest.mark.django_db(transaction=True)
def test_concurrent_posts_of_one_message_store_one_row(cast: Cast) -> None:
    """Eight threads post the same message at the same moment: one row, one 202, seven 200s."""
    services.require_postgres()
    raw = email(message_id="<race@mail.acme.example>")
    start = threading.Barrier(8)
    answers: list[tuple[int, dict[str, Any]]] = []

    def post() -> None:
        try:
            start.wait()
            response = post_raw(Client(), raw)
            answers.append((response.status_code, response.json()))
        finally:
            connection.close()

    threads = [threading.Thread(target=post) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    codes = sorted(code for code, _ in answers)
    assert codes == [200] * 7 + [202], answers
    assert len({body["id"] for _, body in answers}) == 1
    assert InboundEmail.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_posts_by_two_providers_store_one_row(cast: Cast) -> None:
    """The same message through two providers (each adds its own headers) races: one row."""
    from integrations import actions

    services.require_postgres()
    raw = email(message_id="<two-providers@mail.acme.example>")
    start = threading.Barrier(2)
    results: list[actions.Accepted] = []

    def accept(provider: str) -> None:
        try:
            start.wait()
            results.append(
                actions.accept_inbound_email(
                    raw=f"X-Via: {provider}\r\n".encode() + raw,
                    provider=provider,
                    provider_id=f"{provider}-1",
                )
            )
        finally:
            connection.close()

    threads = [threading.Thread(target=accept, args=(p,)) for p in ("mailgun", "postmark")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(r.is_duplicate for r in results) == [False, True]
    assert InboundEmail.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_message_processed_by_two_workers_at_once_is_posted_once(cast: Cast) -> None:
    """A re-delivered task racing the first run (worker lost, then back): one activity."""
    from feed.models import Activity
    from integrations import actions

    services.require_postgres()
    accepted = actions.accept_inbound_email(raw=email(message_id="<twice@mail.acme.example>"))
    start = threading.Barrier(4)
    results: list[str] = []

    def work() -> None:
        try:
            start.wait()
            done = actions.process_inbound_email(inbound_id=accepted.inbound.pk)
            results.append(done.status if done else "missing")
        finally:
            connection.close()

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert set(results) <= {"processed", "queued"} and "processed" in results, results
    assert Activity.objects.filter(kind="email").count() == 1
    stored = InboundEmail.objects.get()
    # One run holds the lease; the others leave the message alone without counting an attempt.
    assert stored.status == "processed" and stored.attempts == 1


@pytest.mark.django_db(transaction=True)
def test_an_accept_thread_keeps_its_connection_and_drops_one_that_broke(settings: Any) -> None:
    """A pool thread keeps its database connection between posts (no checkout and health
    check per post); when that connection dies meanwhile, the post stores on a fresh one, as
    the pool's check would have given; when storing itself fails, the answer is 503."""
    from concurrent.futures import ThreadPoolExecutor

    from integrations.email.views import accept_raw

    services.require_postgres()
    settings.TIDINGS_INBOUND_ACCEPT_IN_POOL = True

    def post(n: int) -> tuple[int, int]:
        raw = email(message_id=f"<kept{n}@mail.acme.example>")
        status, _answer = accept_raw(raw, signature(raw))
        return status, connection.connection.info.backend_pid if connection.connection else 0

    with ThreadPoolExecutor(max_workers=1) as thread:  # as one thread of the server's pool
        first, second = thread.submit(post, 1).result(), thread.submit(post, 2).result()
        assert first[0] == second[0] == 202
        assert first[1] == second[1] != 0  # the same connection
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", [first[1]])
        third = thread.submit(post, 3).result()
        assert third[0] == 202 and third[1] != first[1]
        assert thread.submit(post, 4).result() == (202, third[1])
        with connection.cursor() as cursor:  # the database refuses every INSERT for now
            cursor.execute(
                "ALTER TABLE integrations_inboundemail ADD CONSTRAINT no CHECK (id < 0) NOT VALID"
            )
        try:
            assert thread.submit(post, 5).result()[0] == 503
        finally:
            with connection.cursor() as cursor:
                cursor.execute("ALTER TABLE integrations_inboundemail DROP CONSTRAINT no")
        assert thread.submit(post, 6).result()[0] == 202
        thread.submit(lambda: connection.close()).result()
    stored = set(InboundEmail.objects.values_list("message_id", flat=True))
    assert stored == {f"kept{n}@mail.acme.example" for n in (1, 2, 3, 4, 6)}


def test_a_large_message_is_stored_compressed_with_lz4_and_read_back_whole(db: Any) -> None:
    """The raw column compresses with lz4 on PostgreSQL (integrations migration 0002: a third
    of pglz's CPU on the accepting INSERT), and the bytes come back unchanged."""
    services.require_postgres()
    raw = email(message_id="<big@mail.acme.example>", body="Renewal terms, line by line.\n" * 400)
    response = post_raw(Client(), raw)
    assert response.status_code == 202
    pk = response.json()["id"]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_column_compression(raw) FROM integrations_inboundemail WHERE id = %s", [pk]
        )
        assert cursor.fetchone()[0] == "lz4"
    assert InboundEmail.objects.get(pk=pk).raw_bytes == raw
