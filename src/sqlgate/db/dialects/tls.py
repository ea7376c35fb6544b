"""TLS for network databases: the SSL contexts the URL's parameters ask for, and what a
live connection actually negotiated.

Each dialect reads its own ecosystem's spelling (PostgreSQL ``sslmode``/``sslrootcert``,
MySQL ``ssl-mode``/``ssl_ca``; see postgres.py and mysql.py) and builds its context
here. A mode that asks for TLS (``require`` and above) never connects in plaintext:
the driver is handed a context it must use, and a server without TLS is refused.
"""

from __future__ import annotations

import difflib
import ssl
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlgate.errors import ConfigError


@dataclass(frozen=True)
class TlsStatus:
    """What a live connection negotiated (read on the client side of the socket)."""

    encrypted: bool
    protocol: str | None = None  # TLSv1.3, TLSv1.2, ...
    cipher: str | None = None


def status_of(transport: Any) -> TlsStatus:
    """The TLS status of an asyncio transport (plaintext when it has no SSL object)."""
    ssl_object = transport.get_extra_info("ssl_object") if transport is not None else None
    if ssl_object is None:
        return TlsStatus(encrypted=False)
    cipher = ssl_object.cipher()
    return TlsStatus(encrypted=True, protocol=ssl_object.version(), cipher=cipher[0] if cipher else None)


class RequiredContext(ssl.SSLContext):
    """An SSL context the connection must use: a server without TLS is refused."""


def context(
    *, verify_cert: bool, verify_host: bool, ca: str | None, cert: str | None, key: str | None, param: str,
    required: bool = True,
) -> ssl.SSLContext:
    """An SSL context: with ``verify_cert`` the server's certificate must chain to ``ca``
    (the system trust store when None or ``system``), with ``verify_host`` it must also
    name the host; ``cert``/``key`` are the client certificate. Unreadable files are a
    ``ConfigError`` naming the URL parameter."""
    ctx = (RequiredContext if required else ssl.SSLContext)(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if verify_cert:
        ctx.check_hostname = verify_host
        ctx.verify_mode = ssl.CERT_REQUIRED
        if ca is None or ca == "system":
            ctx.load_default_certs(ssl.Purpose.SERVER_AUTH)
        else:
            _load(lambda: ctx.load_verify_locations(cafile=ca), ca, f"{param} (CA bundle)")
    else:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if cert is not None:
        _load(lambda: ctx.load_cert_chain(cert, keyfile=key), cert, "the client certificate/key")
    elif key is not None:
        raise ConfigError("a client key is given without its certificate",
                          "pass the certificate too (sslcert= / ssl_cert=), or drop the key")
    return ctx


def _load(action: Any, path: str, what: str) -> None:
    if not Path(path).expanduser().is_file():
        raise ConfigError(f"{what}: file {path} does not exist", "give the path of a readable PEM file in the URL")
    try:
        action()
    except (ssl.SSLError, OSError, ValueError) as exc:
        raise ConfigError(f"{what}: cannot load {path}: {exc}", "give a PEM file (BEGIN CERTIFICATE / PRIVATE KEY)") from exc


def one(query: Mapping[str, Any], key: str) -> str | None:
    """A URL query value (the last one when repeated), or None."""
    value = query.get(key)
    if isinstance(value, tuple):
        value = value[-1] if value else None
    return None if value is None else str(value)


def flag(query: Mapping[str, Any], key: str) -> bool | None:
    """A boolean URL query value (true/false/1/0/yes/no/on/off), or None when absent."""
    value = one(query, key)
    if value is None:
        return None
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on", "required"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"URL parameter {key}={value!r} is not a boolean", f"write {key}=true or {key}=false")


def choice(key: str, value: str, choices: Iterable[str]) -> str:
    """``value`` if it is one of ``choices`` (case-insensitive), else a ConfigError naming the closest."""
    options = list(choices)
    for option in options:
        if value.strip().lower() == option.lower():
            return option
    close = difflib.get_close_matches(value.lower(), [o.lower() for o in options], n=1, cutoff=0.5)
    guess = f" (did you mean {key}={options[[o.lower() for o in options].index(close[0])]}?)" if close else ""
    raise ConfigError(f"unknown {key}={value!r} in the database URL{guess}", f"use one of: {', '.join(options)}")


def refuse_unknown(query: Mapping[str, Any], known: Iterable[str], database: str) -> None:
    """A ConfigError naming the first URL parameter the driver would choke on (a
    TypeError at the first connection otherwise), with the closest known one."""
    options = sorted(set(known))
    for key in query:
        if key not in options:
            close = difflib.get_close_matches(key, options, n=1, cutoff=0.6)
            guess = f" (did you mean {close[0]}?)" if close else ""
            raise ConfigError(
                f"unsupported parameter {key!r} in the {database} URL{guess}",
                f"remove it; sqlgate reads: {', '.join(options)} (docs/connecting.md)",
            )
