"""Which account an inbound message belongs to, and which activity it answers.

The order is the contract of docs/integrations.md, first hit wins:
1. reply threading: In-Reply-To/References against messages we stored or sent;
2. a per-account logging address, log+<token>@<inbound domain> (checked now, not when sent);
3. a rule taught in triage for one of the addresses, then for one of the domains;
4. contact addresses among the sender and recipients;
5. their domains against account domains (never our own, never personal webmail);
otherwise the message waits in triage. At each step the sender decides before the recipients;
when one step points at two accounts the message goes to triage rather than to a guess.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from django.conf import settings

from crm.models import Account, AccountDomain, Contact, ContactEmail
from crm.visibility import live_accounts
from feed.actions import thread_root
from feed.models import Activity
from integrations.email.message_ids import activity_id_from_message_id
from integrations.email.parsing import Address, ParsedEmail
from integrations.models import InboundAddressRule, InboundEmail, LoggingAddress

# Free mail: a domain shared by millions says nothing about which customer wrote.
PERSONAL_DOMAINS = frozenset(
    {
        "aol.com", "gmail.com", "googlemail.com", "gmx.com", "gmx.de", "gmx.net", "hey.com",
        "hotmail.co.uk", "hotmail.com", "hotmail.de", "hotmail.fr", "icloud.com", "live.com",
        "mac.com", "mail.com", "mail.ru", "me.com", "msn.com", "outlook.com", "outlook.de",
        "pm.me", "proton.me", "protonmail.com", "qq.com", "t-online.de", "tutanota.com",
        "web.de", "yahoo.co.uk", "yahoo.com", "yahoo.de", "yahoo.fr", "yandex.ru", "zoho.com",
    }
)  # fmt: skip


@dataclass(frozen=True)
class Match:
    """Where a message goes; `account` None means triage, with `reason` saying why.

    `thread_of` is the Message-ID of an earlier message of the same batch that this one answers
    (its activity, not written yet, becomes `parent`; see integrations.actions.processing)."""

    account: Account | None
    matched_by: str = ""
    parent: Activity | None = None
    contact: Contact | None = None
    reason: str = ""
    thread_of: str = ""


@dataclass
class Lookups:
    """What the rules need to know about a batch of messages, read with one query per rule."""

    threads: dict[str, Activity] = field(default_factory=dict)  # Message-ID -> activity
    logging: dict[str, Account] = field(default_factory=dict)  # token -> account
    rules: dict[str, Account] = field(default_factory=dict)  # address or domain -> account
    contacts: dict[str, list[Contact]] = field(default_factory=dict)  # address -> contacts
    domains: dict[str, Account] = field(default_factory=dict)  # account domain -> account
    # Message-IDs of stored messages not processed yet (another batch holds them, or they wait).
    in_flight: set[str] = field(default_factory=set)


def is_own_domain(domain: str) -> bool:
    own = [*settings.TIDINGS_OWN_DOMAINS, settings.TIDINGS_INBOUND_DOMAIN]
    return any(domain == d or domain.endswith("." + d) for d in own)


def is_matchable_domain(domain: str) -> bool:
    return bool(domain) and not is_own_domain(domain) and domain not in PERSONAL_DOMAINS


def match_email(
    parsed: ParsedEmail,
    lookups: Lookups | None = None,
    earlier: Mapping[str, Match] | None = None,
) -> Match:
    """Where `parsed` belongs, by the rules in this module's docstring.

    `lookups` are those of a batch that holds `parsed` (`load_lookups`); `earlier` maps the
    Message-IDs of the batch's messages already decided to their matches, so a reply threads
    onto a message of its own batch."""
    if lookups is None:
        lookups = load_lookups([parsed])
    found = by_thread(parsed, lookups, earlier or {})
    for step in (by_logging_address, by_rule, by_contact, by_domain):
        if found is not None:
            return found
        found = step(parsed, lookups)
    if found is not None:
        return found
    return Match(None, reason="No thread, logging address, contact or account domain matched.")


def load_lookups(batch: list[ParsedEmail]) -> Lookups:
    """Every row the rules could use for `batch`, one query per rule that has something to ask."""
    people = [a for parsed in batch for a in _outside(parsed.participants)]
    domains = {s for a in people if is_matchable_domain(a.domain) for s in _suffixes(a.domain)}
    answered = {i for parsed in batch for i in parsed.thread_ids[:30]}
    threads, in_flight = _thread_activities(answered)
    return Lookups(
        threads=threads,
        in_flight=in_flight - {parsed.message_id for parsed in batch},
        logging=_logging_accounts({t for parsed in batch for t in _logging_tokens(parsed)}),
        rules=_rule_accounts({a.address for a in people} | {a.domain for a in people}),
        contacts=_contacts({a.address for a in people}),
        domains=_domain_owners(domains),
    )


def _thread_activities(ids: set[str]) -> tuple[dict[str, Activity], set[str]]:
    """Live activities that the Message-IDs `ids` name (ours, signed, then mail we stored), and
    those of `ids` that are stored but still queued."""
    if not ids:
        return {}, set()
    activities: dict[str, int] = {}
    for message_id in ids:
        ours = activity_id_from_message_id(message_id)
        if ours is not None:
            activities[message_id] = ours
    stored = InboundEmail.objects.filter(message_id__in=ids).values_list(
        "message_id", "activity_id", "status"
    )
    in_flight: set[str] = set()
    for message_id, activity_id, status in stored:
        if activity_id is not None:
            activities.setdefault(message_id, activity_id)
        elif status == InboundEmail.Status.QUEUED:
            in_flight.add(message_id)
    if not activities:
        return {}, in_flight
    found = Activity.objects.select_related("account", "parent").filter(
        pk__in=activities.values(), deleted_at__isnull=True, account__in=live_accounts()
    )
    by_id = {a.pk: a for a in found}
    return {m: by_id[a] for m, a in activities.items() if a in by_id}, in_flight


def answers_in_flight(parsed: ParsedEmail, lookups: Lookups, earlier: Mapping[str, Match]) -> bool:
    """Whether `parsed` answers a message that is stored but not processed yet (outside its
    batch): matched now, it would miss its thread and fall to a weaker rule."""
    return any(i in lookups.in_flight and i not in earlier for i in parsed.thread_ids[:30])


def _logging_tokens(parsed: ParsedEmail) -> list[str]:
    return [
        a.address.partition("@")[0][4:]
        for a in parsed.participants
        if a.domain == settings.TIDINGS_INBOUND_DOMAIN and a.address.startswith("log+")
    ]


def _logging_accounts(tokens: set[str]) -> dict[str, Account]:
    if not tokens:
        return {}
    # Checked now, not when the address was handed out: a revoked address or a merged or
    # archived account no longer takes mail.
    addresses = LoggingAddress.objects.filter(
        token__in=tokens, revoked_at__isnull=True, account__in=live_accounts()
    ).select_related("account")
    return {a.token: a.account for a in addresses}


def _rule_accounts(keys: set[str]) -> dict[str, Account]:
    if not keys:
        return {}
    rules = InboundAddressRule.objects.filter(pattern__in=keys, account__in=live_accounts())
    return {r.pattern: r.account for r in rules.select_related("account")}


def _contacts(addresses: set[str]) -> dict[str, list[Contact]]:
    if not addresses:
        return {}
    rows = ContactEmail.objects.filter(
        address__in=addresses, contact__account__in=live_accounts()
    ).select_related("contact__account")
    contacts: dict[str, list[Contact]] = {}
    for row in rows:
        contacts.setdefault(row.address, []).append(row.contact)
    return contacts


def _domain_owners(domains: set[str]) -> dict[str, Account]:
    if not domains:
        return {}
    owners = AccountDomain.objects.filter(domain__in=domains, account__in=live_accounts())
    return {d.domain: d.account for d in owners.select_related("account")}


def by_thread(parsed: ParsedEmail, lookups: Lookups, earlier: Mapping[str, Match]) -> Match | None:
    for message_id in parsed.thread_ids[:30]:  # nearest first
        activity = lookups.threads.get(message_id)
        if activity is not None:
            return Match(activity.account, "thread", parent=thread_root(activity))
        answered = earlier.get(message_id)
        if answered is not None and answered.account is not None:
            # The thread's root: what the earlier message answered, else that message itself.
            root = answered.thread_of or ("" if answered.parent else message_id)
            return Match(answered.account, "thread", parent=answered.parent, thread_of=root)
    return None


def by_logging_address(parsed: ParsedEmail, lookups: Lookups) -> Match | None:
    tokens = _logging_tokens(parsed)
    accounts = {a.pk: a for t in tokens if (a := lookups.logging.get(t)) is not None}
    return _one(accounts, "logging-address", "several logging addresses")


def by_rule(parsed: ParsedEmail, lookups: Lookups) -> Match | None:
    people = _outside(parsed.participants)
    # Address rules before domain rules; the sender's before the recipients'.
    for key in [a.address for a in people] + [a.domain for a in people]:
        if key in lookups.rules:
            return Match(lookups.rules[key], "rule")
    return None


def by_contact(parsed: ParsedEmail, lookups: Lookups) -> Match | None:
    people = _outside(parsed.participants)
    if not people:
        return None
    contacts = lookups.contacts
    return _sender_then_recipients(
        parsed,
        people,
        lambda addresses: [c for a in addresses for c in contacts.get(a.address, [])],
        "contact",
    )


def by_domain(parsed: ParsedEmail, lookups: Lookups) -> Match | None:
    people = [a for a in _outside(parsed.participants) if is_matchable_domain(a.domain)]
    if not people:
        return None
    owners = lookups.domains

    def accounts_of(addresses: Iterable[Address]) -> list[Account | Contact]:
        found: list[Account | Contact] = []
        for address in addresses:
            # The most specific registered domain wins: mail.acme.example before acme.example.
            owner = next((owners[s] for s in _suffixes(address.domain) if s in owners), None)
            if owner is not None:
                found.append(owner)
        return found

    return _sender_then_recipients(parsed, people, accounts_of, "domain")


def _sender_then_recipients(
    parsed: ParsedEmail,
    people: list[Address],
    find: Callable[[list[Address]], Sequence[Account | Contact]],
    how: str,
) -> Match | None:
    sender = [a for a in people if parsed.sender and a.address == parsed.sender.address]
    others = [a for a in people if a not in sender]
    for group, who in ((sender, "the sender"), (others, "the recipients")):
        hits = find(group)
        if not hits:
            continue
        contact = hits[0] if isinstance(hits[0], Contact) else None
        accounts = {(h.account if isinstance(h, Contact) else h).pk: h for h in hits}
        if len(accounts) > 1:
            return Match(None, reason=f"The {how}s of {who} belong to several accounts.")
        hit = hits[0]
        account = hit.account if isinstance(hit, Contact) else hit
        return Match(account, how, contact=contact)
    return None


def _one(accounts: dict[int, Account], how: str, several: str) -> Match | None:
    if not accounts:
        return None
    if len(accounts) > 1:
        return Match(None, reason=f"The message names {several} of different accounts.")
    return Match(next(iter(accounts.values())), how)


def _outside(addresses: list[Address]) -> list[Address]:
    """The addresses that are not ours (colleagues, the inbound mailbox)."""
    return [a for a in addresses if not is_own_domain(a.domain)]


def _suffixes(domain: str) -> list[str]:
    """acme.example for mail.eu.acme.example, most specific first, never a bare TLD."""
    labels = domain.split(".")
    return [".".join(labels[i:]) for i in range(len(labels) - 1)]
