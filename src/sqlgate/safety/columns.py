"""``denied_columns``: every column reference resolved, fail closed.

A statement that touches a table with denied columns (a *protected* table) is resolved
the way the database resolves it: each query level (SELECT, UPDATE, DELETE, INSERT,
MERGE, set operation) gets its sources — the FROM items and joins, flattened through
parenthesised joins (``FROM (customers c JOIN orders o ON ...)``), with PostgreSQL
column-alias lists (``customers AS t(a, b, c, s)``) mapped position by position onto the
reflected columns — and each reference is looked up in its level, then in the levels
around it (correlated subqueries, LATERAL). The columns of protected tables come from
the reflected schema (``Policy.table_columns``, filled in by the runtime at start-up).

In such a statement:

* a reference to a denied column is refused wherever it stands (select list, WHERE,
  JOIN ... ON, GROUP BY, ORDER BY, DISTINCT ON, HAVING, window specs, SET targets,
  RETURNING, ON CONFLICT ... DO UPDATE): filtering, sorting or grouping on a value leaks
  it through row counts and order;
* a qualified reference through a protected table that is not one of its real, allowed
  columns is refused (PostgreSQL attribute notation ``c.to_jsonb`` is a function call
  on the whole row); so is a qualifier that resolves to no source at all;
* ``*`` and ``t.*`` over a protected table are refused — except as the select list of
  an ``EXISTS`` subquery, which reads no value; ``count(*)`` reads none either;
* a bare table name or alias used as a value is the whole row where the dialect reads it
  so (PostgreSQL: ``row_to_json(c)``, ``c::text``, ``(c).*``, ``json_agg(c)``): refused.
  A bare name counts as a column only if a FROM item in its scope surely has that column
  as the database compares names: inside the FROM clause only the items written before it
  (``FROM c k, LATERAL (SELECT k) x``: ``k`` is the row of ``c k``, not ``x.k``), and a
  quoted ``"K"`` is not ``k`` on PostgreSQL;
* ``NATURAL JOIN`` next to a protected table, ``USING (denied)``, an INSERT without a
  column list or naming a denied column, an ON CONFLICT target on a denied column, and
  a rowid alias (SQLite ``rowid``, MySQL ``_rowid``) that is not a real column: refused.

Column names compare case-insensitively (erring on the side of denying). Without the
reflected columns of a protected table (``sqlgate check`` with no database) the rules
fall back to names: denied names, stars and whole rows are refused, and so is a
qualified name that is a function name where the dialect has attribute notation.
"""

from __future__ import annotations

import string
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

import sqlglot
from sqlglot import exp

from sqlgate.errors import PolicyViolation
from sqlgate.safety import profiles
from sqlgate.safety.policy import COLUMNS_SEP
from sqlgate.safety.profiles import SafetyProfile
from sqlgate.safety.profiles.base import IdentifierCase
from sqlgate.safety.tables import TableName, cte_visible, table_name


@dataclass(frozen=True)
class DeniedColumn:
    table: TableName
    column: str

    def qualified(self) -> str:
        return f"{self.table.qualified()}.{self.column}"


def parse_denied(entries: tuple[str, ...], dialect: str | SafetyProfile) -> tuple[DeniedColumn, ...]:
    return _parse_denied(entries, profiles.get(dialect))


def _fold(name: str) -> str:
    """The key column and source names compare by here: compatibility-decomposed (NFKD:
    full-width ``ｓ`` is ``s``), accents dropped (``ś`` is ``s``) and case-folded (``ſ``,
    ``ß``): a database that compares names more loosely than ASCII (an accent- or
    case-insensitive collation) still cannot read a denied column under a look-alike
    name. Looser than every database: at worst a refusal it did not need."""
    if name.isascii():
        return name.lower()
    decomposed = unicodedata.normalize("NFKD", name)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)


def _exact_key(name: exp.Expr | str, profile: SafetyProfile) -> str:
    """A column name (an identifier, or a reflected name as stored) keyed as the database
    compares it, never more loosely: whether a bare name resolves to a column (and so is
    not a whole-row reference) must not be decided by a looser match than the database's.
    Quoted names are exact where unquoted ones fold (PostgreSQL: ``"K"`` is not ``k``);
    otherwise only ASCII letters fold (PostgreSQL folds no others; SQLite compares ASCII
    case only; MySQL at least that, and a stricter key here only refuses more)."""
    if isinstance(name, str):
        return name if profile.identifier_case is IdentifierCase.FOLD_UNQUOTED else name.translate(_ASCII_LOWER)
    text = str(name.this) if isinstance(name, exp.Identifier) else str(name.name)
    quoted = isinstance(name, exp.Identifier) and name.quoted
    if quoted and profile.identifier_case is IdentifierCase.FOLD_UNQUOTED:
        return text
    return text.translate(_ASCII_LOWER)


@lru_cache(maxsize=256)
def _parse_denied(entries: tuple[str, ...], profile: SafetyProfile) -> tuple[DeniedColumn, ...]:
    found = []
    for entry in entries:
        try:
            column = exp.to_column(entry, dialect=profile.sqlglot_dialect)
        except Exception:  # noqa: S112 - an unreadable entry is reported at start-up, not here
            continue
        table = column.args.get("table")
        if not isinstance(column, exp.Column) or table is None or isinstance(column.this, exp.Star):
            continue
        for key in profile.identifier_keys(table):
            found.append(DeniedColumn(TableName(profile.identifier_key(column.args.get("db")), key or ""),
                                      _fold(str(column.name))))
    return tuple(found)


def denied_tables(entries: tuple[str, ...], dialect: str | SafetyProfile) -> list[tuple[str | None, str, str]]:
    """The tables ``denied_columns`` names: (schema, name) as written, and the entry to
    use for them in ``Policy.table_columns`` (the table part, quoting kept)."""
    profile = profiles.get(dialect)
    found: dict[str, tuple[str | None, str, str]] = {}
    for entry in entries:
        try:
            column = exp.to_column(entry, dialect=profile.sqlglot_dialect)
        except Exception:  # noqa: S112 - an unreadable entry names no table
            continue
        table = column.args.get("table") if isinstance(column, exp.Column) else None
        if table is None:
            continue
        db = column.args.get("db")
        key = exp.Table(this=table.copy(), db=db.copy() if db is not None else None).sql(profile.sqlglot_dialect)
        found.setdefault(key, (str(db.this) if db is not None else None, str(table.this), key))
    return list(found.values())


_Columns = tuple[tuple[str, ...], tuple[str, ...]]
"""A reflected table's column names in table order: folded (``_fold``), and keyed as the
database compares them (``_exact_key``)."""


@lru_cache(maxsize=256)
def _parse_columns(entries: tuple[str, ...], profile: SafetyProfile) -> dict[TableName, _Columns]:
    """``Policy.table_columns`` by table key."""
    found: dict[TableName, _Columns] = {}
    for packed in entries:
        entry, *names = packed.split(COLUMNS_SEP)
        try:
            table = exp.to_table(entry, dialect=profile.sqlglot_dialect)
        except Exception:  # noqa: S112 - an unreadable entry knows no columns
            continue
        if not isinstance(table, exp.Table):
            continue
        # Reflected names are the names as stored: exact where the database keeps case.
        pair = (tuple(_fold(str(n)) for n in names), tuple(_exact_key(str(n), profile) for n in names))
        for schema in profile.identifier_keys(table.args.get("db")):
            for name in profile.identifier_keys(table.this):
                if name:
                    found[TableName(schema, name)] = pair
    return found


def _same_table(entry: TableName, name: TableName, default: str | None) -> bool:
    return entry.name == name.name and (
        entry.schema == name.schema
        or (entry.schema is None and name.schema in (None, default))
        or (name.schema is None and entry.schema == default)
    )


def _columns_of(name: TableName, denied: tuple[DeniedColumn, ...], default: str | None) -> set[str]:
    return {entry.column for entry in denied if _same_table(entry.table, name, default)}


def _known_columns(name: TableName, known: dict[TableName, _Columns], default: str | None) -> _Columns | None:
    found = known.get(name)
    if found is not None:
        return found
    for key, cols in known.items():
        if _same_table(key, name, default):
            return cols
    return None


@lru_cache(maxsize=8)
def _function_names(profile: SafetyProfile) -> frozenset[str]:
    """Function names sqlglot knows for the dialect (the no-schema attribute-notation guard)."""
    parser = sqlglot.Dialect.get_or_raise(profile.sqlglot_dialect).parser_class
    names = {_fold(str(name)) for name in parser.FUNCTIONS}
    names |= {"to_json", "to_jsonb", "row_to_json", "hstore", "text", "json_agg", "jsonb_agg", "array_agg",
              "string_agg", "format", "concat", "concat_ws", "md5", "lower", "upper", "length", "xmlagg"}
    return frozenset(names)


# ------------------------------------------------------------------------- sources

class _Source:
    """One FROM item as a query level sees it."""

    __slots__ = ("denied", "exact", "label", "names", "node", "opaque", "protected", "visible")

    def __init__(
        self,
        names: frozenset[str],
        label: str,
        *,
        protected: bool = False,
        visible: tuple[str, ...] | None = None,
        denied: frozenset[str] = frozenset(),
        opaque: bool = False,
        node: exp.Expr | None = None,
        exact: frozenset[str] | None = None,
    ) -> None:
        self.names = names  # lower-case names that qualify references to it
        self.label = label
        self.protected = protected
        self.visible = visible  # lower-case column names seen through it; None: unknown
        self.denied = denied  # the visible names that are denied columns
        self.opaque = opaque  # protected, but which name is which column is unknown
        self.node = node  # the FROM item it stands for (None: no place in the text)
        # The column names it surely has, keyed as the database compares names
        # (``_exact_key``): what may resolve a bare name, so it is not a whole row.
        self.exact = exact


class _Scope:
    __slots__ = ("node", "parent", "sources")

    def __init__(self, node: exp.Expr, sources: list[_Source], parent: _Scope | None) -> None:
        self.node = node
        self.sources = sources
        self.parent = parent

    def chain(self) -> list[_Scope]:
        found: list[_Scope] = []
        scope: _Scope | None = self
        while scope is not None:
            found.append(scope)
            scope = scope.parent
        return found


_QUERY_NODES = (exp.Select, exp.Update, exp.Delete, exp.Insert, exp.Merge, exp.SetOperation)
_DML_IN_MERGE = (exp.Insert, exp.Update, exp.Delete)


def _alias_names(node: exp.Expr) -> tuple[str, ...] | None:
    alias = node.args.get("alias")
    if isinstance(alias, exp.TableAlias) and alias.columns:
        return tuple(_fold(str(c.name)) for c in alias.columns)
    return None


def _alias_exact(node: exp.Expr, profile: SafetyProfile) -> tuple[str, ...] | None:
    """``_alias_names`` keyed as the database compares names (``_exact_key``)."""
    alias = node.args.get("alias")
    if isinstance(alias, exp.TableAlias) and alias.columns:
        return tuple(_exact_key(c, profile) for c in alias.columns)
    return None


def _exact_set(names: tuple[str, ...] | None) -> frozenset[str] | None:
    return frozenset(names) if names is not None else None


def _alias(node: exp.Expr) -> str:
    alias = node.args.get("alias")
    if isinstance(alias, exp.TableAlias) and alias.this is not None:
        return _fold(str(alias.name))
    return ""


class _Resolver:
    """Resolves every reference of one statement (built only when it touches a protected table)."""

    def __init__(
        self,
        statement: exp.Expr,
        profile: SafetyProfile,
        denied: tuple[DeniedColumn, ...],
        known: dict[TableName, _Columns],
        default: str | None,
        cte_profile: SafetyProfile | None = None,
    ) -> None:
        self.statement = statement
        self.profile = profile
        # Which names are CTEs is decided as the database compares names (exact where
        # lower_case_table_names=0): a reference is a CTE only if the database reads it so.
        self.cte_profile = cte_profile or profile
        self.denied = denied
        self.known = known
        self.default = default
        self.scopes: dict[int, _Scope] = {}
        self.memo: dict[int, dict[str, int]] = {}
        self.owners: dict[int, _Scope | None] = {}
        self.order: dict[int, int] = {}
        self.any_protected = False

    # -- sources ----------------------------------------------------------------------
    def table_source(self, table: exp.Table) -> _Source:
        alias = _alias(table)
        plain = _fold(str(table.name))
        names = frozenset(n for n in (alias, plain if not alias else plain) if n)
        label = alias or plain
        renamed = _alias_names(table)
        renamed_exact = _alias_exact(table, self.profile)
        if not isinstance(table.this, exp.Identifier):
            return _Source(names, label, visible=renamed, node=table, exact=_exact_set(renamed_exact))
        name = table_name(table, self.profile)
        if name.schema is None and cte_visible(
            table, table_name(table, self.cte_profile).name, self.cte_profile, self.memo
        ):
            return _Source(names, label, visible=renamed, node=table, exact=_exact_set(renamed_exact))
        cols = _columns_of(name, self.denied, self.default)
        if not cols:
            return _Source(names, label, visible=renamed, node=table, exact=_exact_set(renamed_exact))
        self.any_protected = True
        if any(isinstance(h, exp.IndexTableHint) for h in table.args.get("hints") or ()):
            # FORCE INDEX (ssn_key) returns the rows in the denied column's order.
            raise PolicyViolation(
                f"index hints on {label} are not allowed: an index over a denied column orders the rows by it",
                "remove the USE/FORCE/IGNORE INDEX hint; add ORDER BY on an allowed column if order matters",
                code="COLUMN_NOT_ALLOWED",
            )
        reflected = _known_columns(name, self.known, self.default)
        if reflected is None:
            return _Source(names, label, protected=True, denied=frozenset(cols), opaque=renamed is not None,
                           node=table)
        real, real_exact = reflected
        if renamed is not None:
            if len(renamed) > len(real) or renamed_exact is None:
                return _Source(names, label, protected=True, denied=frozenset(cols), opaque=True, node=table)
            visible = renamed + real[len(renamed):]
            exact = renamed_exact + real_exact[len(renamed_exact):]
        else:
            visible, exact = real, real_exact
        hidden = frozenset(v for v, r in zip(visible, real, strict=True) if r in cols)
        return _Source(names, label, protected=True, visible=visible, denied=hidden, node=table,
                       exact=frozenset(exact))

    def flatten(self, item: exp.Expr | None, out: list[_Source]) -> None:
        if item is None:
            return
        if isinstance(item, exp.Table):
            out.append(self.table_source(item))
        elif isinstance(item, exp.Subquery):
            inner = item.this
            # (A Subquery is a Query too: ``((customers c JOIN ...))`` nests them.)
            if isinstance(inner, exp.Query) and not isinstance(inner, exp.Subquery):
                out.append(_Source(frozenset({_alias(item)} - {""}), _alias(item) or "subquery",
                                   visible=_alias_names(item) or _outputs(inner), node=item,
                                   exact=_exact_set(_alias_exact(item, self.profile))
                                   or _outputs_exact(inner, self.profile)))
            else:
                # A parenthesised FROM item or join: its tables are this level's sources.
                start = len(out)
                self.flatten(inner, out)
                alias = _alias(item)
                if alias:
                    out.append(_combined(alias, out[start:], item))
        elif isinstance(item, exp.Lateral):
            inner = item.this
            if (isinstance(inner, exp.Subquery) and isinstance(inner.this, exp.Query)
                    and not isinstance(inner.this, exp.Subquery)):
                alias = _alias(item) or _alias(inner)
                out.append(_Source(frozenset({alias} - {""}), alias or "lateral",
                                   visible=_alias_names(item) or _alias_names(inner) or _outputs(inner.this),
                                   node=item,
                                   exact=_exact_set(_alias_exact(item, self.profile))
                                   or _exact_set(_alias_exact(inner, self.profile))
                                   or _outputs_exact(inner.this, self.profile)))
            else:
                self.flatten_other(inner, item, out)
        else:
            self.flatten_other(item, item, out)
        for join in item.args.get("joins") or ():
            self.flatten(join.this, out)

    def flatten_other(self, node: exp.Expr | None, owner: exp.Expr, out: list[_Source]) -> None:
        if isinstance(node, exp.Subquery):
            self.flatten(node, out)
            return
        alias = _alias(owner) or (_alias(node) if node is not None else "")
        visible = _alias_names(owner) or (_alias_names(node) if node is not None else None)
        exact = _exact_set(_alias_exact(owner, self.profile)) or (
            _exact_set(_alias_exact(node, self.profile)) if node is not None else None)
        out.append(_Source(frozenset({alias} - {""}), alias or "function", visible=visible, node=owner,
                           exact=exact))

    def sources(self, node: exp.Expr) -> list[_Source]:
        out: list[_Source] = []
        if isinstance(node, exp.Select):
            from_ = node.args.get("from_")
            if from_ is not None:
                self.flatten(from_.this, out)
                for extra in from_.expressions or ():
                    self.flatten(extra, out)
            for join in node.args.get("joins") or ():
                self.flatten(join.this, out)
        elif isinstance(node, exp.SetOperation):
            for branch in (node.this, node.expression):
                while isinstance(branch, exp.Subquery):
                    branch = branch.this
                if isinstance(branch, (exp.Select, exp.SetOperation)):
                    out.extend(self.sources(branch))
        elif isinstance(node, (exp.Update, exp.Delete)):
            self.flatten(node.this, out)
            for key in ("from_", "using", "tables", "joins"):
                value = node.args.get(key)
                values = value if isinstance(value, list) else [value]
                for item in values:
                    if not isinstance(item, exp.Expr):
                        continue
                    if isinstance(item, exp.From):
                        self.flatten(item.this, out)
                        for extra in item.expressions or ():
                            self.flatten(extra, out)
                    elif isinstance(item, exp.Join):
                        self.flatten(item.this, out)
                    elif item is not None:
                        self.flatten(item, out)
        elif isinstance(node, exp.Insert):
            target = node.this.this if isinstance(node.this, exp.Schema) else node.this
            if isinstance(target, exp.Table):
                source = self.table_source(target)
                out.append(source)
                # ON CONFLICT ... DO UPDATE sees the proposed row as EXCLUDED (PostgreSQL,
                # SQLite); MySQL 8 names it with VALUES (...) AS new.
                extra = {"excluded"}
                values = node.expression
                if isinstance(values, exp.Values) and _alias(values):
                    extra.add(_alias(values))
                out.append(_Source(frozenset(extra), "excluded", protected=source.protected,
                                   visible=source.visible, denied=source.denied, opaque=source.opaque,
                                   exact=source.exact))
        elif isinstance(node, exp.Merge):
            self.flatten(node.this, out)
            self.flatten(node.args.get("using"), out)
        return out

    def scope(self, node: exp.Expr) -> _Scope:
        found = self.scopes.get(id(node))
        if found is None:
            found = _Scope(node, self.sources(node), self.outer(node))
            self.scopes[id(node)] = found
        return found

    def outer(self, node: exp.Expr) -> _Scope | None:
        parent = node.parent
        while parent is not None:
            if isinstance(parent, exp.CTE):
                # A CTE body does not see the level that owns its WITH, but it does see the
                # levels around that one: PostgreSQL and SQLite correlate a WITH inside a
                # subquery (`SELECT (WITH x AS (SELECT c.ssn) ...) FROM customers c`).
                with_ = parent.parent
                owner = with_.parent if with_ is not None else None
                return self.outer(owner) if owner is not None else None
            if _is_query(parent):
                return self.scope(parent)
            parent = parent.parent
        return None

    def scope_of(self, node: exp.Expr) -> _Scope | None:
        """The query level ``node`` belongs to (memoised along the way up)."""
        passed: list[int] = []
        owners = self.owners
        parent = node.parent
        found: _Scope | None = None
        while parent is not None:
            key = id(parent)
            if key in owners:
                found = owners[key]
                break
            if _is_query(parent):
                found = self.scope(parent)
                break
            passed.append(key)
            parent = parent.parent
        for key in passed:
            owners[key] = found
        return found

    # -- checks -----------------------------------------------------------------------
    def check(self) -> None:
        # One walk: build every level (this finds whether a protected table is read at
        # all: a CTE may shadow its name) and collect what is checked afterwards.
        found: list[exp.Expr] = []
        order = self.order
        for index, node in enumerate(self.statement.walk(bfs=False)):
            order[id(node)] = index
            kind = type(node)
            if (kind is exp.Column or kind is exp.Star or kind is exp.Join
                    or (kind is exp.Dot or kind is exp.EQ) and self.profile.string_identifiers):
                found.append(node)
            elif _is_query_type(kind):
                if kind is exp.Insert:
                    found.append(node)
                if _is_query(node):
                    self.scope(node)
        if not self.any_protected:
            return
        for node in found:
            kind = type(node)
            if kind is exp.Column:
                self.check_column(node)  # type: ignore[arg-type]
            elif kind is exp.Star:
                if not isinstance(node.parent, exp.Column):
                    self.check_star(node)  # type: ignore[arg-type]
            elif kind is exp.Join:
                self.check_join(node)  # type: ignore[arg-type]
            elif kind is exp.Dot:
                self.check_dotted_string(node)  # type: ignore[arg-type]
            elif kind is exp.EQ:
                self.check_string_target(node)  # type: ignore[arg-type]
            else:
                self.check_insert(node)  # type: ignore[arg-type]

    def lookup(self, scope: _Scope | None, qualifier: str) -> tuple[_Source | None, bool]:
        """(the source ``qualifier`` names, whether the levels searched hold a protected one).

        Qualifiers compare case-insensitively here, but a database may tell ``C`` from
        ``c`` (MySQL aliases with lower_case_table_names=0, quoted PostgreSQL names): when
        several sources, at any level, answer to the name, a protected one wins."""
        protected = False
        first: _Source | None = None
        while scope is not None:
            for source in scope.sources:
                protected = protected or source.protected
                if qualifier in source.names:
                    if source.protected:
                        return source, True
                    first = first or source
            scope = scope.parent
        return first, protected

    def check_column(self, column: exp.Column) -> None:
        scope = self.scope_of(column)
        qualifier = _fold(str(column.table)) if column.args.get("table") is not None else ""
        if isinstance(column.this, exp.Star):
            if not qualifier:
                return
            source, protected = self.lookup(scope, qualifier)
            reads = (source is None and protected) or (source is not None and source.protected)
            if reads and not _in_exists_list(column):
                raise _deny_star(f"{column.table}.*")
            return
        name = _fold(str(column.name))
        if qualifier:
            source, protected = self.lookup(scope, qualifier)
            if source is None:
                if protected:
                    raise _deny_unresolved(column.sql(self.profile.sqlglot_dialect))
                return
            if source.protected:
                self.check_attribute(source, name, column)
            return
        self.check_bare(scope, name, column)

    def check_attribute(self, source: _Source, name: str, column: exp.Column) -> None:
        shown = f"{column.table}.{column.name}"
        if source.opaque or name in source.denied:
            raise _deny_column(shown, source)
        if source.visible is not None:
            if name not in source.visible:
                raise _deny_unresolved(shown, source)
        elif self.profile.whole_row_references and name in _function_names(self.profile):
            raise _deny_unresolved(shown, source)
        if name in self.profile.rowid_names and (source.visible is None or name not in source.visible):
            raise _deny_unresolved(shown, source)

    def check_bare(self, scope: _Scope | None, name: str, column: exp.Column) -> None:
        # Every level is searched, not only up to the first that has the name: names
        # compare case-insensitively here while the database may not ("SSN" is not ssn
        # in PostgreSQL), so an inner match must not hide an outer denied column.
        resolved = False
        key = _exact_key(column.this, self.profile)
        path: list[exp.Expr] | None = None
        level = scope
        while level is not None:
            for source in level.sources:
                if source.protected and (source.opaque or name in source.denied):
                    raise _deny_column(str(column.name), source, qualified=False)
            if not resolved:
                if path is None:
                    path = _path(column)
                resolved = any(
                    source.exact is not None and key in source.exact and self.sees(level, source, path)
                    for source in level.sources
                )
            level = level.parent
        if resolved:
            return
        if isinstance(column.parent, exp.Collate):
            return
        first = scope.sources if scope is not None else []
        if name in self.profile.rowid_names and any(s.protected for s in first):
            raise _deny_unresolved(str(column.name), next(s for s in first if s.protected))
        if self.profile.whole_row_references:
            owner, _ = self.lookup(scope, name)
            if owner is not None and owner.protected:
                raise _deny_star(f"the whole-row reference {column.name}", owner)

    def sees(self, level: _Scope, source: _Source, path: list[exp.Expr]) -> bool:
        """Whether a reference (``path``: it and its ancestors) sees ``source``'s columns.

        Outside the FROM clause every source of its level is in scope. Inside it (a JOIN's
        ON, a LATERAL subquery, a table function's arguments) only the FROM items written
        before it are: not the item that holds it (``LATERAL (SELECT k) x`` — ``k`` is not
        x's own output column ``k`` but the whole row of ``c k``) nor the ones after it."""
        node = source.node
        if node is None:
            return True
        below = _child_of(level.node, path)
        if below is None or below.arg_key not in _FROM_KEYS:
            return True
        if any(step is node for step in path):
            return False
        return self.position(node) < self.position(path[0])

    def position(self, node: exp.Expr) -> int:
        """``node``'s place in the statement's pre-order walk (nodes made up for a check,
        like a SQLite string target read as a column, stand at their parent's place)."""
        current: exp.Expr | None = node
        while current is not None:
            found = self.order.get(id(current))
            if found is not None:
                return found
            current = current.parent
        return -1

    def check_dotted_string(self, dot: exp.Dot) -> None:
        """SQLite reads ``'c'.ssn``, ``'c'.'ssn'``, ``'main'.c.ssn`` and ``'c'.*`` as column
        references (a string is a name after a dot); sqlglot parses them as a ``Dot`` of
        literals. Resolve them as the column they name."""
        if isinstance(dot.parent, exp.Dot):
            return  # part of a longer chain: judged at its top
        parts = _name_chain(dot)
        if parts is None:
            if any(isinstance(n, exp.Literal) and n.is_string for n in _chain_leaves(dot)):
                raise _deny_unresolved(dot.sql(self.profile.sqlglot_dialect))
            return
        if not any(isinstance(p, exp.Literal) for p in parts):
            return  # no string in a name's place: not SQLite's quirk
        if not 2 <= len(parts) <= 4 or any(isinstance(p, exp.Star) for p in parts[:-1]):
            raise _deny_unresolved(dot.sql(self.profile.sqlglot_dialect))
        names: list[exp.Expr] = [p if isinstance(p, exp.Star) else _as_identifier(p) for p in parts]
        column = exp.Column(this=names[-1], table=names[-2],
                            db=names[-3] if len(names) > 2 else None,
                            catalog=names[-4] if len(names) > 3 else None)
        column.parent = dot.parent  # resolved at the level the dotted name stands in
        self.check_column(column)

    def check_string_target(self, eq: exp.EQ) -> None:
        """``UPDATE t SET 'ssn' = ...`` (and ``('a', 'ssn') = (...)``, ``DO UPDATE SET``):
        SQLite writes the column a string names."""
        if not isinstance(eq.parent, (exp.Update, exp.OnConflict)):
            return
        target = eq.this
        while isinstance(target, exp.Paren):
            target = target.this  # SET ('ssn') = ('x')
        targets = target.expressions if isinstance(target, exp.Tuple) else [target]
        for item in targets:
            if isinstance(item, exp.Literal) and item.is_string:
                column = exp.Column(this=_as_identifier(item))
                column.parent = eq
                self.check_column(column)

    def check_star(self, star: exp.Star) -> None:
        parent = star.parent
        if isinstance(parent, exp.Select) and any(e is star for e in parent.expressions):
            if _is_exists_body(parent):
                return
            scope = self.scope(parent)
            hit = next((s for s in scope.sources if s.protected), None)
            if hit is not None:
                raise _deny_star("SELECT *", hit)
        elif isinstance(parent, exp.Returning):
            level = self.scope_of(parent)
            hit = next((s for s in level.sources if s.protected), None) if level is not None else None
            if hit is not None:
                raise _deny_star("RETURNING *", hit)

    def check_join(self, join: exp.Join) -> None:
        method = join.args.get("method")
        using = join.args.get("using") or ()
        if not using and not (method and str(method).upper() == "NATURAL"):
            return
        scope = self.scope_of(join)
        sources = scope.sources if scope is not None else []
        if not using:
            hit = next((s for s in sources if s.protected), None)
            if hit is not None:
                raise _deny_star("NATURAL JOIN", hit)
            return
        for ident in using:
            name = _fold(str(getattr(ident, "name", ident)))
            for source in sources:
                if source.protected and (source.opaque or name in source.denied):
                    raise _deny_column(name, source)

    def check_insert(self, insert: exp.Insert) -> None:
        if isinstance(insert.parent, exp.When):
            return  # MERGE ... INSERT (cols): its columns are Column nodes, checked above
        schema = insert.this
        target = schema.this if isinstance(schema, exp.Schema) else schema
        if not isinstance(target, exp.Table):
            return
        source = self.table_source(target)
        if not source.protected:
            return
        if not isinstance(schema, exp.Schema) or not schema.expressions:
            if insert.args.get("default") or insert.expression is None:
                return
            raise PolicyViolation(
                f"INSERT into {source.label} without a column list writes every column, "
                "including ones that are not allowed",
                "name the columns you insert: INSERT INTO t (a, b) VALUES (...)",
                code="COLUMN_NOT_ALLOWED",
            )
        for ident in schema.expressions:
            name = _fold(str(getattr(ident, "name", ident)))
            if source.opaque or name in source.denied:
                raise _deny_column(name, source)
            if source.visible is not None and name not in source.visible:
                raise _deny_unresolved(name, source)
        conflict = insert.args.get("conflict")
        if conflict is None:
            return
        names = [str(getattr(key, "name", key)) for key in conflict.args.get("conflict_keys") or ()]
        # MySQL ``ON DUPLICATE KEY UPDATE a = VALUES(b)``: b is the proposed row's column.
        for call in conflict.find_all(exp.Anonymous):
            if str(call.this).upper() == "VALUES":
                names.extend(str(arg.name) for arg in call.expressions if isinstance(arg, exp.Identifier))
        for name in names:
            if source.opaque or _fold(name) in source.denied:
                raise _deny_column(name, source)


_QUERY_TYPES: dict[type, bool] = {}


def _is_query_type(kind: type) -> bool:
    found = _QUERY_TYPES.get(kind)
    if found is None:
        found = _QUERY_TYPES[kind] = issubclass(kind, _QUERY_NODES)
    return found


def _is_query(node: exp.Expr) -> bool:
    if not _is_query_type(type(node)):
        return False
    # MERGE ... WHEN ... THEN UPDATE/INSERT/DELETE: part of the MERGE's level.
    return not (isinstance(node, _DML_IN_MERGE) and isinstance(node.parent, exp.When))


# The arguments of a query level that hold its FROM items (and their joins' ON clauses).
_FROM_KEYS = frozenset({"from_", "joins", "using", "tables"})


def _path(node: exp.Expr) -> list[exp.Expr]:
    """``node`` and its ancestors, innermost first."""
    found: list[exp.Expr] = []
    current: exp.Expr | None = node
    while current is not None:
        found.append(current)
        current = current.parent
    return found


def _child_of(ancestor: exp.Expr, path: list[exp.Expr]) -> exp.Expr | None:
    """The node of ``path`` right below ``ancestor`` (None when ``ancestor`` is not on it)."""
    for below, above in zip(path, path[1:], strict=False):
        if above is ancestor:
            return below
    return None


def _name_chain(node: exp.Expr) -> list[exp.Expr] | None:
    """The parts of a dotted name (identifiers, string literals, a final ``*``), or None
    when ``node`` is something else (a field of a value)."""
    if isinstance(node, exp.Dot):
        left, right = _name_chain(node.this), _name_chain(node.expression)
        return left + right if left is not None and right is not None else None
    if isinstance(node, exp.Column):
        parts = [node.args.get(k) for k in ("catalog", "db", "table", "this")]
        return [p for p in parts if p is not None]
    if isinstance(node, (exp.Identifier, exp.Star)) or (isinstance(node, exp.Literal) and node.is_string):
        return [node]
    return None


def _chain_leaves(node: exp.Expr) -> list[exp.Expr]:
    if isinstance(node, exp.Dot):
        return _chain_leaves(node.this) + _chain_leaves(node.expression)
    return [node]


def _as_identifier(part: exp.Expr) -> exp.Identifier:
    if isinstance(part, exp.Identifier):
        return part.copy()
    return exp.Identifier(this=str(part.this), quoted=True)


def _outputs_exact(query: exp.Expr, profile: SafetyProfile) -> frozenset[str] | None:
    """The output names of ``query`` that are surely its columns' names, keyed as the
    database compares them: aliases and plain column references (an expression's
    generated name is left out: it only makes a bare name resolve less often)."""
    if isinstance(query, exp.Select):
        found: set[str] = set()
        for e in query.expressions:
            if isinstance(e, exp.Star) or (isinstance(e, exp.Column) and isinstance(e.this, exp.Star)):
                return None
            if isinstance(e, exp.Alias) and isinstance(e.args.get("alias"), exp.Identifier):
                found.add(_exact_key(e.args["alias"], profile))
            elif isinstance(e, exp.Column) and isinstance(e.this, exp.Identifier):
                found.add(_exact_key(e.this, profile))
        return frozenset(found)
    if isinstance(query, exp.SetOperation):
        return _outputs_exact(query.this, profile)
    return None


def _outputs(query: exp.Expr) -> tuple[str, ...] | None:
    if isinstance(query, exp.Select):
        if any(isinstance(e, exp.Star) or (isinstance(e, exp.Column) and isinstance(e.this, exp.Star))
               for e in query.expressions):
            return None
        return tuple(_fold(str(n)) for n in query.named_selects)
    if isinstance(query, exp.SetOperation):
        return _outputs(query.this)
    return None


def _combined(alias: str, inner: list[_Source], node: exp.Expr) -> _Source:
    protected = any(s.protected for s in inner)
    known = all(s.visible is not None for s in inner)
    visible = tuple(v for s in inner for v in (s.visible or ())) if known else None
    denied = frozenset(d for s in inner for d in s.denied)
    exact = frozenset(e for s in inner for e in (s.exact or ())) if all(s.exact is not None for s in inner) else None
    return _Source(frozenset({alias}), alias, protected=protected, visible=visible, denied=denied,
                   opaque=any(s.opaque for s in inner), node=node, exact=exact)


def _is_exists_body(select: exp.Select) -> bool:
    parent = select.parent
    if isinstance(parent, exp.Subquery):
        parent = parent.parent
    return isinstance(parent, exp.Exists)


def _in_exists_list(column: exp.Column) -> bool:
    parent = column.parent
    return isinstance(parent, exp.Select) and any(e is column for e in parent.expressions) and _is_exists_body(parent)


def _allowed_hint(source: _Source | None) -> str:
    if source is None or source.visible is None:
        return "name the columns you need"
    allowed = [c for c in source.visible if c not in source.denied]
    return f"allowed columns of {source.label}: {', '.join(allowed)}" if allowed else "name the columns you need"


def _deny_star(where: str, source: _Source | None = None) -> PolicyViolation:
    return PolicyViolation(
        f"{where} would read a column that is not allowed",
        "name the columns you need instead of * or a whole row; " + _allowed_hint(source),
        code="COLUMN_NOT_ALLOWED",
    )


def _deny_column(name: str, source: _Source | None = None, qualified: bool = True) -> PolicyViolation:
    hint = ("remove it from the query (selecting, filtering, sorting, grouping, joining on or writing "
            "it all count as using it); " + _allowed_hint(source))
    if not qualified:
        hint += f"; if you mean another table's {name}, qualify it with that table's name or alias"
    return PolicyViolation(f"column {name} is not allowed", hint, code="COLUMN_NOT_ALLOWED")


def _deny_unresolved(name: str, source: _Source | None = None) -> PolicyViolation:
    where = f" of {source.label}" if source is not None else ""
    return PolicyViolation(
        f"{name} is not a column{where} sqlgate can resolve, and the statement reads a table "
        "with columns that are not allowed",
        _allowed_hint(source) + "; refer to columns plainly as alias.column",
        code="COLUMN_NOT_ALLOWED",
    )


def check_columns(
    statement: exp.Expr,
    dialect: str | SafetyProfile,
    entries: tuple[str, ...],
    default_schema: str | None,
    table_columns: tuple[str, ...] = (),
) -> None:
    if not entries:
        return
    # The registered profile, not a per-database exact-case variant: which tables a
    # denied column protects is compared as loosely as the dialect allows (a policy
    # entry `Customers.ssn` still protects `customers`): protecting more is safe. Whether
    # a name is a CTE follows the database's own rule (the variant): with exact names
    # `WITH CUST AS (...) SELECT ssn FROM cust` reads the table cust, not the CTE.
    cte_profile = profiles.get(dialect)
    profile = profiles.get(cte_profile.name)
    denied = _parse_denied(entries, profile)
    if not denied:
        return
    default = profile.identifier_key(default_schema) if default_schema else None
    for table in statement.find_all(exp.Table):
        if isinstance(table.this, exp.Identifier) and _columns_of(table_name(table, profile), denied, default):
            break
    else:
        return  # no table with denied columns: nothing to resolve
    known = _parse_columns(table_columns, profile) if table_columns else {}
    _Resolver(statement, profile, denied, known, default, cte_profile).check()


def protected_tables(
    names: tuple[TableName, ...] | list[TableName],
    dialect: str | SafetyProfile,
    entries: tuple[str, ...],
    default_schema: str | None,
) -> bool:
    """Whether any of ``names`` has a denied column."""
    if not entries:
        return False
    profile = profiles.get(dialect)
    denied = _parse_denied(entries, profile)
    default = profile.identifier_key(default_schema) if default_schema else None
    return any(_columns_of(name, denied, default) for name in names)
