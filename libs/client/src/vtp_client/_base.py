"""What every resource model shares: unknown fields kept (a newer server adds fields), pages."""

from __future__ import annotations

from typing import Generic, TypeVar

from pydantic import BaseModel, ConfigDict

from vtp_client.transport import Transport

__all__ = ["Group", "Page", "Resource"]


class Resource(BaseModel):
    """A resource the API returns. Fields a newer server adds are kept (`model_extra`), never refused."""

    model_config = ConfigDict(extra="allow", populate_by_name=True, protected_namespaces=())


R = TypeVar("R", bound=Resource)


class Page(Resource, Generic[R]):
    """One page of a listing: `items`, and `total` matches for paging with `limit`/`offset`."""

    items: list[R]
    total: int
    limit: int
    offset: int


class Group:
    """A resource group's methods (`client.jobs`, `client.exports`, ...), sharing the client's transport."""

    def __init__(self, transport: Transport) -> None:
        self._t = transport
