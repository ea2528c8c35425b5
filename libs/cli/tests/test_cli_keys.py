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
