"""HTTP: a connection must deliver each complete request (head and body) within
``request_read_timeout_s``, or it is closed.

uvicorn times out only idle kept-alive connections: one that sends its request a byte at a
time (slowloris) or announces a body it never sends is kept for ever, with its socket. A
few hundred of them took every file descriptor of a process with the common limit of 1,024,
and every other client was refused ("Server disconnected") for as long as they stayed.
Here the clock starts at a request's first byte (or at connect) and stops once the request
is complete; a response may take as long as the call needs.
"""

from __future__ import annotations

import asyncio
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol


class H11RequestDeadline(H11Protocol):
    """uvicorn's h11 protocol with a deadline on reading each request."""

    read_timeout_s = 30.0
    _read_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        if self._read_deadline is None and self.conn.their_state is h11.IDLE:
            self._arm()  # the first bytes of the next request on a kept-alive connection
        super().data_received(data)
        if self.conn.their_state not in (h11.IDLE, h11.SEND_BODY):
            self._disarm()  # the request is complete (or the connection is done with)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._disarm()
        self._read_deadline = self.loop.call_later(self.read_timeout_s, self._read_timed_out)

    def _disarm(self) -> None:
        if self._read_deadline is not None:
            self._read_deadline.cancel()
            self._read_deadline = None

    def _read_timed_out(self) -> None:
        self._read_deadline = None
        if self.conn.their_state in (h11.IDLE, h11.SEND_BODY) and not self.transport.is_closing():
            self.logger.warning("closing a connection that sent no complete request within %g s", self.read_timeout_s)
            self.transport.close()
            if self.cycle is not None and not self.cycle.response_complete:
                self.cycle.disconnected = True
                self.cycle.message_event.set()  # a handler waiting for the body sees the disconnect


def request_deadline_protocol(read_timeout_s: float) -> type[Any]:
    """The protocol class for ``uvicorn.Config(http=...)`` with this deadline."""
    return type("H11RequestDeadline", (H11RequestDeadline,), {"read_timeout_s": read_timeout_s})
