"""SQLite: functions, identifiers, catalogs and placeholder quirks.

Function denials come from SQLite's core functions and the fileio, zipfile, dbstat and
pragma table-valued functions.
"""

from __future__ import annotations

from sqlgate.safety.profiles.base import ExplainSyntax, IdentifierCase, SafetyProfile

DENIED_FUNCTIONS = frozenset(
    {
        # native code
        "load_extension",
        # fileio / zipfile / sqlar extensions: the file system
        "readfile", "writefile", "edit", "fsdir", "zipfile", "lsmode",
        # a pointer-returning function with a history of memory-safety exploits
        "fts3_tokenizer",
        # PRAGMA table-valued functions (pragma_table_info(...), ...): schema of any
        # table, whitelisted or not; describe_schema is the way to see tables.
        "pragma_*",
        # raw database pages
        "sqlite_dbpage", "sqlite_dbdata", "sqlite_dbptr",
    }
)

PROFILE = SafetyProfile(
    name="sqlite",
    sqlglot_dialect="sqlite",
    aliases=frozenset(),
    url_schemes=frozenset({"sqlite", "sqlite+aiosqlite"}),
    denied_functions=DENIED_FUNCTIONS,
    identifier_case=IdentifierCase.INSENSITIVE,
    # SQLite has no system schemas; its catalog tables share the sqlite_ prefix.
    catalog_schemas=frozenset(),
    # sqlite_master / sqlite_schema / sqlite_temp_master / sqlite_sequence / sqlite_stat1 ...
    catalog_table_prefixes=("sqlite_",),
    # $name and @name are driver placeholders in SQLite, but sqlglot reads them as columns.
    bare_parameter_prefixes="$@",
    explain_syntax=ExplainSyntax.QUERY_PLAN,
    # WITH a AS (SELECT * FROM b), b AS (...): SQLite resolves b to the later CTE.
    ctes_see_all_siblings=True,
    rowid_names=frozenset({"rowid", "oid", "_rowid_"}),
    # SQLite's grammar takes a string as a name after a dot and as a SET target.
    string_identifiers=True,
)
