"""REST routes under /api/v1/subscriptions: webhook subscriptions and their delivery log."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Body, Depends, Query, Response
from pydantic import BaseModel, ValidationError

from vtp_notifier.domain.webhooks import (
    DeliveryNotFound,
    DeliveryStatus,
    Problem,
    SubscriptionNotFound,
    unknown_event_types,
)
from vtp_notifier.entrypoints.subscription_schemas import (
    DeliveryOut,
    DeliveryPage,
    SecretOut,
    SubscriptionCreated,
    SubscriptionIn,
    SubscriptionOut,
    SubscriptionPage,
    SubscriptionPatch,
)
from vtp_notifier.service_layer import subscriptions as commands
from vtp_notifier.service_layer.subscriptions import SubscriptionRequest, WebhookDeps
from vtp_runtime.auth import Principal, current_principal
from vtp_runtime.http.fields import Offset
from vtp_runtime.http.openapi import json_body, problems
from vtp_runtime.http.problems import ProblemError, validation_errors

Caller = Annotated[Principal, Depends(current_principal)]
JsonBody = Annotated[dict[str, Any], Body()]
Limit = Annotated[int, Query(ge=1, le=200)]
STATUSES = "^(" + "|".join(DeliveryStatus) + ")$"
NOT_NULL = ("url", "event_types", "job_ids", "active")
M = TypeVar("M", bound=BaseModel)
NOT_FOUND = problems(404)


async def _parse(deps: WebhookDeps, model: type[M], body: dict[str, Any]) -> M:
    """Shape, event types and target checked together, so every problem is reported at once."""
    errors: list[dict[str, str]] = []
    parsed: M | None = None
    try:
        parsed = model.model_validate(body)
    except ValidationError as exc:
        errors += [{**e, "pointer": e["pointer"].replace("#/", "#/body/", 1)} for e in validation_errors(exc.errors())]
    problems: list[Problem] = [
        Problem(f"#/body/{name}", "null_not_allowed", f"{name} cannot be null")
        for name in NOT_NULL
        if name in body and body[name] is None
    ]
    types = body.get("event_types")
    if isinstance(types, list):
        problems += unknown_event_types([t for t in types if isinstance(t, str)])
    url = body.get("url")
    if isinstance(url, str) and not any(e["pointer"].startswith("#/body/url") for e in errors):
        problems += await commands.target_problems(deps, url)
    errors += [{"pointer": p.pointer, "code": p.code, "message": p.message} for p in problems]
    if errors or parsed is None:
        raise _invalid(errors)
    return parsed


def _invalid(errors: list[dict[str, str]]) -> ProblemError:
    return ProblemError(422, "validation_failed", "Validation failed", f"{len(errors)} problem(s)", errors)


def _problem(exc: Exception) -> ProblemError:
    if isinstance(exc, SubscriptionNotFound):
        return ProblemError(404, "subscription_not_found", "Subscription not found", str(exc))
    return ProblemError(404, "delivery_not_found", "Delivery not found", str(exc))


ERRORS = (SubscriptionNotFound, DeliveryNotFound)


def build_router(deps: WebhookDeps) -> APIRouter:
    router = APIRouter(prefix="/api/v1/subscriptions", tags=["webhooks"])

    @router.post(
        "",
        status_code=201,
        response_model=SubscriptionCreated,
        summary="Subscribe a URL to events",
        openapi_extra=json_body(SubscriptionIn),
    )
    async def create(caller: Caller, body: JsonBody) -> SubscriptionCreated:
        parsed = await _parse(deps, SubscriptionIn, body)
        request = SubscriptionRequest(
            parsed.url, frozenset(parsed.event_types), frozenset(parsed.job_ids), parsed.description
        )
        sub, secret = await commands.create_subscription(deps, caller, request)
        return SubscriptionCreated(**SubscriptionOut.of(sub).model_dump(), secret=secret)

    @router.get("", response_model=SubscriptionPage)
    async def search(caller: Caller, limit: Limit = 50, offset: Offset = 0) -> SubscriptionPage:
        subs, total = await commands.list_subscriptions(deps, caller, limit, offset)
        return SubscriptionPage(items=[SubscriptionOut.of(s) for s in subs], total=total, limit=limit, offset=offset)

    @router.get("/{subscription_id}", response_model=SubscriptionOut, responses=NOT_FOUND)
    async def get(subscription_id: uuid.UUID, caller: Caller) -> SubscriptionOut:
        try:
            return SubscriptionOut.of(await commands.get_subscription(deps, caller, subscription_id))
        except ERRORS as exc:
            raise _problem(exc) from exc

    @router.patch(
        "/{subscription_id}",
        response_model=SubscriptionOut,
        responses=NOT_FOUND,
        openapi_extra=json_body(SubscriptionPatch),
    )
    async def update(subscription_id: uuid.UUID, caller: Caller, body: JsonBody) -> SubscriptionOut:
        try:
            await commands.get_subscription(deps, caller, subscription_id)  # 404 before 422
            patch = await _parse(deps, SubscriptionPatch, body)
            changes = {name: getattr(patch, name) for name in patch.model_fields_set}
            for name in ("event_types", "job_ids"):
                if name in changes:
                    changes[name] = frozenset(changes[name])
            return SubscriptionOut.of(await commands.update_subscription(deps, caller, subscription_id, changes))
        except ERRORS as exc:
            raise _problem(exc) from exc

    @router.delete(
        "/{subscription_id}",
        status_code=204,
        summary="Delete; its pending deliveries are cancelled",
        responses=NOT_FOUND,
    )
    async def delete(subscription_id: uuid.UUID, caller: Caller) -> Response:
        try:
            await commands.delete_subscription(deps, caller, subscription_id)
        except ERRORS as exc:
            raise _problem(exc) from exc
        return Response(status_code=204)

    @router.post(
        "/{subscription_id}/rotate-secret",
        response_model=SecretOut,
        summary="Replace the signing secret",
        responses=NOT_FOUND,
    )
    async def rotate(subscription_id: uuid.UUID, caller: Caller) -> SecretOut:
        try:
            return SecretOut(secret=await commands.rotate_secret(deps, caller, subscription_id))
        except ERRORS as exc:
            raise _problem(exc) from exc

    @router.get(
        "/{subscription_id}/deliveries", response_model=DeliveryPage, summary="The delivery log", responses=NOT_FOUND
    )
    async def deliveries(
        subscription_id: uuid.UUID,
        caller: Caller,
        status: Annotated[str | None, Query(pattern=STATUSES)] = None,
        limit: Limit = 50,
        offset: Offset = 0,
    ) -> DeliveryPage:
        try:
            rows, total = await commands.list_deliveries(deps, caller, subscription_id, status, limit, offset)
        except ERRORS as exc:
            raise _problem(exc) from exc
        return DeliveryPage(items=[DeliveryOut.of(r) for r in rows], total=total, limit=limit, offset=offset)

    @router.get("/{subscription_id}/deliveries/{delivery_id}", response_model=DeliveryOut, responses=NOT_FOUND)
    async def delivery(subscription_id: uuid.UUID, delivery_id: uuid.UUID, caller: Caller) -> DeliveryOut:
        try:
            return DeliveryOut.of(await commands.get_delivery(deps, caller, subscription_id, delivery_id))
        except ERRORS as exc:
            raise _problem(exc) from exc

    @router.post(
        "/{subscription_id}/deliveries/{delivery_id}/redeliver",
        status_code=202,
        response_model=DeliveryOut,
        summary="Deliver the same event again, with fresh tries",
        responses=NOT_FOUND,
    )
    async def redeliver(subscription_id: uuid.UUID, delivery_id: uuid.UUID, caller: Caller) -> DeliveryOut:
        try:
            return DeliveryOut.of(await commands.redeliver(deps, caller, subscription_id, delivery_id))
        except ERRORS as exc:
            raise _problem(exc) from exc

    return router
