"""`vtp hooks add|ls|deliveries|redeliver|rm`: a signed event reaches a local receiver and is redelivered."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from ..notifier.webhook_receiver import Receiver
from .conftest import Vtp, eventually

pytestmark = pytest.mark.integration


@pytest.fixture()
def receiver() -> Iterator[Receiver]:
    server = Receiver().start()
    yield server
    server.stop()


def test_a_hook_receives_signed_events_and_redelivers(
    vtp: Vtp, receiver: Receiver, uploaded: tuple[subprocess.CompletedProcess[str], dict[str, Any]]
) -> None:
    endpoint = receiver.endpoint()
    added = vtp("hooks", "add", endpoint.url, "--events", "dataset.snapshot-created.v1")
    assert added.returncode == 0, added.stderr
    subscription_id = added.stdout.split()[1].rstrip(":")
    endpoint.secret = next(w for w in added.stdout.split() if w.startswith("whsec_"))
    assert subscription_id in [s["id"] for s in vtp.json("hooks", "ls")["items"]]

    dataset_id = uploaded[1]["id"]
    assert vtp("data", "split", dataset_id, "--seed", "11").returncode == 0  # a new split: a new snapshot
    assert vtp("data", "snapshot", dataset_id).returncode == 0
    eventually(endpoint.ok, 60)
    assert endpoint.ok()[0].verified and endpoint.ok()[0].payload["type"] == "dataset.snapshot-created.v1"

    delivery = eventually(lambda: vtp.json("hooks", "deliveries", subscription_id, "--status", "succeeded")["items"])
    again = vtp("hooks", "redeliver", subscription_id, delivery[0]["id"])
    assert again.returncode == 0 and f"of {delivery[0]['id']}" in again.stdout
    eventually(lambda: len(endpoint.ok()) >= 2, 60)
    assert endpoint.ok()[1].payload["id"] == endpoint.ok()[0].payload["id"]  # the same event again

    assert vtp("hooks", "deliveries", str(uuid.uuid4())).returncode == 3
    assert vtp("hooks", "rm", subscription_id).returncode == 0
    assert vtp("hooks", "show", subscription_id).returncode == 3
    bad = vtp("hooks", "add", "ftp://example.com/x")
    assert bad.returncode == 1 and "#/body/url" in bad.stderr
