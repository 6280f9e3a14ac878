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
    return _transport_probe(_transport_of(send, 0))


def write_through(send: Any) -> Callable[[], None] | None:
    """Under daphne, a function that hands what was just sent to the kernel at once; None
    elsewhere (uvicorn's asyncio transports already write as they are given a frame).

    Twisted's `write` only appends to the transport's buffer and registers it with the reactor;
    the frame is written in a later turn of the event loop. A post's fan-out to 100 sockets
    therefore left no frame at all until it had finished, and then the loop wrote the 100 while
    the request's thread, woken by the same hand-over, ran the rest of the request beside it:
    profiled on the real-time benchmark, the first frame left ~2 ms after the fan-out ended and
    the last ~5 ms after (docs/benchmarks.md). Writing each frame as it is made is what
    uvicorn does. Only a transport with nothing left over from earlier frames is written: one
    whose kernel buffer is full (a slow reader) is left to the reactor, which writes it when the
    socket drains, and so is one that is closing (the reactor must see its last write to finish
    the close).
    """
    transport = _transport_of(send, 0)
    if not _is_twisted(transport) or not callable(getattr(transport, "doWrite", None)):
        return None

    def write_now() -> None:
        if transport.dataBuffer or not transport.connected or transport.disconnecting:
            return
        # `doWrite` is what the reactor calls when the socket is writable; here it is (the
        # buffer is empty). A failed send is left registered and the reactor handles it.
        transport.doWrite()

    return write_now


def _transport_of(send: Any, depth: int) -> Any:
    """The server's transport behind an ASGI `send` callable, or None if unknown."""
    if depth > _MAX_DEPTH or send is None:
        return None
    if isinstance(send, functools.partial):
        # daphne: partial(Server.handle_reply, protocol)
        for argument in send.args:
            transport = getattr(argument, "transport", None)
            if _is_known(transport):
                return transport
        return _transport_of(send.func, depth + 1)
    owner = getattr(send, "__self__", None)
    if owner is None:
        return None
    # uvicorn: the protocol's own bound method; a wrapper: look at what it wraps.
    transport = getattr(owner, "transport", None)
    if _is_known(transport):
        return transport
    for value in vars(owner).values() if hasattr(owner, "__dict__") else ():
        if callable(value) and value is not send:
            transport = _transport_of(value, depth + 1)
            if transport is not None:
                return transport
    return None


def _is_twisted(transport: Any) -> bool:
    # twisted.internet.abstract.FileDescriptor and its TCP connections
    return transport is not None and all(
        hasattr(transport, name) for name in ("dataBuffer", "offset", "_tempDataLen")
    )


def _is_asyncio(transport: Any) -> bool:
    return callable(getattr(transport, "get_write_buffer_size", None)) and hasattr(
        transport, "get_extra_info"
    )


def _is_known(transport: Any) -> bool:
    return _is_twisted(transport) or _is_asyncio(transport)


def _kernel_queued(fileno: int) -> int:
    """Bytes in the socket's send queue not yet acknowledged by the peer (0 if unknown)."""
    answer = array.array("i", [0])
    try:
        fcntl.ioctl(fileno, termios.TIOCOUTQ, answer, True)
    except (OSError, ValueError):
        return 0  # closed meanwhile (a closed Twisted transport's fileno is -1), or not TCP
    return answer[0]


def _transport_probe(transport: Any) -> Probe | None:
    if _is_twisted(transport):
        # twisted.internet.abstract.FileDescriptor: bytes not yet handed to the kernel are the
        # unwritten rest of dataBuffer plus the writes queued behind it.
        def twisted_buffered() -> int:
            held = len(transport.dataBuffer) - transport.offset + transport._tempDataLen
            return int(held + _kernel_queued(transport.fileno()))

        return twisted_buffered
    if not _is_asyncio(transport):
        return None
    sock = transport.get_extra_info("socket")
    if sock is None:
        return None
    size = transport.get_write_buffer_size
    fileno = sock.fileno()
    return lambda: int(size()) + _kernel_queued(fileno)
