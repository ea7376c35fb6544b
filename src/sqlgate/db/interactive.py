"""Interactive transactions: open ``GuardedTransaction``s kept between tool calls.

An agent ``begin``s a transaction and gets an opaque id; later calls run operations on it
and ``commit`` or ``rollback``. Each transaction holds one pooled connection, so they are
bounded: at most ``max_open`` at once and ``max_per_session`` per owner's session; one idle
for ``idle_timeout_s``, or open for ``max_lifetime_s`` whatever its activity, is rolled
back and its connection returned to the pool (by a reaper task, and checked again on every
access). The lifespan closes the registry at shutdown, rolling back whatever is open.

Every transaction has an ``Owner``: the token identity (with HTTP auth) and the session
that began it (the MCP session on HTTP/SSE, the process on stdio). Only its owner can use
it; to anyone else its id is unknown, exactly like an id that never existed.
``end_session`` rolls back a session's transactions at once (HTTP DELETE, SSE close).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlgate.db.guard import GuardedTransaction
from sqlgate.errors import InvalidArgument, OperationFailed, SqlgateError
from sqlgate.logging import get_logger

if TYPE_CHECKING:
    from sqlgate.db.engines import Database

log = get_logger("sqlgate.transactions")
_REMEMBER_ENDED = 1000  # ids of ended transactions kept to say "expired" rather than "unknown"


PROCESS_SESSION = "process"  # stdio and in-process clients: the process is the session


def session_key(mcp_session_id: str | None, sse_session_id: str | None) -> str | None:
    """The registry's name for a transport session (None: stateless HTTP, no session)."""
    if mcp_session_id:
        return f"http:{mcp_session_id}"
    if sse_session_id:
        return f"sse:{sse_session_id}"
    return None


def failed_commit(
    database: Database, error: SqlgateError, not_committed: str, details: dict[str, Any] | None = None
) -> OperationFailed:
    """What a caller is told about a COMMIT that raised ``error``.

    Only an error the database reported (a serialization failure, a deferred constraint,
    its own statement timeout) proves that nothing was committed. Our own deadline, a lost
    connection, anything the server did not answer: the COMMIT may have taken effect in
    the database all the same (it finished after we stopped waiting; a cancel does not undo
    a commit already written, e.g. one waiting for a synchronous standby). Saying "nothing
    was committed" then invites a retry that writes everything twice.
    """
    if database.driver.answered(error.__cause__):
        return OperationFailed(
            error, f"the commit failed: {error.message}; {not_committed}", {**(details or {}), "committed": False}
        )
    failure = OperationFailed(
        error,
        f"the commit's outcome is unknown ({error.code}): the database did not answer the COMMIT "
        "before the call had to give up, so it may have committed",
        {**(details or {}), "committed": None, "commit_outcome": "unknown"},
    )
    failure.retryable = False  # a blind retry may apply everything a second time
    failure.hint = (
        "read back what the transaction wrote (e.g. by key) before running it again; "
        "re-send only what is missing"
    )
    return failure


@dataclass(frozen=True)
class Owner:
    """Who may use a transaction: the authenticated identity (None without auth) and the
    session (``"process"`` on stdio; ``"sse:<id>"``, ``"http:<id>"`` on HTTP; ``None`` for
    stateless HTTP requests, which have no session to end)."""

    identity: str | None
    session: str | None


@dataclass
class OpenTransaction:
    id: str
    database: Database
    tx: GuardedTransaction
    isolation: str | None
    idle_timeout_s: float
    deadline: float
    owner: Owner = Owner(None, PROCESS_SESSION)
    max_lifetime_s: float = float("inf")
    began: float = field(default_factory=time.monotonic)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    operations: int = 0

    def touch(self) -> None:
        """Another call used it: the idle clock starts again, never past the maximum lifetime."""
        self.deadline = min(time.monotonic() + self.idle_timeout_s, self.began + self.max_lifetime_s)

    def why_expired(self) -> str:
        if time.monotonic() >= self.began + self.max_lifetime_s:
            return (f"reached the maximum lifetime of {self.max_lifetime_s:g} s "
                    "(transaction_max_lifetime_s) and was rolled back")
        return f"expired after {self.idle_timeout_s:g} s idle and was rolled back"

    @property
    def expires_in_s(self) -> float:
        return max(0.0, round(self.deadline - time.monotonic(), 3))


class TransactionRegistry:
    """The open interactive transactions of one server."""

    def __init__(
        self,
        idle_timeout_s: float,
        max_open: int,
        *,
        max_lifetime_s: float = 300.0,
        max_per_session: int | None = None,
    ) -> None:
        self.idle_timeout_s = idle_timeout_s
        self.max_open = max_open
        self.max_lifetime_s = max_lifetime_s
        self.max_per_session = max_per_session or max_open
        self._open: dict[str, OpenTransaction] = {}
        self._ended: OrderedDict[str, tuple[Owner, str]] = OrderedDict()  # id -> (owner, why it ended)
        self._reaper: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._closed = False

    def __len__(self) -> int:
        return len(self._open)

    def owned_by(self, owner: Owner) -> list[OpenTransaction]:
        return [entry for entry in self._open.values() if entry.owner == owner]

    async def begin(
        self, database: Database, *, isolation: str | None, timeout_ms: int, owner: Owner = Owner(None, PROCESS_SESSION)
    ) -> OpenTransaction:
        await self.expire_idle()
        if self._closed:
            raise SqlgateError("the server is shutting down", "retry on a new connection")
        mine = len(self.owned_by(owner))
        if mine >= self.max_per_session:
            raise SqlgateError(
                f"this session holds {mine} open interactive transactions; the limit per session "
                f"is {self.max_per_session}",
                "commit or roll back one of yours first, or use transaction_manager's batch mode "
                "(action=run), which holds no connection between calls",
                code="TOO_MANY_TRANSACTIONS",
            )
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
        entry = OpenTransaction(
            txid, database, tx, isolation, self.idle_timeout_s, 0.0, owner=owner, max_lifetime_s=self.max_lifetime_s
        )
        entry.touch()
        self._open[txid] = entry
        # Locked while it waits for a connection and BEGINs: the idle clock cannot expire
        # it meanwhile (it waited, it was not idle), and a session end or shutdown that
        # forgets it waits for the start. A start that ends on a forgotten entry rolls
        # back at once: its connection would otherwise stay checked out, open, owned by
        # no one (found: a begin waiting on a full pool longer than the idle timeout).
        async with entry.lock:
            try:
                await tx.start()
            except BaseException:
                self._open.pop(txid, None)
                raise
            if self._open.get(txid) is not entry:
                await tx.rollback()
                raise self._not_open(txid, owner)
            entry.touch()
        self._ensure_reaper()
        return entry

    async def acquire(self, txid: str, owner: Owner = Owner(None, PROCESS_SESSION)) -> OpenTransaction:
        """The open transaction ``txid``, locked for the caller (release with ``release``).

        Another owner's transaction is "unknown": its id says nothing to anyone else."""
        await self.expire_idle()
        entry = self._open.get(txid)
        if entry is None or entry.owner != owner:
            raise self._not_open(txid, owner)
        await entry.lock.acquire()
        if self._open.get(txid) is not entry or not entry.tx.active:
            entry.lock.release()
            raise self._not_open(txid, owner)
        entry.tx.rearm()  # this call's own deadline for its statements and the commit
        return entry

    def release(self, entry: OpenTransaction) -> None:
        """Give the transaction back after a call; its idle lifetime starts again."""
        if not entry.tx.active:  # a failed statement rolled it back
            self._forget(entry.id, "rolled back after a failed operation")
        entry.touch()
        entry.lock.release()
        self._wake.set()
        self._ensure_reaper()

    async def end_session(self, session: str) -> int:
        """The session ended (HTTP DELETE, SSE stream closed): roll back its transactions now.

        A call still running in one finishes first (it holds the transaction's lock); the
        rollback follows at once. Returns how many were rolled back."""
        ended = [entry for entry in self._open.values() if entry.owner.session == session]
        for entry in ended:
            self._forget(entry.id, "was rolled back when its session ended")
        for entry in ended:
            try:
                async with entry.lock:
                    if entry.tx.active:
                        await asyncio.wait_for(entry.tx.rollback(), timeout=10)
            except Exception as exc:  # noqa: BLE001 - best effort: the pool discards a broken connection
                log.warning("rollback at session end failed", transaction_id=entry.id, error=str(exc))
        if ended:
            log.info("interactive transactions rolled back at session end", session=session, count=len(ended))
        return len(ended)

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
            self._forget(entry.id, entry.why_expired())
            await entry.tx.rollback()
            log.info("interactive transaction expired", transaction_id=entry.id, database=entry.database.name)

    def _forget(self, txid: str, why: str) -> None:
        entry = self._open.pop(txid, None)
        if entry is not None:
            self._ended[txid] = (entry.owner, why)
            while len(self._ended) > _REMEMBER_ENDED:
                self._ended.popitem(last=False)

    def _not_open(self, txid: str, owner: Owner) -> InvalidArgument:
        ended = self._ended.get(txid)
        why = ended[1] if ended is not None and ended[0] == owner else None
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
