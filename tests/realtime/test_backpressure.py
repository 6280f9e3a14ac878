"""What the consumer learns and does about a socket's transport (realtime/backpressure.py)."""

from __future__ import annotations

import asyncio
import functools
from typing import Any

from twisted.internet.abstract import FileDescriptor

from realtime.backpressure import send_buffer_probe, write_through


class SocketOfRoom(FileDescriptor):
    """Twisted's own buffering and `doWrite`, over a socket that takes `room` bytes in all."""

    def __init__(self, room: int) -> None:
        super().__init__(reactor=object())  # never reaches the reactor: see start/stopWriting
        self.connected = 1
        self.room = room
        self.sent: list[bytes] = []
        self.is_registered = False

    def writeSomeData(self, data: Any) -> int:
        taken = bytes(data[: self.room])
        self.room -= len(taken)
        self.sent.append(taken)
        return len(taken)

    def startWriting(self) -> None:
        self.is_registered = True  # the reactor would write it at its next turn

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


async def test_under_daphne_a_frame_is_written_at_once_not_at_the_reactors_next_turn() -> None:
    transport = SocketOfRoom(room=1000)
    send = daphne_send(transport)
    write_now = write_through(send)
    assert write_now is not None
    await send({"bytes": b"frame 1"})
    assert transport.sent == [] and transport.is_registered  # Twisted alone: waits for the loop
    write_now()
    assert transport.sent == [b"frame 1"]
    assert not transport.is_registered  # nothing left for the reactor to do


async def test_a_socket_with_frames_left_over_is_left_to_the_reactor() -> None:
    transport = SocketOfRoom(room=3)  # a reader that stopped: its kernel buffer is full
    send = daphne_send(transport)
    write_now = write_through(send)
    assert write_now is not None
    await send({"bytes": b"frame 1"})
    write_now()
    assert transport.sent == [b"fra"] and transport.is_registered
    await send({"bytes": b"frame 2"})
    write_now()
    assert transport.sent == [b"fra"]  # not asked again on every frame
    probe = send_buffer_probe(send)
    assert probe is not None and probe() == len(b"me 1frame 2")


async def test_a_closing_socket_is_left_to_the_reactor() -> None:
    transport = SocketOfRoom(room=1000)
    send = daphne_send(transport)
    write_now = write_through(send)
    assert write_now is not None
    await send({"bytes": b"last frame"})
    transport.disconnecting = True  # the reactor's own write must finish the close
    write_now()
    assert transport.sent == [] and transport.is_registered


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
        assert write_through(send) is None
        assert send_buffer_probe(send) is not None
        transport.close()
    finally:
        server.close()
        await server.wait_closed()
