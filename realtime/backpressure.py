"""How many bytes the server holds for one WebSocket that the peer has not taken yet.

Under daphne (Twisted) an ASGI `send` never waits: the transport appends the frame to its buffer,
without limit, and returns. A client that stops reading (a laptop lid closed mid-stream, a stuck
script) fills the kernel's socket buffers and then, silently, the server's memory; the consumer's
bounded queue never fills because nothing ever waits. ASGI gives an application no way to ask, so
this module finds the server's transport behind the `send` callable it was handed (through the
middleware that wraps it) and reads its buffer: Twisted's pending-write buffer under daphne,
asyncio's `get_write_buffer_size()` under uvicorn, plus what the kernel holds unsent or
unacknowledged in the socket's send queue (SIOCOUTQ): Linux grows that queue up to `tcp_wmem`'s
maximum (4 MiB here) before the server's own buffer grows at all, and it is memory the stalled
client costs too.
Unknown servers (and the test communicator) answer None, and the consumer falls back to its queue
bound alone.
"""

from __future__ import annotations

import array
import fcntl
import functools
import termios
from collections.abc import Callable
from typing import Any

# How deep to look through middleware wrappers (channels' session wrapper, partials).
_MAX_DEPTH = 6

Probe = Callable[[], int]


def send_buffer_probe(send: Any) -> Probe | None:
    """A function answering the bytes buffered for this connection, or None if unknown."""
    return _probe_of(send, 0)


def _probe_of(send: Any, depth: int) -> Probe | None:
    if depth > _MAX_DEPTH or send is None:
        return None
    if isinstance(send, functools.partial):
        # daphne: partial(Server.handle_reply, protocol)
        for argument in send.args:
            probe = _transport_probe(getattr(argument, "transport", None))
            if probe is not None:
                return probe
        return _probe_of(send.func, depth + 1)
    owner = getattr(send, "__self__", None)
    if owner is None:
        return None
    # uvicorn: the protocol's own bound method; a wrapper: look at what it wraps.
    probe = _transport_probe(getattr(owner, "transport", None))
    if probe is not None:
        return probe
    for value in vars(owner).values() if hasattr(owner, "__dict__") else ():
        if callable(value) and value is not send:
            probe = _probe_of(value, depth + 1)
            if probe is not None:
                return probe
    return None


def _kernel_queued(fileno: int) -> int:
    """Bytes in the socket's send queue not yet acknowledged by the peer (0 if unknown)."""
    answer = array.array("i", [0])
    try:
        fcntl.ioctl(fileno, termios.TIOCOUTQ, answer, True)
    except (OSError, ValueError):
        return 0  # closed meanwhile (a closed Twisted transport's fileno is -1), or not TCP
    return answer[0]


def _transport_probe(transport: Any) -> Probe | None:
    if transport is None:
        return None
    if all(hasattr(transport, name) for name in ("dataBuffer", "offset", "_tempDataLen")):
        # twisted.internet.abstract.FileDescriptor: bytes not yet handed to the kernel are the
        # unwritten rest of dataBuffer plus the writes queued behind it.
        def twisted_buffered() -> int:
            held = len(transport.dataBuffer) - transport.offset + transport._tempDataLen
            return int(held + _kernel_queued(transport.fileno()))

        return twisted_buffered
    size = getattr(transport, "get_write_buffer_size", None)
    sock = transport.get_extra_info("socket") if hasattr(transport, "get_extra_info") else None
    if callable(size) and sock is not None:
        fileno = sock.fileno()
        return lambda: int(size()) + _kernel_queued(fileno)
    return None
