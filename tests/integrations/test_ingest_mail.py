"""`manage.py ingest_mail`: .eml files, folders and mbox files, exactly once, with a summary."""

from __future__ import annotations

import io
import mailbox
from pathlib import Path

from django.core.management import call_command

from integrations.models import InboundEmail
from tests.conftest import Cast
from tests.integrations.messages import email


def test_files_folders_and_mbox_are_imported_once_each(cast: Cast, tmp_path: Path) -> None:
    folder = tmp_path / "mail"
    (folder / "sub").mkdir(parents=True)
    (folder / "one.eml").write_bytes(email(message_id="<one@mail.acme.example>"))
    (folder / "sub" / "two.eml").write_bytes(email(message_id="<two@mail.acme.example>"))
    unknown = email(sender="who@nowhere.example", message_id="<three@nowhere.example>")
    (tmp_path / "three.eml").write_bytes(unknown)
    box = mailbox.mbox(tmp_path / "archive.mbox")
    box.add(email(message_id="<four@mail.acme.example>"))
    box.add(email(message_id="<one@mail.acme.example>"))  # already in the folder
    box.close()

    out, err = io.StringIO(), io.StringIO()
    call_command(
        "ingest_mail",
        str(folder),
        str(tmp_path / "three.eml"),
        str(tmp_path / "archive.mbox"),
        "--now",
        stdout=out,
        stderr=err,
    )
    summary = out.getvalue()
    assert "5 messages read: 1 duplicate, 3 processed, 1 unmatched." in summary
    assert "three.eml: unmatched" in summary
    assert "msg" in err.getvalue()  # the progress bar
    assert InboundEmail.objects.count() == 4

    again = io.StringIO()
    call_command("ingest_mail", str(folder), stdout=again, stderr=io.StringIO())
    assert "2 messages read: 2 duplicate." in again.getvalue()
    assert InboundEmail.objects.count() == 4


def test_without_now_messages_are_queued_for_the_worker(cast: Cast, tmp_path: Path) -> None:
    (tmp_path / "a.eml").write_bytes(email())
    out = io.StringIO()
    call_command("ingest_mail", str(tmp_path / "a.eml"), stdout=out, stderr=io.StringIO())
    assert "1 messages read: 1 queued." in out.getvalue()
    assert InboundEmail.objects.get().status == "queued"
