"""Schemathesis over every service's OpenAPI document, against the real stack.

Each service's own ``/openapi.json`` drives generated requests (valid and invalid) at that
service, authenticated with a token of a project made for this run alone, so nothing the
fuzzer creates or deletes can touch another test's data or the token the run itself uses.
Before a run, the project gets real resources (a dataset with two tasks and two snapshots, a
webhook subscription), and half of the generated ids are theirs: routes are exercised past
their 404s, e.g. every download format of every task. A run fails on any 5xx, any status
code, content type or header the document does not list, any response body that violates its
documented schema, any request the document calls invalid that the service accepts, and any
route that answers without a token. The live-feed WebSocket is not in the documents (OpenAPI
does not describe WebSockets), so it is not fuzzed here; tests/integration/notifier covers it.

The run goes through schemathesis's own command line (its stable interface): its pytest
plugin does not work with pytest 9's nodes.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from vtp_localstack.stack import LocalStack

from .datasets.dice_builder import DiceZip, classification_doc, valid_detection

pytestmark = pytest.mark.integration

SERVICES = ("identity", "jobs", "datasets", "notifier", "export", "inference", "trainer-runner", "gateway")
# Enough examples to reach every documented branch of a route, few enough that all services
# together stay within a few minutes on a 2-core CI machine.
MAX_EXAMPLES = 20
SEED = 20260101
PARALLEL = 2  # schemathesis runs at a time: about halves the wall time on a 2-core machine
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "response_headers_conformance",
    "negative_data_rejection",
    "ignored_auth",
)
# Stateful chains are left out: following links, a fuzzer can reach real token ids and revoke
# them, and the single-request phases already reach every documented status.
PHASES = "examples,coverage,fuzzing"
SCHEMATHESIS = str(Path(sys.executable).with_name("schemathesis"))


def _fuzz_project(stack: LocalStack, admin_token: str, service: str) -> tuple[str, str]:
    """A fresh project and token for one service's run (admin only where the routes need it)."""
    headers = {"Authorization": f"Bearer {admin_token}"}
    with httpx.Client(base_url=stack.cfg.gateway_url, timeout=30, headers=headers) as client:
        slug = f"fuzz-{service}-{uuid.uuid4().hex[:8]}"
        project = client.post("/api/v1/projects", json={"name": slug, "slug": slug})
        assert project.status_code == 201, project.text
        body = {"name": "schemathesis", "is_admin": service == "identity"}
        issued = client.post(f"/api/v1/projects/{project.json()['id']}/tokens", json=body)
        assert issued.status_code == 201, issued.text
        return project.json()["id"], issued.json()["token"]


Seeds = dict[str, list[str]]  # path parameter -> real ids of the fuzzed project


def _seed_datasets(api: httpx.Client, project_id: str) -> Seeds:
    """A detection + classification dataset with two snapshots (different splits)."""
    detection = valid_detection(6)
    det = "annotations_detection.json"
    labels = classification_doc(copy.deepcopy(detection.docs[det]["images"]))
    for image in labels["images"]:
        for ann in image["annotations"]:
            for key in ("bbox", "bbox_format", "area", "iscrowd"):
                ann.pop(key)
    files = {"file": ("d.zip", detection.build(), "application/zip")}
    dataset = api.post("/api/v1/datasets", data={"name": "fuzz seed"}, files=files)
    assert dataset.status_code == 201, dataset.text
    base = f"/api/v1/datasets/{dataset.json()['id']}"
    extra = {"file": ("c.zip", DiceZip({"annotations_classification.json": labels}).build(), "application/zip")}
    assert api.post(f"{base}/versions", files=extra).status_code == 201
    first = api.post(f"{base}/snapshots")
    split = {"method": "auto", "train": 0.5, "val": 0.5, "test": 0.0, "seed": 7}
    assert api.put(f"{base}/split", json=split).status_code == 200
    second = api.post(f"{base}/snapshots")
    assert first.status_code == second.status_code == 201, second.text
    snapshots = [first.json()["id"], second.json()["id"]]
    return {"dataset_id": [dataset.json()["id"]], "snapshot_id": snapshots, "other_id": snapshots}


def _seed_notifier(api: httpx.Client, project_id: str) -> Seeds:
    created = api.post("/api/v1/subscriptions", json={"url": "http://127.0.0.1:9/fuzz-seed"})
    assert created.status_code == 201, created.text
    return {"subscription_id": [created.json()["id"]]}


def _seed_identity(api: httpx.Client, project_id: str) -> Seeds:
    # No token ids: the fuzzer must not find and revoke the token it runs with.
    return {"project_id": [project_id]}


SEEDERS: dict[str, Callable[[httpx.Client, str], Seeds]] = {
    "identity": _seed_identity,
    "datasets": _seed_datasets,
    "notifier": _seed_notifier,
}


def _config(seeds: Seeds) -> str:
    """schemathesis.toml: each seeded path parameter takes a real id half of the time."""
    lines = [f"[dictionaries.{name}]\nvalues = {json.dumps(ids)}\n" for name, ids in seeds.items()]
    lines.append("[parameters]")
    lines += [f'"path.{name}" = {{ dictionary = "{name}", probability = 0.5 }}' for name in seeds]
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class Run:
    returncode: int
    report: str
    seconds: float


def _fuzz(stack: LocalStack, admin_token: str, service: str, work: Path) -> Run:
    """One schemathesis run over `service`, in a project of its own with seeded resources."""
    project_id, token = _fuzz_project(stack, admin_token, service)
    seeds: Seeds = {}
    if service in SEEDERS:
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=stack.cfg.gateway_url, timeout=60, headers=headers) as api:
            seeds = SEEDERS[service](api, project_id)
    config = work / "schemathesis.toml"
    config.write_text(_config(seeds) if seeds else "")
    base_url = stack.cfg.service_url(service)
    command = [
        SCHEMATHESIS,
        "--no-color",
        f"--config-file={config}",
        "run",
        f"{base_url}/openapi.json",
        f"--url={base_url}",
        f"--header=Authorization: Bearer {token}",
        f"--checks={','.join(CHECKS)}",
        f"--phases={PHASES}",
        f"--max-examples={MAX_EXAMPLES}",
        f"--seed={SEED}",
        "--generation-deterministic",
        "--workers=1",  # hypothesis parses lambdas with ast, which is not thread-safe on 3.11
        "--request-timeout=30",
        "--suppress-health-check=all",
        "--output-sanitize=true",
    ]
    started = time.monotonic()
    env = {**os.environ, "NO_COLOR": "1"}
    run = subprocess.run(command, cwd=work, capture_output=True, text=True, timeout=900, env=env)
    return Run(run.returncode, f"{run.stdout[-20000:]}\n{run.stderr[-3000:]}", time.monotonic() - started)


@pytest.fixture(scope="module")
def fuzz_runs(
    stack: LocalStack, admin_token: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Future[Run]]]:
    """Every service's run, started at once and PARALLEL at a time (generation is CPU-bound)."""
    with ThreadPoolExecutor(max_workers=PARALLEL) as pool:
        yield {
            service: pool.submit(_fuzz, stack, admin_token, service, tmp_path_factory.mktemp(f"fuzz-{service}"))
            for service in SERVICES
        }


@pytest.mark.parametrize("service", SERVICES)
def test_every_service_answers_as_its_openapi_document_says(service: str, fuzz_runs: dict[str, Future[Run]]) -> None:
    run = fuzz_runs[service].result()
    print(f"schemathesis over {service}: {run.seconds:.1f} s")
    assert run.returncode == 0, f"schemathesis found problems in {service}:\n{run.report}"
