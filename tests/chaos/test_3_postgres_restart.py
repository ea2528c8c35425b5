"""PostgreSQL dies mid-journey: services answer 503 problem+json while it is away and recover
without a restart of their own; the job in flight completes, its webhooks arrive."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from vtp_localstack.stack import LocalStack

from .conftest import CHAOS_SERVICES
from .journey import Journey, eventually, kill
from .recovery import scenario

pytestmark = [pytest.mark.integration, pytest.mark.chaos]
PROBLEM = "application/problem+json"
OUTAGE_CODES = {"dependency_unavailable", "auth_unavailable"}  # a route's own query, or the token check


def _probes(journey: Journey, job_id: str) -> dict[str, str]:
    """One read per service that owns a database, each needing it."""
    return {
        "jobs": f"/api/v1/jobs/{job_id}",
        "datasets": "/api/v1/datasets",
        "notifier": "/api/v1/subscriptions",
        "identity": "/api/v1/projects",  # whoami may answer from the token cache; a listing cannot
    }


def _answer(api: httpx.Client, path: str) -> tuple[int, str, dict[str, Any]]:
    response = api.get(path, timeout=15)  # a hang fails here: down must be answered, not waited out
    body = response.json() if response.headers.get("content-type", "").startswith("application/") else {}
    return response.status_code, response.headers.get("content-type", ""), body


def test_postgres_restart_mid_journey(chaos_stack: LocalStack, journey: Journey) -> None:
    services = [*CHAOS_SERVICES, "gateway"]
    pids = {name: proc.pid for name in services if (proc := chaos_stack.table.find(name)) is not None}
    with scenario("restart postgres") as clock:
        job_id = journey.submit()
        journey.wait_training(job_id)
        probes = _probes(journey, job_id)
        clock.fault()
        kill(chaos_stack, "postgres")
        try:
            for service, path in probes.items():
                status, media, body = _answer(journey.api, path)
                assert (status, media) == (503, PROBLEM), (service, status, media, body)
                assert body["code"] in OUTAGE_CODES, (service, body)
            clock.mark("all_503")
        finally:
            chaos_stack.up()  # PostgreSQL again, whatever happened; the services were left alone (checked below)
        clock.mark("postgres_up")
        for service, path in probes.items():
            eventually(lambda p=path: _answer(journey.api, p)[0] == 200, f"{service} answering again", 60)
        clock.mark("api_ok")
        now = {name: proc.pid for name in services if (proc := chaos_stack.table.find(name)) is not None}
        assert now == pids, "no service was restarted: each recovered by itself"
        journey.check_job(job_id)
        clock.mark("converged")
