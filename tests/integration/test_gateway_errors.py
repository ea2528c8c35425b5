"""The gateway's Caddy, configured as the stacks configure it, never answers an empty 502.

A real Caddy runs the Caddyfile rendered from the routing table, in front of an upstream that
is down and one that drops every connection without an answer (a service that crashed).
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from vtp_gateway.caddyfile import render
from vtp_localstack.ports import free_port
from vtp_localstack.processes import port_open, wait_until

pytestmark = pytest.mark.integration


def _dropping_server() -> tuple[int, socket.socket]:
    """Accepts connections and closes them at once, before any answer."""
    server = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:  # closed by the fixture
                return
            conn.close()

    threading.Thread(target=serve, daemon=True).start()
    return server.getsockname()[1], server


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    home = tmp_path_factory.mktemp("caddy")
    dropping_port, dropping = _dropping_server()
    listen = f"127.0.0.1:{free_port()}"
    upstreams = {"identity": f"127.0.0.1:{free_port()}", "jobs": f"127.0.0.1:{dropping_port}"}  # down; dropping
    caddyfile = home / "Caddyfile"
    caddyfile.write_text(render(listen, upstreams, f"127.0.0.1:{free_port()}"))
    binary = shutil.which("caddy") or str(Path(sys.executable).parent / "caddy")
    env = {"HOME": str(home), "XDG_DATA_HOME": str(home / "data"), "XDG_CONFIG_HOME": str(home / "config")}
    process = subprocess.Popen(
        [binary, "run", "--config", str(caddyfile), "--adapter", "caddyfile"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        host, port = listen.split(":")
        wait_until(lambda: port_open(host, int(port)), 30, "caddy")
        yield f"http://{listen}"
    finally:
        process.terminate()
        process.wait(10)
        dropping.close()


@pytest.mark.parametrize("method", ["GET", "POST", "DELETE"])
@pytest.mark.parametrize("path", ["/api/v1/projects", "/api/v1/jobs", "/api/v1/health"])
def test_an_unreachable_or_dropping_upstream_is_a_problem_502(proxy: str, method: str, path: str):
    response = httpx.request(method, proxy + path, json={"name": "x"}, timeout=30)
    assert response.status_code == 502
    assert response.headers["content-type"] == "application/problem+json"
    body = json.loads(response.content)
    assert body == {
        "type": "https://vtp.dev/problems/upstream_unavailable",
        "title": "Service unavailable",
        "status": 502,
        "code": "upstream_unavailable",
        "detail": "The service behind this route did not answer; try again shortly.",
    }
