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
    return _transport_probe(_owner_and_transport(send, 0)[1])


def prepared_sender(send: Any) -> Callable[[Any], bool] | None:
    """Under daphne, a function that sends one of autobahn's prepared messages (`prepare`) on
    this socket and answers whether it could; None elsewhere (uvicorn, the test communicator).

    A post's fan-out sends the same event to every follower. Through ASGI each socket framed
    it again, formatted autobahn's debug line (with colours, logging off or not) and
    registered and unregistered the socket with Twisted's reactor around one `send`: about
    half of a fan-out's time on the real-time benchmark (docs/benchmarks.md). Framed once by
    autobahn (`PreparedMessage`, its own API for broadcasts), a frame is handed to the kernel
    at once when nothing is waiting ahead of it; behind frames still buffered (a slow reader)
    it joins Twisted's buffer, in order, and the reactor writes it when the socket drains.
    The answer is False, and the caller sends through ASGI, when the socket is not open or
    closing, or when the connection negotiated compression (the frame must then be
    compressed for this socket alone).
    """
    protocol, transport = _owner_and_transport(send, 0)
    if protocol is None or not _is_twisted(transport):
        return None
    if not callable(getattr(transport, "writeSomeData", None)):
        return None
    if not all(hasattr(protocol, name) for name in ("state", "send_queue", "_perMessageCompress")):
        return None  # not autobahn's WebSocket protocol (what send_prepared reads of it)
    open_state = protocol.STATE_OPEN

    def send_prepared(prepared: Any) -> bool:
        if (
            protocol.state != open_state
            or protocol.send_queue  # autobahn's own chopped writes (daphne makes none) go first
            or protocol._perMessageCompress is not None
            or not transport.connected
            or transport.disconnecting
            or transport._writeDisconnected
        ):
            return False
        data = prepared.payloadHybi
        if transport._tempDataLen or transport.offset < len(transport.dataBuffer):
            transport.write(data)  # behind what the reactor still has to write
            return True
        sent = transport.writeSomeData(data)
        if isinstance(sent, Exception):
            # The connection is gone: buffered, the reactor's next write meets the error and
            # closes the connection as Twisted always does.
            transport.write(data)
        elif sent < len(data):
            transport.write(data[sent:])  # the kernel's buffer is full: the rest when it drains
        return True

    return send_prepared


def prepare(frame: str) -> Any:
    """`frame` (a text message) framed once for every socket of this server (autobahn's
    `PreparedMessage`, as its `WebSocketServerFactory.prepareMessage` makes it)."""
    from autobahn.websocket.protocol import PreparedMessage

    return PreparedMessage(frame.encode(), isBinary=False, applyMask=False, doNotCompress=False)


def _owner_and_transport(send: Any, depth: int) -> tuple[Any, Any]:
    """The server's protocol and transport behind an ASGI `send` callable, or Nones if
    unknown."""
    if depth > _MAX_DEPTH or send is None:
        return None, None
    if isinstance(send, functools.partial):
        # daphne: partial(Server.handle_reply, protocol)
        for argument in send.args:
            transport = getattr(argument, "transport", None)
            if _is_known(transport):
                return argument, transport
        return _owner_and_transport(send.func, depth + 1)
    owner = getattr(send, "__self__", None)
    if owner is None:
        return None, None
    # uvicorn: the protocol's own bound method; a wrapper: look at what it wraps.
    transport = getattr(owner, "transport", None)
    if _is_known(transport):
        return owner, transport
    for value in vars(owner).values() if hasattr(owner, "__dict__") else ():
        if callable(value) and value is not send:
            found = _owner_and_transport(value, depth + 1)
            if found[1] is not None:
                return found
    return None, None


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
