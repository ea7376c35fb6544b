"""All configuration, built once at start-up: CLI flags > environment > TOML file > defaults.

This is the only module that reads the environment. Every setting has an environment
variable ``SQLGATE_<NAME>`` and a CLI flag ``--<name>``; ``DATABASE_URL`` works too. The
top-level policy settings (``mode``, ``allowed_tables``, ...) apply to every database that
does not override them in its own ``[databases.NAME]`` table.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from sqlgate.errors import ConfigError
from sqlgate.safety import profiles
from sqlgate.safety.policy import Mode, Policy

Transport = Literal["stdio", "sse", "streamable-http"]
PoolKind = Literal["queue", "none"]
PreparedStatements = Literal["auto", "on", "off"]
POLICY_FIELDS = (
    "mode",
    "allowed_tables",
    "denied_columns",
    "allowed_functions",
    "denied_functions",
    "max_rows",
    "statement_timeout_ms",
    "allow_multi_statement",
    "allow_unbounded_writes",
    "max_query_length",
)
CONNECT_FIELDS = ("pool", "connect_timeout_s", "connect_retries", "prepared_statements")  # per database
DEFAULT_DATABASE_NAME = "main"
DEMO_DATABASE_NAME = "demo"


def _split_csv(value: object) -> object:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


def default_data_dir() -> Path:
    import platformdirs

    return Path(platformdirs.user_data_dir("sqlgate", appauthor=False))


class DatabaseConfig(BaseModel):
    """One named database. Unset policy fields inherit the top-level settings."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str
    mode: Mode | None = None
    allowed_tables: list[str] | None = None
    denied_columns: list[str] | None = None
    allowed_functions: list[str] | None = None
    denied_functions: list[str] | None = None
    max_rows: int | None = Field(default=None, ge=1)
    statement_timeout_ms: int | None = Field(default=None, ge=1)
    allow_multi_statement: bool | None = None
    allow_unbounded_writes: bool | None = None
    max_query_length: int | None = Field(default=None, ge=1)
    pool_size: int | None = Field(default=None, ge=1)
    max_overflow: int | None = Field(default=None, ge=0)
    pool: PoolKind | None = None
    connect_timeout_s: float | None = Field(default=None, gt=0)
    connect_retries: int | None = Field(default=None, ge=0, le=20)
    prepared_statements: PreparedStatements | None = None

    @field_validator(
        "allowed_tables", "denied_columns", "allowed_functions", "denied_functions", mode="before"
    )
    @classmethod
    def _lists(cls, value: object) -> object:
        return _split_csv(value)


class ResolvedDatabase(BaseModel):
    """A database with its effective policy and pool sizes."""

    model_config = ConfigDict(frozen=True)

    name: str
    url: str
    policy: Policy
    pool_size: int
    max_overflow: int
    demo: bool = False
    pool: PoolKind = "queue"
    connect_timeout_s: float = 10.0
    connect_retries: int = 2
    prepared_statements: PreparedStatements = "auto"


class Settings(BaseSettings):
    """sqlgate's configuration. See README "Configuration" for every field."""

    model_config = SettingsConfigDict(
        env_prefix="SQLGATE_",
        extra="forbid",
        frozen=True,
        populate_by_name=True,
        case_sensitive=False,
    )

    # Databases
    database_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("database_url", "SQLGATE_DATABASE_URL", "DATABASE_URL"),
        description="URL of the database to serve (plain postgresql://, mysql://, sqlite:/// work)",
    )
    databases: Annotated[dict[str, DatabaseConfig], NoDecode] = Field(
        default_factory=dict,
        description="Named databases: NAME=URL pairs (comma-separated) or [databases.NAME] tables",
    )
    # Policy defaults (apply to every database unless overridden)
    mode: Mode = Field(default=Mode.READ_ONLY, description="read_only or read_write")
    allowed_tables: Annotated[list[str] | None, NoDecode] = Field(
        default=None, description="Table whitelist (default: user tables reflected at start-up)"
    )
    denied_columns: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Columns no query may read, as table.column"
    )
    allowed_functions: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Functions to allow despite the built-in deny list"
    )
    denied_functions: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Functions to deny on top of the built-in deny list"
    )
    max_rows: int = Field(default=1000, ge=1, le=1_000_000, description="Row cap per result")
    statement_timeout_ms: int = Field(
        default=30_000, ge=1, description="Statement timeout enforced inside the database"
    )
    allow_multi_statement: bool = Field(default=False, description="Allow several statements per call")
    allow_unbounded_writes: bool = Field(default=False, description="Allow UPDATE/DELETE without WHERE")
    max_query_length: int = Field(default=20_000, ge=1, description="Longest SQL text accepted")
    max_result_bytes: int = Field(
        default=256 * 1024, ge=1024, description="Budget of serialized rows per result"
    )
    max_value_bytes: int = Field(
        default=64 * 1024, ge=256, description="Longest single value returned; longer ones are cut with a marker"
    )
    untrusted_data_boundary: bool = Field(
        default=True,
        description="Wrap rows in the text content of results between per-call random markers (data, not instructions)",
    )
    # Pools
    pool_size: int = Field(default=5, ge=1, description="Connections kept per database")
    max_overflow: int = Field(default=10, ge=0, description="Extra connections under load")
    pool_timeout_s: float = Field(default=10.0, gt=0, description="Wait for a free connection")
    pool_recycle_s: int = Field(default=1800, ge=1, description="Recycle connections after this age")
    # Connecting (per database too: [databases.NAME]); see docs/connecting.md
    pool: PoolKind = Field(default="queue", description="queue (a pool) or none (a connection per call: serverless)")
    connect_timeout_s: float = Field(default=10.0, gt=0, description="Time limit of one connection attempt")
    connect_retries: int = Field(
        default=2, ge=0, le=20,
        description="Retries of a refused connection (backoff with jitter, inside the call's deadline)",
    )
    prepared_statements: PreparedStatements = Field(
        default="auto",
        description="auto, on, or off (off behind a transaction pooler; auto detects the usual pooler URLs)",
    )
    # Server
    transport: Transport = Field(default="stdio", description="stdio, sse or streamable-http")
    host: str = Field(default="127.0.0.1", description="HTTP bind address")
    port: int = Field(default=8000, ge=1, le=65535, description="HTTP port")
    # HTTP security (see server/auth.py and server/transports.py)
    auth_token: Annotated[list[str], NoDecode] = Field(
        default_factory=list, repr=False,
        description="Bearer token(s) HTTP clients must send, comma-separated (none: no auth)",
    )
    auth_token_file: Path | None = Field(
        default=None, description="File with bearer tokens, one per line (# comments allowed)"
    )
    allow_unauthenticated: bool = Field(
        default=False, description="Serve HTTP on a non-loopback address without a token"
    )
    allowed_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="More Host header values accepted over HTTP (host:port, * wildcards)"
    )
    allowed_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="More Origin values accepted over HTTP (DNS-rebinding protection)"
    )
    stateless_http: bool = Field(
        default=False, description="Streamable HTTP without sessions, for several processes behind a balancer"
    )
    shutdown_timeout_s: float = Field(
        default=10.0, gt=0, description="On SIGTERM, how long in-flight HTTP calls may take to finish"
    )
    request_read_timeout_s: float = Field(
        default=30.0, gt=0,
        description="HTTP: a connection that has not sent a complete request within this many seconds is closed",
    )
    metrics_port: int | None = Field(
        default=None, ge=1, le=65535,
        description="Also serve /metrics, /healthz and /readyz on this port (the only way on stdio)",
    )
    worker_id: str | None = Field(
        default=None, pattern=r"^[A-Za-z0-9_-]{1,32}$",
        description="This worker's name in a fleet: its MCP session ids start with `<id>.` so a balancer routes each session to it (deploy/)",
    )
    # Logging
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", description="Log level (logs go to stderr)"
    )
    log_format: Literal["console", "json"] = Field(default="console", description="console or json")
    # Files
    data_dir: Path = Field(
        default_factory=default_data_dir, description="Where the demo database lives"
    )
    # Audit log and health
    audit_enabled: bool = Field(default=True, description="Record every tool call in the audit table")
    audit_database_url: str | None = Field(
        default=None, description="Database holding sqlgate_audit (default: audit.sqlite3 in data_dir)"
    )
    audit_parameters: Literal["redact", "hash", "plain"] = Field(
        default="redact", description="How parameter values are stored in the audit log"
    )
    slow_query_ms: int = Field(
        default=1000, ge=1, description="Statements slower than this count as slow in health_check"
    )
    health_timeout_s: float = Field(default=3.0, gt=0, description="Time limit of each health probe")
    workload_statistics: bool = Field(
        default=False,
        description="Let workload_optimization's top_statements read pg_stat_statements: other clients' SQL (normalised)",
    )
    check_privileges: bool = Field(
        default=True,
        description="health_check reports what the connected role can read beyond the policy (degraded if anything)",
    )
    # bulk_insert and transaction_manager
    bulk_max_records: int = Field(
        default=100_000, ge=1, le=10_000_000, description="Most records one bulk_insert call may send"
    )
    bulk_max_payload_bytes: int = Field(
        default=64 * 1024 * 1024, ge=1024, description="Largest bulk_insert payload (records as JSON), in bytes"
    )
    transaction_idle_timeout_s: float = Field(
        default=30.0, gt=0, le=3600,
        description="An interactive transaction idle this long is rolled back and its connection freed",
    )
    max_open_transactions: int = Field(
        default=5, ge=1, le=1000, description="Most interactive transactions open at once per server"
    )
    max_transactions_per_session: int = Field(
        default=3, ge=1, le=1000,
        description="Most interactive transactions one MCP session (or token) may hold open at once",
    )
    transaction_max_lifetime_s: float = Field(
        default=300.0, gt=0, le=86_400,
        description="An interactive transaction is rolled back this long after it began, whatever the activity",
    )

    @field_validator(
        "allowed_tables", "denied_columns", "allowed_functions", "denied_functions",
        "auth_token", "allowed_hosts", "allowed_origins", mode="before",
    )
    @classmethod
    def _lists(cls, value: object) -> object:
        return _split_csv(value)

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("databases", mode="before")
    @classmethod
    def _named_urls(cls, value: object) -> object:
        if isinstance(value, str):
            value = [part for part in value.split(",") if part.strip()]
        if isinstance(value, list):
            parsed: dict[str, Any] = {}
            for item in value:
                name, sep, url = str(item).partition("=")
                if not sep or not name.strip() or not url.strip():
                    raise ValueError(f"expected NAME=URL, got {item!r}")
                parsed[name.strip()] = {"url": url.strip()}
            return parsed
        if isinstance(value, dict):
            return {k: ({"url": v} if isinstance(v, str) else v) for k, v in value.items()}
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        toml_file = settings_cls.model_config.get("toml_file")
        if toml_file:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml_file))
        return tuple(sources)

    # -- derived -------------------------------------------------------------

    def default_policy(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in POLICY_FIELDS}

    def audit_sink_url(self) -> str:
        """Where the audit log goes: ``audit_database_url`` or ``audit.sqlite3`` in ``data_dir``."""
        if self.audit_database_url:
            return self.audit_database_url
        return f"sqlite:///{self.data_dir / 'audit.sqlite3'}"

    def resolved_databases(self) -> list[ResolvedDatabase]:
        """The databases to serve, in order; the first is the default.

        With nothing configured, the embedded demo SQLite database is served.
        """
        entries: list[tuple[str, DatabaseConfig, bool]] = []
        if self.database_url:
            entries.append((DEFAULT_DATABASE_NAME, DatabaseConfig(url=self.database_url), False))
        for name, config in self.databases.items():
            if any(name == existing for existing, _, _ in entries):
                raise ConfigError(f"database name {name!r} is configured twice", "rename one")
            entries.append((name, config, False))
        if not entries:
            demo_path = self.data_dir / "demo.sqlite3"
            entries.append((DEMO_DATABASE_NAME, DatabaseConfig(url=f"sqlite:///{demo_path}"), True))
        resolved = []
        defaults = self.default_policy()
        for name, config, demo in entries:
            policy_values = dict(defaults)
            for field in POLICY_FIELDS:
                override = getattr(config, field)
                if override is not None:
                    policy_values[field] = override
            if demo:
                policy_values["mode"] = Mode.READ_ONLY
            check_policy_names(name, config.url, policy_values)
            resolved.append(
                ResolvedDatabase(
                    name=name,
                    url=config.url,
                    policy=Policy(**policy_values),
                    pool_size=config.pool_size or self.pool_size,
                    max_overflow=config.max_overflow if config.max_overflow is not None else self.max_overflow,
                    demo=demo,
                    **{key: getattr(config, key) if getattr(config, key) is not None else getattr(self, key)
                       for key in CONNECT_FIELDS},
                )
            )
        return resolved


# An unquoted part of a table or column name: letters, digits, _ and $, not digits alone.
_BARE_NAME = re.compile(r"^(?!\d+$)[\w$]+$")
# (setting, fewest and most dotted parts, the form the hint shows)
_NAME_SHAPES = {
    "allowed_tables": (1, 2, "table or schema.table"),
    "denied_columns": (2, 3, "table.column or schema.table.column"),
}


def check_policy_names(database: str, url: str, policy: dict[str, Any]) -> None:
    """Every ``allowed_tables`` and ``denied_columns`` entry must be a name of the documented
    shape, in the database's own quoting: anything else is a ConfigError at start-up.

    The validator reads an entry it cannot resolve as naming nothing, so an odd spelling
    (``ssn`` without its table, ``customers.*``, ``customers.``, ``*``, `` `t`.`c` `` on
    PostgreSQL) would otherwise drop the protection in silence: the column stays readable.
    """
    from sqlglot.dialects.dialect import Dialect
    from sqlglot.tokenizer_core import TokenType

    dialect = Dialect.get_or_raise(profiles.for_url(url).sqlglot_dialect)
    for setting, (fewest, most, form) in _NAME_SHAPES.items():
        for entry in policy.get(setting) or ():
            parts: list[str] = []
            try:
                tokens = dialect.tokenize(entry)
            except Exception:  # noqa: BLE001 - an unterminated quote, a stray character
                tokens = []
            expect_name = True
            for token in tokens:
                if token.comments:
                    parts = []
                    break
                if expect_name:
                    quoted = token.token_type == TokenType.IDENTIFIER and token.text != ""
                    if not (quoted or (token.token_type != TokenType.STRING and _BARE_NAME.match(token.text))):
                        parts = []
                        break
                    parts.append(token.text)
                elif token.token_type != TokenType.DOT:
                    parts = []
                    break
                expect_name = not expect_name
            if expect_name or not fewest <= len(parts) <= most:
                raise ConfigError(
                    f"database {database!r}: {setting} entry {entry!r} is not a {form}",
                    f"write each entry as {form} (quote a name the way the database does, "
                    "e.g. \"Odd Name\"); no wildcards: list every entry",
                )


def sqlgate_environment() -> dict[str, str]:
    """The environment variables sqlgate reads, to hand on to a child sqlgate process."""
    import os

    return {
        key: value for key, value in os.environ.items()
        if key.upper().startswith("SQLGATE_") or key.upper() == "DATABASE_URL"
    }


def unknown_environment() -> list[tuple[str, str | None]]:
    """``SQLGATE_*`` environment variables no setting reads: (name, the closest setting's
    variable or None). The commands log a warning for each (a misspelled variable is
    otherwise ignored in silence)."""
    import difflib
    import os

    known = {f"SQLGATE_{name.upper()}" for name in Settings.model_fields} | {"SQLGATE_CONFIG"}
    found = []
    for key in sorted(os.environ):
        upper = key.upper()
        if not upper.startswith("SQLGATE_") or upper in known or upper.startswith("SQLGATE_TEST_"):
            continue
        close = difflib.get_close_matches(upper, sorted(known), n=1, cutoff=0.6)
        found.append((key, close[0] if close else None))
    return found


def load_settings(cli: dict[str, Any] | None = None, config_file: str | Path | None = None) -> Settings:
    """Build settings from CLI values (only the flags given), the environment and a TOML file."""
    import os

    config_file = config_file or os.environ.get("SQLGATE_CONFIG")
    cls: type[Settings] = Settings
    if config_file:
        path = Path(config_file)
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist", "pass an existing TOML file to --config")
        cls = type("Settings", (Settings,), {"model_config": {**Settings.model_config, "toml_file": path}})
    try:
        settings = cls(**{k: v for k, v in (cli or {}).items() if v is not None})
    except ConfigError:
        raise
    except Exception as exc:  # pydantic ValidationError, TOML errors
        raise ConfigError(f"invalid configuration: {exc}", "see README, Configuration") from exc
    # An unregistered dialect is refused now, not when the server opens it (pure: the URL scheme alone).
    for url in [settings.database_url, settings.audit_database_url, *(c.url for c in settings.databases.values())]:
        if url:
            profiles.for_url(url)
    settings.resolved_databases()  # each database's policy names have their documented shape
    return settings
