"""The settings flags every command that builds ``Settings`` shares (serve, health, migrate, call).

Every setting has a flag, generated from ``Settings`` so the two cannot drift:
``--max-rows 50``, ``--allowed-tables orders,customers``, ``--allow-multi-statement`` /
``--no-allow-multi-statement``. ``--database NAME=URL`` may repeat. Both ``cli`` and
``commands`` use these; neither imports the other for them.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, get_args, get_origin

if TYPE_CHECKING:
    from sqlgate.settings import Settings

# Flags that are not plain settings fields, or that read better with another name.
_SPECIAL = {"databases", "database_url"}


def setting_flags() -> dict[str, str]:
    """Every settings field and its CLI flag (used by the docs test too)."""
    from sqlgate.settings import Settings

    flags = {name: "--" + name.replace("_", "-") for name in Settings.model_fields}
    flags["databases"] = "--database"
    return flags


def add_settings_arguments(parser: argparse.ArgumentParser) -> None:
    from sqlgate.settings import Settings

    group = parser.add_argument_group("settings (each also SQLGATE_<NAME> in the environment)")
    group.add_argument("--config", metavar="FILE", help="TOML settings file")
    group.add_argument(
        "--database-url", dest="database_url", metavar="URL",
        help="database to serve (also DATABASE_URL); plain postgresql://, mysql://, sqlite:/// work",
    )
    group.add_argument(
        "--database", dest="databases", action="append", metavar="NAME=URL",
        help="a named database; repeat for several",
    )
    for name, field in Settings.model_fields.items():
        if name in _SPECIAL:
            continue
        flag = "--" + name.replace("_", "-")
        annotation = field.annotation
        help_text = field.description or ""
        if annotation is bool:
            group.add_argument(flag, dest=name, action=argparse.BooleanOptionalAction, default=None, help=help_text)
            continue
        choices = None
        args = [a for a in get_args(annotation) if a is not type(None)]
        if get_origin(annotation) is not None and args and all(isinstance(a, str) for a in args):
            choices = args
        elif hasattr(annotation, "__members__"):
            choices = [m.value for m in annotation]  # type: ignore[union-attr]
        group.add_argument(flag, dest=name, default=None, choices=choices, help=help_text, metavar=None if choices else name.upper())


def settings_from_args(args: argparse.Namespace) -> Settings:
    from sqlgate.settings import Settings, load_settings

    cli = {name: getattr(args, name, None) for name in Settings.model_fields}
    return load_settings(cli, getattr(args, "config", None))


