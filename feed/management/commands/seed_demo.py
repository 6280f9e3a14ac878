"""`manage.py seed_demo`: the demo org of DESIGN.md section 1. Idempotent.

Teams East and West; alice and bob (reps, East), carol (support), dave (manager of East), erin
(rep, West) and admin; 44 accounts with contacts, opportunities and two months of history of every
activity kind; leads in all three groups. Running it again changes nothing but the passwords.
"""

from __future__ import annotations

import datetime as dt
import random
import unicodedata
from decimal import Decimal
from typing import Any, NamedTuple

from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction
from django.utils import timezone
from tqdm import tqdm

from crm import actions
from crm.models import Account, Lead, Opportunity, Team, User
from feed import happenings
from feed.actions import (
    add_comment,
    create_task,
    follow_account,
    log_activity,
    log_call,
    log_meeting,
    set_task_done,
)
from feed.actions.requests import default_queue
from feed.models import Activity, RequestQueue

PEOPLE: list[dict[str, Any]] = [
    {
        "username": "alice",
        "first_name": "Alice",
        "last_name": "Moreau",
        "role": "rep",
        "team": "East",
    },
    {"username": "bob", "first_name": "Bob", "last_name": "Okafor", "role": "rep", "team": "East"},
    {
        "username": "carol",
        "first_name": "Carol",
        "last_name": "Lindqvist",
        "role": "support",
        "team": None,
    },
    {
        "username": "dave",
        "first_name": "Dave",
        "last_name": "Ramirez",
        "role": "manager",
        "team": "East",
    },
    {
        "username": "erin",
        "first_name": "Erin",
        "last_name": "Takahashi",
        "role": "rep",
        "team": "West",
    },
    {"username": "admin", "first_name": "Ada", "last_name": "Admin", "role": "admin", "team": None},
]

EAST = [
    ("Acme Logistics", "Logistics"),
    ("Brightwater Foods", "Food & beverage"),
    ("Cobalt Robotics", "Manufacturing"),
    ("Delmar Health", "Healthcare"),
    ("Evergreen Energy", "Energy"),
    ("Fairview Bank", "Financial services"),
    ("Granite Construction Co", "Construction"),
    ("Harborline Shipping", "Logistics"),
    ("Ironclad Security", "Software"),
    ("Juniper Schools", "Education"),
    ("Keystone Insurance", "Financial services"),
    ("Lighthouse Media", "Media"),
    ("Maple Street Clinics", "Healthcare"),
    ("Northwind Traders", "Retail"),
    ("Oakridge Pharma", "Pharmaceuticals"),
    ("Pinecrest Hotels", "Hospitality"),
    ("Quarry Labs", "Software"),
    ("Riverbend Farms", "Agriculture"),
    ("Summit Outdoor", "Retail"),
    ("Tidewater Utilities", "Energy"),
    ("Union Freight", "Logistics"),
    ("Vantage Analytics", "Software"),
]
WEST = [
    ("Westwind Airlines", "Transportation"),
    ("Xeric Water Systems", "Utilities"),
    ("Yellowstone Outfitters", "Retail"),
    ("Zephyr Cloud", "Software"),
    ("Alpine Dairy", "Food & beverage"),
    ("Bayside Biotech", "Pharmaceuticals"),
    ("Canyon Credit Union", "Financial services"),
    ("Desert Rose Resorts", "Hospitality"),
    ("Emerald Games", "Media"),
    ("Foothill Hospital", "Healthcare"),
    ("Golden Gate Robotics", "Manufacturing"),
    ("High Sierra Solar", "Energy"),
    ("Inland Empire Transit", "Transportation"),
    ("Joshua Tree Wineries", "Food & beverage"),
    ("Kelp Forest Aquatics", "Retail"),
    ("Lone Pine Lumber", "Construction"),
    ("Mesa Verde Telecom", "Telecommunications"),
    ("Nevada Data Centers", "Software"),
    ("Olympic Sportswear", "Retail"),
    ("Pacific Rim Imports", "Logistics"),
    ("Redwood Publishing", "Media"),
    ("Sequoia Capital Partners", "Financial services"),
]
FIRST = [
    "Maria",
    "James",
    "Priya",
    "Chen",
    "Fatima",
    "Lukas",
    "Sofia",
    "Kwame",
    "Elena",
    "Diego",
    "Aisha",
    "Tomás",
    "Hannah",
    "Ravi",
    "Mei",
    "Oliver",
    "Zara",
    "Ivan",
    "Noor",
    "Felix",
]
LAST = [
    "Garcia",
    "Smith",
    "Patel",
    "Wang",
    "Haddad",
    "Becker",
    "Rossi",
    "Mensah",
    "Petrova",
    "Silva",
    "Khan",
    "Novak",
    "Schmidt",
    "Iyer",
    "Lin",
    "Brown",
    "Ali",
    "Ivanov",
    "Sato",
    "Weber",
]
TITLES = [
    "VP Operations",
    "Head of Procurement",
    "CFO",
    "IT Director",
    "Office Manager",
    "Chief Technology Officer",
    "Purchasing Lead",
    "COO",
]
POSTS = [
    "Quick sync with {contact}: they want the revised quote before the board meeting.",
    "Heads-up: {contact} is moving to a new role next month; we need a new champion.",
    "Pricing feedback from {contact} was positive. Legal review is the next hurdle.",
    "Competitor demo happened last week. {contact} still prefers our onboarding story.",
    "Renewal looks safe; they are asking about the analytics add-on.",
    "Budget freeze until next quarter according to {contact}. Keeping the thread warm.",
]
CALL_OUTCOMES = ["connected", "left_voicemail", "no_answer", "connected"]
REQUEST_SUBJECTS = [
    "Invoice shows the wrong VAT number",
    "SSO login fails for new users",
    "Export to CSV times out",
    "Need a copy of the signed DPA",
]


def _mailbox(first: str, last: str, domain: str) -> str:
    """first.last@domain as mail systems write it: "Tomás" gives "tomas", not UTF-8."""
    local = unicodedata.normalize("NFKD", f"{first}.{last}").encode("ascii", "ignore").decode()
    return f"{local}@{domain}".lower()


class _Entry(NamedTuple):
    """What one entry of seeded history is made of."""

    account: Account
    when: dt.datetime
    author: User
    owner: User
    contact: Any
    rng: random.Random


class Command(BaseCommand):
    help = "Create (or refresh) the demo org: teams, users, accounts, contacts, history."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--password", default="demo", help="Password of every demo user.")

    def handle(self, *args: Any, password: str, **options: Any) -> None:
        with transaction.atomic():
            users = self._people(password)
        admin = users["admin"]
        accounts = [(name, industry, "East") for name, industry in EAST]
        accounts += [(name, industry, "West") for name, industry in WEST]
        created = 0
        for name, industry, team_name in tqdm(accounts, desc="Demo accounts", unit="account"):
            # Two months of made-up history is not news: nobody is notified of it.
            with transaction.atomic(), happenings.quiet():
                created += self._account(name, industry, team_name, users, admin)
        with transaction.atomic():
            leads = self._leads(admin)
            self._follows(users)
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo org ready: {len(users)} users, {len(accounts)} accounts "
                f"({created} new), {leads} new leads. Log in as alice / {password}."
            )
        )

    def _people(self, password: str) -> dict[str, User]:
        teams = {
            "East": Team.objects.get_or_create(name="East", defaults={"region": "East Coast"})[0],
            "West": Team.objects.get_or_create(name="West", defaults={"region": "West Coast"})[0],
        }
        users: dict[str, User] = {}
        for person in PEOPLE:
            user, _ = User.objects.get_or_create(username=person["username"])
            user.first_name = person["first_name"]
            user.last_name = person["last_name"]
            user.email = f"{person['username']}@tidings.example"
            user.role = person["role"]
            user.team = teams[person["team"]] if person["team"] else None
            user.is_staff = user.is_superuser = person["role"] == "admin"
            user.set_password(password)
            user.save()
            users[user.username] = user
        teams["East"].managers.add(users["dave"])
        # Carol leads the support queue: overdue requests nobody has reach her.
        RequestQueue.objects.update_or_create(name="Support", defaults={"lead": users["carol"]})
        return users

    def _account(
        self, name: str, industry: str, team_name: str, users: dict[str, User], admin: User
    ) -> int:
        if Account.objects.filter(name=name).exists():
            return 0
        rng = random.Random(name)  # noqa: S311 - demo data, not secrets
        owner = users["erin"] if team_name == "West" else rng.choice([users["alice"], users["bob"]])
        domain = name.lower().replace("&", "and").replace(" ", "") + ".example"
        account = actions.create_account(
            actor=admin,
            name=name,
            owner=owner,
            industry=industry,
            region="East Coast" if team_name == "East" else "West Coast",
            record_type=rng.choice(["customer", "customer", "prospect", "partner"]),
            domains=[domain, domain.replace(".example", "-corp.example")],
        )
        if name == "Quarry Labs":
            # erin (West) works this East account too: an account-team grant.
            actions.grant_account_access(
                actor=admin, account=account, user=users["erin"], role="Solutions"
            )
        contacts = []
        for _ in range(rng.randint(2, 4)):
            first, last = rng.choice(FIRST), rng.choice(LAST)
            contacts.append(
                actions.create_contact(
                    actor=admin,
                    account=account,
                    first_name=first,
                    last_name=last,
                    title=rng.choice(TITLES),
                    phone=f"+1 555 {rng.randint(100, 999)} {rng.randint(1000, 9999)}",
                    emails=[_mailbox(first, last, domain)],
                )
            )
        today = timezone.localdate()
        for index in range(rng.randint(1, 3)):
            stage = rng.choice(Opportunity.Stage.values)
            actions.create_opportunity(
                actor=admin,
                account=account,
                name=f"{name} - {['Platform', 'Expansion', 'Renewal'][index]}",
                close_date=today + dt.timedelta(days=rng.randint(-30, 120)),
                amount=Decimal(rng.randrange(5_000, 250_000, 500)),
                stage=stage,
                probability=rng.choice([10, 25, 50, 75, 90]),
                owner=owner,
            )
        self._history(account, owner, contacts, users, rng)
        return 1

    def _history(
        self,
        account: Account,
        owner: User,
        contacts: list[Any],
        users: dict[str, User],
        rng: random.Random,
    ) -> None:
        now = timezone.now()
        start = now - dt.timedelta(days=60)
        stamps = sorted(
            start + dt.timedelta(minutes=rng.randint(0, 60 * 24 * 59)) for _ in range(14)
        )
        colleagues = [
            owner,
            users["dave"] if owner.team_id == users["dave"].team_id else owner,
            users["carol"],
        ]
        for index, when in enumerate(stamps):
            contact = rng.choice(contacts)
            kind = [
                "post",
                "email",
                "call",
                "meeting",
                "task",
                "post",
                "request",
                "change",
                "email",
                "call",
                "post",
                "meeting",
                "task",
                "post",
            ][index]
            author = rng.choice(colleagues)
            self._one(account, kind, when, author, owner, contact, rng)
        log_activity(
            actor=None,
            account=account,
            kind=Activity.Kind.SYSTEM,
            body=f"Account imported into Tidings with {len(contacts)} contacts.",
            occurred_at=start - dt.timedelta(days=1),
        )

    def _one(
        self,
        account: Account,
        kind: str,
        when: dt.datetime,
        author: User,
        owner: User,
        contact: Any,
        rng: random.Random,
    ) -> None:
        """One believable entry of history of `kind`, at `when`, through the feed's actions."""
        seed = getattr(self, f"_seed_{kind}")
        seed(_Entry(account, when, author, owner, contact, rng))

    def _seed_post(self, entry: _Entry) -> None:
        who = entry.contact.full_name
        thread = log_activity(
            actor=entry.author,
            account=entry.account,
            kind="post",
            occurred_at=entry.when,
            body=entry.rng.choice(POSTS).format(contact=who),
        )
        if entry.rng.random() < 0.5:
            reply = add_comment(
                actor=entry.owner, parent=thread, body="Thanks, I'll follow up this week."
            )
            Activity.objects.filter(pk=reply.pk).update(
                occurred_at=entry.when + dt.timedelta(hours=2)
            )

    def _seed_email(self, entry: _Entry) -> None:
        who = entry.contact.full_name
        address = entry.contact.emails.first().address
        log_activity(
            actor=None,
            account=entry.account,
            kind="email",
            occurred_at=entry.when,
            subject=f"Re: {entry.account.name} proposal",
            body=(
                f"Hi {entry.owner.first_name},\n\nThanks for the call. "
                f"Could you send the updated terms?\n\n{who}"
            ),
            details={"direction": "inbound", "from": address, "to": [entry.owner.email], "cc": []},
        )

    def _seed_call(self, entry: _Entry) -> None:
        log_call(
            actor=entry.author,
            account=entry.account,
            contact=entry.contact,
            occurred_at=entry.when,
            body="Discussed rollout timeline and next steps.",
            duration_seconds=entry.rng.randint(5, 45) * 60,
            outcome=entry.rng.choice(CALL_OUTCOMES),
        )

    def _seed_meeting(self, entry: _Entry) -> None:
        who = entry.contact.full_name
        # Some meetings lie ahead, so the 360 page has upcoming ones.
        starts = (
            entry.when
            if entry.rng.random() < 0.6
            else timezone.now() + dt.timedelta(days=entry.rng.randint(1, 14))
        )
        log_meeting(
            actor=entry.author,
            account=entry.account,
            subject=f"{entry.account.name} quarterly review",
            body="Reviewed adoption numbers and the open support items.",
            starts_at=starts,
            ends_at=starts + dt.timedelta(hours=1),
            users=[entry.owner],
            contacts=[entry.contact],
            decisions=["Pilot a second team"],
            action_items=[
                {
                    "subject": f"Send pilot plan to {who}",
                    "assignee": entry.owner,
                    "due_at": starts + dt.timedelta(days=entry.rng.randint(1, 20)),
                }
            ],
        )

    def _seed_task(self, entry: _Entry) -> None:
        who = entry.contact.full_name
        task = create_task(
            actor=entry.author,
            account=entry.account,
            subject=f"Send the revised quote to {who}",
            assignee=entry.owner,
            due_at=entry.when + dt.timedelta(days=entry.rng.randint(1, 20)),
            contact=entry.contact,
        )
        Activity.objects.filter(pk=task.pk).update(occurred_at=entry.when)
        if entry.rng.random() < 0.6:
            set_task_done(actor=entry.owner, task=task)

    def _seed_request(self, entry: _Entry) -> None:
        who = entry.contact.full_name
        log_activity(
            actor=entry.author,
            account=entry.account,
            kind="request",
            occurred_at=entry.when,
            subject=entry.rng.choice(REQUEST_SUBJECTS),
            body=f"Reported by {who}.",
            status=entry.rng.choice(["open", "in_progress", "resolved"]),
            priority=entry.rng.choice(["low", "normal", "normal", "high", "urgent"]),
            queue=default_queue(),
            due_at=entry.when + dt.timedelta(days=2),
        )

    def _seed_change(self, entry: _Entry) -> None:
        log_activity(
            actor=entry.owner,
            account=entry.account,
            kind="change",
            occurred_at=entry.when,
            subject="Opportunity stage changed",
            details={
                "field": "stage",
                "label": "Stage",
                "old": "Qualification",
                "new": "Proposal",
            },
        )

    def _follows(self, users: dict[str, User]) -> None:
        """Managers and support follow some accounts explicitly (owners follow theirs already)."""
        east = Account.objects.filter(team__name="East").order_by("name")
        for account in east[:8]:
            follow_account(user=users["dave"], account=account)
        for account in Account.objects.order_by("name")[::6]:
            follow_account(user=users["carol"], account=account)

    def _leads(self, admin: User) -> int:
        rng = random.Random("leads")  # noqa: S311 - demo data, not secrets
        created = 0
        groups = [Lead.Group.LIVE] * 6 + [Lead.Group.NAMES] * 6 + [Lead.Group.DEAD] * 4
        for index, group in enumerate(groups):
            first, last = FIRST[index], LAST[-index - 1]
            colour = rng.choice(["Blue", "Red", "Silver", "Green"])
            company = f"{colour} {rng.choice(['Harbor', 'Peak', 'Field', 'Bridge'])} {index}"
            email = _mailbox(first, last, f"lead{index}.example")
            if Lead.objects.filter(email=email).exists():
                continue
            actions.create_lead(
                actor=admin,
                first_name=first,
                last_name=last,
                company=company,
                email=email,
                group=group,
                dead_reason="Unreachable after five attempts" if group == Lead.Group.DEAD else "",
            )
            created += 1
        return created
