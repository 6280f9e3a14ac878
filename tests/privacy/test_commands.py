"""`manage.py privacy_export` and `privacy_erase`: the same actions as the API, for an
administrator named on the command line, erasure only once confirmed."""

from __future__ import annotations

import json
import zipfile
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from crm.models import Contact
from tests.conftest import Cast
from tests.integrations.messages import email
from tests.privacy.test_erasure import _ingest


def test_export_writes_the_document_and_a_zip_of_what_they_sent(cast: Cast, tmp_path: Path) -> None:
    maria = cast.account.contacts.get()
    _ingest(email(attachments=[("quote.pdf", "application/pdf", b"%PDF-1.4 quote")]))
    out, archive = tmp_path / "maria.json", tmp_path / "maria.zip"
    call_command(
        "privacy_export",
        "contact",
        str(maria.pk),
        "--as",
        "admin",
        "--output",
        str(out),
        "--zip",
        str(archive),
    )
    document = json.loads(out.read_text())
    assert document["record"]["emails"][0]["address"] == "maria@acme.example"
    assert document["inbound_emails"][0]["sent_by_them"] is True
    with zipfile.ZipFile(archive) as zipped:
        names = zipped.namelist()
        assert "export.json" in names
        [attachment] = [n for n in names if n.startswith("attachments/")]
        assert attachment.endswith("-quote.pdf")
        assert zipped.read(attachment) == b"%PDF-1.4 quote"


def test_erase_asks_for_the_words_and_does_nothing_without_them(
    cast: Cast, monkeypatch: Any
) -> None:
    maria = cast.account.contacts.get()
    monkeypatch.setattr("builtins.input", lambda prompt: "yes")
    with pytest.raises(CommandError, match="Not confirmed"):
        call_command("privacy_erase", "contact", str(maria.pk), "--as", "admin")
    assert Contact.objects.get(pk=maria.pk).first_name == "Maria"
    monkeypatch.setattr("builtins.input", lambda prompt: f"erase contact {maria.pk}")
    out = StringIO()
    call_command("privacy_erase", "contact", str(maria.pk), "--as", "admin", stdout=out)
    assert out.getvalue().startswith(f"Erased the contact {maria.pk}")
    again = StringIO()
    call_command("privacy_erase", "contact", str(maria.pk), "--as", "admin", "--yes", stdout=again)
    assert "erased already" in again.getvalue()


def test_only_an_administrator_may_run_them(cast: Cast) -> None:
    maria = cast.account.contacts.get()
    with pytest.raises(CommandError, match="not an active administrator"):
        call_command("privacy_erase", "contact", str(maria.pk), "--as", "alice", "--yes")
    with pytest.raises(CommandError, match="no contact"):
        call_command("privacy_export", "contact", "999999", "--as", "admin")
