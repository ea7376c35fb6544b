"""Functions that are never allowed through sqlgate, per dialect.

A function is denied when it has side effects, touches files, the network or other
processes, changes session or server state, runs SQL given as text (which would bypass
the table whitelist), reads other sessions' activity, or can stall the server. The lists
come from each database's function reference (PostgreSQL "System Administration
Functions", "Large Objects", dblink/adminpack/pg_prewarm docs; MySQL/MariaDB "Locking",
"Miscellaneous" and "Information" functions; SQLite core functions and the fileio, zipfile
and pragma table-valued functions). Names ending in ``*`` are prefixes.

A policy can add names (``denied_functions``) or lift a built-in denial
(``allowed_functions``; an exact name, which also lifts a matching prefix entry).
Names are compared lower-cased whatever the quoting, and whatever schema qualifies the
call (``pg_catalog.pg_sleep(1)`` is ``pg_sleep``). User-defined functions are not
denied here: on a read_only database the database refuses their writes (read-only
transactions), and the least-privilege role in the README limits what they can reach.
"""

from __future__ import annotations

from functools import lru_cache

from sqlglot import exp

from sqlgate.errors import PolicyViolation

_POSTGRES = frozenset(
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

_MYSQL = frozenset(
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

_SQLITE = frozenset(
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

BUILT_IN_DENIED: dict[str, frozenset[str]] = {
    "postgres": _POSTGRES,
    "mysql": _MYSQL,
    "sqlite": _SQLITE,
}

# sqlglot parses some of these into typed nodes rather than Anonymous calls.
_TYPED_NAMES: dict[type[exp.Expr], str] = {}
for _cls_name, _fn in (("Sleep", "sleep"), ("LastInsertId", "last_insert_id")):
    if hasattr(exp, _cls_name):
        _TYPED_NAMES[getattr(exp, _cls_name)] = _fn


def function_name(node: exp.Func) -> str:
    if isinstance(node, exp.Anonymous):
        return str(node.name).lower()
    typed = _TYPED_NAMES.get(type(node))
    if typed:
        return typed
    return node.sql_name().lower()


def _split(names: frozenset[str] | set[str]) -> tuple[frozenset[str], tuple[str, ...]]:
    exact = frozenset(n for n in names if not n.endswith("*"))
    prefixes = tuple(n[:-1] for n in names if n.endswith("*"))
    return exact, prefixes


@lru_cache(maxsize=256)
def _deny_rules(dialect: str, allowed: tuple[str, ...], denied: tuple[str, ...]) -> tuple[
    frozenset[str], tuple[str, ...], frozenset[str]
]:
    """(exact names, prefixes, lifted names) for one dialect and policy."""
    names = set(BUILT_IN_DENIED.get(dialect, frozenset())) | {d.lower().strip() for d in denied}
    lifted = frozenset(a.lower().strip() for a in allowed)
    exact, prefixes = _split(names - lifted)
    return exact, prefixes, lifted


def is_denied(name: str, dialect: str, allowed: tuple[str, ...] = (), denied: tuple[str, ...] = ()) -> bool:
    exact, prefixes, lifted = _deny_rules(dialect, allowed, denied)
    if name in lifted:
        return False
    return name in exact or name.startswith(prefixes)


def check_functions(
    statement: exp.Expr,
    dialect: str,
    allowed: tuple[str, ...],
    denied: tuple[str, ...],
) -> None:
    exact, prefixes, lifted = _deny_rules(dialect, allowed, denied)
    for node in statement.find_all(exp.Func):
        name = function_name(node)
        if name in lifted:
            continue
        if name in exact or (prefixes and name.startswith(prefixes)):
            raise PolicyViolation(
                f"function {name}() is not allowed",
                "it has side effects, reaches outside the database or can stall it; rewrite "
                "the query without it (an operator can lift this with allowed_functions)",
                code="FUNCTION_NOT_ALLOWED",
            )
