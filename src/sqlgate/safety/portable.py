"""``check`` in a form that crosses a process boundary (``tools/checking.py`` runs it in a
worker process): a denial as ``(code, message, hint)``, a verdict without its trees
(unpickling a tree costs more than parsing its SQL again). Pure, like all of ``safety``."""

from __future__ import annotations

import dataclasses

from sqlgate.errors import PolicyViolation
from sqlgate.safety import check_uncached
from sqlgate.safety.policy import Policy
from sqlgate.safety.verdict import Verdict


def check_portable(sql: str, dialect: str, policy: Policy) -> Verdict | tuple[str, str, str]:
    outcome = check_uncached(sql, dialect, policy)
    if isinstance(outcome, PolicyViolation):
        return (outcome.code, outcome.message, outcome.hint)
    return dataclasses.replace(outcome, expressions=())
