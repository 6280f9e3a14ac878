"""The generated mail of the inbound benchmark, each message with the account it must reach.

2,000 posts (seeded, so every run posts the same bytes): about 70 % small, 25 % medium (an HTML
alternative and a quoted history), 5 % with a 100 KB attachment, and 5 % of the posts are exact
re-posts of an earlier message (duplicates). The correct account is known for each message; the
routes are the matching rules of docs/integrations.md: a contact's address, a colleague at the
account's domain, a logging address, and replies in a thread.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import format_datetime

ACCOUNTS = 200
POSTS = 2000
DUPLICATE_SHARE = 0.05
OWN_DOMAIN = "tidings.example"
INBOUND_DOMAIN = "inbound.tidings.example"
SEED = 20261123


@dataclass
class Generated:
    message_id: str
    account: int  # index 0..ACCOUNTS-1 of the account it must reach
    route: str
    raw: bytes


def contact_address(index: int) -> str:
    return f"buyer{index}@c{index}.example"


def domain(index: int) -> str:
    return f"c{index}.example"


_WORDS = [
    "renewal",
    "quote",
    "seats",
    "pricing",
    "contract",
    "signature",
    "onboarding",
    "rollout",
    "migration",
    "invoice",
    "security",
    "review",
    "timeline",
    "stakeholders",
    "procurement",
    "budget",
    "pilot",
    "feedback",
    "dashboard",
]


def _text(rng: random.Random, words: int) -> str:
    lines = []
    for _ in range(max(1, words // 12)):
        lines.append(" ".join(rng.choice(_WORDS) for _ in range(12)).capitalize() + ".")
    return "\n".join(lines)


def _message(
    rng: random.Random,
    n: int,
    *,
    sender: str,
    to: str,
    cc: str,
    size: str,
    in_reply_to: str = "",
) -> tuple[str, bytes]:
    message = EmailMessage()
    message_id = f"<bench{n}.{rng.getrandbits(32):08x}@mail.bench.example>"
    message["From"] = sender
    message["To"] = to
    if cc:
        message["Cc"] = cc
    message["Subject"] = f"{'Re: ' if in_reply_to else ''}Bench message {n}"
    message["Date"] = format_datetime(
        dt.datetime(2026, 11, 1, tzinfo=dt.UTC) + dt.timedelta(minutes=n)
    )
    message["Message-ID"] = message_id
    if in_reply_to:
        message["In-Reply-To"] = f"<{in_reply_to}>"
        message["References"] = f"<{in_reply_to}>"
    body = "Hello,\n\n" + _text(rng, 60) + "\n\nBest regards,\nThe buyer\n"
    if size == "medium":
        history = "\n".join("> " + line for line in _text(rng, 1400).splitlines())
        body += f"\nOn Mon, Oct 5, 2026 at 9:00 AM Alice wrote:\n{history}\n"
        message.set_content(body)
        paragraphs = "".join(f"<p>{line}</p>" for line in body.splitlines() if line)
        message.add_alternative(f"<html><body>{paragraphs}</body></html>", subtype="html")
    else:
        message.set_content(body)
    if size == "attachment":
        blob = b"%PDF-1.4\n" + rng.randbytes(100 * 1024)
        message.add_attachment(blob, maintype="application", subtype="pdf", filename="quote.pdf")
    return message_id, message.as_bytes()


def generate(logging_tokens: dict[int, str]) -> tuple[list[Generated], list[Generated]]:
    """(distinct messages, the posts in order: the distinct ones with duplicates mixed in)."""
    rng = random.Random(SEED)
    duplicates = int(POSTS * DUPLICATE_SHARE)
    distinct: list[Generated] = []
    for n in range(POSTS - duplicates):
        account = rng.randrange(ACCOUNTS)
        roll = rng.random()
        size = "small" if roll < 0.70 else "medium" if roll < 0.95 else "attachment"
        route = rng.choices(["contact", "domain", "logging", "thread"], [55, 20, 10, 15])[0]
        if route == "logging" and account not in logging_tokens:
            route = "contact"
        earlier = [g for g in distinct[-200:] if g.account == account and g.route != "thread"]
        if route == "thread" and not earlier:
            route = "contact"
        reply_to = ""
        if route == "contact":
            sender, to, cc = contact_address(account), f"rep{account % 7}@{OWN_DOMAIN}", ""
        elif route == "domain":
            sender, to, cc = f"someone{n}@{domain(account)}", f"rep{account % 7}@{OWN_DOMAIN}", ""
        elif route == "logging":
            token = logging_tokens[account]
            sender, to = f"rep{account % 7}@{OWN_DOMAIN}", f"prospect{n}@gmail.com"
            cc = f"log+{token}@{INBOUND_DOMAIN}"
        else:
            # A reply by a colleague of the buyer: the thread and the domain agree on the account,
            # so the result does not depend on which of the two is processed first.
            reply_to = rng.choice(earlier).message_id
            sender, to, cc = f"colleague{n}@{domain(account)}", f"rep{account % 7}@{OWN_DOMAIN}", ""
        message_id, raw = _message(
            rng, n, sender=sender, to=to, cc=cc, size=size, in_reply_to=reply_to
        )
        distinct.append(Generated(message_id.strip("<>"), account, route, raw))
    posts = list(distinct)
    for _ in range(duplicates):
        posts.insert(rng.randrange(len(posts) // 2, len(posts) + 1), rng.choice(distinct[:1000]))
    return distinct, posts
