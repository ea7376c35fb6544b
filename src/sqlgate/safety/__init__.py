"""The safety validator: ``check(sql, dialect, policy) -> Verdict``.

Every SQL string sqlgate sends to a database passes through here first. ``check``
parses the text with sqlglot in the database's dialect, runs the rules
(``safety.pipeline.RULES``) over each statement with the dialect's ``SafetyProfile``
and returns a frozen ``Verdict`` — or raises ``PolicyViolation`` with a stable reason
code and a hint. It does no I/O and keeps no state but an LRU cache of
verdicts keyed by (sql, dialect, policy).
"""

from __future__ import annotations

import logging
from functools import lru_cache

import sqlglot
from sqlglot import exp
from sqlglot.errors import ErrorLevel
from sqlglot.tokenizer_core import Token, TokenType

from sqlgate.errors import PolicyViolation
from sqlgate.safety import functions, parse, pipeline, profiles, render, rules, tables
from sqlgate.safety.pipeline import RULES
from sqlgate.safety.policy import Mode, Policy
from sqlgate.safety.profiles import SafetyProfile
from sqlgate.safety.verdict import Verdict

__all__ = [
    "RULES", "Mode", "Policy", "PolicyViolation", "SafetyProfile", "Verdict", "check", "check_cache_info",
    "check_uncached", "sent_expressions",
]

# sqlglot warns on stderr when it falls back to an opaque Command; we deny those anyway.
logging.getLogger("sqlglot").setLevel(logging.ERROR)

_CACHE_SIZE = 4096


def check(sql: str, dialect: str | SafetyProfile, policy: Policy) -> Verdict:
    """Validate ``sql`` for ``dialect`` under ``policy``; raise ``PolicyViolation`` if denied.

    ``dialect`` is a canonical name (``postgresql``, ``mysql``, ``sqlite``), an alias the
    profile registry knows (sqlglot's ``postgres``, ``mariadb``) or a ``SafetyProfile``;
    an unknown name is refused.
    """
    outcome = _check_cached(sql, profiles.for_policy(profiles.get(dialect), policy.exact_table_names), policy)
    if isinstance(outcome, PolicyViolation):
        raise PolicyViolation(outcome.message, outcome.hint, code=outcome.code)
    return outcome


def check_cache_info() -> object:
    return _check_cached.cache_info()


def check_uncached(sql: str, dialect: str | SafetyProfile, policy: Policy) -> Verdict | PolicyViolation:
    """``check`` without the verdict cache, returning a denial instead of raising it
    (for benchmarks and tools that measure the validator itself)."""
    try:
        return _check(sql, profiles.for_policy(profiles.get(dialect), policy.exact_table_names), policy)
    except PolicyViolation as violation:
        return violation
    except RecursionError:
        return PolicyViolation(
            "the query is too deeply nested to analyse", "flatten the query", code="QUERY_TOO_COMPLEX"
        )
    except Exception as exc:  # noqa: BLE001 - what cannot be analysed is denied (fail closed)
        return PolicyViolation(
            f"sqlgate could not analyse this query ({type(exc).__name__})",
            "simplify the query; sqlgate only runs SQL it fully understands",
            code="PARSE_ERROR",
        )


_check_cached = lru_cache(maxsize=_CACHE_SIZE)(check_uncached)


def _check(sql: str, profile: SafetyProfile, policy: Policy) -> Verdict:
    parse.guard_size(sql, policy.max_query_length)
    profile.guard_text(sql)
    max_tokens = parse.token_limit(policy.max_query_length)
    parsed = [(rules.unwrap(s), tokens) for s, tokens in parse.parse_with_tokens(sql, profile, max_tokens)]
    if len(parsed) > 1 and not policy.allow_multi_statement:
        raise PolicyViolation(
            f"the query holds {len(parsed)} statements; one is allowed per call",
            "split it into separate calls, or use transaction_manager to run several "
            "statements atomically",
            code="MULTI_STATEMENT",
        )
    whitelist = tables.parse_whitelist(policy.allowed_tables or (), profile)
    kinds: list[str] = []
    touched: list[str] = []
    sent: list[str] = []
    checked: list[exp.Expr] = []
    writes = capped = positional = False
    placeholders: list[str] = []
    for statement, tokens in parsed:
        # The text the nodes' offsets point into: the function rule reads each call's spelling.
        statement.meta[functions.SOURCE] = sql
        subject = pipeline.prepare(statement, profile, policy, whitelist)
        facts = pipeline.run(subject)
        placeholders.extend(p for p in facts.parameters if p not in placeholders)
        cap: int | None = None
        had_limit = True
        if subject.explains:
            kinds.append("explain")
        else:
            kinds.append(subject.kind)
            writes = writes or facts.writes
            had_limit = statement.args.get("limit") is not None
            # Freshly parsed for this check: safe to change in place.
            if rules.apply_row_cap(statement, policy.max_rows + 1):
                capped, cap = True, policy.max_rows + 1
        touched.extend(q for q in (n.qualified() for n in facts.tables) if q not in touched)
        prefix = subject.explain_prefix
        faithful = None if prefix else _faithful(statement, tokens, sql, profile, cap, not had_limit)
        if faithful is not None:
            text, positional_here = faithful
            positional = positional or positional_here
        elif any(p.name in ("", "?") for p in statement.find_all(exp.Placeholder)):
            raise PolicyViolation(
                "sqlgate cannot number the ? placeholders of this statement safely",
                "use named placeholders like :customer_id with `parameters` as an object",
                code="PARSE_ERROR",
            )
        elif profile.strings.escape_strings and any(
                "\\" in str(n.this) for n in statement.find_all(exp.Literal) if n.is_string):
            # sqlglot would write the value as a plain '...' string, which means something
            # else where standard_conforming_strings is off.
            raise PolicyViolation(
                "sqlgate cannot send this query's backslash string literal safely",
                "pass the text as a bound parameter",
                code="PARSE_ERROR",
            )
        else:
            text = prefix + _generate(subject.inner, profile) if prefix else _generate(statement, profile)
            positional = positional or any(isinstance(p, exp.Parameter) for p in statement.find_all(exp.Parameter))
        if "\x00" in text:
            # db.dialects.bind splits its parameter template on NUL: none may be sent.
            raise PolicyViolation("the query renders a NUL character", "remove it", code="PARSE_ERROR")
        sent.append(text)
        checked.append(parse.parse(text, profile)[0] if prefix else statement)
    return Verdict(
        dialect=profile.sqlglot_dialect,
        statement_kinds=tuple(kinds),
        tables=tuple(touched),
        writes=writes,
        sql=";\n".join(sent),
        parameters=tuple(placeholders),
        expressions=tuple(checked),
        row_capped=capped,
        positional=positional,
    )


def sent_expressions(verdict: Verdict) -> tuple[exp.Expr, ...]:
    """The verdict's statements parsed back from the text sent (``Verdict.sql``), each with
    that text registered for ``db.dialects.bind``: for a verdict that crossed a process
    boundary without its trees (``safety.portable``)."""
    profile = profiles.get(verdict.dialect)
    found: list[exp.Expr] = []
    for parsed, tokens in parse.parse_with_tokens(verdict.sql, profile):
        statement = rules.unwrap(parsed)
        if tokens and statement is parsed and not isinstance(statement, exp.Command):
            emitted = render.emit(tokens, verdict.sql, profile, None, False)
            if emitted is not None and render.same_tokens(tokens, emitted[0], profile, None, False):
                render.register(statement, profile.sqlglot_dialect, emitted[1])
        found.append(statement)
    return tuple(found)


def _faithful(
    statement: exp.Expr, tokens: list[Token], sql: str, profile: SafetyProfile, cap: int | None, append: bool
) -> tuple[str, bool] | None:
    """The statement written from its own tokens (``safety.render``), if that text parses
    back to exactly the checked tree; registers the placeholder template for ``bind``."""
    if not tokens or (append and statement.args.get("locks")):
        return None  # LIMIT goes before FOR UPDATE: sqlglot's rendering places it
    emitted = render.emit(tokens, sql, profile, cap, append)
    if emitted is None:
        return None
    text, parts, positional = emitted
    if len(parts) // 2 != sum(1 for _ in statement.find_all(exp.Placeholder, exp.Parameter)):
        return None
    # Same tokens, same tree: a re-tokenisation proves it, unless the row cap changed the
    # text around a statement wrapped in parentheses (then the tree itself is compared).
    wrapped = tokens[0].token_type is TokenType.L_PAREN
    if cap is not None and wrapped or not render.same_tokens(tokens, text, profile, cap, append):
        try:
            again = parse.parse(text, profile)
        except PolicyViolation:
            return None
        if len(again) != 1 or rules.unwrap(again[0]) != statement:
            return None
    render.register(statement, profile.sqlglot_dialect, parts)
    return text, positional


def _generate(statement: exp.Expr, profile: SafetyProfile) -> str:
    try:
        # The generator works on a copy (copy=True): some dialect transforms are not
        # idempotent (PostgreSQL STRING_AGG ... ORDER BY), and the verdict's tree must
        # render again, in ``bind``, to exactly this text.
        return sqlglot.Dialect.get_or_raise(profile.sqlglot_dialect).generate(
            statement, copy=True, comments=False, unsupported_level=ErrorLevel.RAISE,
            normalize_functions=False,
        )
    except Exception as exc:  # noqa: BLE001 - what cannot be regenerated is not sent
        raise PolicyViolation(
            f"sqlgate cannot re-render this query safely: {exc}",
            "simplify the query",
            code="PARSE_ERROR",
        ) from None
