"""MySQL and MariaDB (TiDB through the MySQL protocol): functions, identifiers, catalogs, guards.

Function denials come from the MySQL/MariaDB "Locking", "Miscellaneous" and
"Information" function references.
"""

from __future__ import annotations

import re

from sqlgate.safety.literals import StringSyntax
from sqlgate.safety.profiles.base import ExplainSyntax, IdentifierCase, SafetyProfile, TextGuard

DENIED_FUNCTIONS = frozenset(
    {
        # files
        "load_file",
        # stalls
        "sleep", "benchmark",
        # named locks and replication waits (stall, hold server-wide state)
        "get_lock", "release_lock", "release_all_locks", "is_free_lock", "is_used_lock",
        "master_pos_wait", "source_pos_wait", "master_gtid_wait",
        "wait_for_executed_gtid_set", "wait_until_sql_thread_after_gtids",
        # UDFs commonly installed for command execution (lib_mysqludf_sys)
        "sys_exec", "sys_eval", "sys_get", "sys_set",
        # session state: LAST_INSERT_ID(expr) sets it; MariaDB sequences advance
        "last_insert_id", "setval", "nextval", "lastval",
        # optimizer hints that change session variables or lift the statement time limit
        "set_var", "max_execution_time",
    }
)

# The server executes the text inside /*! ... */ and /*M! ... */ (optionally versioned);
# sqlglot reads it as a comment and drops it.
_EXECUTABLE_COMMENT = TextGuard(
    re.compile(r"/\*M?!"),
    "the query contains a MySQL executable comment (/*! ... */), which the server runs as SQL",
    "remove the /*! ... */ comment; write the SQL plainly",
)
_FILE_OUTPUT = TextGuard(
    re.compile(r"\bINTO\s+(OUTFILE|DUMPFILE)\b", re.IGNORECASE),
    "SELECT ... INTO OUTFILE/DUMPFILE writes a file on the database server",
    "select the rows without INTO; sqlgate returns them to you",
)

PROFILE = SafetyProfile(
    name="mysql",
    sqlglot_dialect="mysql",
    aliases=frozenset({"mariadb"}),
    url_schemes=frozenset({"mysql", "mariadb", "mysql+aiomysql", "mariadb+aiomysql"}),
    denied_functions=DENIED_FUNCTIONS,
    # lower_case_table_names varies by platform: names compare lower-cased unless the
    # runtime read 0 at connect (Policy.exact_table_names: profiles.for_policy).
    identifier_case=IdentifierCase.INSENSITIVE,
    catalog_schemas=frozenset({"information_schema", "mysql", "performance_schema", "sys"}),
    # MySQL has no system-table prefix of its own; its catalogs live in catalog_schemas.
    catalog_table_prefixes=(),
    text_guards=(_EXECUTABLE_COMMENT, _FILE_OUTPUT),
    keyword_tables=frozenset({"dual"}),
    variables_as_parameters=True,
    explain_syntax=ExplainSyntax.OPTIONS,
    # Sessions run without NO_BACKSLASH_ESCAPES (db.dialects.mysql pins it); "..." is a string.
    strings=StringSyntax(backslash_escapes=True, double_quoted_strings=True),
    rowid_names=frozenset({"_rowid"}),
    # Harmless to read; every other @@variable can reveal paths, hosts or settings.
    allowed_system_variables=frozenset({"version", "version_comment", "time_zone", "system_time_zone"}),
    timeout_hints=frozenset({"max_execution_time"}),
    # TIMESTAMPDIFF(DAY, a, b), TIMESTAMPADD(HOUR, n, d): the unit is a keyword in MySQL's grammar.
    keyword_arguments=frozenset({("timestampdiff", 0), ("timestampadd", 0)}),
)
