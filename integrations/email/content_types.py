"""What an attachment is, from its bytes: the sender's Content-Type is a claim, not a fact."""

from __future__ import annotations

import puremagic

# Enough for every signature puremagic knows at the start of a file; reading all of a large
# attachment would cost time for nothing.
HEAD_BYTES = 8192
# Types a browser would render inline if asked; downloads are always attachments anyway.
FALLBACK = "application/octet-stream"


def sniff(content: bytes) -> str:
    """The MIME type the content shows itself to be; plain text for text, octet-stream else."""
    head = content[:HEAD_BYTES]
    try:
        found = puremagic.from_string(head, mime=True)
    except (puremagic.PureError, ValueError):
        found = ""
    if found:
        return str(found)[:127]
    return "text/plain" if _looks_like_text(head) else FALLBACK


def _looks_like_text(head: bytes) -> bool:
    if b"\x00" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as error:
        # A multi-byte character cut at the end of the sample is still text.
        return error.start >= len(head) - 3
    return True
