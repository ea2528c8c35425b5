"""Switching a deployment to another export of the same job under load, with no failed request, and
rolling back in one call; a refused switch leaves the deployment serving what it served."""

from __future__ import annotations

import threading
import uuid
from pathlib import Path

import httpx
import pytest

from vtp_localstack.stack import LocalStack

from ..export.conftest import wait_for
from .conftest import unique

pytestmark = pytest.mark.integration


class Load:
    """Predicts in a loop on its own connection; records every answer's status and export."""

    def __init__(self, stack: LocalStack, token: str, deployment_id: str, image: bytes) -> None:
        self.answers: list[tuple[int, str | None]] = []
        self._stop = threading.Event()
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "image/png"}
        url = f"{stack.cfg.gateway_url}/api/v1/deployments/{deployment_id}/predict"

        def run() -> None:
            with httpx.Client(headers=headers, timeout=60) as client:
                while not self._stop.is_set():
                    response = client.post(url, content=image)
                    export = response.json().get("export_id") if response.status_code == 200 else response.text
                    self.answers.append((response.status_code, export))

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()

    def seen(self, export_id: str, after: int) -> bool:
        return any(e == export_id for _, e in self.answers[after:])

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=60)


def test_switch_and_roll_back_under_load_without_a_failed_request(
    admin: httpx.Client,
    stack: LocalStack,
    admin_token: str,
    onnx_export: dict,
    second_export: dict,
    photos: dict[str, Path],
):
    first, second = onnx_export["id"], second_export["id"]
    created = admin.post("/api/v1/deployments", json={"export_id": first, "name": unique("switch")}).json()
    did = created["id"]
    load = Load(stack, admin_token, did, photos["small-96.png"].read_bytes())
    try:
        wait_for(lambda: {"n": len(load.answers)}, lambda s: s["n"] >= 3, 60)

        mark = len(load.answers)
        switched = admin.patch(f"/api/v1/deployments/{did}", json={"export_id": second}, timeout=120)
        assert switched.status_code == 200, switched.text
        assert switched.json()["export_id"] == second and switched.json()["previous_export"]["export_id"] == first
        wait_for(lambda: {"seen": load.seen(second, mark)}, lambda s: s["seen"], 60)

        mark = len(load.answers)
        back = admin.post(f"/api/v1/deployments/{did}/rollback")
        assert back.status_code == 200 and back.json()["export_id"] == first
        assert back.json()["export_version"] == onnx_export["version"]
        assert back.json()["previous_export"]["export_id"] == second
        wait_for(lambda: {"seen": load.seen(first, mark)}, lambda s: s["seen"], 60)
    finally:
        load.stop()
    failed = [a for a in load.answers if a[0] != 200]
    assert not failed, failed[:3]
    assert {e for _, e in load.answers} == {first, second}


def test_a_refused_switch_changes_nothing(
    admin: httpx.Client, onnx_export: dict, second_export: dict, other_project: dict
):
    created = admin.post("/api/v1/deployments", json={"export_id": onnx_export["id"], "name": unique("keep")}).json()
    did = created["id"]
    taken = admin.post("/api/v1/deployments", json={"export_id": onnx_export["id"], "name": unique("taken")}).json()
    clash = admin.patch(f"/api/v1/deployments/{did}", json={"export_id": second_export["id"], "name": taken["name"]})
    assert clash.status_code == 409 and clash.json()["code"] == "deployment_name_taken"  # both or neither
    missing = admin.patch(f"/api/v1/deployments/{did}", json={"export_id": str(uuid.uuid4()), "conf": 0.4})
    assert missing.status_code == 422 and missing.json()["code"] == "export_not_found"
    after = admin.get(f"/api/v1/deployments/{did}").json()
    assert after["export_id"] == onnx_export["id"] and after["defaults"]["conf"] == created["defaults"]["conf"]
    assert after["previous_export"] is None
    never = admin.post(f"/api/v1/deployments/{did}/rollback")
    assert never.status_code == 409 and never.json()["code"] == "no_previous_export"
    with httpx.Client(base_url=str(admin.base_url), headers=other_project, timeout=30) as other:
        assert other.post(f"/api/v1/deployments/{did}/rollback").status_code == 404
