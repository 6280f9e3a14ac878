"""What the consumer learns about a socket's transport (realtime/backpressure.py)."""

from __future__ import annotations

import functools
from typing import Any

from twisted.internet.abstract import FileDescriptor

from realtime.backpressure import send_buffer_probe


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
