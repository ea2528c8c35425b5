"""Rate limits and revocation on two inference replicas behind the gateway: a revoked key is refused
by both at once, a limit holds across replicas, 429 carries Retry-After and RateLimit headers,
image quotas, and per-deployment limits that bind project tokens too."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from .conftest import bearer, create_key, predict

pytestmark = pytest.mark.integration


def test_a_revoked_key_is_refused_by_both_replicas_at_once(admin: httpx.Client, deployment: dict, replicas: list[str]):
    dep = deployment["id"]
    key = create_key(admin, f"/api/v1/deployments/{dep}/keys")
    secret = key["secret"]
    for url in replicas:  # each replica verifies and caches the key
        with httpx.Client(base_url=url, timeout=60) as replica:
            assert predict(replica, dep, bearer(secret)).status_code == 200
    assert admin.delete(f"/api/v1/keys/{key['id']}").status_code == 204
    revoked_at = time.monotonic()
    for url in replicas:  # the very next request on each is refused (the end is checked in Redis)
        with httpx.Client(base_url=url, timeout=60) as replica:
            refused = predict(replica, dep, bearer(secret))
            assert refused.status_code == 401, refused.text
            assert replica.get(f"/v2/models/{deployment['name']}", headers={"api-key": secret}).status_code == 401
    print(f"revoked key refused on both replicas {time.monotonic() - revoked_at:.3f} s after the DELETE returned")


def test_a_limit_holds_across_both_replicas_and_429_says_when(
    admin: httpx.Client, deployment: dict, replicas: list[str]
):
    dep, rate = deployment["id"], 4
    secret = create_key(admin, f"/api/v1/deployments/{dep}/keys", limits={"per_second": rate})["secret"]
    clients = [httpx.Client(base_url=url, timeout=60) for url in replicas]
    try:
        started = time.monotonic()
        with ThreadPoolExecutor(6) as pool:
            answers = list(pool.map(lambda i: predict(clients[i % 2], dep, bearer(secret)), range(36)))
        elapsed = time.monotonic() - started
    finally:
        for client in clients:
            client.close()
    admitted = [a for a in answers if a.status_code == 200]
    refused = [a for a in answers if a.status_code == 429]
    assert len(admitted) + len(refused) == len(answers), {a.status_code for a in answers}
    # A full bucket (rate) plus what refills while the requests run, whichever replica served them.
    assert rate <= len(admitted) <= rate + rate * elapsed + 1, (len(admitted), elapsed)
    assert refused, "nothing was refused"
    problem = refused[0]
    assert problem.headers["content-type"].startswith("application/problem+json")
    assert problem.json()["code"] == "rate_limited" and int(problem.headers["Retry-After"]) >= 1
    assert problem.headers["RateLimit-Policy"] == f'"key-per-second";q={rate};w=1'
    assert problem.headers["RateLimit"].startswith('"key-per-second";r=0;t=')
    assert all('"key-per-second";r=' in a.headers["RateLimit"] for a in admitted)


def test_an_image_quota_counts_images(admin: httpx.Client, deployment: dict):
    dep = deployment["id"]
    secret = create_key(admin, f"/api/v1/deployments/{dep}/keys", limits={"images_per_day": 3})["secret"]
    first = predict(admin, dep, bearer(secret), images=2)
    assert first.status_code == 200
    assert first.headers["RateLimit"].startswith('"key-images-per-day";r=1;')
    assert 'qu="images"' in first.headers["RateLimit-Policy"]
    over = predict(admin, dep, bearer(secret), images=2)
    assert over.status_code == 429 and over.json()["code"] == "rate_limited"
    assert int(over.headers["Retry-After"]) > 1  # until the UTC day ends
    assert predict(admin, dep, bearer(secret), images=1).status_code == 200  # a refused request took nothing
    assert predict(admin, dep, bearer(secret), images=1).status_code == 429


def test_deployment_limits_bind_every_caller(admin: httpx.Client, deployment: dict, other_project: dict[str, str]):
    dep = deployment["id"]
    path = f"/api/v1/deployments/{dep}/limits"
    bad = admin.put(path, json={"per_minute": -1, "concurrent": "x", "extra": 1})
    assert bad.status_code == 422 and len(bad.json()["errors"]) == 3
    assert admin.put(path, json={"per_minute": 2}).json()["per_minute"] == 2
    try:
        with httpx.Client(base_url=str(admin.base_url), headers=other_project, timeout=30) as other:
            assert other.get(path).status_code == 404
            assert other.put(path, json={}).status_code == 404
        codes = []
        deadline = time.monotonic() + 30  # each replica caches limits for a few seconds
        while 429 not in codes:
            codes.append(predict(admin, dep, {}).status_code)
            assert time.monotonic() < deadline, codes
        limited = predict(admin, dep, {})
        assert limited.status_code == 429 and '"deployment-per-minute";q=2;w=60' in limited.headers["RateLimit-Policy"]
    finally:
        cleared: Any = admin.put(path, json={}).json()
        assert cleared["per_minute"] is None
