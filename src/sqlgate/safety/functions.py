"""Functions that are never allowed through sqlgate, per dialect.

A function is denied when it has side effects, touches files, the network or other
processes, changes session state, or can stall the server. The lists are built from each
database's documentation; a policy can add names (``denied_functions``) or lift a
built-in denial (``allowed_functions``).
"""

from __future__ import annotations

from sqlglot import exp

from sqlgate.errors import PolicyViolation

_POSTGRES = frozenset(
    {
        # files and programs
        "pg_read_file", "pg_read_binary_file", "pg_ls_dir", "pg_stat_file", "pg_ls_logdir",
        "pg_ls_waldir", "pg_ls_tmpdir", "pg_ls_archive_statusdir", "pg_file_write",
        "pg_file_rename", "pg_file_unlink", "pg_logdir_ls",
        # large objects
        "lo_import", "lo_export", "lo_create", "lo_creat", "lo_unlink", "lo_open", "lo_write",
        "lo_put", "lo_from_bytea", "lo_truncate", "lowrite", "loread",
        # other servers
        "dblink", "dblink_exec", "dblink_connect", "dblink_connect_u", "dblink_send_query",
        "dblink_open", "dblink_fetch",
        # session and server state
        "set_config", "pg_reload_conf", "pg_rotate_logfile", "pg_switch_wal",
        "pg_create_restore_point", "pg_promote", "pg_import_system_collations",
        "pg_stat_reset", "pg_stat_reset_shared", "pg_stat_reset_single_table_counters",
        "pg_replication_origin_create", "pg_create_logical_replication_slot",
        "pg_create_physical_replication_slot", "pg_drop_replication_slot",
        "pg_logical_emit_message", "pg_notify", "pg_current_xact_id", "txid_current",
        # backends
        "pg_cancel_backend", "pg_terminate_backend", "pg_signal_backend",
        # locks
        "pg_advisory_lock", "pg_advisory_lock_shared", "pg_advisory_xact_lock",
        "pg_advisory_xact_lock_shared", "pg_try_advisory_lock", "pg_try_advisory_lock_shared",
        "pg_try_advisory_xact_lock", "pg_try_advisory_xact_lock_shared", "pg_advisory_unlock",
        "pg_advisory_unlock_all", "pg_advisory_unlock_shared",
        # stalls
        "pg_sleep", "pg_sleep_for", "pg_sleep_until",
        # sequences
        "nextval", "setval",
        # snapshots and dumps that export data through side channels
        "pg_export_snapshot", "query_to_xml", "query_to_xml_and_xmlschema", "table_to_xml",
        "database_to_xml", "schema_to_xml", "cursor_to_xml",
    }
)

_MYSQL = frozenset(
    {
        "load_file", "sleep", "benchmark", "get_lock", "release_lock", "release_all_locks",
        "is_free_lock", "is_used_lock", "master_pos_wait", "source_pos_wait",
        "wait_for_executed_gtid_set", "wait_until_sql_thread_after_gtids", "sys_exec",
        "sys_eval", "uuid_short", "last_insert_id", "setval", "nextval", "lastval",
        "name_const",
    }
)

_SQLITE = frozenset(
    {"load_extension", "writefile", "readfile", "edit", "fts3_tokenizer", "sqlite_compileoption_get"}
)

BUILT_IN_DENIED: dict[str, frozenset[str]] = {
    "postgres": _POSTGRES,
    "mysql": _MYSQL,
    "sqlite": _SQLITE,
}

# sqlglot parses some of these into typed nodes rather than Anonymous calls.
_TYPED_NAMES: dict[type[exp.Expr], str] = {}
if hasattr(exp, "Sleep"):
    _TYPED_NAMES[exp.Sleep] = "sleep"


def function_name(node: exp.Func) -> str:
    if isinstance(node, exp.Anonymous):
        return str(node.name).lower()
    typed = _TYPED_NAMES.get(type(node))
    if typed:
        return typed
    return node.sql_name().lower()


def check_functions(
    statement: exp.Expr,
    dialect: str,
    allowed: tuple[str, ...],
    denied: tuple[str, ...],
) -> None:
    deny = (BUILT_IN_DENIED.get(dialect, frozenset()) | {d.lower() for d in denied}) - {
        a.lower() for a in allowed
    }
    for node in statement.find_all(exp.Func):
        name = function_name(node)
        if name in deny:
            raise PolicyViolation(
                f"function {name}() is not allowed",
                "it has side effects or reaches outside the database; rewrite the query without it",
                code="FUNCTION_NOT_ALLOWED",
            )
