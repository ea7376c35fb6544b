"""PostgreSQL: functions, identifier rules, catalogs and parser-differential guards.

Function denials come from PostgreSQL's "System Administration Functions", "Large
Objects" and the dblink/adminpack/pg_prewarm/tablefunc docs.
"""

from __future__ import annotations

import re

from sqlglot.tokenizer_core import Token, TokenType

from sqlgate.errors import PolicyViolation
from sqlgate.safety.literals import StringSyntax
from sqlgate.safety.profiles.base import ExplainSyntax, IdentifierCase, SafetyProfile, TextGuard

DENIED_FUNCTIONS = frozenset(
    {
        # files and programs (core and adminpack)
        "pg_read_file", "pg_read_binary_file", "pg_stat_file", "pg_ls_*", "pg_file_*",
        "pg_logdir_ls", "pg_current_logfile",
        # large objects: server-side file import/export and data outside any table
        "lo_*", "lowrite", "loread",
        # other servers
        "dblink*",
        # SQL passed as text runs unchecked (bypasses the whitelist)
        "query_to_xml", "query_to_xmlschema", "query_to_xml_and_xmlschema",
        "table_to_xml", "table_to_xmlschema", "table_to_xml_and_xmlschema",
        "schema_to_xml", "schema_to_xmlschema", "schema_to_xml_and_xmlschema",
        "database_to_xml", "database_to_xmlschema", "database_to_xml_and_xmlschema",
        "cursor_to_xml", "cursor_to_xmlschema", "ts_stat", "ts_rewrite",
        # tablefunc: crosstab runs SQL text, connectby reads a table named in a string
        "crosstab*", "connectby",
        # session and server state
        "set_config", "pg_reload_conf", "pg_rotate_logfile", "pg_switch_wal", "pg_switch_xlog",
        "pg_create_restore_point", "pg_promote", "pg_import_system_collations",
        "pg_stat_reset*", "pg_stat_statements_reset", "pg_backup_start", "pg_backup_stop",
        "pg_start_backup", "pg_stop_backup", "pg_wal_replay_pause", "pg_wal_replay_resume",
        "pg_log_backend_memory_contexts", "pg_prewarm", "pg_truncate_visibility_map",
        "gin_clean_pending_list", "brin_summarize_new_values", "brin_summarize_range",
        "brin_desummarize_range", "pg_buffercache_evict*",
        # replication: slots, origins and logical decoding (reads every table's changes)
        "pg_replication_*", "pg_create_logical_replication_slot",
        "pg_create_physical_replication_slot", "pg_copy_logical_replication_slot",
        "pg_copy_physical_replication_slot", "pg_drop_replication_slot", "pg_logical_*",
        "pg_export_snapshot",
        # transaction ids are assigned (a write) by these
        "pg_current_xact_id", "txid_current",
        # other sessions: signals, and their query text
        "pg_cancel_backend", "pg_terminate_backend", "pg_signal_backend", "pg_stat_get_activity",
        # notifications and advisory locks
        "pg_notify", "pg_advisory_*", "pg_try_advisory_*",
        # stalls
        "pg_sleep", "pg_sleep_for", "pg_sleep_until",
        # sequences advance (a write that no transaction rolls back)
        "nextval", "setval",
    }
)

# U&'...' / U&"..." with UESCAPE, and E'...' strings with backslash escapes: decoding
# rules sqlglot does not mirror exactly.
_UNICODE_ESCAPE = TextGuard(
    re.compile(r"(?<![\w$])U&['\"]", re.IGNORECASE),
    "U&'...' unicode-escape strings and identifiers are not accepted",
    "write the characters directly, or pass the text as a bound parameter",
    code="PARSE_ERROR",
)


def guard_backslashes(tokens: list[Token]) -> None:
    """Deny dollar-quoted strings that contain a backslash.

    Plain and ``E'...'`` literals are read by the server's rules before parsing
    (``safety.literals``: sessions pin ``standard_conforming_strings=on``) and sent in a
    form that means the same with the setting on or off (a value with a backslash as an
    ``E'...'`` string). Dollar-quoted text with a backslash stays refused: write it as a
    ``'...'`` string.
    """
    for token in tokens:
        if token.token_type is TokenType.HEREDOC_STRING and "\\" in token.text:
            raise PolicyViolation(
                "dollar-quoted strings containing a backslash are not accepted",
                "write the text as a '...' string (a backslash there is an ordinary character) "
                "or pass it as a bound parameter",
                code="PARSE_ERROR",
            )


PROFILE = SafetyProfile(
    name="postgresql",
    sqlglot_dialect="postgres",
    aliases=frozenset({"postgres"}),
    url_schemes=frozenset({"postgresql", "postgres", "postgresql+asyncpg"}),
    denied_functions=DENIED_FUNCTIONS,
    # Unquoted names fold to lower case, quoted ones are exact.
    identifier_case=IdentifierCase.FOLD_UNQUOTED,
    catalog_schemas=frozenset({"pg_catalog", "information_schema", "pg_toast"}),
    catalog_table_prefixes=("pg_",),
    text_guards=(_UNICODE_ESCAPE,),
    token_guards=(guard_backslashes,),
    # standard_conforming_strings=on (db.dialects.postgres pins it); E'...' decodes escapes.
    strings=StringSyntax(escape_strings=True),
    positional_placeholder="$1",
    # ``row_to_json(c)``, ``c`` in a select list: the whole row of table/alias c.
    whole_row_references=True,
    explain_syntax=ExplainSyntax.OPTIONS,
    function_schemas=frozenset({"pg_catalog"}),
    # Built-in (and common extension) types sqlglot does not know; regconfig names a
    # text-search configuration (to_tsvector('english'::regconfig, ...)), not a table.
    allowed_user_types=frozenset({
        "regconfig", "tsvector", "tsquery", "jsonpath", "cidr", "macaddr", "macaddr8", "varbit",
        "line", "lseg", "box", "path", "polygon", "circle", "citext", "ltree",
    }),
    uninterruptible_types=frozenset({"xml"}),
    # normalize(text, NFC): the form is a keyword in PostgreSQL's grammar.
    keyword_arguments=frozenset({("normalize", 1)}),
)
