"""`manage.py privacy_export contact|lead ID --as ADMIN [--output FILE] [--zip FILE]`: everything
stored about one person, as the API's JSON document (and a zip with their attachments)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.core.serializers.json import DjangoJSONEncoder
from django.http import Http404

from privacy import queries
from privacy.api import export_zip
from privacy.management.arguments import acting_admin, add_subject_arguments


class Command(BaseCommand):
    help = "Export everything stored about a contact or a lead (JSON; attachments in a zip)."

    def add_arguments(self, parser: CommandParser) -> None:
        add_subject_arguments(parser)
        parser.add_argument("--output", type=Path, help="Write the JSON here (default: stdout).")
        parser.add_argument("--zip", type=Path, help="Also write a zip with the attachments.")

    def handle(self, *args: Any, **options: Any) -> None:
        admin = acting_admin(options["username"])
        try:
            if options["kind"] == "contact":
                record: Any = queries.get_erasable_contact(admin, options["id"])
            else:
                record = queries.get_erasable_lead(admin, options["id"])
        except Http404:
            raise CommandError(f"There is no {options['kind']} {options['id']}.") from None
        person = queries.person_of(record)
        document = queries.export(person, record)
        text = json.dumps(document, cls=DjangoJSONEncoder, indent=2, ensure_ascii=False)
        if options["output"]:
            options["output"].write_text(text + "\n", encoding="utf-8")
        else:
            self.stdout.write(text)
        if options["zip"]:
            options["zip"].write_bytes(export_zip(document, person))
