"""Which functions a statement may call: a per-dialect allowlist, on by default.

Admit the known-safe, never enumerate the dangerous: each dialect has one data file,
``safety/profiles/functions/<dialect>.toml``, listing the built-ins analytics uses (math,
string, regex, date/time, aggregates, window, JSON/array readers, conditionals, full-text
readers), in groups with a reason each, and a sample call per function (a test runs every
sample on the real server). Anything else is ``FUNCTION_NOT_ALLOWED``; a policy adds names
with ``allowed_functions`` and removes them with ``denied_functions``.

Names are matched as the dialect spells the call, whatever class sqlglot parses it into:
sqlglot turns MySQL ``LOCATE``/``INSTR``/``POSITION`` all into ``StrPosition``, so every
listed sample is parsed once and the class it yields is what is admitted (and what a
``denied_functions`` entry removes: denying ``locate`` also denies its synonyms, since the
SQL sent is rendered from the class). Unknown calls stay ``Anonymous`` and are matched by
name (lower-cased, or exactly when quoted where the database folds unquoted names).

Also here, because they are the same side channels by other means:
- a schema-qualified call runs a user-defined function unless the schema is the dialect's
  catalog (``pg_catalog.lower`` is ``lower``; ``shop.f()`` is a stored function): refused;
- casts and column definitions to types outside sqlglot's built-in set (PostgreSQL
  ``'secrets'::regclass`` resolves a table named in a string) are refused unless the
  profile lists the type as harmless (``allowed_user_types``);
- MySQL system variables (``@@datadir``) are refused except the profile's few harmless ones.
Optimizer hints (``/*+ ... */``) are not calls: only the profile's hard-denied names
(``denied_functions``, e.g. ``SET_VAR``) are refused inside them.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import sqlglot
from sqlglot import exp
from sqlglot.errors import ErrorLevel
from sqlglot.tokenizer_core import TokenType

from sqlgate.errors import PolicyViolation
from sqlgate.safety import profiles
from sqlgate.safety.profiles import SafetyProfile

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*\Z")
SOURCE = "sqlgate.source"
"""``statement.meta`` key of the text the statement was parsed from (set by ``safety.check``)."""
_FROM = "FROM "
_STRING = re.compile(r"'(?:[^']|'')*'")
_NOT_NAMES = frozenset({TokenType.STRING, TokenType.NATIONAL_STRING, TokenType.RAW_STRING, TokenType.IDENTIFIER})  # a sample that starts like this is a table-valued function


@dataclass(frozen=True)
class FunctionEntry:
    """One allowlisted function of a dialect: its name, group and sample call."""

    name: str
    group: str
    sample: str

    @property
    def table_valued(self) -> bool:
        return self.sample.startswith(_FROM)

    def query(self) -> str:
        """The statement that runs the sample on a server."""
        return f"SELECT * {self.sample}" if self.table_valued else f"SELECT {self.sample}"


@dataclass(frozen=True)
class FunctionGroup:
    name: str
    reason: str
    entries: tuple[FunctionEntry, ...]


@dataclass(frozen=True)
class Allowlist:
    """A dialect's allowlist as read from its data file."""

    groups: tuple[FunctionGroup, ...]
    syntax: tuple[tuple[str, str], ...]
    """(what, sample): operators and keywords sqlglot parses into function classes."""

    def entries(self) -> tuple[FunctionEntry, ...]:
        return tuple(e for g in self.groups for e in g.entries)


@lru_cache(maxsize=8)
def allowlist(dialect: str | SafetyProfile) -> Allowlist:
    """The data file of ``dialect`` (``safety/profiles/functions/<name>.toml``)."""
    profile = profiles.get(dialect)
    text = resources.files("sqlgate.safety.profiles").joinpath("functions", f"{profile.name}.toml").read_text()
    data = tomllib.loads(text)
    groups = []
    syntax: tuple[tuple[str, str], ...] = ()
    for group_name, body in data.items():
        if group_name == "syntax":
            syntax = tuple((str(k), str(v)) for k, v in body["samples"].items())
            continue
        entries = tuple(
            FunctionEntry(str(k).lower(), group_name, str(sample))
            for k, v in body["functions"].items()
            for sample in (v if isinstance(v, list) else [v])
        )
        groups.append(FunctionGroup(group_name, str(body["reason"]), entries))
    return Allowlist(tuple(groups), syntax)


# ------------------------------------------------------------------ compiled rule sets

@dataclass(frozen=True)
class _Rules:
    names: frozenset[str]
    """Allowed names of calls sqlglot leaves opaque (``Anonymous``)."""
    classes: frozenset[type[exp.Expr]]
    """Allowed typed function classes (from the samples, the syntax and the policy)."""
    spellings: frozenset[str]
    """How a typed call may be written: the SQL sent keeps the agent's spelling, so
    ``nvl(a, b)`` (sqlglot's Coalesce) is not ``coalesce`` and must be listed itself."""
    hard_denied: frozenset[str]
    hard_prefixes: tuple[str, ...]
    unlisted_special: frozenset[str] = frozenset()
    """Calls sqlglot parses with a syntax of their own (``position(a IN b)``, ``string_agg``)
    keep no position, so their spelling is found in the text: these names are not listed."""


def _parse_expressions(sql: str, profile: SafetyProfile) -> list[exp.Expr]:
    """The select-list expressions (or the FROM source) of ``sql``; empty when it does not parse."""
    try:
        tree = sqlglot.parse_one(sql, read=profile.sqlglot_dialect, error_level=ErrorLevel.RAISE)
    except Exception:  # noqa: BLE001 - a sample or name that does not parse admits nothing
        return []
    if not isinstance(tree, exp.Select):
        return []
    if tree.args.get("from_") is not None and [e.name for e in tree.expressions] == ["*"] and not tree.args.get("joins"):
        source = tree.args["from_"].this
        return [source.this if isinstance(source, exp.Table) else source]
    return [e.this if isinstance(e, exp.Alias) else e for e in tree.expressions]


def _outer_call(node: exp.Expr) -> exp.Func | None:
    """The outermost function call of a sample (unwrapping ``pg_catalog.fn`` and parentheses)."""
    while isinstance(node, (exp.Paren, exp.Dot)):
        node = node.expression if isinstance(node, exp.Dot) else node.this
    if isinstance(node, exp.Func):
        return node
    found = node.find(exp.Func)
    return found


def call_key(node: exp.Func, profile: SafetyProfile) -> str:
    """The name an opaque call is compared by (quoted names are exact where unquoted ones fold)."""
    this = node.this
    if isinstance(this, exp.Identifier):
        key = profile.identifier_key(this)
        return key or ""
    return str(node.name).lower()


def _classes_and_names(entry_sql: str, profile: SafetyProfile) -> tuple[set[type[exp.Expr]], set[str]]:
    return _calls_of(_parse_expressions(entry_sql, profile), profile)


def _calls_of(expressions: list[exp.Expr], profile: SafetyProfile) -> tuple[set[type[exp.Expr]], set[str]]:
    """The typed call classes and the opaque call names at the top of ``expressions``."""
    classes: set[type[exp.Expr]] = set()
    names: set[str] = set()
    for expression in expressions:
        call = _outer_call(expression)
        if call is None:
            continue
        if isinstance(call, exp.Anonymous):
            names.add(call_key(call, profile))
        else:
            classes.add(type(call))
    return classes, names


def spelling(node: exp.Func, source: str | None, profile: SafetyProfile) -> str | None:
    """How a typed call is written in ``source`` (the name before its parenthesis, compared
    like an identifier), or None when the node is no call by name (``::``, ``CASE``, ``~``)."""
    if not source:
        return None
    meta = node.meta
    start, end = meta.get("start"), meta.get("end")
    if not isinstance(start, int) or not isinstance(end, int) or not source[end + 1:end + 40].lstrip().startswith("("):
        return None
    text = source[start:end + 1]
    if text[:1] in "\"`[" and len(text) > 1:
        inner = text[1:-1]
        return profile.identifier_key(exp.to_identifier(inner, quoted=True)) or inner
    return text.lower() if _NAME.match(text) else None


def _spellings_in(sql: str, profile: SafetyProfile, expressions: list[exp.Expr] | None = None) -> set[str]:
    """How the typed calls in ``sql`` are written (``expressions``: ``sql`` already parsed)."""
    found: set[str] = set()
    for expression in _parse_expressions(sql, profile) if expressions is None else expressions:
        for node in expression.find_all(exp.Func):
            if not isinstance(node, exp.Anonymous):
                written = spelling(node, sql, profile)
                if written:
                    found.add(written)
    return found


def _name_shapes(name: str) -> tuple[str, ...]:
    """Calls of ``name`` with 0-3 arguments: what a policy name could parse into."""
    return (f"SELECT {name}()", f"SELECT {name}(x)", f"SELECT {name}(x, y)", f"SELECT {name}(x, y, z)")


@lru_cache(maxsize=8)
def _base(profile: SafetyProfile) -> tuple[
    frozenset[str], frozenset[type[exp.Expr]], dict[str, frozenset[type[exp.Expr]]], frozenset[str]
]:
    """(names, classes, name -> classes, spellings) of the dialect's allowlist and syntax."""
    data = allowlist(profile)
    names: set[str] = set()
    spellings: set[str] = set()
    classes: set[type[exp.Expr]] = set()
    by_name: dict[str, frozenset[type[exp.Expr]]] = {}
    for entry in data.entries():
        query = entry.query()
        parsed = _parse_expressions(query, profile)  # once: read, never changed, below
        found_classes, found_names = _calls_of(parsed, profile)
        names |= found_names
        names.add(entry.name)
        classes |= found_classes
        by_name[entry.name] = by_name.get(entry.name, frozenset()) | found_classes
        spellings.add(entry.name)
        spellings |= _spellings_in(query, profile, parsed)
        # sqlglot wraps column arguments in conversions it does not add around literals
        # (strftime(fmt, col) holds TsOrDsToTimestamp(col)): admit what the call itself
        # implies, from the sample with every string literal replaced by a column.
        variant = _STRING.sub("x", query)
        for expression in parsed if variant == query else _parse_expressions(variant, profile):
            classes.update(type(n) for n in expression.find_all(exp.Func) if not isinstance(n, exp.Anonymous))
    for _what, sample in data.syntax:
        parsed = _parse_expressions(f"SELECT {sample}", profile)
        spellings |= _spellings_in(f"SELECT {sample}", profile, parsed)
        for expression in parsed:
            for node in expression.find_all(exp.Func):
                if isinstance(node, exp.Anonymous):
                    names.add(call_key(node, profile))  # ROW(...)
                else:
                    classes.add(type(node))
    return frozenset(names), frozenset(classes), by_name, frozenset(spellings)


@lru_cache(maxsize=256)
def _rules(profile: SafetyProfile, allowed: tuple[str, ...], denied: tuple[str, ...]) -> _Rules:
    base_names, base_classes, by_name, base_spellings = _base(profile)
    names = set(base_names)
    classes = set(base_classes)
    spellings = set(base_spellings)
    lifted = {a.strip().lower() for a in allowed if a.strip()}
    for name in lifted:
        if not _NAME.match(name):
            continue
        names.add(name)
        spellings.add(name)
        for shape in _name_shapes(name):
            found_classes, _ = _classes_and_names(shape, profile)
            classes |= found_classes
    for name in {d.strip().lower() for d in denied if d.strip()}:
        if name.endswith("*"):
            names = {n for n in names if not n.startswith(name[:-1])}
            spellings = {n for n in spellings if not n.startswith(name[:-1])}
            continue
        names.discard(name)
        spellings.discard(name)
        classes -= by_name.get(name, frozenset())
        if _NAME.match(name):
            for shape in _name_shapes(name):
                found_classes, _ = _classes_and_names(shape, profile)
                classes -= found_classes
    hard = {n for n in profile.denied_functions if n not in lifted}
    exact = frozenset(n for n in hard if not n.endswith("*"))
    prefixes = tuple(n[:-1] for n in hard if n.endswith("*"))
    names = {n for n in names if n not in exact and not n.startswith(prefixes)} if prefixes else names - exact
    listed = {w.lower() for w in _WORD_CALL.findall(_all_samples(profile))} | spellings | names
    special = frozenset(n for n in _special_names(profile) if n not in listed)
    return _Rules(frozenset(names), frozenset(classes), frozenset(spellings), exact, prefixes, special)


_WORD_CALL = re.compile(r"\b([A-Za-z_][A-Za-z0-9_]*)\s*\(")


@lru_cache(maxsize=8)
def _all_samples(profile: SafetyProfile) -> str:
    data = allowlist(profile)
    return "\n".join([e.sample for e in data.entries()] + [s for _, s in data.syntax])


@lru_cache(maxsize=8)
def _special_names(profile: SafetyProfile) -> frozenset[str]:
    parser = sqlglot.Dialect.get_or_raise(profile.sqlglot_dialect).parser_class
    return frozenset(str(n).lower() for n in parser.FUNCTION_PARSERS)


def _unlisted_special_call(source: str, special: frozenset[str], profile: SafetyProfile) -> str | None:
    """The first unlisted special-syntax name written as a call in ``source`` (tokens, so
    text inside strings and comments does not count; a substring test first, since a
    regular expression over the whole text costs more than the rest of the rule)."""
    low = source.lower()
    if not any(name in low for name in special):
        return None
    tokens = sqlglot.Dialect.get_or_raise(profile.sqlglot_dialect).tokenize(source)
    for token, following in zip(tokens, tokens[1:], strict=False):
        if (following.token_type is TokenType.L_PAREN and token.token_type not in _NOT_NAMES
                and token.text.lower() in special):
            return token.text
    return None


# ------------------------------------------------------------------ the check

def function_name(node: exp.Func, dialect: str | SafetyProfile) -> str:
    """The name a call is shown by: as written for opaque calls, as rendered for typed ones."""
    profile = profiles.get(dialect)
    if isinstance(node, exp.Anonymous):
        return str(node.name)
    try:
        rendered = node.sql(profile.sqlglot_dialect)
    except Exception:  # noqa: BLE001 - only for the message
        rendered = ""
    head = rendered.split("(", 1)[0].strip()
    return head if _NAME.match(head) else node.sql_name().lower()


def is_allowed(name: str, dialect: str | SafetyProfile, allowed: tuple[str, ...] = (), denied: tuple[str, ...] = ()) -> bool:
    """Whether a call of ``name`` passes (by name, or by the class its calls parse into)."""
    profile = profiles.get(dialect)
    rules = _rules(profile, tuple(allowed), tuple(denied))
    key = name.lower()
    if key in rules.names:
        return True
    found = False
    for shape in _name_shapes(key):
        classes, names = _classes_and_names(shape, profile)
        if names and not names <= rules.names:
            return False
        if classes and not classes <= rules.classes:
            return False
        found = found or bool(classes)
    return found


def is_denied(name: str, dialect: str | SafetyProfile, allowed: tuple[str, ...] = (), denied: tuple[str, ...] = ()) -> bool:
    return not is_allowed(name, dialect, allowed, denied)


def _refuse(node: exp.Func, profile: SafetyProfile, why: str = "", shown: str | None = None) -> PolicyViolation:
    name = shown or function_name(node, profile)
    return PolicyViolation(
        f"function {name}() is not allowed{why}",
        f"sqlgate admits the built-in {profile.name} functions analytics uses (docs/functions.md); "
        f"rewrite the query without {name}(), or, if it is safe here, an operator can add it with "
        f"allowed_functions={name.lower()}",
        code="FUNCTION_NOT_ALLOWED",
    )


def _qualifier_allowed(qualifier: exp.Expr | None, profile: SafetyProfile) -> bool:
    if qualifier is None:
        return True
    if isinstance(qualifier, (exp.Identifier, exp.Var)):
        return (profile.identifier_key(qualifier) if isinstance(qualifier, exp.Identifier)
                else str(qualifier.this).lower()) in profile.function_schemas
    return False


def check_functions(
    statement: exp.Expr,
    dialect: str | SafetyProfile,
    allowed: tuple[str, ...],
    denied: tuple[str, ...],
    *,
    timeout_ms: int | None = None,
) -> None:
    """Refuse calls, casts and system variables outside the dialect's allowlist.

    ``timeout_ms`` (the policy's statement timeout) admits a time-limit hint that only
    shortens it (``/*+ MAX_EXECUTION_TIME(1000) */``)."""
    profile = profiles.get(dialect)
    rules = _rules(profile, allowed, denied)
    names, classes, spellings = rules.names, rules.classes, rules.spellings
    source = _source(statement)
    if source is not None and rules.unlisted_special:
        word = _unlisted_special_call(source, rules.unlisted_special, profile)
        if word is not None:
            raise PolicyViolation(
                f"function {word}() is not allowed",
                f"sqlgate admits the built-in {profile.name} functions analytics uses (docs/functions.md); "
                f"write the listed built-in instead, or an operator can add it with allowed_functions={word.lower()}",
                code="FUNCTION_NOT_ALLOWED",
            )
    categories = _CATEGORIES
    for node in statement.walk():
        kind = type(node)
        category = categories.get(kind)
        if category is None:
            category = categories[kind] = _category(kind)
        if category is _OTHER:
            continue
        if category is _CALL:
            assert isinstance(node, exp.Func)
            if kind is exp.Anonymous:
                key = call_key(node, profile)
                if key not in names:
                    if _in_hint(node):
                        if key in profile.timeout_hints and _within(node, timeout_ms):
                            continue
                        if key in rules.hard_denied or (rules.hard_prefixes and key.startswith(rules.hard_prefixes)):
                            raise _refuse(node, profile, " (it changes session settings or lifts a limit)")
                        continue
                    raise _refuse(node, profile)
            elif kind not in classes:
                if _in_hint(node):
                    continue
                raise _refuse(node, profile)
            elif source is not None:
                written = spelling(node, source, profile)
                if written is not None and written not in spellings:
                    raise _refuse(node, profile, shown=written)
            parent = node.parent
            if isinstance(parent, exp.Dot) and parent.expression is node and not _qualifier_allowed(parent.this, profile):
                raise _refuse(node, profile, " as a schema-qualified call (that names a user-defined function)")
            if isinstance(parent, exp.Table) and parent.this is node and not _qualifier_allowed(parent.args.get("db"), profile):
                raise _refuse(node, profile, " as a schema-qualified call (that names a user-defined function)")
        elif category is _OBJECT_TYPE:
            assert isinstance(node, exp.ObjectIdentifier)
            _check_object_type(node, profile)
        elif category is _TYPE:
            assert isinstance(node, exp.DataType)
            _check_type(node, profile)
        elif category is _VARIABLE:
            assert isinstance(node, exp.SessionParameter)
            _check_system_variable(node, profile)
        elif category is _OPERATOR:
            # OPERATOR(schema.op) calls the operator's function from any schema.
            qualifier, dot, _ = str(node.args.get("operator") or "").rpartition(".")
            if dot and qualifier.strip().strip('"').lower() not in profile.function_schemas:
                raise PolicyViolation(
                    f"OPERATOR({node.args.get('operator')}) names an operator outside the system catalog",
                    "use the plain operator (a || b) or OPERATOR(pg_catalog.op)",
                    code="FUNCTION_NOT_ALLOWED",
                )


# What check_functions does with a node, by its exact class (one dict lookup per node).
_OTHER, _CALL, _OBJECT_TYPE, _TYPE, _VARIABLE, _OPERATOR = "other", "call", "object", "type", "variable", "operator"
_CATEGORIES: dict[type[exp.Expr], str] = {}


def _category(kind: type[exp.Expr]) -> str:
    if issubclass(kind, exp.Func):
        return _CALL
    if issubclass(kind, exp.ObjectIdentifier):
        return _OBJECT_TYPE
    if issubclass(kind, exp.DataType):
        return _TYPE
    if issubclass(kind, exp.SessionParameter):
        return _VARIABLE
    if issubclass(kind, exp.Operator):
        return _OPERATOR
    return _OTHER


def _within(node: exp.Func, timeout_ms: int | None) -> bool:
    """A time-limit hint with one literal count of milliseconds in (0, timeout_ms]."""
    args = node.expressions
    if timeout_ms is None or len(args) != 1 or not isinstance(args[0], exp.Literal) or not args[0].is_int:
        return False
    return 0 < int(args[0].this) <= timeout_ms


def _source(statement: exp.Expr) -> str | None:
    node: exp.Expr | None = statement
    while node is not None:
        found = node.meta.get(SOURCE) if node._meta else None  # noqa: SLF001 - no dict created per node
        if isinstance(found, str):
            return found
        node = node.parent
    return None


def _in_hint(node: exp.Expr) -> bool:
    parent = node.parent
    while parent is not None:
        if isinstance(parent, exp.Hint):
            return True
        parent = parent.parent
    return False


def _check_type(node: exp.DataType, profile: SafetyProfile) -> None:
    if node.this is not exp.DataType.Type.USERDEFINED:
        if profile.uninterruptible_types and str(node.this.value).lower() in profile.uninterruptible_types:
            raise PolicyViolation(
                f"casts to {str(node.this.value).lower()} are not allowed",
                "the server parses this type with a library it cannot interrupt (no statement "
                "timeout or cancel stops it); keep the value as text",
                code="FUNCTION_NOT_ALLOWED",
            )
        return
    kind = str(node.args.get("kind") or "")
    key = kind.rsplit(".", 1)[-1].strip('"').lower()
    qualifier = kind.rsplit(".", 1)[0].strip('"').lower() if "." in kind else ""
    if key in profile.allowed_user_types and (not qualifier or qualifier in profile.function_schemas):
        return
    raise PolicyViolation(
        f"the type {kind} is not allowed in a cast or column definition",
        "cast to a standard type (int, numeric, text, date, timestamp, json, ...); types such as "
        "regclass resolve object names written in strings and are refused",
        code="FUNCTION_NOT_ALLOWED",
    )


def _check_object_type(node: exp.ObjectIdentifier, profile: SafetyProfile) -> None:
    """PostgreSQL OID alias types (regclass, regproc, ...) look up objects named in strings."""
    if str(node.this).lower() in profile.allowed_user_types:
        return
    raise PolicyViolation(
        f"casts to {str(node.this).lower()} are not allowed",
        "object-identifier types resolve table and function names written in strings, which "
        "would bypass the table whitelist; query whitelisted tables by name",
        code="FUNCTION_NOT_ALLOWED",
    )


def _check_system_variable(node: exp.SessionParameter, profile: SafetyProfile) -> None:
    name = str(node.name).lower()
    if name in profile.allowed_system_variables:
        return
    raise PolicyViolation(
        f"the system variable @@{node.name} is not available",
        "server settings and paths are not readable through sqlgate; "
        f"readable: {', '.join('@@' + v for v in sorted(profile.allowed_system_variables)) or 'none'}",
        code="STATEMENT_NOT_ALLOWED",
    )


__all__ = [
    "Allowlist", "FunctionEntry", "FunctionGroup", "allowlist", "call_key", "check_functions", "function_name",
    "is_allowed", "is_denied",
]
