"""The safety validator: ``check(sql, dialect, policy) -> Verdict``.

Every SQL string sqlgate sends to a database passes through here first. ``check``
parses the text with sqlglot in the database's dialect, runs the rules over each
statement and returns a frozen ``Verdict`` — or raises ``PolicyViolation`` with a
stable reason code and a hint. It does no I/O and keeps no state but an LRU cache of
verdicts keyed by (sql, dialect, policy).
"""

from __future__ import annotations

import logging
from functools import lru_cache

import sqlglot
from sqlglot import exp
from sqlglot.errors import ErrorLevel

from sqlgate.errors import PolicyViolation
from sqlgate.safety import columns, explain, functions, parse, rules, tables
from sqlgate.safety.policy import Mode, Policy
from sqlgate.safety.verdict import Verdict

__all__ = ["Mode", "Policy", "PolicyViolation", "Verdict", "check", "check_cache_info"]

# sqlglot warns on stderr when it falls back to an opaque Command; we deny those anyway.
logging.getLogger("sqlglot").setLevel(logging.ERROR)

_CACHE_SIZE = 4096


def check(sql: str, dialect: str, policy: Policy) -> Verdict:
    """Validate ``sql`` for ``dialect`` under ``policy``; raise ``PolicyViolation`` if denied."""
    outcome = _check_cached(sql, parse.sqlglot_dialect(dialect), policy)
    if isinstance(outcome, PolicyViolation):
        raise PolicyViolation(outcome.message, outcome.hint, code=outcome.code)
    return outcome


def check_cache_info() -> object:
    return _check_cached.cache_info()


@lru_cache(maxsize=_CACHE_SIZE)
def _check_cached(sql: str, dialect: str, policy: Policy) -> Verdict | PolicyViolation:
    try:
        return _check(sql, dialect, policy)
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


def _check(sql: str, dialect: str, policy: Policy) -> Verdict:
    parse.guard_size(sql, policy.max_query_length)
    parse.guard_differentials(sql, dialect)
    statements = [rules.unwrap(s) for s in parse.parse(sql, dialect)]
    if len(statements) > 1 and not policy.allow_multi_statement:
        raise PolicyViolation(
            f"the query holds {len(statements)} statements; one is allowed per call",
            "split it into separate calls, or use transaction_manager to run several "
            "statements atomically",
            code="MULTI_STATEMENT",
        )
    whitelist = tables.parse_whitelist(policy.allowed_tables or (), dialect)
    kinds: list[str] = []
    touched: list[str] = []
    sent: list[str] = []
    checked: list[exp.Expr] = []
    writes = capped = False
    placeholders: list[str] = []
    for statement in statements:
        prefix = ""
        inner = statement
        if isinstance(statement, exp.Command) and str(statement.this).upper() == "EXPLAIN":
            options, rest = explain.split_explain(statement, dialect)
            inner_statements = parse.parse(rest, dialect)
            if len(inner_statements) != 1:
                raise PolicyViolation(
                    "EXPLAIN must be followed by exactly one statement",
                    "split it into separate calls",
                    code="MULTI_STATEMENT",
                )
            inner = rules.unwrap(inner_statements[0])
            prefix = f"EXPLAIN {options} ".replace("  ", " ")
            if inner.find(exp.Placeholder, exp.Parameter) is not None:
                # The EXPLAIN reaches the driver as opaque text: its placeholders cannot
                # be bound, so refuse clearly instead of failing inside the database.
                raise PolicyViolation(
                    "EXPLAIN with :name parameters is not supported here",
                    "use the query_optimization tool (it takes parameters), or put literal "
                    "values in the EXPLAINed query",
                    code="STATEMENT_NOT_ALLOWED",
                )
        elif isinstance(statement, exp.Describe):
            explain.check_describe(statement)
            inner = statement.this
        kind = rules.statement_kind(inner) if not _is_describe_table(statement) else "describe"
        rules.check_hidden_effects(inner, policy)
        statement_writes = rules.check_mode(inner, kind, policy)
        rules.check_unbounded_write(inner, kind, policy)
        functions.check_functions(
            inner, dialect, policy.allowed_functions, policy.denied_functions
        )
        names = tables.referenced_tables(inner, dialect)
        tables.check_tables(names, whitelist, policy.default_schema, dialect)
        columns.check_columns(inner, dialect, policy.denied_columns, policy.default_schema)
        for placeholder in _placeholders(inner, dialect):
            if placeholder not in placeholders:
                placeholders.append(placeholder)
        if prefix or inner is not statement:
            kinds.append("explain")
            final = statement
        else:
            kinds.append(kind)
            writes = writes or statement_writes
            final = statement  # freshly parsed for this check: safe to change in place
            capped = rules.apply_row_cap(final, policy.max_rows + 1) or capped
        touched.extend(n.qualified() for n in names if n.qualified() not in touched)
        text = prefix + _generate(inner, dialect) if prefix else _generate(final, dialect)
        if "\x00" in text:
            # db.dialects.bind splits its parameter template on NUL: none may be sent.
            raise PolicyViolation("the query renders a NUL character", "remove it", code="PARSE_ERROR")
        sent.append(text)
        checked.append(parse.parse(text, dialect)[0] if prefix else final)
    return Verdict(
        dialect=dialect,
        statement_kinds=tuple(kinds),
        tables=tuple(touched),
        writes=writes,
        sql=";\n".join(sent),
        parameters=tuple(placeholders),
        expressions=tuple(checked),
        row_capped=capped,
    )


def _is_describe_table(statement: exp.Expr) -> bool:
    return isinstance(statement, exp.Describe) and isinstance(statement.this, exp.Table)


def _placeholders(statement: exp.Expr, dialect: str) -> list[str]:
    """Named ``:name`` placeholders (PostgreSQL also reads ``%(name)s`` as one)."""
    names = []
    for node in statement.find_all(exp.Placeholder, exp.Parameter):
        name = node.name if isinstance(node, exp.Placeholder) and not node.args.get("jdbc") else ""
        if not name or not (name[0].isalpha() or name[0] == "_"):
            if dialect == "mysql" and isinstance(node, exp.Parameter):
                raise PolicyViolation(
                    f"session and system variables ({node.sql(dialect)}) are not available",
                    "use :name placeholders for values and pass them in `parameters`",
                    code="STATEMENT_NOT_ALLOWED",
                )
            raise PolicyViolation(
                f"placeholder {node.sql(dialect)} is not supported",
                "use named placeholders like :customer_id and pass parameters as an object",
                code="PARSE_ERROR",
            )
        names.append(name)
    if dialect == "sqlite":
        for column in statement.find_all(exp.Column):
            ident = column.this
            if isinstance(ident, exp.Identifier) and not ident.quoted and str(ident.this)[:1] in "$@":
                raise PolicyViolation(
                    f"placeholder {ident.this} is not supported",
                    "use named placeholders like :customer_id and pass parameters as an object",
                    code="PARSE_ERROR",
                )
    return names


def _generate(statement: exp.Expr, dialect: str) -> str:
    try:
        # The generator works on a copy (copy=True): some dialect transforms are not
        # idempotent (PostgreSQL STRING_AGG ... ORDER BY), and the verdict's tree must
        # render again, in ``bind``, to exactly this text.
        return sqlglot.Dialect.get_or_raise(dialect).generate(
            statement, copy=True, comments=False, unsupported_level=ErrorLevel.RAISE,
            normalize_functions=False,
        )
    except Exception as exc:  # noqa: BLE001 - what cannot be regenerated is not sent
        raise PolicyViolation(
            f"sqlgate cannot re-render this query safely: {exc}",
            "simplify the query",
            code="PARSE_ERROR",
        ) from None
