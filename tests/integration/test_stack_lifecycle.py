"""`make up` is idempotent and heals; `make down` leaves nothing behind."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import psutil
import pytest

from vtp_localstack.ports import isolated_config
from vtp_localstack.stack import LocalStack

pytestmark = pytest.mark.integration


def test_up_again_starts_nothing(stack: LocalStack):
    assert stack.up() == []


def test_killed_service_is_the_only_one_restarted(stack: LocalStack):
    before = {c.name: c.pid for c in stack.components()}
    os.kill(before["jobs"], signal.SIGKILL)
    psutil.Process(before["jobs"]).wait(5)
    assert stack.up() == ["jobs"]
    after = {c.name: c.pid for c in stack.components()}
    assert after["jobs"] != before["jobs"]
    assert {n: p for n, p in after.items() if n != "jobs"} == {n: p for n, p in before.items() if n != "jobs"}
    assert stack.gateway_healthy()


def test_down_stops_every_process(tmp_path: Path):
    cfg = isolated_config(tmp_path / "run")
    local = LocalStack(cfg)
    local.up(services=("trainer-runner",), gateway=False)
    pids = [c.pid for c in local.components() if c.pid]
    assert len(pids) == 2  # kafka and the runner
    stopped = local.down()
    assert set(stopped) == {"kafka", "trainer-runner"}
    assert not [p for p in pids if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
    assert local.down() == []
