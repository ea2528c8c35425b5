"""Commands of the subscriptions API. Each is one transaction, scoped to the caller's project."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from vtp_notifier.adapters import delivery_queue as queue
from vtp_notifier.adapters.guarded_network import resolve
from vtp_notifier.adapters.secret_box import SecretBox
from vtp_notifier.adapters.subscription_repository import SubscriptionRepository
from vtp_notifier.domain.signing import new_secret
from vtp_notifier.domain.targets import TargetNotAllowed, TargetPolicy, parse_target
from vtp_notifier.domain.webhooks import DeliveryNotFound, Problem, Subscription, SubscriptionNotFound
from vtp_runtime.auth import Principal

Resolver = Callable[[str, int], Awaitable[list[str]]]
EDITABLE = frozenset({"url", "event_types", "job_ids", "description", "active"})


def _no_wake() -> None:
    return None


@dataclass
class WebhookDeps:
    sessions: async_sessionmaker[AsyncSession]
    box: SecretBox
    policy: TargetPolicy
    resolve: Resolver = resolve
    wake: Callable[[], None] = field(default=_no_wake)  # the dispatcher's, for work due now


@dataclass(frozen=True)
class SubscriptionRequest:
    """A new subscription whose fields already passed validation."""

    url: str
    event_types: frozenset[str]
    job_ids: frozenset[uuid.UUID]
    description: str | None


async def target_problems(deps: WebhookDeps, url: str, pointer: str = "#/body/url") -> list[Problem]:
    """Why webhooks may not post to `url`: its form, or an address it resolves to."""
    target, problems = parse_target(url, pointer)
    if target is None:
        return problems
    try:
        addresses = await deps.resolve(target.host, target.port)
    except OSError as exc:
        return [Problem(pointer, "unresolvable_host", f"{target.host} cannot be resolved: {exc}")]
    try:
        deps.policy.check(addresses)
    except TargetNotAllowed as exc:
        return [Problem(pointer, "target_not_allowed", str(exc))]
    return []


async def create_subscription(
    deps: WebhookDeps, caller: Principal, request: SubscriptionRequest
) -> tuple[Subscription, str]:
    """The new subscription and its signing secret, which is never shown again."""
    now = datetime.now(UTC)
    sub = Subscription(
        uuid.uuid4(),
        caller.project_id,
        request.url,
        request.event_types,
        request.job_ids,
        request.description,
        True,
        None,
        0,
        now,
        now,
    )
    secret = new_secret()
    async with deps.sessions() as session, session.begin():
        await SubscriptionRepository(session).add(sub, deps.box.encrypt(sub.id, secret))
    return sub, secret


async def get_subscription(deps: WebhookDeps, caller: Principal, subscription_id: uuid.UUID) -> Subscription:
    async with deps.sessions() as session:
        return await _found(SubscriptionRepository(session), caller, subscription_id)


async def list_subscriptions(
    deps: WebhookDeps, caller: Principal, limit: int, offset: int
) -> tuple[list[Subscription], int]:
    async with deps.sessions() as session:
        return await SubscriptionRepository(session).search(caller.project_id, limit, offset)


async def update_subscription(
    deps: WebhookDeps, caller: Principal, subscription_id: uuid.UUID, changes: dict[str, Any]
) -> Subscription:
    """Apply validated changes; enabling resets the failure count and resumes waiting deliveries."""
    unknown = set(changes) - EDITABLE
    if unknown:
        raise ValueError(f"not editable: {sorted(unknown)}")
    async with deps.sessions() as session, session.begin():
        repo = SubscriptionRepository(session)
        sub = await _found(repo, caller, subscription_id, lock=True)
        updated = replace(sub, **changes, updated_at=datetime.now(UTC))
        if changes.get("active") is True and not sub.active:
            updated = replace(updated, consecutive_failures=0, disabled_reason=None)
            await queue.resume(session, sub.id, updated.updated_at)
        elif changes.get("active") is False and sub.active:
            updated = replace(updated, disabled_reason="disabled on request")
            await queue.park(session, [sub.id])
        await repo.save(updated)
    if updated.active and not sub.active:
        deps.wake()
    return updated


async def rotate_secret(deps: WebhookDeps, caller: Principal, subscription_id: uuid.UUID) -> str:
    """A new signing secret; tries from now on are signed with it."""
    secret = new_secret()
    async with deps.sessions() as session, session.begin():
        repo = SubscriptionRepository(session)
        sub = await _found(repo, caller, subscription_id, lock=True)
        await repo.set_secret(sub.id, deps.box.encrypt(sub.id, secret))
    return secret


async def delete_subscription(deps: WebhookDeps, caller: Principal, subscription_id: uuid.UUID) -> None:
    async with deps.sessions() as session, session.begin():
        repo = SubscriptionRepository(session)
        sub = await _found(repo, caller, subscription_id, lock=True)
        await repo.delete(sub.id, datetime.now(UTC))


async def list_deliveries(
    deps: WebhookDeps, caller: Principal, subscription_id: uuid.UUID, status: str | None, limit: int, offset: int
) -> tuple[list[dict[str, Any]], int]:
    async with deps.sessions() as session:
        repo = SubscriptionRepository(session)
        sub = await _found(repo, caller, subscription_id)
        return await repo.deliveries(sub.id, status, limit, offset)


async def get_delivery(
    deps: WebhookDeps, caller: Principal, subscription_id: uuid.UUID, delivery_id: uuid.UUID
) -> dict[str, Any]:
    async with deps.sessions() as session:
        repo = SubscriptionRepository(session)
        sub = await _found(repo, caller, subscription_id)
        delivery = await repo.delivery(sub.id, delivery_id)
    if delivery is None:
        raise DeliveryNotFound(str(delivery_id))
    return delivery


async def redeliver(
    deps: WebhookDeps, caller: Principal, subscription_id: uuid.UUID, delivery_id: uuid.UUID
) -> dict[str, Any]:
    """A new delivery of the same event and body with a fresh set of tries."""
    new_id = uuid.uuid4()
    async with deps.sessions() as session, session.begin():
        repo = SubscriptionRepository(session)
        sub = await _found(repo, caller, subscription_id)
        original = await repo.delivery(sub.id, delivery_id)
        if original is None:
            raise DeliveryNotFound(str(delivery_id))
        await repo.add_redelivery(original, new_id, datetime.now(UTC) if sub.active else None)
        created = await repo.delivery(sub.id, new_id)
    deps.wake()
    assert created is not None
    return created


async def _found(
    repo: SubscriptionRepository, caller: Principal, subscription_id: uuid.UUID, *, lock: bool = False
) -> Subscription:
    sub = await repo.get(caller.project_id, subscription_id, lock=lock)
    if sub is None:  # another project's subscription is as absent as a missing one
        raise SubscriptionNotFound(str(subscription_id))
    return sub
