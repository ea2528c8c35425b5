"""`vtp keys`: the request a key creation sends, and the secret shown once with a curl line."""

from __future__ import annotations

from typing import Any

from cli_fakes import DEPLOYMENT_ID, FakeClient

KEY = {
    "id": "55555555-5555-5555-5555-555555555555", "name": "ci", "prefix": "vtpk_ab12", "status": "active",
    "scopes": ["predict"], "deployments": [DEPLOYMENT_ID], "limits": {}, "created_at": "2026-12-02T10:00:00",
    "expires_at": None, "revoked_at": None, "last_used_at": None, "rotated_to": None,
}  # fmt: skip


def test_create_shows_the_secret_once_with_a_curl_line(fake: FakeClient, vtp: Any) -> None:
    fake.answers["keys.create"] = {**KEY, "secret": "vtpk_ab12_secret"}
    result = vtp("keys", "create", DEPLOYMENT_ID, "--name", "ci", "--images-per-day", "100", "--days", "7")
    assert result.exit_code == 0, result.output
    (((name,), kwargs),) = fake.called("keys.create")
    assert name == "ci" and kwargs["deployment_id"] == DEPLOYMENT_ID and kwargs["scopes"] == ("predict",)
    assert kwargs["limits"] == {"images_per_day": 100} and kwargs["expires_at"] is not None
    assert "secret (shown once): vtpk_ab12_secret" in result.stdout
    endpoint = f"http://gateway.test/api/v1/deployments/{DEPLOYMENT_ID}/predict"
    assert f'curl -H "Authorization: Bearer vtpk_ab12_secret" -F file=@image.jpg {endpoint}' in result.stdout


def test_ls_and_revoke(fake: FakeClient, vtp: Any) -> None:
    fake.answers["keys.list"] = {"items": [KEY], "total": 1, "limit": 50, "offset": 0}
    result = vtp("keys", "ls", DEPLOYMENT_ID)
    assert result.exit_code == 0 and "vtpk_ab12" in result.stdout and "active" in result.stdout
    assert fake.called("keys.list")[0][1]["deployment_id"] == DEPLOYMENT_ID
    fake.answers["keys.revoke"] = None
    assert vtp("keys", "revoke", KEY["id"]).exit_code == 0
    assert [str(args[0]) for args, _ in fake.called("keys.revoke")] == [KEY["id"]]


def test_usage_of_a_deployment(fake: FakeClient, vtp: Any) -> None:
    from vtp_client.usage import Usage

    figures = {
        "requests": 3, "images": 5, "errors": 1, "errors_by_code": {"image_undecodable": 1},
        "latency_ms": {"p50": 4.2, "p95": 9.0, "p99": 9.9}, "compute_seconds": 0.05, "bytes_in": 20_000,
    }  # fmt: skip
    fake.answers["usage.deployment"] = Usage.model_validate({
        "granularity": "minute", "from": "2026-12-02T10:00:00+00:00", "to": "2026-12-02T11:00:00+00:00",
        "deployment_id": DEPLOYMENT_ID, "series": [{"start": "2026-12-02T10:05:00+00:00", **figures}],
        "total": figures, "by_key": [{"key_id": None, **figures}],
    })  # fmt: skip
    result = vtp("usage", DEPLOYMENT_ID, "--granularity", "minute")
    assert result.exit_code == 0, result.output
    total = [c.strip() for c in next(x for x in result.stdout.splitlines() if " total " in x).strip("│ ").split("│")]
    assert total == ["total", "3", "5", "1 (image_undecodable 1)", "4.2", "9.0", "9.9", "0.05", "20.0 kB"]
    assert "2026-12-02 10:00:00 to 2026-12-02 11:00:00, per minute" in result.stdout
    assert "project token: 3 requests, 5 images" in result.stdout
    assert '"from": "2026-12-02T10:00:00Z"' in vtp("usage", DEPLOYMENT_ID, "--json").stdout
