"""What both privacy commands take: whose data (a contact or a lead, by id) and which
administrator acts (the actions check it, as they do for the API)."""

from __future__ import annotations

from django.core.management.base import CommandError, CommandParser

from crm.models import User


def add_subject_arguments(parser: CommandParser) -> None:
    parser.add_argument(
        "kind", choices=["contact", "lead"], help="Whose data: a contact or a lead."
    )
    parser.add_argument("id", type=int, help="The contact's or lead's id.")
    parser.add_argument(
        "--as", dest="username", required=True, help="The administrator who asks (recorded)."
    )


def acting_admin(username: str) -> User:
    user = User.objects.filter(username=username, is_active=True).first()
    if user is None or not user.is_admin:
        raise CommandError(f"{username!r} is not an active administrator.")
    return user
