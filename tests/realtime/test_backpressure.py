"""What the consumer learns and does about a socket's transport (realtime/backpressure.py)."""

from __future__ import annotations

import asyncio
import collections
import functools
from typing import Any

import pytest
from twisted.internet import main
from twisted.internet.abstract import FileDescriptor

from realtime.backpressure import prepare, prepared_sender, send_buffer_probe


class SocketOfRoom(FileDescriptor):
    """Twisted's own buffering and `doWrite`, over a socket that takes `room` bytes in all."""

    def __init__(self, room: int) -> None:
        super().__init__(reactor=object())  # never reaches the reactor: see start/stopWriting
        self.connected = 1
        self.room = room
        self.sent: list[bytes] = []
        self.is_registered = False
        self.registrations = 0
        self.is_lost = False

    def writeSomeData(self, data: Any) -> Any:
        if self.is_lost:
            return main.CONNECTION_LOST
        taken = bytes(data[: self.room])
        self.room -= len(taken)
        if taken:
            self.sent.append(taken)
        return len(taken)

    def startWriting(self) -> None:
        self.is_registered = True  # the reactor would write it at its next turn
        self.registrations += 1

    def stopWriting(self) -> None:
        self.is_registered = False


class DaphneProtocol:
    def __init__(self, transport: Any) -> None:
        self.transport = transport


async def handle_reply(protocol: DaphneProtocol, message: dict[str, Any]) -> None:
    protocol.transport.write(message["bytes"])


def daphne_send(transport: Any) -> Any:
    """What daphne hands an application: partial(Server.handle_reply, protocol)."""
    return functools.partial(handle_reply, DaphneProtocol(transport))


async def test_a_closed_twisted_socket_answers_what_twisted_still_holds() -> None:
    """A closed Twisted transport's fileno is -1, which the kernel question refused with
    ValueError (not OSError): a delivery to a socket closing under it failed and resynced."""
    transport = SocketOfRoom(room=0)
    send = daphne_send(transport)
    await send({"bytes": b"frame"})
    assert transport.fileno() == -1
    probe = send_buffer_probe(send)
    assert probe is not None and probe() == len(b"frame")


class OpenWebSocket(DaphneProtocol):
    """What `prepared_sender` reads of daphne's protocol (autobahn's WebSocketServerProtocol)."""

    STATE_OPEN = 3

    def __init__(self, transport: Any) -> None:
        super().__init__(transport)
        self.state = self.STATE_OPEN
        self.send_queue: collections.deque[Any] = collections.deque()
        self._perMessageCompress: Any = None


def daphne_websocket(transport: Any) -> tuple[OpenWebSocket, Any]:
    protocol = OpenWebSocket(transport)
    return protocol, functools.partial(handle_reply, protocol)


async def test_under_daphne_a_prepared_frame_goes_to_the_kernel_without_the_reactor() -> None:
    transport = SocketOfRoom(room=1000)
    _protocol, send = daphne_websocket(transport)
    send_prepared = prepared_sender(send)
    assert send_prepared is not None
    assert send_prepared(prepare('{"n":1}'))
    assert send_prepared(prepare('{"n":2}'))
    assert transport.sent == [b'\x81\x07{"n":1}', b'\x81\x07{"n":2}']
    assert transport.registrations == 0  # never registered with the reactor, never unregistered


async def test_a_frame_behind_frames_left_over_joins_them_in_order() -> None:
    transport = SocketOfRoom(room=4)  # a reader that stopped: its kernel buffer is full
    _protocol, send = daphne_websocket(transport)
    send_prepared = prepared_sender(send)
    assert send_prepared is not None
    assert send_prepared(prepare("frame 1"))
    assert transport.sent == [b"\x81\x07fr"] and transport.is_registered
    assert send_prepared(prepare("frame 2"))
    assert transport.sent == [b"\x81\x07fr"]  # not asked again on every frame
    probe = send_buffer_probe(send)
    assert probe is not None and probe() == len(b"ame 1\x81\x07frame 2")
    transport.room = 1000
    transport.doWrite()  # the socket drained: the reactor writes the rest, in order
    assert b"".join(transport.sent) == b"\x81\x07frame 1\x81\x07frame 2"


async def test_a_lost_connection_is_left_to_the_reactor_to_close() -> None:
    transport = SocketOfRoom(room=1000)
    transport.is_lost = True
    _protocol, send = daphne_websocket(transport)
    send_prepared = prepared_sender(send)
    assert send_prepared is not None
    assert send_prepared(prepare("frame"))
    assert transport.is_registered  # the reactor's write meets the error and closes


@pytest.mark.parametrize(
    "unusual",
    ["closing transport", "closing handshake", "compression", "autobahn's own queue"],
)
async def test_a_socket_the_prepared_frame_cannot_take_is_sent_to_through_asgi(
    unusual: str,
) -> None:
    transport = SocketOfRoom(room=1000)
    protocol, send = daphne_websocket(transport)
    send_prepared = prepared_sender(send)
    assert send_prepared is not None
    if unusual == "closing transport":
        transport.disconnecting = True  # the reactor's own write must finish the close
    elif unusual == "closing handshake":
        protocol.state = 2
    elif unusual == "compression":
        protocol._perMessageCompress = object()  # compressed for this socket alone
    else:
        protocol.send_queue.append((b"chopped", True))
    assert not send_prepared(prepare("frame"))
    assert transport.sent == [] and not transport.is_registered


@pytest.mark.parametrize("size", [0, 125, 126, 65535, 65536])
def test_a_prepared_frame_is_what_autobahn_sends_for_the_same_text(size: int) -> None:
    """The bytes a follower gets are those daphne's own `send` would have written."""
    from autobahn.twisted.websocket import WebSocketServerFactory, WebSocketServerProtocol
    from twisted.internet.testing import StringTransport

    text = "é" * (size // 2) + "x" * (size % 2)
    factory = WebSocketServerFactory()
    factory.protocol = WebSocketServerProtocol  # daphne's WebSocketProtocol is one
    protocol = factory.buildProtocol(None)
    protocol.makeConnection(StringTransport())
    protocol.state = protocol.STATE_OPEN
    protocol.transport.clear()
    protocol.sendMessage(text.encode(), isBinary=False)
    assert prepare(text).payloadHybi == protocol.transport.value()


async def test_asyncio_transports_write_as_they_are_given_a_frame() -> None:
    """uvicorn: the protocol's bound `send` over an asyncio transport; nothing to add."""
    loop = asyncio.get_running_loop()
    server = await loop.create_server(asyncio.Protocol, "127.0.0.1", 0)
    try:
        host, port = server.sockets[0].getsockname()[:2]
        transport, _protocol = await loop.create_connection(asyncio.Protocol, host, port)

        class UvicornProtocol:
            def __init__(self) -> None:
                self.transport = transport

            async def send(self, message: dict[str, Any]) -> None:
                self.transport.write(message["bytes"])

        send = UvicornProtocol().send
        assert prepared_sender(send) is None
        assert send_buffer_probe(send) is not None
        transport.close()
    finally:
        server.close()
        await server.wait_closed()
