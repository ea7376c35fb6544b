"""Long SQL texts are checked in a small process pool, off the event loop.

``safety.check`` is pure CPU work in compiled sqlglot, which holds the GIL: a thread
does not help. A text longer than ``INLINE_CHARS`` is checked in a worker process (the
pool starts on first use: ``WORKERS`` processes, at most ``WORKERS`` checks in flight,
more wait their turn). A denial comes back as is and costs the loop nothing (a hostile
100,000-token text included). An allowed verdict comes back without its trees
(unpickling a tree costs more than parsing its SQL) and the loop re-parses the SQL it
will send: for the costliest shapes that is about as much work as the check itself, so
the token limit (``safety.parse.token_limit``) is what bounds the loop's share; the
pool bounds everything else (docs/limits.md has the numbers).

``prime`` runs those checks before a tool's (synchronous) validation; ``check_sql``
then takes the primed outcome (``take``) instead of checking again on the loop.
"""

from __future__ import annotations

import asyncio
import dataclasses
import multiprocessing
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import TYPE_CHECKING

from sqlgate import safety
from sqlgate.errors import PolicyViolation
from sqlgate.logging import get_logger
from sqlgate.safety.portable import check_portable

if TYPE_CHECKING:
    from sqlgate.db.engines import Database
    from sqlgate.safety.policy import Policy

log = get_logger("sqlgate.tools")

# Texts up to this many characters are checked on the loop: a few hundred tokens, well
# under 50 ms even for the costliest shapes.
INLINE_CHARS = 2_000
WORKERS = 2
_PRIMED_MAX = 256

_pool: ProcessPoolExecutor | None = None
_slots: asyncio.Semaphore | None = None
_primed: OrderedDict[tuple[str, str, object], safety.Verdict | PolicyViolation] = OrderedDict()


def _executor() -> tuple[ProcessPoolExecutor, asyncio.Semaphore]:
    global _pool, _slots  # noqa: PLW0603 - the one pool of the process, started on first use
    if _pool is None or _slots is None:
        # spawn: never fork a process that runs an event loop and driver threads.
        _pool = ProcessPoolExecutor(
            max_workers=WORKERS, mp_context=multiprocessing.get_context("spawn"),
            initializer=_follow_parent, initargs=(os.getpid(),),
        )
        _slots = asyncio.Semaphore(WORKERS)
        log.info("validator worker pool started", workers=WORKERS)
    return _pool, _slots


def _follow_parent(parent: int) -> None:
    """In each worker: exit once the server process is gone. A server stopped by a signal
    ends with os._exit (or is killed) and never tells its pool; the workers hold both ends
    of their task queue, so they would wait on it for ever (orphans of ~70 MB each)."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(0)

    threading.Thread(target=watch, name="sqlgate-parent-watch", daemon=True).start()


def shutdown() -> None:
    """Stop the worker processes (the server's shutdown; tests)."""
    global _pool, _slots  # noqa: PLW0603
    if _pool is not None:
        _pool.shutdown(wait=False, cancel_futures=True)
    _pool = _slots = None


async def check_off_loop(sql: str, dialect: str, policy: Policy) -> safety.Verdict:
    """``safety.check`` in a worker process; the verdict's trees re-parsed here."""
    pool, slots = _executor()
    async with slots:
        try:
            outcome = await asyncio.get_running_loop().run_in_executor(
                pool, check_portable, sql, dialect, policy
            )
        except BrokenProcessPool:
            shutdown()  # a worker died (the parser crashed on hostile input): a new pool next time
            raise PolicyViolation(
                "sqlgate could not analyse this query", "simplify the query", code="QUERY_TOO_COMPLEX"
            ) from None
    if isinstance(outcome, tuple):
        code, message, hint = outcome
        raise PolicyViolation(message, hint, code=code)
    # Parsed back from the text sent, with that text registered for bind (safety.render).
    return dataclasses.replace(outcome, expressions=safety.sent_expressions(outcome))


async def prime(database: Database, texts: Iterable[str]) -> None:
    """Check the long ``texts`` off the loop now; ``take`` hands the outcomes to ``check_sql``."""
    for sql in texts:
        if not isinstance(sql, str) or len(sql) <= INLINE_CHARS:
            continue
        key = (sql, database.dialect, database.policy)
        if key in _primed:
            continue
        if len(sql) > database.policy.max_query_length:
            continue  # refused on the loop at once (a length compare)
        outcome: safety.Verdict | PolicyViolation
        try:
            outcome = await check_off_loop(sql, database.dialect, database.policy)
        except PolicyViolation as violation:
            outcome = violation
        _primed[key] = outcome
        while len(_primed) > _PRIMED_MAX:
            _primed.popitem(last=False)


def take(database: Database, sql: str) -> safety.Verdict | PolicyViolation | None:
    """The outcome ``prime`` found for ``sql``, if any (once)."""
    if len(sql) <= INLINE_CHARS or not _primed:
        return None
    return _primed.pop((sql, database.dialect, database.policy), None)
