"""The reflected structure of a table, as sqlgate keeps it (filled by ``db/schema.py``)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field


@dataclass(frozen=True)
class ColumnInfo:
    name: str
    type: str
    nullable: bool
    default: str | None
    autoincrement: bool
    comment: str | None = None


@dataclass(frozen=True)
class IndexInfo:
    name: str | None
    columns: tuple[str, ...]
    unique: bool


@dataclass(frozen=True)
class ForeignKeyInfo:
    columns: tuple[str, ...]
    referred_table: str
    referred_columns: tuple[str, ...]
    referred_schema: str | None = None


@dataclass(frozen=True)
class TableInfo:
    name: str
    schema: str | None
    columns: tuple[ColumnInfo, ...]
    primary_key: tuple[str, ...]
    unique_constraints: tuple[tuple[str, ...], ...]
    indexes: tuple[IndexInfo, ...]
    foreign_keys: tuple[ForeignKeyInfo, ...]
    comment: str | None = None
    is_view: bool = False

    def column(self, name: str) -> ColumnInfo | None:
        lowered = name.lower()
        for column in self.columns:
            if column.name == name or column.name.lower() == lowered:
                return column
        return None

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]


@dataclass
class SchemaCache:
    tables: dict[str, TableInfo] = field(default_factory=dict)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
