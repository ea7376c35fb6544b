"""A lean stdio transport for the MCP SDK's server session.

The SDK's ``stdio_server`` reads stdin in a worker thread (one thread hop per line) and
writes through another thread with a flush per message, over two memory streams. This
transport serves the same ``ReadStream``/``WriteStream`` interface (``mcp``'s own server
and session run on it unchanged) straight from asyncio pipes:

* reading: the event loop reads stdin; each line is validated into a JSON-RPC message
  where it arrives, with no thread and no intermediate stream;
* writing: one serialisation per message, one non-blocking ``write`` on the pipe, with
  flow control (a sender waits only while the pipe's buffer is over its high-water mark);
* a malformed line is answered with a JSON-RPC error (``-32700`` parse error for text
  that is not JSON, ``-32600`` invalid request for JSON that is not a JSON-RPC message)
  and the session keeps serving.

Like the SDK's transport, fd 0 is pointed at /dev/null and fd 1 at stderr while serving,
so stray reads get EOF and stray prints miss the wire; the protocol runs on private file
descriptions of the original pipes (opened through /proc, so making them non-blocking
does not touch a stderr that shares the terminal or pipe). Where that is not possible (no
/proc, stdin a regular file, a socket or /dev/null) ``stdio_transport`` falls back to the SDK's.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import stat
from collections.abc import AsyncIterator
from types import TracebackType
from typing import Any, Self

import anyio
from mcp.server.stdio import stdio_server
from mcp.shared.message import SessionMessage
from mcp.types import jsonrpc_message_adapter

from sqlgate.logging import get_logger

log = get_logger("sqlgate.server")

# Longest request line accepted (bulk_insert payloads are bounded far below this by
# settings); a longer line is skipped and answered with an error.
MAX_LINE_BYTES = 256 * 1024 * 1024
_READ_CHUNK = 256 * 1024
_WRITE_HIGH_WATER = 1024 * 1024

PARSE_ERROR = -32700
INVALID_REQUEST = -32600


def error_line(code: int, message: str, request_id: Any = None) -> bytes:
    """A JSON-RPC error response as one wire line."""
    body = {"jsonrpc": "2.0", "id": request_id, "error": {"code": code, "message": message}}
    return json.dumps(body, separators=(",", ":")).encode() + b"\n"


def malformed_answer(line: bytes) -> bytes:
    """The error response for a line that did not validate as a JSON-RPC message."""
    try:
        data = json.loads(line)
    except (ValueError, RecursionError):  # nesting deeper than the interpreter's stack: not an answer
        return error_line(PARSE_ERROR, "Parse error: the line is not valid JSON")
    request_id = data.get("id") if isinstance(data, dict) else None
    if not isinstance(request_id, str | int) or isinstance(request_id, bool):
        request_id = None
    return error_line(INVALID_REQUEST, "Invalid Request: not a JSON-RPC 2.0 message", request_id)


class _WriteProtocol(asyncio.BaseProtocol):
    """Flow control for the stdout pipe: ``writable`` is set while the buffer is low."""

    def __init__(self) -> None:
        self.writable = asyncio.Event()
        self.writable.set()
        self.closed = asyncio.Event()

    def pause_writing(self) -> None:
        self.writable.clear()

    def resume_writing(self) -> None:
        self.writable.set()

    def connection_lost(self, exc: Exception | None) -> None:
        self.writable.set()  # wake waiters; the next write sees the closed transport
        self.closed.set()


class StdoutStream:
    """``WriteStream[SessionMessage]``: one serialisation and one pipe write per message."""

    def __init__(self, transport: asyncio.WriteTransport, protocol: _WriteProtocol, flush_s: float = 5.0) -> None:
        self._transport = transport
        self._protocol = protocol
        self._flush_s = flush_s
        self._closing = False

    def write_line(self, data: bytes) -> None:
        if self._transport.is_closing():
            raise anyio.ClosedResourceError
        self._transport.write(data)

    async def send(self, item: SessionMessage, /) -> None:
        message = item.message
        data = type(message).__pydantic_serializer__.to_json(message, by_alias=True, exclude_unset=True)
        self.write_line(data + b"\n")
        if not self._protocol.writable.is_set():
            await self._protocol.writable.wait()

    async def aclose(self) -> None:
        if self._closing:  # closed already (the session, then this transport's own exit)
            return
        self._closing = True
        if not self._transport.is_closing():
            self._transport.close()  # flushes what is buffered, then closes
        # A client that stopped reading gets what is buffered for this long, once.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._protocol.closed.wait(), self._flush_s)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc_val: BaseException | None, exc_tb: TracebackType | None
    ) -> bool | None:
        await self.aclose()
        return None


class StdinStream:
    """``ReadStream[SessionMessage | Exception]``: JSON-RPC messages parsed from stdin lines."""

    def __init__(self, reader: asyncio.StreamReader, out: StdoutStream) -> None:
        self._reader = reader
        self._out = out

    async def _line(self) -> bytes:
        try:
            return await self._reader.readuntil(b"\n")
        except asyncio.IncompleteReadError as exc:  # EOF: the last line may lack its newline
            return exc.partial
        except asyncio.LimitOverrunError:
            await self._skip_long_line()
            self._out.write_line(error_line(INVALID_REQUEST, "Invalid Request: the message is too large"))
            return b"\n"

    async def _skip_long_line(self) -> None:
        while True:
            try:
                await self._reader.readuntil(b"\n")
                return
            except asyncio.LimitOverrunError as exc:
                await self._reader.readexactly(exc.consumed)
            except asyncio.IncompleteReadError:
                return

    async def receive(self) -> SessionMessage | Exception:
        while True:
            line = await self._line()
            if not line:
                raise anyio.EndOfStream
            if not line.strip():
                continue
            try:
                message = jsonrpc_message_adapter.validate_json(line, by_name=False)
            except Exception:  # noqa: BLE001 - any malformed line is answered, never fatal
                self._out.write_line(malformed_answer(line))
                continue
            return SessionMessage(message)

    async def aclose(self) -> None:
        return None

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> SessionMessage | Exception:
        try:
            return await self.receive()
        except anyio.EndOfStream:
            raise StopAsyncIteration from None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc_val: BaseException | None, exc_tb: TracebackType | None
    ) -> bool | None:
        return None


def _private_pipe(fd: int, flags: int) -> int | None:
    """A new open file description of the pipe or terminal behind ``fd`` (None if impossible)."""
    try:
        mode = os.fstat(fd).st_mode
        # A character device only when it is a terminal: /dev/null cannot be polled (epoll
        # refuses it), so the loop never saw its EOF and `serve < /dev/null | ...` hung.
        if not (stat.S_ISFIFO(mode) or (stat.S_ISCHR(mode) and os.isatty(fd))):
            return None
        # Linux: a new open file description; elsewhere (no /proc) the SDK's transport.
        return os.open(f"/proc/self/fd/{fd}", flags | getattr(os, "O_CLOEXEC", 0))
    except (OSError, ValueError):
        return None


@contextlib.asynccontextmanager
async def lean_stdio(flush_s: float = 5.0) -> AsyncIterator[tuple[StdinStream, StdoutStream] | None]:
    """The lean streams on the process's stdin/stdout, or None when they cannot be used;
    at the end, output still buffered is given ``flush_s`` to reach the client."""
    read_fd = _private_pipe(0, os.O_RDONLY)
    write_fd = _private_pipe(1, os.O_WRONLY)
    if read_fd is None or write_fd is None:
        for fd in (read_fd, write_fd):
            if fd is not None:
                os.close(fd)
        yield None
        return
    loop = asyncio.get_running_loop()
    saved = (os.dup(0), os.dup(1))
    devnull = os.open(os.devnull, os.O_RDONLY)
    try:
        os.dup2(devnull, 0)  # stray reads get EOF; stray prints go to stderr
        os.dup2(2, 1)
    finally:
        os.close(devnull)
    transport = None
    try:
        reader = asyncio.StreamReader(limit=MAX_LINE_BYTES, loop=loop)
        await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader, loop=loop), os.fdopen(read_fd, "rb", buffering=0)
        )
        protocol = _WriteProtocol()
        transport, _ = await loop.connect_write_pipe(lambda: protocol, os.fdopen(write_fd, "wb", buffering=0))
        transport.set_write_buffer_limits(high=_WRITE_HIGH_WATER)
        out = StdoutStream(transport, protocol, flush_s)
        yield StdinStream(reader, out), out
    finally:
        if transport is not None and not transport.is_closing():
            transport.close()
        for fd, original in zip((0, 1), saved, strict=True):
            with contextlib.suppress(OSError):
                os.dup2(original, fd)
            os.close(original)


async def run_stdio_session(server: Any, flush_s: float = 5.0) -> None:
    """Serve ``server`` (an ``MCPServer``) on stdio until stdin closes; output still
    buffered at the end gets ``flush_s`` to reach a client that reads slowly."""
    lowlevel = server._lowlevel_server  # noqa: SLF001 - the SDK's documented run() target
    async with lean_stdio(flush_s) as streams:
        if streams is None:
            log.debug("stdin/stdout are not pipes or terminals; using the SDK's stdio transport")
            await server.run_stdio_async()
            return
        read_stream, write_stream = streams
        await lowlevel.run(read_stream, write_stream, lowlevel.create_initialization_options())


__all__ = ["MAX_LINE_BYTES", "StdinStream", "StdoutStream", "lean_stdio", "run_stdio_session", "stdio_server"]
