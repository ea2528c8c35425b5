"""A deployment's model files in object storage (the stack's real S3, listed before and after): a refused
switch stores nothing that stays, a split ended by a switch or by a rollback deletes the canary's file,
a split that keeps its canary keeps it, and deleting a deployment deletes its files, not another's."""

from __future__ import annotations

import asyncio
import io
from typing import Any

import httpx
import pytest
from PIL import Image

from vtp_localstack.stack import LocalStack
from vtp_runtime.storage import ObjectStore

from .conftest import unique
from .test_triton import _store

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def store(stack: LocalStack) -> ObjectStore:
    return _store(stack)


def _files(store: ObjectStore, deployment_id: str) -> set[str]:
    """The deployment's object keys (`deployments/<project>/<deployment>/...`)."""
    return {k for k in asyncio.run(store.list_keys("deployments/")) if f"/{deployment_id}/" in k}


def _create(admin: httpx.Client, export: dict[str, Any]) -> str:
    created = admin.post("/api/v1/deployments", json={"export_id": export["id"], "name": unique("files")}, timeout=120)
    assert created.status_code == 201 and created.json()["status"] == "ready", created.text
    return str(created.json()["id"])


def _patch(admin: httpx.Client, deployment_id: str, body: dict[str, Any]) -> httpx.Response:
    return admin.patch(f"/api/v1/deployments/{deployment_id}", json=body, timeout=120)


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (90, 120, 200)).save(buffer, "PNG")
    return buffer.getvalue()


def _split(first: str, second: str, weight: int) -> dict[str, Any]:
    return {"traffic": [{"export_id": first, "weight": 100 - weight}, {"export_id": second, "weight": weight}]}


def test_a_refused_switch_leaves_no_new_file(
    admin: httpx.Client, store: ObjectStore, onnx_export: dict, second_export: dict
):
    did, taken = _create(admin, onnx_export), _create(admin, onnx_export)
    before = _files(store, did)
    assert len(before) == 1  # model.onnx
    name = admin.get(f"/api/v1/deployments/{taken}").json()["name"]
    clash = _patch(admin, did, {"export_id": second_export["id"], "name": name})  # prepared, then refused
    assert clash.status_code == 409 and clash.json()["code"] == "deployment_name_taken", clash.text
    assert _files(store, did) == before


def test_a_split_ended_by_a_switch_deletes_the_canarys_file(
    admin: httpx.Client, store: ObjectStore, onnx_export: dict, second_export: dict
):
    first, second = onnx_export["id"], second_export["id"]
    did = _create(admin, onnx_export)
    base = _files(store, did)
    assert _patch(admin, did, _split(first, second, 20)).status_code == 200
    canary = _files(store, did) - base
    assert len(canary) == 1
    assert _patch(admin, did, _split(first, second, 40)).status_code == 200  # the same canary: its file stays
    assert _files(store, did) == base | canary

    switched = _patch(admin, did, {"export_id": second})  # serves `second` (stored anew), ends the split
    assert switched.status_code == 200, switched.text
    assert [(s["export_id"], s["weight"]) for s in switched.json()["traffic"]] == [(second, 100)]
    after = _files(store, did)
    assert not after & canary and base <= after and len(after) == 2  # current and previous (`first`)


def test_a_split_ended_by_a_rollback_deletes_the_canarys_file(
    admin: httpx.Client, store: ObjectStore, onnx_export: dict, second_export: dict
):
    first, second = onnx_export["id"], second_export["id"]
    did = _create(admin, onnx_export)
    assert _patch(admin, did, {"export_id": second}).status_code == 200
    base = _files(store, did)
    assert len(base) == 2  # current and previous
    assert _patch(admin, did, _split(second, first, 30)).status_code == 200
    assert len(_files(store, did) - base) == 1  # the canary's own copy of `first`
    back = admin.post(f"/api/v1/deployments/{did}/rollback")
    assert back.status_code == 200 and back.json()["export_id"] == first, back.text
    assert _files(store, did) == base


def test_deleting_a_deployment_deletes_its_files_and_not_anothers(
    admin: httpx.Client, store: ObjectStore, onnx_export: dict, second_export: dict
):
    gone, kept = _create(admin, onnx_export), _create(admin, onnx_export)
    assert _patch(admin, gone, {"export_id": second_export["id"]}).status_code == 200  # a previous one too
    assert len(_files(store, gone)) == 2
    theirs = _files(store, kept)
    assert admin.delete(f"/api/v1/deployments/{gone}").status_code == 204
    assert _files(store, gone) == set()
    assert _files(store, kept) == theirs  # the same export, deployed elsewhere: its files stay
    served = admin.post(
        f"/api/v1/deployments/{kept}/predict", content=_png(), headers={"Content-Type": "image/png"}, timeout=60
    )
    assert served.status_code == 200, served.text
