"""A worker killed mid-batch: another replica resumes after the last recorded chunk and the results
hold each image exactly once. The killed worker is an extra inference process (the stack's process
spec on its own port) whose `batch.after_chunk` failpoint ends it (exit 137, as SIGKILL would)
right after it recorded its first chunk; the stack's replica takes the batch over once the lease
expires. Which member of the `batchers` group takes a command is Kafka's choice, so batches are
submitted, once the extra process's worker holds some of the topic's partitions (it logs each
change), until one landed on it (each does with probability about 1/2). The resumed
attempt goes on in the trace of the request that submitted the batch: every event of the batch on
Kafka, attempt 2's command (staged by the lease watchdog) included, carries its trace id."""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from vtp_localstack.ports import free_port
from vtp_localstack.services import service_env
from vtp_localstack.stack import LocalStack

from .conftest import Traced, batch_events, deploy, predicted, rows_of, same_detections, submit, wait_batch

pytestmark = pytest.mark.integration
TRIES = 8
HOLDS = re.compile(r"batch commands: this member of batchers holds partitions \[\d")  # not "[]"


class DoomedReplica:
    """An extra `vtp-inference` whose batch worker dies after its first recorded chunk."""

    def __init__(self, stack: LocalStack, log: Path) -> None:
        self.port = free_port()
        env = {**os.environ, **service_env(stack.cfg, "inference")}
        env.update(VTP_HTTP_PORT=str(self.port), VTP_GRPC_PORT="0", VTP_FAILPOINTS="batch.after_chunk")
        script = str(Path(sys.executable).parent / "vtp-inference")
        with log.open("ab") as out:
            self.process = subprocess.Popen([script], env=env, stdout=out, stderr=out, cwd=stack.cfg.run_path)
        self.log = log
        deadline = time.monotonic() + 180
        while True:
            assert self.process.poll() is None, log.read_text()[-3000:]
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/health", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the extra replica never became healthy"
            time.sleep(0.5)
        self._wait_for_partitions(deadline=time.monotonic() + 120)

    def _wait_for_partitions(self, deadline: float) -> None:
        """Until its batch worker holds `batch.requested.v1` partitions: the rebalance that let it
        into the `batchers` group is over, so some of the batches sent next are its to take."""
        while not HOLDS.search(self.log.read_text(errors="replace")):
            assert self.process.poll() is None, self.log.read_text()[-3000:]
            assert time.monotonic() < deadline, "the extra replica's worker never got a partition"
            time.sleep(0.5)

    def died(self) -> bool:
        return self.process.poll() is not None

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(60)


@pytest.fixture()
def doomed(stack: LocalStack, tmp_path: Path) -> Iterator[DoomedReplica]:
    replica = DoomedReplica(stack, tmp_path / "inference-doomed.log")
    try:
        yield replica
    finally:
        replica.stop()


def test_a_killed_worker_is_resumed_and_every_image_is_in_the_results_once(
    stack: LocalStack, admin_token: str, admin: httpx.Client, onnx_export: dict[str, Any],
    images: dict[str, bytes], batch_zip: bytes, doomed: DoomedReplica,
) -> None:  # fmt: skip
    deployment = deploy(stack, admin_token, onnx_export["id"], "batch-resume")
    for _ in range(TRIES):
        trace_id = secrets.token_hex(16)  # the submitting request's trace
        traceparent = f"00-{trace_id}-{secrets.token_hex(8)}-01"
        batch = submit(admin, deployment["id"], batch_zip, headers={"traceparent": traceparent})
        assert batch.status_code == 202, batch.text
        path = f"/api/v1/deployments/{deployment['id']}/batches/{batch.json()['id']}"
        done = wait_batch(admin, path, timeout=600)
        assert done["status"] == "succeeded", done
        if doomed.died():
            break
        assert done["attempt"] == 1  # the stack's replica took it and nobody died
    assert doomed.died(), f"none of {TRIES} batches went to the extra replica"
    assert doomed.process.returncode == 137, doomed.log.read_text()[-3000:]

    # The extra replica recorded chunk 0 and died; attempt 2 resumed at chunk 1.
    assert done["attempt"] == 2, done
    assert done["progress"]["processed_images"] == 20 and done["progress"]["chunks_done"] == 5, done
    rows = rows_of(admin, path)
    assert [r["index"] for r in rows] == list(range(20))
    assert [r["file"] for r in rows] == sorted(images)
    for row in rows:
        name = row["file"]
        answer = predicted(admin, deployment["id"], name, images[name])
        assert same_detections(row["detections"], answer["detections"]), name
    assert _trace_ids_of_both_attempts(stack, done["id"]) == {trace_id}


def _trace_ids_of_both_attempts(stack: LocalStack, batch_id: str) -> set[str]:
    """The trace ids of the batch's events: both commands, every progress (chunk 0 by the killed worker), the end."""
    topics = ["batch.requested.v1", "batch.progress.v1", "batch.completed.v1"]

    def complete(found: list[Traced]) -> bool:
        commands = {data["attempt"] for topic, data, _ in found if topic == topics[0]}
        chunks = {data["chunks_done"] for topic, data, _ in found if topic == topics[1]}
        return commands == {1, 2} and chunks == {1, 2, 3, 4, 5} and any(t == topics[2] for t, _, _ in found)

    return {trace for _, _, trace in asyncio.run(batch_events(stack, batch_id, topics, complete))}
