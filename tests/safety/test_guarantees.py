"""Every safety guarantee the docs state has tests that name it (docs that cannot drift).

docs/safety-model.md (moved there from README, which keeps a short summary) lists numbered
guarantees with a bold title. Each title maps here
to test functions and corpus case ids that exercise it; this test fails when README grows
a guarantee without evidence, or when the evidence named here disappears.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

HERE = Path(__file__).parent
README = (HERE.parent.parent / "docs" / "safety-model.md").read_text()
CORPUS_IDS = {case["id"] for case in tomllib.loads((HERE / "corpus.toml").read_text())["case"]}

EVIDENCE: dict[str, list[str]] = {
    "Parsed or denied.": [
        "corpus:garbage", "corpus:start-transaction", "corpus:listen", "corpus:too-long",
        "test_resource_abuse.py:test_pathological_query_is_a_clean_denial",
        "test_resource_abuse.py:test_stdio_server_with_huge_recursion_limit_survives",
        "test_properties.py:test_random_text_only_raises_policy_violation",
    ],
    "One statement per call": [
        "corpus:commit-then-drop", "corpus:semicolon-after-block-comment", "corpus:dollar-quote-then-statement",
        "corpus:mysql-executable-comment", "corpus:string-with-semicolon", "corpus:dollar-quoted-semicolon",
        "corpus:pg-unicode-escape-string", "corpus:pg-escape-string-backslash",
    ],
    "Statement kinds by mode.": [
        "corpus:values-list", "corpus:table-shorthand", "corpus:pg-explain", "corpus:rw-merge",
        "corpus:rw-upsert-on-conflict", "corpus:drop-table-rw", "corpus:grant", "corpus:set-role",
        "corpus:copy-to-file", "corpus:pragma-write", "corpus:attach", "corpus:show-tables",
        "corpus:replace-into", "corpus:unbounded-delete-where-true", "corpus:unbounded-delete-in-cte",
        "corpus:bw-pg-merge-on-true", "corpus:bw-pg-insert-select-on-conflict", "corpus:bw-mysql-odku-select",
        "corpus:bw-sqlite-insert-or-replace-select",
    ],
    "No hidden writes.": [
        "corpus:ro-data-modifying-cte-delete", "corpus:ro-select-into", "corpus:ro-into-outfile",
        "corpus:ro-for-update", "corpus:explain-analyze-delete", "corpus:pg-read-file-qualified",
        "corpus:pg-read-file-as-table", "corpus:pg-query-to-xml", "corpus:mysql-benchmark",
        "corpus:mysql-set-var-hint", "corpus:sqlite-load-extension",
        # the function allowlist and its side channels (issue 11)
        "test_functions.py:test_dangerous_functions_are_not_allowed_by_default",
        "test_functions.py:test_unlisted_spellings_of_listed_classes_are_refused",
        "test_functions_e2e.py:test_side_channel_functions_are_refused_and_leak_nothing",
        "test_functions_servers.py:test_every_allowlisted_function_runs_on_the_server",
        "corpus:fn-pg-setseed", "corpus:cast-pg-regclass", "corpus:fn-pg-relation-size",
        "corpus:fn-mysql-datadir", "corpus:fn-sqlite-stmt-tvf", "corpus:fn-mysql-locate-denied",
    ],
    "Whitelisted tables only.": [
        "corpus:forbidden-in-lateral", "corpus:forbidden-update-from", "corpus:forbidden-delete-using",
        "corpus:forbidden-merge-using", "corpus:cte-shadowing-whitelisted-name", "corpus:pg-quoted-case-differs",
        "corpus:other-schema", "corpus:sqlite-master", "corpus:catalog-explicitly-whitelisted",
        "test_properties.py:test_allowed_exactly_when_no_forbidden_table",
    ],
    "Denied columns stay unread.": [
        "corpus:denied-column-star", "corpus:denied-column-table-star", "corpus:denied-column-in-where",
        "corpus:denied-column-whole-row", "corpus:denied-column-returning-star",
        "test_properties.py:test_denied_column_read_exactly_when_referenced",
        "corpus:col-alias-list-denied", "corpus:col-paren-join", "corpus:col-attribute-notation",
        "corpus:col-exists-star", "corpus:col-on-conflict-probe",
        "test_columns.py:test_alias_lists_resolve_by_position", "test_columns.py:test_parenthesised_joins",
        "test_columns.py:test_whole_row_references", "test_columns.py:test_redaction_removes_quoted_values",
    ],
    "What is sent is what was checked.": [
        "test_corpus.py:test_case", "corpus:pg-percent-placeholder", "corpus:positional-question-mark",
    ],
    "The database enforces it too.": [
        "test_defense_in_depth.py:test_read_only_database_refuses_forged_write_verdict",
        "test_defense_in_depth.py:test_write_disguised_as_read_is_refused_on_the_fast_path",
        "test_defense_in_depth.py:test_forged_ddl_verdict_is_refused",
        "../test_grants.py:test_the_printed_role_makes_the_database_refuse_what_the_policy_denies",
        "../test_grants.py:test_a_broad_role_is_reported",
    ],
    "Data is not instructions.": [
        "test_untrusted_data.py:test_rows_are_wrapped_between_random_markers",
        "test_untrusted_data.py:test_boundary_can_be_turned_off",
    ],
}


def readme_guarantees() -> list[str]:
    section = README.split("# Safety model", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^\d+\. \*\*(.+?)\*\*", section, re.MULTILINE)


def test_every_readme_guarantee_has_evidence() -> None:
    titles = readme_guarantees()
    assert len(titles) >= 9
    missing = [t for t in titles if t not in EVIDENCE]
    assert not missing, f"README safety guarantees without tests: {missing}"
    stale = [t for t in EVIDENCE if t not in titles]
    assert not stale, f"evidence for guarantees README no longer states: {stale}"


def test_named_evidence_exists() -> None:
    for title, items in EVIDENCE.items():
        for item in items:
            kind, _, name = item.partition(":")
            if kind == "corpus":
                assert name in CORPUS_IDS, f"{title}: corpus case {name!r} is gone"
            else:
                source = (HERE / kind).read_text()
                assert f"def {name}(" in source, f"{title}: {kind}::{name} is gone"
