"""Bearer-token authentication for the HTTP transports (stdio needs none).

Tokens come from ``auth_token`` (``SQLGATE_AUTH_TOKEN``, comma-separated) and/or
``auth_token_file`` (one per line). The SDK's bearer middleware asks ``StaticTokenVerifier``
about each request's token; a request without a valid one gets 401 with a
``WWW-Authenticate: Bearer resource_metadata=...`` header (RFC 9728). Tokens are compared
in constant time against every configured token, so timing reveals neither which token
nor how much of one matched.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from mcp.server.auth.provider import AccessToken
from mcp.server.auth.settings import AuthSettings
from pydantic import AnyHttpUrl

from sqlgate.errors import ConfigError
from sqlgate.settings import Settings

MIN_TOKEN_LENGTH = 16


class StaticTokenVerifier:
    """Accepts exactly the configured tokens; the client id names which one (``token-N``)."""

    def __init__(self, tokens: list[str]) -> None:
        self._tokens = [token.encode() for token in tokens]

    async def verify_token(self, token: str) -> AccessToken | None:
        candidate = token.encode()
        matched = None
        for index, known in enumerate(self._tokens):
            if hmac.compare_digest(candidate, known) and matched is None:
                matched = index  # keep comparing: the loop takes the same time either way
        if matched is None:
            return None
        return AccessToken(
            # Never keep the secret itself where a log or the audit might show it.
            token=hashlib.sha256(candidate).hexdigest()[:16],
            client_id=f"token-{matched + 1}",
            scopes=[],
        )


def load_tokens(settings: Settings) -> list[str]:
    """Every configured token; ConfigError for an unreadable file or a weak token."""
    tokens = [t.strip() for t in settings.auth_token if t.strip()]
    if settings.auth_token_file is not None:
        try:
            text = settings.auth_token_file.read_text()
        except OSError as exc:
            raise ConfigError(
                f"cannot read auth_token_file {settings.auth_token_file}: {exc.strerror}",
                "point --auth-token-file at a readable file with one token per line",
            ) from None
        tokens += [
            line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")
        ]
        if not tokens:
            raise ConfigError(
                f"auth_token_file {settings.auth_token_file} holds no token",
                "write one token per line (e.g. from `python -c 'import secrets; print(secrets.token_urlsafe(32))'`)",
            )
    short = [t for t in tokens if len(t) < MIN_TOKEN_LENGTH]
    if short:
        raise ConfigError(
            f"{len(short)} auth token(s) shorter than {MIN_TOKEN_LENGTH} characters",
            "use long random tokens: python -c 'import secrets; print(secrets.token_urlsafe(32))'",
        )
    return tokens


def server_auth(settings: Settings) -> dict[str, Any]:
    """Constructor arguments for MCPServer: ``token_verifier`` and ``auth``, or none."""
    if settings.transport == "stdio":
        return {}
    tokens = load_tokens(settings)
    if not tokens:
        return {}
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    base = f"http://{host}:{settings.port}"
    path = "/sse" if settings.transport == "sse" else "/mcp"
    return {
        "token_verifier": StaticTokenVerifier(tokens),
        "auth": AuthSettings(
            issuer_url=AnyHttpUrl(base),
            resource_server_url=AnyHttpUrl(base + path),
            # Static tokens are issued for this server only; there is no audience to check.
            validate_token_resource=False,
        ),
    }
