"""What a dialect means to the validator: ``SafetyProfile``, pure data plus small pure methods.

One profile per database family (``postgresql.py``, ``mysql.py``, ``sqlite.py``), found
through the registry in ``__init__``. A profile holds everything the safety rules need to
know about a dialect — sqlglot's name for it, the URL schemes that select it, the functions
it denies, how it compares identifiers, its system catalogs, the text and token guards
against parser differentials, and the few syntax quirks the rules must know about — so no
rule asks ``if dialect == ...``. It imports nothing from ``db`` and does no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum

from sqlglot import exp
from sqlglot.tokenizer_core import Token

from sqlgate.errors import PolicyViolation
from sqlgate.safety.literals import StringSyntax

TokenGuard = Callable[[list[Token]], None]


class IdentifierCase(StrEnum):
    """How the database compares table and schema names."""

    # Unquoted names fold to lower case; quoted names are exact (PostgreSQL).
    FOLD_UNQUOTED = "fold_unquoted"
    # Names compare case-insensitively, quoted or not (SQLite; MySQL/MariaDB with
    # lower_case_table_names 1 or 2).
    INSENSITIVE = "insensitive"
    # Names compare exactly, quoted or not (MySQL/MariaDB with lower_case_table_names=0,
    # read at connect: ``CUSTOMERS`` and ``customers`` are different tables).
    EXACT = "exact"


class ExplainSyntax(StrEnum):
    """What may stand between EXPLAIN and the statement when sqlglot leaves it opaque."""

    OPTIONS = "options"  # EXPLAIN (FORMAT JSON, ...) / EXPLAIN VERBOSE ... (PostgreSQL, MySQL)
    QUERY_PLAN = "query_plan"  # EXPLAIN QUERY PLAN ... (SQLite)


@dataclass(frozen=True, eq=False)
class TextGuard:
    """Raw text the server reads differently from sqlglot: denied before parsing."""

    pattern: re.Pattern[str]
    message: str
    hint: str
    code: str = "STATEMENT_NOT_ALLOWED"

    def __call__(self, sql: str) -> None:
        if self.pattern.search(sql):
            raise PolicyViolation(self.message, self.hint, code=self.code)


# eq=False: profiles are singletons compared (and hashed, as lru_cache keys) by identity.
@dataclass(frozen=True, eq=False)
class SafetyProfile:
    """The validator's view of one SQL dialect."""

    name: str
    """Canonical name, the one used in all output: ``postgresql``, ``mysql``, ``sqlite``."""
    sqlglot_dialect: str
    """sqlglot's name for parsing and rendering (``postgres`` for PostgreSQL)."""
    aliases: frozenset[str]
    """Other names ``safety.check`` accepts for this dialect (sqlglot's name included)."""
    url_schemes: frozenset[str]
    """Database URL schemes (the part before ``://``, driver suffix included) that select it."""
    denied_functions: frozenset[str]
    """Never on the default allowlist (lower-case; a trailing ``*`` makes a prefix): a test
    checks the allowlist against it, and optimizer hints are checked against it. Only an
    explicit ``allowed_functions`` entry admits one of these."""
    identifier_case: IdentifierCase
    catalog_schemas: frozenset[str]
    """System schemas: never user data, never whitelisted by reflection."""
    catalog_table_prefixes: tuple[str, ...]
    """Name prefixes of system tables and views (``pg_``, ``sqlite_``)."""
    text_guards: tuple[TextGuard, ...] = ()
    token_guards: tuple[TokenGuard, ...] = ()
    keyword_tables: frozenset[str] = frozenset()
    """Unquoted table names that are keywords, not tables (MySQL ``DUAL``): refused, since
    the re-rendered text would quote them and name a real table."""
    whole_row_references: bool = False
    """A bare table name or alias used as a value is the whole row (PostgreSQL)."""
    variables_as_parameters: bool = False
    """sqlglot parses ``@name`` as a ``Parameter`` that is a session variable (MySQL)."""
    bare_parameter_prefixes: str = ""
    """First characters of driver placeholders sqlglot reads as column names (SQLite ``$x``, ``@x``)."""
    explain_syntax: ExplainSyntax = ExplainSyntax.OPTIONS
    function_schemas: frozenset[str] = frozenset()
    """Schemas whose functions are the built-ins (PostgreSQL ``pg_catalog``): a call qualified
    by any other schema names a user-defined function and is refused."""
    allowed_user_types: frozenset[str] = frozenset()
    """Type names sqlglot does not know that casts may still name (harmless ones, lower-case)."""
    allowed_system_variables: frozenset[str] = frozenset()
    """``@@name`` system variables a query may read (MySQL: only harmless ones)."""
    uninterruptible_types: frozenset[str] = frozenset()
    """Types whose input function the server cannot interrupt (PostgreSQL ``xml``, parsed by
    libxml2): casts and column definitions to them are refused."""
    timeout_hints: frozenset[str] = frozenset()
    """Optimizer hints that set the statement's time limit in milliseconds (MySQL
    ``MAX_EXECUTION_TIME(n)``): allowed with a literal at or below the policy's timeout."""
    rowid_names: frozenset[str] = frozenset()
    """Pseudo-columns that may alias a real column (SQLite ``rowid``, MySQL ``_rowid``)."""
    string_identifiers: bool = False
    """A string literal where only a name can stand is that name (SQLite: ``'c'.ssn``,
    ``'c'.*``, ``UPDATE t SET 'ssn' = ...``); sqlglot keeps it a literal."""
    strings: StringSyntax = StringSyntax()
    """How the server reads string literals (checked before parsing, used to write them back)."""
    positional_placeholder: str = "?"
    keyword_arguments: frozenset[tuple[str, int]] = frozenset()
    """(function, argument index) of plain calls whose argument the server reads as a
    keyword, not a name (MySQL ``TIMESTAMPDIFF(DAY, a, b)``): elsewhere a bare name in a
    call's argument list is a column, and sqlglot must read it as one (``safety.arguments``)."""
    ctes_see_all_siblings: bool = False
    """Every CTE of a WITH list is visible in every other, earlier ones too (SQLite)."""
    """The positional placeholder style of the dialect: ``?`` (SQLite, MySQL) or ``$1`` (PostgreSQL)."""
    # identifier_key runs for every table reference: an enum member lookup there costs
    # more than the rest of the function, so the case rule is resolved once here.
    _quoted_exact: bool = field(init=False, repr=False)
    _exact: bool = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_quoted_exact", self.identifier_case is IdentifierCase.FOLD_UNQUOTED)
        object.__setattr__(self, "_exact", self.identifier_case is IdentifierCase.EXACT)

    def __repr__(self) -> str:
        return f"SafetyProfile({self.name!r})"

    # -- identifiers -----------------------------------------------------------------
    def identifier_key(self, identifier: exp.Identifier | str | None) -> str | None:
        """The name a table or schema identifier is compared by (None when absent)."""
        if identifier is None or identifier == "":
            return None
        if self._exact:
            return identifier if isinstance(identifier, str) else str(identifier.this)
        if isinstance(identifier, str):
            return identifier.lower()
        if identifier.quoted and self._quoted_exact:
            return str(identifier.this)
        return str(identifier.this).lower()

    def identifier_keys(self, identifier: exp.Identifier | None) -> set[str | None]:
        """Every key a whitelist entry's identifier stands for.

        An unquoted mixed-case entry where unquoted names fold (``Events`` on PostgreSQL) is
        ambiguous: folded it means ``events``, but names reflected at start-up arrive
        unquoted with their real case (the table ``"Events"``). Both readings count.
        """
        key = self.identifier_key(identifier)
        keys: set[str | None] = {key}
        if (self._quoted_exact and isinstance(identifier, exp.Identifier)
                and not identifier.quoted and str(identifier.this) != key):
            keys.add(str(identifier.this))
        return keys

    # -- catalogs --------------------------------------------------------------------
    def is_catalog(self, schema: str | None, name: str) -> bool:
        """True for a system schema or a system table/view of this dialect."""
        return (schema or "").lower() in self.catalog_schemas or name.lower().startswith(self.catalog_table_prefixes)

    # -- parser differentials --------------------------------------------------------
    def guard_text(self, sql: str) -> None:
        for guard in self.text_guards:
            guard(sql)

    def guard_tokens(self, tokens: list[Token]) -> None:
        for guard in self.token_guards:
            guard(tokens)
