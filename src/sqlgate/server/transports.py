"""Running the server on stdio, SSE or Streamable HTTP."""

from __future__ import annotations

import ipaddress

from mcp.server.transport_security import TransportSecuritySettings

from sqlgate.logging import get_logger
from sqlgate.server.app import build_server
from sqlgate.settings import Settings

log = get_logger("sqlgate.server")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def transport_security(settings: Settings) -> TransportSecuritySettings:
    """DNS-rebinding protection stays on: only the bound host names are accepted."""
    hosts = ["127.0.0.1:*", "localhost:*", "[::1]:*"]
    if not is_loopback(settings.host):
        hosts.append(f"{settings.host}:*")
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=hosts,
        allowed_origins=[f"http://{h}" for h in hosts],
    )


def run(settings: Settings) -> None:
    server = build_server(settings)
    if settings.transport == "stdio":
        server.run("stdio")
        return
    if not is_loopback(settings.host):
        log.warning("binding to a non-loopback address", host=settings.host)
    log.info("listening", transport=settings.transport, host=settings.host, port=settings.port)
    if settings.transport == "sse":
        server.run("sse", host=settings.host, port=settings.port, transport_security=transport_security(settings))
    else:
        server.run(
            "streamable-http",
            host=settings.host,
            port=settings.port,
            transport_security=transport_security(settings),
        )
