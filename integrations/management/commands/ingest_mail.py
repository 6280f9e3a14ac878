"""`manage.py ingest_mail PATH...`: import .eml files, folders of them and mbox files.

Each message goes through the same door as the raw endpoint (stored once, then processed), so an
import run twice, or overlapping with what providers already posted, adds nothing twice.
"""

from __future__ import annotations

import mailbox
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from integrations import actions


def _is_mbox(path: Path) -> bool:
    if path.suffix.lower() in {".mbox", ".mbx"}:
        return True
    with path.open("rb") as handle:
        return handle.read(5) == b"From "


def _files(paths: list[Path]) -> list[Path]:
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found += sorted(
                p for p in path.rglob("*") if p.is_file() and not p.name.startswith(".")
            )
        elif path.is_file():
            found.append(path)
        else:
            raise CommandError(f"{path} is neither a file nor a folder.")
    return found


def _messages(files: list[Path]) -> Iterator[tuple[str, bytes]]:
    for path in files:
        if _is_mbox(path):
            box = mailbox.mbox(path, create=False)
            try:
                for key in box.iterkeys():
                    yield f"{path}#{key}", box.get_bytes(key)
            finally:
                box.close()
        else:
            yield str(path), path.read_bytes()


def _count(files: list[Path]) -> int:
    total = 0
    for path in files:
        if _is_mbox(path):
            box = mailbox.mbox(path, create=False)
            total += len(box)
            box.close()
        else:
            total += 1
    return total


class Command(BaseCommand):
    help = "Import .eml files, folders and mbox files as inbound email (exactly once each)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("paths", nargs="+", type=Path)
        parser.add_argument(
            "--now",
            action="store_true",
            help="Process each message in this process instead of queueing it for the worker.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        files = _files(options["paths"])
        total = _count(files)
        outcomes: Counter[str] = Counter()
        problems: list[str] = []
        limit = settings.TIDINGS_INBOUND_MAX_BYTES
        progress = tqdm(_messages(files), total=total, unit="msg", file=self.stderr._out)
        for name, raw in progress:
            if len(raw) > limit:
                outcomes["too large"] += 1
                problems.append(f"{name}: larger than {limit} bytes, skipped")
                continue
            if not raw.strip():
                outcomes["empty"] += 1
                continue
            accepted = actions.accept_inbound_email(raw=raw, provider="import")
            if accepted.is_duplicate:
                outcomes["duplicate"] += 1
                continue
            if not options["now"]:
                outcomes["queued"] += 1
                continue
            inbound = actions.process_inbound_email(inbound_id=accepted.inbound.pk)
            status = inbound.status if inbound is not None else "missing"
            outcomes[status] += 1
            if status in ("failed", "unmatched"):
                problems.append(f"{name}: {status} ({inbound.reason if inbound else ''})")
        progress.close()
        self._summary(total, outcomes, problems)

    def _summary(self, total: int, outcomes: Counter[str], problems: list[str]) -> None:
        for line in problems[:50]:
            self.stdout.write(f"  {line}")
        if len(problems) > 50:
            self.stdout.write(f"  … and {len(problems) - 50} more")
        counts = ", ".join(f"{count} {status}" for status, count in sorted(outcomes.items()))
        self.stdout.write(self.style.SUCCESS(f"{total} messages read: {counts or 'nothing'}."))
