"""SQL unit of work: the transaction boundary of one command or event handler."""

from __future__ import annotations

from collections.abc import Sequence
from types import TracebackType
from typing import Self

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from vtp_contracts import EventData, TopicSpec
from vtp_runtime.db.inbox import claim_event, claim_events
from vtp_runtime.db.outbox import OutboxRelay, stage_event


class SqlUnitOfWork:
    """Opens a session; staged events commit with the state change or not at all.

    Services subclass it to expose their repositories built on ``self.session``.
    Leaving the block without :meth:`commit` rolls everything back.
    """

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], source: str, relay: OutboxRelay | None = None
    ) -> None:
        self._sessions = sessions
        self._source = source
        self._relay = relay
        self._staged = 0
        self.session: AsyncSession

    async def __aenter__(self) -> Self:
        self.session = self._sessions()
        self._staged = 0
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.session.rollback()  # no-op after commit
        await self.session.close()

    async def publish(self, spec: TopicSpec, data: EventData) -> str:
        """Stage an event in this transaction; returns its id."""
        self._staged += 1
        return (await stage_event(self.session, spec, data, self._source)).id

    async def claim(self, consumer: str, event_id: str) -> bool:
        """Record that `consumer` applies `event_id` now; False if it already did."""
        return await claim_event(self.session, consumer, event_id)

    async def claim_many(self, consumer: str, event_ids: Sequence[str]) -> set[str]:
        """Claim a batch of event ids at once; returns those `consumer` had not applied yet."""
        return await claim_events(self.session, consumer, event_ids)

    async def commit(self) -> None:
        await self.session.commit()
        if self._staged and self._relay is not None:
            self._relay.wake()  # publish now instead of at the next poll
        self._staged = 0
