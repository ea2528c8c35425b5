"""Redis unreachable for the rate limits: `VTP_RATE_LIMIT_FAIL_MODE=closed` answers 503, `open` serves.

An extra inference process of the stack (its own port; rate limits pointed at a port where no
Redis listens, everything else the stack's) is asked directly, not through the gateway."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from vtp_localstack.ports import free_port
from vtp_localstack.services import service_env
from vtp_localstack.stack import LocalStack

from .conftest import bearer, create_key, predict

pytestmark = pytest.mark.integration


def _start(stack: LocalStack, mode: str, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {
        **os.environ,
        **service_env(stack.cfg, "inference"),
        "VTP_HTTP_PORT": str(port),
        "VTP_GRPC_PORT": "0",
        "VTP_RATE_LIMIT_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0",  # nothing listens there
        "VTP_RATE_LIMIT_FAIL_MODE": mode,
    }
    script = str(Path(sys.executable).parent / "vtp-inference")
    with log.open("ab") as out:
        process = subprocess.Popen([script], env=env, stdout=out, stderr=out, cwd=stack.cfg.run_path)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while True:  # liveness: /health reports the unreachable rate limit store, as it should
        assert process.poll() is None, log.read_text()[-3000:]
        try:
            if httpx.get(f"{url}/v2/health/live", timeout=5).status_code == 200:
                return process, url
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, "the extra replica never came up"
        time.sleep(0.5)


@pytest.mark.parametrize("mode", ["closed", "open"])
def test_unreachable_redis_fails_as_configured(
    stack: LocalStack, admin: httpx.Client, deployment: dict, mode: str, tmp_path: Path
):
    secret = create_key(admin, f"/api/v1/deployments/{deployment['id']}/keys", limits={"per_second": 100})["secret"]
    process, url = _start(stack, mode, tmp_path / f"inference-{mode}.log")
    try:
        with httpx.Client(base_url=url, timeout=60) as replica:
            answer = predict(replica, deployment["id"], bearer(secret))
            if mode == "closed":
                assert answer.status_code == 503, answer.text
                assert answer.json()["code"] == "rate_limit_unavailable"
            else:
                assert answer.status_code == 200, answer.text
                assert "RateLimit" not in answer.headers  # nothing could be counted
            metrics = replica.get("/metrics", headers=admin.headers).text
            assert f'vtp_inference_rate_limit_unavailable_total{{mode="{mode}"}}' in metrics
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
