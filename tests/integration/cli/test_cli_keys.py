"""`vtp keys create|ls|revoke`: a deployment key predicts, is refused management routes (exit 4),
is rate limited past its quota (exit 1, with when to retry), and stops working once revoked (exit 4)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from .conftest import Vtp, eventually

pytestmark = pytest.mark.integration
Deployed = tuple[subprocess.CompletedProcess[str], dict[str, Any]]


def test_a_key_predicts_until_revoked(vtp: Vtp, deployed: Deployed, dataset_dir: Path) -> None:
    deployment_id, image = deployed[1]["id"], str(next(dataset_dir.rglob("*.jpg")))
    created = vtp("keys", "create", "cli-shapes", "--name", "cli key")
    assert created.returncode == 0, created.stderr
    secret = next(w for w in created.stdout.split() if w.startswith("vtpk_") and len(w) > 20)
    assert f'-H "Authorization: Bearer {secret}"' in created.stdout
    key_id = created.stdout.split()[1]
    listed = vtp.json("keys", "ls", "cli-shapes")
    assert [k["id"] for k in listed["items"] if k["name"] == "cli key"] == [key_id]

    predicted = vtp("predict", deployment_id, image, VTP_TOKEN=secret)  # a key calls predict by id
    assert predicted.returncode == 0, predicted.stderr
    management = vtp("deployments", "ls", VTP_TOKEN=secret)
    assert management.returncode == 4 and "HTTP 403" in management.stderr

    assert vtp("keys", "revoke", key_id).returncode == 0
    refused = eventually(lambda: (r := vtp("predict", deployment_id, image, VTP_TOKEN=secret)).returncode and r, 30)
    assert refused.returncode == 4 and "HTTP 401" in refused.stderr
    assert vtp.json("keys", "ls")["items"][0]["status"] == "revoked"


def test_past_its_quota_a_key_is_rate_limited(vtp: Vtp, deployed: Deployed, dataset_dir: Path) -> None:
    deployment_id, image = deployed[1]["id"], str(next(dataset_dir.rglob("*.jpg")))
    secret = vtp.json("keys", "create", deployment_id, "--name", "one a day", "--images-per-day", "1")["secret"]
    assert vtp("predict", deployment_id, image, VTP_TOKEN=secret).returncode == 0
    limited = vtp("predict", deployment_id, image, VTP_TOKEN=secret)
    assert limited.returncode == 1
    assert "HTTP 429" in limited.stderr and "rate limited; retry after" in limited.stderr
