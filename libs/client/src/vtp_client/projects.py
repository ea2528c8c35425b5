"""Projects, tokens and the caller's identity (`/api/v1/projects`, `/api/v1/tokens`, `/api/v1/auth`)."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from vtp_client._base import Group, Resource

__all__ = ["IssuedToken", "Project", "Projects", "Token", "Tokens", "WhoAmI"]


class Project(Resource):
    id: UUID
    name: str
    slug: str
    created_at: datetime


class Token(Resource):
    id: UUID
    project_id: UUID
    name: str
    prefix: str
    is_admin: bool
    created_at: datetime
    revoked_at: datetime | None = None


class IssuedToken(Token):
    token: str
    """The secret, shown only in this answer."""


class WhoAmI(Resource):
    project_id: UUID
    token_id: UUID
    is_admin: bool


class Projects(Group):
    """`client.projects`: creating one needs an admin token; any token sees its own."""

    def create(self, name: str, slug: str | None = None) -> Project:
        body: dict[str, str] = {"name": name} | ({"slug": slug} if slug else {})
        return Project.model_validate(self._t.json("POST", "/api/v1/projects", json=body))

    def list(self) -> list[Project]:
        return [Project.model_validate(p) for p in self._t.json("GET", "/api/v1/projects")]

    def get(self, project_id: UUID | str) -> Project:
        return Project.model_validate(self._t.json("GET", f"/api/v1/projects/{project_id}"))


class Tokens(Group):
    """`client.tokens`: admin tokens issue and list a project's tokens; any token may revoke itself."""

    def create(self, project_id: UUID | str, name: str, *, is_admin: bool = False) -> IssuedToken:
        body = {"name": name, "is_admin": is_admin}
        return IssuedToken.model_validate(self._t.json("POST", f"/api/v1/projects/{project_id}/tokens", json=body))

    def list(self, project_id: UUID | str) -> list[Token]:
        return [Token.model_validate(t) for t in self._t.json("GET", f"/api/v1/projects/{project_id}/tokens")]

    def revoke(self, token_id: UUID | str) -> Token:
        return Token.model_validate(self._t.json("DELETE", f"/api/v1/tokens/{token_id}"))

    def whoami(self) -> WhoAmI:
        return WhoAmI.model_validate(self._t.json("GET", "/api/v1/auth/whoami"))
