"""The statement rules: what kinds of statements each mode allows, and hidden writes.

Each rule is a small pure function over one parsed statement. They run in order from
``safety.check``; the first violation raises. Kinds are an allowlist: whatever sqlglot
parses into anything else — DDL, DCL, transaction control, SET/RESET/USE, COPY, PRAGMA,
ATTACH, SHOW, an opaque ``Command``, or a bare word it took for a column or an alias
(``START TRANSACTION``, ``LISTEN x``, ``CHECKPOINT``) — is denied.
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

_TRANSACTION_WORDS = {
    "BEGIN", "START", "COMMIT", "END", "ROLLBACK", "ABORT", "SAVEPOINT", "RELEASE", "XA",
    "PREPARE", "TRANSACTION",
}
_SESSION_WORDS = {"SET", "RESET", "USE", "DISCARD", "LOAD", "INSTALL", "UNINSTALL"}
_SCHEMA_INFO_WORDS = {"SHOW", "DESCRIBE", "DESC", "PRAGMA"}
_DDL_WORDS = {"CREATE", "ALTER", "DROP", "TRUNCATE", "RENAME", "COMMENT", "GRANT", "REVOKE", "REFRESH", "REINDEX"}
_DDL_NODES = (exp.Create, exp.Drop, exp.Alter, exp.TruncateTable, exp.Grant, exp.Comment)


def unwrap(statement: exp.Expr) -> exp.Expr:
    """``(SELECT ...)`` at the top is the SELECT."""
    while isinstance(statement, exp.Subquery) and not statement.args.get("alias"):
        inner = statement.this
        if not isinstance(inner, exp.Query):
            break
        statement = inner
    return statement


def statement_kind(statement: exp.Expr) -> str:
    """The kind of an allowed statement, or a STATEMENT_NOT_ALLOWED denial."""
    kind = READ_KINDS.get(type(statement)) or WRITE_KINDS.get(type(statement))
    if kind:
        return kind
    word = leading_word(statement)
    raise PolicyViolation(f"{word} statements are not allowed", _kind_hint(word, statement), code="STATEMENT_NOT_ALLOWED")


def leading_word(statement: exp.Expr) -> str:
    if isinstance(statement, exp.Command):
        return str(statement.this).upper()
    try:
        text = statement.sql(comments=False)
    except Exception:  # noqa: BLE001 - only used for the message
        text = ""
    words = text.split()
    return words[0].upper() if words else type(statement).__name__.upper()


def _kind_hint(word: str, statement: exp.Expr) -> str:
    if word in _TRANSACTION_WORDS or isinstance(statement, (exp.Transaction, exp.Commit, exp.Rollback)):
        return ("sqlgate owns transactions: use the transaction_manager tool to run several "
                "statements atomically")
    if word in _SESSION_WORDS or isinstance(statement, (exp.Set, exp.Use)):
        return "session settings, roles and the current database are fixed by the operator"
    if word in _SCHEMA_INFO_WORDS or isinstance(statement, (exp.Show, exp.Pragma)):
        return "use the describe_schema tool to see tables and columns"
    if word in _DDL_WORDS or isinstance(statement, _DDL_NODES):
        return "sqlgate never changes the schema or permissions; ask the operator"
    if word == "REPLACE":
        return ("use INSERT ... ON CONFLICT (PostgreSQL, SQLite) or INSERT ... ON DUPLICATE KEY "
                "UPDATE (MySQL) for an upsert")
    if word == "EXPLAIN":
        return "EXPLAIN a single SELECT without ANALYZE"
    return ("sqlgate runs queries (SELECT, VALUES, TABLE x, EXPLAIN) and, in read_write mode, "
            "INSERT/UPDATE/DELETE/MERGE; administrative commands are never allowed")


def check_mode(statement: exp.Expr, kind: str, policy: Policy) -> bool:
    """Deny writes in read_only mode; return whether the statement writes."""
    writes = kind in WRITE_KINDS.values() or statement.find(*_DML) is not None
    if writes and policy.read_only:
        hidden = kind not in WRITE_KINDS.values()
        raise PolicyViolation(
            (f"the {kind.upper()} holds a data-modifying statement and this database is read-only"
             if hidden else f"{kind.upper()} writes data and this database is read-only"),
            "only queries are allowed here; ask the operator for read_write mode if you "
            "must change data",
            code="WRITE_NOT_ALLOWED",
        )
    return writes


def check_hidden_effects(statement: exp.Expr, policy: Policy) -> None:
    """Things inside a statement that act like DDL, DCL, session changes or locks."""
    for node in statement.walk():
        if isinstance(node, exp.Command):
            raise PolicyViolation(
                f"unrecognised SQL inside the statement: {str(node.this).upper()}",
                "sqlgate only runs SQL it fully understands",
                code="STATEMENT_NOT_ALLOWED",
            )
        if isinstance(node, exp.Select) and node.args.get("into"):
            raise PolicyViolation(
                "SELECT ... INTO creates a table, sets variables or writes a file",
                "select the rows without INTO; sqlgate returns them to you",
                code="STATEMENT_NOT_ALLOWED",
            )
        if isinstance(node, exp.Into):
            raise PolicyViolation(
                "INTO inside a query writes a table, variables or a file",
                "select the rows without INTO",
                code="STATEMENT_NOT_ALLOWED",
            )
        if isinstance(node, exp.Lock) and policy.read_only:
            raise PolicyViolation(
                "locking clauses (FOR UPDATE / FOR SHARE / LOCK IN SHARE MODE) are not allowed "
                "in read_only mode",
                "remove the locking clause",
                code="STATEMENT_NOT_ALLOWED",
            )
        if isinstance(node, _DDL_NODES):
            raise PolicyViolation(
                "schema changes are not allowed",
                "sqlgate never runs DDL",
                code="STATEMENT_NOT_ALLOWED",
            )
        if isinstance(node, exp.PropertyEQ) and isinstance(node.this, exp.Parameter):
            # MySQL ``SELECT @v := ...``: changes session state.
            raise PolicyViolation(
                "assigning session variables (@name := ...) is not allowed",
                "compute the value in the query itself, e.g. with a CTE or a window function",
                code="STATEMENT_NOT_ALLOWED",
            )


def check_unbounded_write(statement: exp.Expr, kind: str, policy: Policy) -> None:
    """Writes that change existing rows must name them, also inside CTEs:

    - UPDATE/DELETE need a WHERE that names columns (``WHERE 1=1`` does not);
    - MERGE with WHEN MATCHED THEN UPDATE/DELETE needs an ON condition on columns and a
      bounded source (VALUES, a query with a WHERE on columns or a LIMIT, a query without
      FROM) or an ``AND`` condition on columns in the WHEN clause;
    - INSERT ... ON CONFLICT DO UPDATE, MySQL ON DUPLICATE KEY UPDATE and SQLite INSERT OR
      REPLACE change the rows they collide with: their source must be bounded the same way
      (VALUES always is), or the DO UPDATE carries a WHERE on columns.
    """
    if policy.allow_unbounded_writes:
        return
    for node in statement.find_all(exp.Update, exp.Delete, exp.Merge, exp.Insert):
        if isinstance(node, exp.Merge):
            _check_merge(node)
        elif isinstance(node, exp.Insert):
            _check_upsert(node)
        elif isinstance(node.parent, exp.When):
            continue  # judged with its MERGE
        else:
            where = node.args.get("where")
            if where is None or where.find(exp.Column) is None:
                word = "UPDATE" if isinstance(node, exp.Update) else "DELETE"
                raise PolicyViolation(
                    f"{word} without a WHERE condition on columns changes every row of the table",
                    "add a WHERE clause naming the rows to change (e.g. WHERE id = :id)",
                    code="UNBOUNDED_WRITE",
                )


_UNBOUNDED_HINT = ("bound the rows: a VALUES list, a source query with a WHERE on columns or a LIMIT, "
                   "or ask the operator for allow_unbounded_writes")


def _names_columns(node: exp.Expr | None) -> bool:
    return node is not None and node.find(exp.Column) is not None


def _bounded_source(source: exp.Expr | None) -> bool:
    """A source of rows that cannot be 'every row of a table' without saying so."""
    while isinstance(source, (exp.Subquery, exp.Paren)):
        source = source.this
    if isinstance(source, exp.Values):
        return True
    if isinstance(source, exp.SetOperation):
        return _bounded_source(source.left) and _bounded_source(source.right)
    if isinstance(source, exp.Select):
        if source.args.get("limit") is not None or source.args.get("from_") is None:
            return True
        return _names_columns(source.args.get("where"))
    return False


def _changes_rows(then: exp.Expr | None) -> bool:
    # WHEN MATCHED THEN DELETE parses as a bare Var.
    return isinstance(then, (exp.Update, exp.Delete)) or (
        isinstance(then, exp.Var) and str(then.this).upper() == "DELETE")


def _check_merge(node: exp.Merge) -> None:
    whens = node.args.get("whens")
    changing = [w for w in (whens.expressions if whens else ()) if _changes_rows(w.args.get("then"))]
    if not changing:
        return  # only WHEN NOT MATCHED THEN INSERT: adds rows
    on_columns = _names_columns(node.args.get("on")) or bool(node.args.get("using_cond"))
    source_bounded = _bounded_source(node.args.get("using"))
    for when in changing:
        if on_columns and (source_bounded or _names_columns(when.args.get("condition"))):
            continue
        raise PolicyViolation(
            "MERGE ... WHEN MATCHED THEN UPDATE/DELETE here can change every row of the table",
            "join on columns (ON t.id = s.id) and " + _UNBOUNDED_HINT
            + ", or add AND <condition on columns> to WHEN MATCHED",
            code="UNBOUNDED_WRITE",
        )


def _check_upsert(node: exp.Insert) -> None:
    conflict = node.args.get("conflict")
    updates = isinstance(conflict, exp.OnConflict) and (
        bool(conflict.args.get("duplicate")) or "UPDATE" in str(conflict.args.get("action") or "").upper()
    )
    replaces = str(node.args.get("alternative") or "").upper() == "REPLACE"
    if not (updates or replaces):
        return
    if _bounded_source(node.args.get("expression")):
        return
    if updates and isinstance(conflict, exp.OnConflict) and _names_columns(conflict.args.get("where")):
        return
    what = "INSERT OR REPLACE" if replaces else "INSERT ... SELECT with an upsert clause"
    raise PolicyViolation(
        f"{what} can change every row of the table it collides with",
        _UNBOUNDED_HINT + "; a DO UPDATE ... WHERE on columns also bounds it",
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
