"""A replica killed with SIGKILL loses at most its last flush interval of usage, one stopped gracefully
flushes what it holds, and a restarted one counts nothing twice: an extra inference process (the
stack's process spec on its own port) serves a deployment of its own; usage is read through the gateway."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from vtp_localstack.ports import free_port
from vtp_localstack.services import service_env
from vtp_localstack.stack import LocalStack

from .conftest import deploy, jpeg, wait_usage

pytestmark = pytest.mark.integration
FLUSH_SECONDS = 1.0


class Replica:
    """One extra `vtp-inference` process; SIGKILL-able, restartable on the same port."""

    def __init__(self, stack: LocalStack, log: Path) -> None:
        self.port = free_port()
        self.env = {
            **os.environ,
            **service_env(stack.cfg, "inference"),
            "VTP_HTTP_PORT": str(self.port),
            "VTP_GRPC_PORT": "0",  # the stack's first replica serves gRPC
        }
        self.log, self.cwd = log, stack.cfg.run_path
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, flush_seconds: float = FLUSH_SECONDS) -> None:
        script = str(Path(sys.executable).parent / "vtp-inference")
        env = {**self.env, "VTP_USAGE_FLUSH_SECONDS": str(flush_seconds)}
        with self.log.open("ab") as out:
            self.process = subprocess.Popen([script], env=env, stdout=out, stderr=out, cwd=self.cwd)
        deadline = time.monotonic() + 180
        while True:
            assert self.process.poll() is None, self.log.read_text()[-3000:]
            try:
                if httpx.get(f"{self.url}/health", timeout=5).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the extra replica never became healthy"
            time.sleep(0.5)

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(sig)
            self.process.wait(60)


@pytest.fixture()
def replica(stack: LocalStack, tmp_path: Path) -> Iterator[Replica]:
    extra = Replica(stack, tmp_path / "inference-extra.log")
    extra.start()
    try:
        yield extra
    finally:
        extra.kill()


def _predicts(url: str, token: str, deployment_id: str, count: int) -> int:
    """`count` predicts straight to one replica; the number the client saw succeed."""
    ok = 0
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=60) as client:
        for _ in range(count):
            response = client.post(f"/api/v1/deployments/{deployment_id}/predict", files=[("file", ("a.jpg", jpeg()))])
            ok += response.status_code == 200
    return ok


def test_sigkill_loses_at_most_one_flush_interval_and_a_restart_counts_nothing_twice(
    stack: LocalStack,
    admin_token: str,
    admin: httpx.Client,
    onnx_export: dict[str, Any],
    replica: Replica,
):
    deployment = deploy(stack, admin_token, onnx_export["id"], "sigkill")
    began = datetime.now(UTC)
    path = f"/api/v1/deployments/{deployment['id']}/usage"
    window = {"from": (began - timedelta(hours=1)).isoformat(), "to": (began + timedelta(hours=1)).isoformat()}
    window["granularity"] = "minute"

    def requests(wanted: int) -> int:
        return int(wait_usage(admin, path, window, lambda b: b["total"]["requests"] >= wanted)["total"]["requests"])

    flushed = _predicts(replica.url, admin_token, deployment["id"], 6)
    assert flushed == 6 and requests(flushed) == flushed  # flushed within a second or so: exactly what succeeded

    sent_at = time.monotonic()
    unflushed = _predicts(replica.url, admin_token, deployment["id"], 3)  # then killed before it can flush them
    replica.kill()
    killed_after = time.monotonic() - sent_at
    time.sleep(3 * FLUSH_SECONDS)
    after_kill = requests(flushed)
    print(f"flushed {flushed}; sent {unflushed} more and killed {killed_after:.2f} s later; usage {after_kill}")
    # What the client saw succeed, less at most what the last interval held (the 3, or some of them).
    assert flushed <= after_kill <= flushed + unflushed, (after_kill, killed_after)

    # A new process: a new replica id, batches numbered from 1 again. It flushes only when it stops
    # (an hour-long interval), so what it counts arrives exactly once, by the final flush.
    replica.start(flush_seconds=3600)
    more = _predicts(replica.url, admin_token, deployment["id"], 4)
    assert more == 4
    time.sleep(3 * FLUSH_SECONDS)
    assert requests(after_kill) == after_kill  # not flushed yet
    replica.kill(signal.SIGTERM)  # graceful: the final flush
    assert replica.process is not None and replica.process.returncode in (0, -signal.SIGTERM)  # uvicorn re-raises
    total = requests(after_kill + more)
    assert total == after_kill + more
    replica.start()  # and once more: the restart replays nothing
    time.sleep(3 * FLUSH_SECONDS)
    body = admin.get(path, params=window).json()["total"]
    assert body["requests"] == total and body["images"] == total  # one image per request
