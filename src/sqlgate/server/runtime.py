"""The process's one runtime: engines, audit writer, transaction registry, reflection.

Every transport shares it. The MCP SDK enters the server lifespan once per *connection*
on SSE (``Server.run`` per ``GET /sse``), once per process on stdio and once for the
Streamable HTTP session manager; a lifespan that opened pools itself gave every SSE
session its own pools, audit writer and transaction registry (20 idle SSE sessions held
20 PostgreSQL connections, each call was audited once per open session, and sessions
starting together raced on the audit migration).

``RuntimeHolder.use()`` is what the lifespan enters instead: the first user opens the
runtime (under a lock, so concurrent session starts open it once), later users get the
same one, the last one to leave closes it. The HTTP apps hold one use for the whole
process in their Starlette lifespan (``server/transports.py``), so sessions coming and
going never reopen it; on stdio the MCP lifespan is the only user.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

import anyio

from sqlgate.audit import start_audit, stop_audit
from sqlgate.calls import CallRecord
from sqlgate.db.engines import open_databases
from sqlgate.db.interactive import TransactionRegistry
from sqlgate.demo import prepare_demo_databases
from sqlgate.logging import get_logger
from sqlgate.tools import checking
from sqlgate.tools.base import Runtime

if TYPE_CHECKING:
    from sqlgate.settings import Settings

log = get_logger("sqlgate.server")

AfterCall = Callable[[CallRecord, str, str | None, float], None]


class RuntimeHolder:
    """Opens the runtime for its first user, closes it after its last (reference-counted)."""

    def __init__(self, settings: Settings, after_call: list[AfterCall], stopped: anyio.Event) -> None:
        self.settings = settings
        self._after_call = after_call  # the server's hooks: the audit log's submit joins them
        self._stopped = stopped
        self._lock = anyio.Lock()
        self._users = 0
        self._runtime: Runtime | None = None
        self.opened = 0  # how many times the runtime was opened (tests: once per process)

    @property
    def runtime(self) -> Runtime | None:
        return self._runtime

    @asynccontextmanager
    async def use(self) -> AsyncIterator[Runtime]:
        async with self._lock:
            if self._runtime is None:
                self._runtime = await self._open()
            self._users += 1
            runtime = self._runtime
        try:
            yield runtime
        finally:
            # Shielded and bounded: a shutdown by cancellation (a signal) still rolls back,
            # flushes the audit log and closes the pools.
            with anyio.CancelScope(shield=True):
                async with self._lock:
                    self._users -= 1
                    if self._users == 0 and self._runtime is not None:
                        closing, self._runtime = self._runtime, None
                        with anyio.move_on_after(30):
                            await self._close(closing)
                        self._stopped.set()

    async def _open(self) -> Runtime:
        settings = self.settings
        await prepare_demo_databases(settings, announce=True)
        databases = await open_databases(settings)
        transactions = TransactionRegistry(
            settings.transaction_idle_timeout_s,
            settings.max_open_transactions,
            max_lifetime_s=settings.transaction_max_lifetime_s,
            max_per_session=settings.max_transactions_per_session,
        )
        audit = await start_audit(settings)
        if audit is not None:
            self._after_call.append(audit.submit)
        self.opened += 1
        log.info("sqlgate ready", databases=databases.names(), transport=settings.transport)
        return Runtime(settings=settings, databases=databases, transactions=transactions, audit=audit)

    async def _close(self, runtime: Runtime) -> None:
        await runtime.transactions.close()  # interactive transactions still open: roll back
        audit = runtime.audit
        if audit is not None and audit.submit in self._after_call:
            self._after_call.remove(audit.submit)
        await stop_audit(audit)
        await runtime.databases.close()
        checking.shutdown()  # the validator's worker processes, if a long text started them
        log.info("sqlgate stopped; pools closed")
