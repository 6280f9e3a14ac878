"""The copies of a person's data outside the database: attachments on storage and the notification
emails the file backend keeps on disk.

Both are changed only after the erasure has committed (a rolled-back erasure must leave every
file as it was), so a crash in between can leave a file behind; running the erasure again finds
and removes it (`erase_files_of`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

from django.conf import settings

from integrations.models import attachment_storage
from privacy.redaction import Person, Redactor

log = logging.getLogger(__name__)
FILE_BACKEND = "django.core.mail.backends.filebased.EmailBackend"


def delete_attachment_files(names: list[str]) -> None:
    """Remove stored attachments (their rows are gone already). Never logs a file name."""
    for name in names:
        try:
            attachment_storage.delete(name)
        except OSError:
            log.warning("an erased attachment could not be removed from storage")


def mail_files() -> Iterator[Path]:
    """The sent emails the file backend keeps, when it is the backend (SMTP keeps none here)."""
    if settings.EMAIL_BACKEND != FILE_BACKEND:
        return
    folder = Path(settings.EMAIL_FILE_PATH)
    if folder.is_dir():
        yield from sorted(p for p in folder.iterdir() if p.is_file())


def _read(path: Path) -> str:
    # surrogateescape: whatever bytes the file holds are written back unchanged.
    return path.read_bytes().decode("utf-8", "surrogateescape")


def mail_file_lines(person: Person) -> list[dict[str, str]]:
    """The lines of stored sent emails that name `person`, for the export."""
    redactor = Redactor(person)
    found = []
    for path in mail_files():
        for line in _read(path).splitlines():
            if redactor.text(line) != line:
                found.append({"file": path.name, "line": line.encode("utf-8", "replace").decode()})
    return found


def redact_mail_files(person: Person) -> int:
    """Rewrite stored sent emails that name `person`; how many files changed."""
    redactor = Redactor(person)
    changed = 0
    for path in mail_files():
        text = _read(path)
        redacted = redactor.text(text)
        if redacted != text:
            path.write_bytes(redacted.encode("utf-8", "surrogateescape"))
            changed += 1
    return changed
