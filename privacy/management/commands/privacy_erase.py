"""`manage.py privacy_erase contact|lead ID --as ADMIN [--yes]`: erase one person's data
everywhere (docs/privacy.md). Asks for the words "erase <kind> <id>" unless --yes is given."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.http import Http404

from privacy import actions
from privacy.management.arguments import acting_admin, add_subject_arguments


class Command(BaseCommand):
    help = "Erase a contact's or a lead's personal data everywhere (cannot be undone)."

    def add_arguments(self, parser: CommandParser) -> None:
        add_subject_arguments(parser)
        parser.add_argument("--yes", action="store_true", help="Do not ask for confirmation.")

    def handle(self, *args: Any, **options: Any) -> None:
        admin = acting_admin(options["username"])
        kind, pk = options["kind"], options["id"]
        words = f"erase {kind} {pk}"
        if not options["yes"]:
            answer = input(f"This cannot be undone. Type '{words}' to go ahead: ")
            if answer.strip() != words:
                raise CommandError("Not confirmed; nothing was erased.")
        try:
            if kind == "contact":
                done = actions.erase_contact(actor=admin, contact_id=pk)
            else:
                done = actions.erase_lead(actor=admin, lead_id=pk)
        except Http404:
            raise CommandError(f"There is no {kind} {pk}.") from None
        if not done.is_new:
            self.stdout.write(f"The {kind} {pk} was erased already, on {done.erasure.erased_at}.")
            return
        changed = ", ".join(f"{what}: {n}" for what, n in done.erasure.counts.items() if n)
        self.stdout.write(f"Erased the {kind} {pk} ({changed or 'nothing else named them'}).")
