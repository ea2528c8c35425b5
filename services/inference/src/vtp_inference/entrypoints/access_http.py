"""Where API keys are accepted (serving and batch routes only), and access refusals as problem+json."""

from __future__ import annotations

import contextlib
import re
import uuid
from collections.abc import AsyncIterator

from starlette.datastructures import MutableHeaders

from vtp_inference.domain.keys import PREDICT, looks_like_key
from vtp_inference.service_layer.access import Access, AccessError, Admission
from vtp_inference.service_layer.oip import OipError
from vtp_runtime.auth import Principal, ScopedVerifier
from vtp_runtime.http.problems import ProblemError

# Predict, the Open Inference Protocol, usage reads (the usage routes check `usage:read`) and a
# deployment's batches (the batch routes check `predict` and the deployment, and hide snapshot batches).
SERVING = re.compile(
    r"^(/api/v1/deployments/[^/]+/(predict|usage(/[^/]+)?|batches(/[^/]+(/cancel|/results)?)?)"
    r"|/api/v1/usage(/[^/]+)?"
    r"|/v2(/models/[^/]+(/versions/[^/]+)?(/ready|/infer)?)?)/?$"
)


def serving_path(path: str) -> bool:
    return SERVING.match(path) is not None


def key_verifier(access: Access) -> ScopedVerifier:
    """API keys (`Authorization: Bearer vtpk_...` or `api-key: vtpk_...`) on serving routes only."""
    return ScopedVerifier(claims=looks_like_key, verifier=access, paths=serving_path, header="api-key")


def access_problem(exc: AccessError) -> ProblemError:
    headers = dict(exc.headers)
    if exc.status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="vtp"'
    return ProblemError(exc.status, exc.code, exc.title, str(exc), headers=headers or None)


def check_scope(access: Access, caller: Principal, deployment_id: uuid.UUID) -> None:
    """A key that does not reach the deployment (or lacks `predict`): 403 before anything is loaded."""
    try:
        access.require_scope(caller, PREDICT, deployment_id)
    except AccessError as exc:
        raise access_problem(exc) from exc


@contextlib.asynccontextmanager
async def admitted(
    access: Access, caller: Principal, deployment_id: uuid.UUID, images: int, headers: MutableHeaders
) -> AsyncIterator[None]:
    """Admit one request (429/401/403/503 problem otherwise), put its RateLimit headers in `headers`,
    and free its concurrent slot when the block ends."""
    try:
        admission = await access.admit(caller, deployment_id, images)
    except AccessError as exc:
        raise access_problem(exc) from exc
    headers.update(admission.headers)
    try:
        yield
    finally:
        await admission.release()


class OipRefusal(OipError):
    """An access refusal in the Open Inference Protocol's error shape, with its headers."""

    def __init__(self, exc: AccessError) -> None:
        super().__init__(exc.status, exc.code, str(exc))
        self.headers = access_problem(exc).headers or {}


def oip_scope(access: Access, caller: Principal, deployment_id: uuid.UUID) -> None:
    try:
        access.require_scope(caller, PREDICT, deployment_id)
    except AccessError as exc:
        raise OipRefusal(exc) from exc


async def oip_admit(access: Access, caller: Principal, deployment_id: uuid.UUID, images: int) -> Admission:
    try:
        return await access.admit(caller, deployment_id, images)
    except AccessError as exc:
        raise OipRefusal(exc) from exc
