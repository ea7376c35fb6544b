"""The statement rules: what kinds of statements each mode allows, and hidden writes.

Each rule is a small pure function over one parsed statement. They run in order from
``safety.check``; the first violation raises.
"""

from __future__ import annotations

from sqlglot import exp

from sqlgate.errors import PolicyViolation
from sqlgate.safety.policy import Policy

READ_KINDS: dict[type[exp.Expr], str] = {
    exp.Select: "select",
    exp.Union: "union",
    exp.Intersect: "intersect",
    exp.Except: "except",
    exp.Values: "values",
}
WRITE_KINDS: dict[type[exp.Expr], str] = {
    exp.Insert: "insert",
    exp.Update: "update",
    exp.Delete: "delete",
    exp.Merge: "merge",
}
_DML = tuple(WRITE_KINDS)


def statement_kind(statement: exp.Expr) -> str:
    """The kind of an allowed statement, or a STATEMENT_NOT_ALLOWED denial."""
    kind = READ_KINDS.get(type(statement)) or WRITE_KINDS.get(type(statement))
    if kind:
        return kind
    described = _describe(statement)
    raise PolicyViolation(
        f"{described} statements are not allowed",
        "sqlgate runs queries (SELECT, VALUES, EXPLAIN) and, in read_write mode, "
        "INSERT/UPDATE/DELETE/MERGE; schema changes, transaction control, session "
        "settings and administrative commands are never allowed (use transaction_manager "
        "for transactions)",
        code="STATEMENT_NOT_ALLOWED",
    )


def _describe(statement: exp.Expr) -> str:
    if isinstance(statement, exp.Command):
        return str(statement.this).upper()
    return type(statement).__name__.upper()


def check_mode(statement: exp.Expr, kind: str, policy: Policy) -> bool:
    """Deny writes in read_only mode; return whether the statement writes."""
    writes = kind in WRITE_KINDS.values() or any(
        isinstance(node, _DML) for node in statement.find_all(*_DML)
    )
    if writes and policy.read_only:
        raise PolicyViolation(
            f"{kind.upper()} writes data and this database is read-only",
            "only queries are allowed here; ask the operator for read_write mode if you "
            "must change data",
            code="WRITE_NOT_ALLOWED",
        )
    return writes


def check_hidden_effects(statement: exp.Expr, policy: Policy) -> None:
    """Things inside a statement that act like DDL, DCL or locks."""
    for node in statement.walk():
        if isinstance(node, exp.Command):
            raise PolicyViolation(
                f"unrecognised SQL inside the statement: {str(node.this).upper()}",
                "sqlgate only runs SQL it fully understands",
                code="STATEMENT_NOT_ALLOWED",
            )
        if isinstance(node, exp.Select) and node.args.get("into"):
            raise PolicyViolation(
                "SELECT ... INTO creates a table or writes a file",
                "select the rows without INTO",
                code="STATEMENT_NOT_ALLOWED",
            )
        if isinstance(node, exp.Into):
            raise PolicyViolation(
                "INTO inside a query writes a table or a file",
                "select the rows without INTO",
                code="STATEMENT_NOT_ALLOWED",
            )
        if isinstance(node, exp.Lock) and policy.read_only:
            raise PolicyViolation(
                "locking clauses (FOR UPDATE / FOR SHARE) are not allowed in read_only mode",
                "remove the locking clause",
                code="STATEMENT_NOT_ALLOWED",
            )
        if isinstance(node, (exp.Create, exp.Drop, exp.Alter, exp.TruncateTable)):
            raise PolicyViolation(
                "schema changes are not allowed",
                "sqlgate never runs DDL",
                code="STATEMENT_NOT_ALLOWED",
            )


def check_unbounded_write(statement: exp.Expr, kind: str, policy: Policy) -> None:
    if policy.allow_unbounded_writes or kind not in ("update", "delete"):
        return
    if not statement.args.get("where"):
        raise PolicyViolation(
            f"{kind.upper()} without WHERE changes every row of the table",
            "add a WHERE clause naming the rows to change",
            code="UNBOUNDED_WRITE",
        )


def apply_row_cap(statement: exp.Expr, cap: int) -> bool:
    """Add or lower the top-level LIMIT of a query so the database stops at ``cap`` rows."""
    if not isinstance(statement, (exp.Select, exp.SetOperation)):
        return False
    limit = statement.args.get("limit")
    if limit is None:
        statement.set("limit", exp.Limit(expression=exp.Literal.number(cap)))
        return True
    value = limit.args.get("expression")
    if isinstance(value, exp.Literal) and value.is_int and int(value.this) > cap:
        limit.set("expression", exp.Literal.number(cap))
        return True
    return False
