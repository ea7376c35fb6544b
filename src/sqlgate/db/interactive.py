"""Interactive transactions: open ``GuardedTransaction``s kept between tool calls.

An agent ``begin``s a transaction and gets an opaque id; later calls run operations on it
and ``commit`` or ``rollback``. Each transaction holds one pooled connection, so they are
bounded: at most ``max_open`` at once, and one idle for ``idle_timeout_s`` is rolled back
and its connection returned to the pool (by a reaper task, and checked again on every
access). The lifespan closes the registry at shutdown, rolling back whatever is open.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlgate.db.guard import GuardedTransaction
from sqlgate.errors import InvalidArgument, SqlgateError
from sqlgate.logging import get_logger

if TYPE_CHECKING:
    from sqlgate.db.engines import Database

log = get_logger("sqlgate.transactions")
_REMEMBER_ENDED = 1000  # ids of ended transactions kept to say "expired" rather than "unknown"


@dataclass
class OpenTransaction:
    id: str
    database: Database
    tx: GuardedTransaction
    isolation: str | None
    idle_timeout_s: float
    deadline: float
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    operations: int = 0

    def touch(self) -> None:
        self.deadline = time.monotonic() + self.idle_timeout_s

    @property
    def expires_in_s(self) -> float:
        return max(0.0, round(self.deadline - time.monotonic(), 3))


class TransactionRegistry:
    """The open interactive transactions of one server."""

    def __init__(self, idle_timeout_s: float, max_open: int) -> None:
        self.idle_timeout_s = idle_timeout_s
        self.max_open = max_open
        self._open: dict[str, OpenTransaction] = {}
        self._ended: OrderedDict[str, str] = OrderedDict()  # id -> why it ended
        self._reaper: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._closed = False

    def __len__(self) -> int:
        return len(self._open)

    async def begin(self, database: Database, *, isolation: str | None, timeout_ms: int) -> OpenTransaction:
        await self.expire_idle()
        if self._closed:
            raise SqlgateError("the server is shutting down", "retry on a new connection")
        if len(self._open) >= self.max_open:
            raise SqlgateError(
                f"{len(self._open)} interactive transactions are open; the limit is {self.max_open}",
                "commit or roll back an open transaction first, or use transaction_manager's "
                "batch mode (action=run), which holds no connection between calls",
                code="TOO_MANY_TRANSACTIONS",
            )
        # Reserve the slot before awaiting the connection, so concurrent begins respect the cap.
        txid = uuid.uuid4().hex
        tx = GuardedTransaction(database, isolation=isolation, timeout_ms=timeout_ms)
        entry = OpenTransaction(txid, database, tx, isolation, self.idle_timeout_s, 0.0)
        entry.touch()
        self._open[txid] = entry
        try:
            await tx.start()
        except BaseException:
            self._open.pop(txid, None)
            raise
        self._ensure_reaper()
        return entry

    async def acquire(self, txid: str) -> OpenTransaction:
        """The open transaction ``txid``, locked for the caller (release with ``release``)."""
        await self.expire_idle()
        entry = self._open.get(txid)
        if entry is None:
            raise self._not_open(txid)
        await entry.lock.acquire()
        if self._open.get(txid) is not entry or not entry.tx.active:
            entry.lock.release()
            raise self._not_open(txid)
        entry.tx.rearm()  # this call's own deadline for its statements and the commit
        return entry

    def release(self, entry: OpenTransaction) -> None:
        """Give the transaction back after a call; its idle lifetime starts again."""
        if not entry.tx.active:  # a failed statement rolled it back
            self._forget(entry.id, "rolled back after a failed operation")
        entry.touch()
        entry.lock.release()
        self._wake.set()

    async def finish(self, entry: OpenTransaction, *, commit: bool) -> None:
        """Commit or roll back a transaction acquired with ``acquire``; it is gone after."""
        try:
            if commit:
                await entry.tx.commit()
            else:
                await entry.tx.rollback()
        finally:
            self._forget(entry.id, "committed" if commit else "rolled back")
            entry.lock.release()

    async def expire_idle(self) -> None:
        now = time.monotonic()
        for entry in list(self._open.values()):
            if entry.deadline <= now and not entry.lock.locked():
                await self._expire(entry)

    async def _expire(self, entry: OpenTransaction) -> None:
        async with entry.lock:
            if self._open.get(entry.id) is not entry:
                return
            self._forget(entry.id, f"expired after {entry.idle_timeout_s:g} s idle and was rolled back")
            await entry.tx.rollback()
            log.info("interactive transaction expired", transaction_id=entry.id, database=entry.database.name)

    def _forget(self, txid: str, why: str) -> None:
        if self._open.pop(txid, None) is not None:
            self._ended[txid] = why
            while len(self._ended) > _REMEMBER_ENDED:
                self._ended.popitem(last=False)

    def _not_open(self, txid: str) -> InvalidArgument:
        why = self._ended.get(txid)
        if why:
            return InvalidArgument(
                f"transaction {txid} is no longer open: it {why}",
                "begin a new transaction (action=begin) and run the operations again",
            )
        return InvalidArgument(
            f"unknown transaction id {txid!r}",
            "pass the transaction_id that action=begin returned, or begin a new one",
        )

    def _ensure_reaper(self) -> None:
        if self._reaper is None or self._reaper.done():
            self._reaper = asyncio.get_running_loop().create_task(self._reap(), name="sqlgate-tx-reaper")

    async def _reap(self) -> None:
        while self._open and not self._closed:
            next_deadline = min(e.deadline for e in self._open.values())
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=max(0.01, next_deadline - time.monotonic()))
            except TimeoutError:
                pass
            try:
                await self.expire_idle()
            except Exception as exc:  # noqa: BLE001 - the reaper must keep running
                log.warning("expiring an interactive transaction failed", error=str(exc))

    async def close(self) -> None:
        """Roll back every open transaction (server shutdown)."""
        self._closed = True
        if self._reaper is not None:
            self._reaper.cancel()
        still_open = list(self._open.values())
        for entry in still_open:
            self._forget(entry.id, "was rolled back at server shutdown")
            try:
                # Its deadline is spent: the connection is discarded (closing it rolls back).
                await asyncio.wait_for(entry.tx.rollback(), timeout=5)
            except Exception as exc:  # noqa: BLE001 - best effort at shutdown
                log.warning("rollback at shutdown failed", transaction_id=entry.id, error=str(exc))
        if still_open:
            log.info("interactive transactions rolled back at shutdown", count=len(still_open))
