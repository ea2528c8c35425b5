"""ASGI middleware that demands a valid bearer token on every route but health.

It runs before routing, so an unknown path without a token is a 401 too: the
API's shape is not revealed to anonymous callers. A WebSocket may instead carry
a single-use `ticket` in its query string when the service has a ticket verifier
(browsers cannot set headers on a socket). A service may accept a second kind of credential
on some of its paths only (a `ScopedVerifier`: inference's API keys on its serving routes); such a
credential anywhere else is refused with 403 `credential_not_allowed`, never tried as a token.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from urllib.parse import parse_qs

from fastapi import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from vtp_runtime.auth.principal import Principal, TokenVerifier, VerifierUnavailable
from vtp_runtime.http.problems import PROBLEM_MEDIA_TYPE, problem_body

PUBLIC_PATHS = frozenset({"/health", "/api/v1/health"})


def _bearer(scope: Scope) -> str | None:
    for name, value in scope.get("headers", []):
        if name == b"authorization":
            header: str = value.decode("latin-1")
            scheme, _, token = header.partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
    return None


def _header(scope: Scope, wanted: bytes) -> str | None:
    for name, value in scope.get("headers", []):
        if name == wanted and value.strip():
            return str(value.decode("latin-1").strip())
    return None


@dataclass(frozen=True)
class ScopedVerifier:
    """A second kind of credential, accepted on some paths only (e.g. inference API keys on serving routes)."""

    claims: Callable[[str], bool]  # is this credential of this kind (its prefix), whatever the path
    verifier: TokenVerifier
    paths: Callable[[str], bool]  # where it is accepted
    header: str | None = None  # a header that may carry it instead of Authorization (lower case, e.g. "api-key")


def _ticket(scope: Scope) -> str | None:
    tickets = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("ticket")
    return tickets[0] if tickets else None


class AuthMiddleware:
    """Puts the caller's Principal in ``scope["state"]["principal"]`` or answers 401."""

    def __init__(
        self,
        app: ASGIApp,
        verifier: TokenVerifier,
        public_paths: Iterable[str] = PUBLIC_PATHS,
        ticket_verifier: TokenVerifier | None = None,
        scoped_verifier: ScopedVerifier | None = None,
    ) -> None:
        self.app = app
        self.verifier = verifier
        self.public_paths = frozenset(public_paths)
        self.ticket_verifier = ticket_verifier
        self.scoped = scoped_verifier

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or scope["path"] in self.public_paths:
            await self.app(scope, receive, send)
            return
        token, verifier = _bearer(scope), self.verifier
        if token is None and scope["type"] == "websocket" and self.ticket_verifier is not None:
            token, verifier = _ticket(scope), self.ticket_verifier
        scoped = self.scoped
        if scoped is not None:
            if token is None and scoped.header is not None:
                found = _header(scope, scoped.header.encode("latin-1"))
                token = found if found is not None and scoped.claims(found) else None
            if token is not None and scoped.claims(token):
                if not scoped.paths(scope["path"]):
                    detail = "This kind of credential is accepted on serving routes only; use a project token."
                    await self._deny(scope, send, 403, "credential_not_allowed", "Credential not allowed here", detail)
                    return
                verifier = scoped.verifier
        if token is None:
            await self._deny(
                scope, send, 401, "unauthorized", "Authentication required", "Send Authorization: Bearer <token>."
            )
            return
        try:
            principal = await verifier.verify(token)
        except VerifierUnavailable as exc:
            await self._deny(scope, send, 503, "auth_unavailable", "Token verification unavailable", str(exc))
            return
        if principal is None:
            await self._deny(scope, send, 401, "invalid_token", "Invalid token", "The token is unknown or revoked.")
            return
        scope.setdefault("state", {})["principal"] = principal
        await self.app(scope, receive, send)

    async def _deny(self, scope: Scope, send: Send, status: int, code: str, title: str, detail: str) -> None:
        if scope["type"] == "websocket":
            # 4000 + HTTP status is the customary close-code mapping for auth failures.
            await send({"type": "websocket.close", "code": 4000 + status, "reason": title})
            return
        body = json.dumps(problem_body(status, code, title, detail, None, scope["path"])).encode()
        headers = [(b"content-type", PROBLEM_MEDIA_TYPE.encode()), (b"content-length", str(len(body)).encode())]
        if status == 401:
            headers.append((b"www-authenticate", b'Bearer realm="vtp"'))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


async def optional_principal(scope: Scope, verifier: TokenVerifier) -> Principal | None:
    """The caller of a public route when it sent a valid bearer token; None otherwise, never an error."""
    token = _bearer(scope)
    if token is None:
        return None
    try:
        return await verifier.verify(token)
    except VerifierUnavailable:  # a public route answers anyway, as to an anonymous caller
        return None


def current_principal(request: Request) -> Principal:
    """FastAPI dependency: the authenticated caller (set by AuthMiddleware)."""
    principal = getattr(request.state, "principal", None)
    if not isinstance(principal, Principal):  # only reachable if the middleware was not installed
        raise RuntimeError("AuthMiddleware is not installed")
    return principal
