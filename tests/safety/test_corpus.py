"""The safety corpus (tests/safety/corpus.toml): one test per case and dialect."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest

from sqlgate import safety
from sqlgate.db.dialects.base import template
from sqlgate.errors import PolicyViolation
from sqlgate.safety.policy import Policy

CORPUS = Path(__file__).with_name("corpus.toml")
DEFAULT_SCHEMA = {"postgres": "public", "mysql": "shop", "sqlite": "main"}
BASE_POLICY: dict[str, Any] = {
    "allowed_tables": ["customers", "orders", "order_items", "products", "events", "analytics.daily_stats"],
}


def load_cases() -> list[Any]:
    cases = tomllib.loads(CORPUS.read_text())["case"]
    params = []
    for case in cases:
        for dialect in case["dialects"]:
            params.append(pytest.param(case, dialect, id=f"{case['id']}[{dialect}]"))
    return params


CASES = load_cases()


def policy_for(case: dict[str, Any], dialect: str) -> Policy:
    values = {**BASE_POLICY, "default_schema": DEFAULT_SCHEMA[dialect], **case.get("policy", {})}
    return Policy(**values)


def test_corpus_is_big_and_balanced() -> None:
    raw = tomllib.loads(CORPUS.read_text())["case"]
    ids = [c["id"] for c in raw]
    assert len(ids) == len(set(ids)), "case ids must be unique"
    assert all(c.get("why") for c in raw), "every case says why"
    allowed = sum(1 for p in CASES if p.values[0]["expect"] == "allow")
    assert len(CASES) >= 300
    assert allowed / len(CASES) >= 0.4
    for dialect in DEFAULT_SCHEMA:
        assert sum(1 for p in CASES if p.values[1] == dialect) >= 80


@pytest.mark.parametrize(("case", "dialect"), CASES)
def test_case(case: dict[str, Any], dialect: str) -> None:
    policy = policy_for(case, dialect)
    if case["expect"] == "allow":
        try:
            verdict = safety.check(case["sql"], dialect, policy)
        except PolicyViolation as violation:
            pytest.fail(f"denied ({violation.code}: {violation.message}) but should be allowed: {case['why']}")
        # What is sent must itself pass the validator: the re-rendered text is stable.
        for kind in verdict.statement_kinds:
            assert kind
        if verdict.statement_kinds != ("explain",) and len(verdict.statement_kinds) == 1:
            safety.check(verdict.sql, dialect, policy)
            # What the driver renders later (db.dialects.bind) is exactly the checked text.
            parts = template(verdict.expressions[0], verdict.dialect)
            rendered = "".join(f":{part}" if i % 2 else part for i, part in enumerate(parts))
            assert verdict.positional or rendered == re.sub(r"%\((\w+)\)s", r":\1", verdict.sql)
        return
    assert case["expect"] == "deny", case["id"]
    with pytest.raises(PolicyViolation) as denied:
        safety.check(case["sql"], dialect, policy)
    if "code" in case:
        assert denied.value.code == case["code"], denied.value.message
    assert denied.value.hint, "every denial carries a hint"
