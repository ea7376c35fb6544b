"""Values in database error texts, redacted where a denied column's value could show.

A database quotes row values in its error messages: MariaDB/MySQL ``Duplicate entry
'Bob-123-45-6789' for key 'name_ssn'``, PostgreSQL ``Key (name, ssn)=(Bob, 123-45-6789)
already exists`` and ``Failing row contains (1, null, 123-45-6789)`` (the whole row,
denied columns included, on a NOT NULL or CHECK failure). For a database whose policy
denies columns, every such value is replaced by ``…`` before the error reaches the
agent; the names of keys, columns, constraints and tables stay.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from sqlgate.errors import SqlgateError

MASK = "…"

# What sqlgate appends to a database message: `` (SQLSTATE 23505)``, `` (error 1062)``.
_CODE = re.compile(r"\.?\s*\((?:SQLSTATE [0-9A-Z]+|error \d+|SQLITE_[A-Z_]+)\)\s*$")
# PostgreSQL DETAIL: ``Key (cols)=(values) already exists`` and ``Failing row contains (...)``.
_PG_KEY = re.compile(r"Key \((?:[^()]|\([^()]*\))*\)=")
_PG_KEY_END = re.compile(r"\)(?:\s+(?:already exists|is not present in table|is still referenced from table"
                         r"|conflicts with existing key))")
_PG_ROW = re.compile(r"Failing row contains ")
# ``invalid input syntax for type integer: "abc"``, ``... value for enum mood: "x"``.
_PG_INPUT = re.compile(r'(: )".*"')
# MySQL/MariaDB ``Duplicate entry '<values>' for key '<name>'``: up to the last `` for key``
# (a value may itself hold a quote).
_MY_ENTRY = re.compile(r"(Duplicate entry )'.*'(?= for key )")
# Other single-quoted values, except the quoted name after ``key``, ``column``, ``table``,
# ``constraint`` or ``index`` (identifiers, not values).
_QUOTED = re.compile(r"(?<!key )(?<!column )(?<!table )(?<!constraint )(?<!index )'(?:[^'\\]|\\.|'')*'",
                     re.IGNORECASE)


def _mask_tail(line: str, start: int, end: re.Pattern[str] | None = None) -> str:
    """``line`` with everything from ``start`` masked, up to the last ``end`` match (or
    the appended error code, or the end of the line)."""
    rest = line[start:]
    keep = ""
    if end is not None:
        ends = list(end.finditer(rest))
        if ends:
            keep = rest[ends[-1].start():]
    if not keep:
        code = _CODE.search(rest)
        keep = code.group(0) if code else ""
    return f"{line[:start]}({MASK}" + (keep if keep.startswith(")") else ")" + keep)


# A PostgreSQL DETAIL line is kept in one of the shapes below, its values masked; any
# other DETAIL text is masked whole (admit the known shapes; never guess where values are).
_PG_DETAIL = re.compile(r"^(\s*DETAIL:\s*)(.*?)(\s*\(SQLSTATE [0-9A-Z]+\))?\s*$")
_COLS = r"(?:[^()]|\([^()]*\))*"
_PG_DETAIL_SHAPES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(rf"Key \(({_COLS})\)=\(.*\) (already exists|is not present in table \"[^\"]*\""
                rf"|is still referenced from table \"[^\"]*\")\.?"), "Key ({0})=({mask}) {1}."),
    (re.compile(rf"Key \(({_COLS})\)=\(.*?\) conflicts with existing key \(({_COLS})\)=\(.*\)\.?"),
     "Key ({0})=({mask}) conflicts with existing key ({1})=({mask})."),
    (re.compile(r"Failing row contains \(.*\)\.?"), "Failing row contains ({mask})."),
    (re.compile(rf"Partition key of the failing row contains \(({_COLS})\) = \(.*\)\.?"),
     "Partition key of the failing row contains ({0}) = ({mask})."),
)


def _redact_detail(line: str) -> str | None:
    """A PostgreSQL ``DETAIL:`` line with its values masked (None: not a DETAIL line)."""
    found = _PG_DETAIL.match(line)
    if found is None:
        return None
    prefix, body, code = found.group(1), found.group(2), found.group(3) or ""
    for shape, template in _PG_DETAIL_SHAPES:
        match = shape.fullmatch(body)
        if match is not None:
            return prefix + template.format(*match.groups(), mask=MASK) + code
    return prefix + MASK + code


def _redact_line(line: str) -> str:
    detail = _redact_detail(line)
    if detail is not None:
        return detail
    key = _PG_KEY.search(line)
    if key is not None:
        return _mask_tail(line, key.end(), _PG_KEY_END)
    row = _PG_ROW.search(line)
    if row is not None:
        return _mask_tail(line, row.end())
    line = _MY_ENTRY.sub(lambda m: f"{m.group(1)}'{MASK}'", line)
    code = _CODE.search(line)
    body, tail = (line[:code.start()], line[code.start():]) if code else (line, "")
    body = _PG_INPUT.sub(lambda m: f'{m.group(1)}"{MASK}"', body) if body.rstrip().endswith('"') else body
    return _QUOTED.sub(f"'{MASK}'", body) + tail


def redact_text(text: str) -> str:
    """``text`` with every quoted row value replaced by ``…``."""
    return "\n".join(_redact_line(line) for line in text.split("\n"))


def redact_error(error: SqlgateError) -> SqlgateError:
    """Redact ``error``'s message in place (and return it)."""
    redacted = redact_text(error.message)
    if redacted != error.message:
        error.message = redacted
        error.args = (redacted, *error.args[1:])
    return error


# Table names a database writes in its errors: PostgreSQL ``table "h"`` (a foreign key's
# ``is not present in table "h"``, ``is still referenced from table "h"``, ``on table``) and
# MySQL/MariaDB foreign key texts ``(`db`.`child`, CONSTRAINT `fk` FOREIGN KEY (`c`)
# REFERENCES `parent` (`id`))``.
_PG_TABLE = re.compile(r'(\btable )"((?:[^"]|"")+)"')
_MY_FK_CHILD = re.compile(r"\(`((?:[^`]|``)+)`\.`((?:[^`]|``)+)`(?=, CONSTRAINT )")
_MY_REFERENCES = re.compile(r"(REFERENCES )`((?:[^`]|``)+)`")
# A constraint's name is often made of its table's and column's (``kid_parent_id_fkey``,
# ``kid_ibfk_1``); the columns of MySQL's ``FOREIGN KEY (`c`)`` are the child table's.
_CONSTRAINT_NAME = re.compile(r'(\bconstraint )(?:"(?:[^"]|"")+"|`(?:[^`]|``)+`)', re.IGNORECASE)
_MY_FK_COLUMNS = re.compile(r"(FOREIGN KEY )\((?:[^()`]|`(?:[^`]|``)*`)*\)")
HIDDEN_TABLE = "(a table outside the whitelist)"


def redact_tables(error: SqlgateError, visible: Callable[[str | None, str], bool]) -> SqlgateError:
    """Replace, in place, the names of tables the agent may not see (``visible(schema, name)``
    is False, names as the database wrote them) that ``error``'s message names: a foreign
    key's error names the table on its other side, which need not be whitelisted."""

    def pg(match: re.Match[str]) -> str:
        name = match.group(2).replace('""', '"')
        return match.group(0) if visible(None, name) else match.group(1) + HIDDEN_TABLE

    def my_child(match: re.Match[str]) -> str:
        schema, name = (g.replace("``", "`") for g in match.groups())
        return match.group(0) if visible(schema, name) else "(" + HIDDEN_TABLE

    def my_parent(match: re.Match[str]) -> str:
        name = match.group(2).replace("``", "`")
        return match.group(0) if visible(None, name) else match.group(1) + HIDDEN_TABLE

    text = _MY_REFERENCES.sub(my_parent, _MY_FK_CHILD.sub(my_child, _PG_TABLE.sub(pg, error.message)))
    if text != error.message:  # a hidden table is involved: its constraint's names go too
        text = _CONSTRAINT_NAME.sub(lambda m: m.group(1) + MASK, text)
        text = _MY_FK_COLUMNS.sub(lambda m: f"{m.group(1)}({MASK})", text)
        error.message = text
        error.args = (text, *error.args[1:])
    return error


__all__ = ["HIDDEN_TABLE", "MASK", "redact_error", "redact_tables", "redact_text"]
