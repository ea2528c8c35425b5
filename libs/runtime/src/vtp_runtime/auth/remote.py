"""Token verification through the identity service's public ``whoami`` route."""

from __future__ import annotations

from uuid import UUID

import httpx

from vtp_runtime.auth.principal import Principal, VerifierUnavailable


class RemoteTokenVerifier:
    """Asks ``GET /api/v1/auth/whoami`` on the identity service; wrap it in a cache."""

    def __init__(self, identity_url: str, timeout: float = 3.0) -> None:
        self._client = httpx.AsyncClient(base_url=identity_url.rstrip("/"), timeout=timeout)

    async def verify(self, token: str) -> Principal | None:
        try:
            response = await self._client.get("/api/v1/auth/whoami", headers={"Authorization": f"Bearer {token}"})
        except httpx.HTTPError as exc:
            raise VerifierUnavailable(f"identity service unreachable: {exc}") from exc
        if response.status_code == 401:
            return None
        if response.status_code != 200:
            raise VerifierUnavailable(f"identity service answered {response.status_code}")
        body = response.json()
        return Principal(UUID(body["project_id"]), UUID(body["token_id"]), bool(body.get("is_admin", False)))

    async def aclose(self) -> None:
        await self._client.aclose()
