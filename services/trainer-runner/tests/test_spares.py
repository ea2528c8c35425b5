"""Spare (pre-warmed) trainer children: the supervisor's `spare()`/`assign()`, the child's side, the pool."""

from __future__ import annotations

import asyncio
import json
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from vtp_trainer_runner.protocol import Failed, Log, Started
from vtp_trainer_runner.spares import SparePool
from vtp_trainer_runner.spec import JobSpec
from vtp_trainer_runner.supervisor import JobProcess

# A stand-in spare: reports its environment, then echoes the job line it is given (or exits at EOF).
FAKE_SPARE = """
import json, os, sys
fd = int(os.environ["VTP_REPORT_FD"])
def send(message):
    os.write(fd, json.dumps(message).encode() + b"\\n")
env = {k: os.environ.get(k) for k in ("CUDA_VISIBLE_DEVICES", "VTP_SPARE_DIR", "VTP_JOB_SPEC", "VTP_S3_SECRET_KEY")}
send({"type": "log", "message": json.dumps({"env": env, "cwd": os.getcwd()})})
line = sys.stdin.readline()
if not line:
    sys.exit(0)
send({"type": "log", "message": line.strip()})
send({"type": "finished", "status": "completed"})
"""


def spec(tmp_path: Path, **fields: Any) -> JobSpec:
    base = {"job_id": uuid.uuid4(), "project_id": uuid.uuid4(), "attempt": 1, "framework": "ultralytics"}
    base |= {"task_type": "detect", "model": "yolo11n", "data": tmp_path / "data", "work_dir": tmp_path / "work"}
    return JobSpec.model_validate(base | fields)


@pytest.fixture
def fake_python(tmp_path: Path) -> str:
    script = tmp_path / "fake-python"
    script.write_text(f"#!{sys.executable}\n{FAKE_SPARE}")
    script.chmod(0o755)
    return str(script)


async def test_a_spare_gets_its_slot_environment_and_then_one_job(
    tmp_path: Path, fake_python: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VTP_S3_SECRET_KEY", "runner-only")
    job = spec(tmp_path)
    async with await JobProcess.spare(tmp_path / "spare", gpus=[1], python=fake_python) as proc:
        assert proc.spec is None
        assert await proc.assign(job) and proc.spec == job
        assert not await proc.assign(job)  # one job per spare
        env, line, finished = [m async for m in proc.messages()]
        assert await proc.wait() == 0
    assert isinstance(env, Log) and json.loads(env.message) == {
        "env": {
            "CUDA_VISIBLE_DEVICES": "1",
            "VTP_SPARE_DIR": str(tmp_path / "spare"),
            "VTP_JOB_SPEC": None,
            "VTP_S3_SECRET_KEY": None,
        },
        "cwd": str(tmp_path / "spare"),
    }
    assert isinstance(line, Log) and json.loads(line.message) == {
        "spec": str(job.work_dir / "job-spec.json"),
        "cwd": str(job.work_dir),
        "log": str(job.work_dir / "trainer.log"),
    }
    assert proc.terminal == finished and JobSpec.read(job.work_dir / "job-spec.json") == job


async def test_a_dead_spare_refuses_the_job(tmp_path: Path, fake_python: str) -> None:
    proc = await JobProcess.spare(tmp_path / "spare", python=fake_python)
    proc.kill()
    await proc.wait()
    assert not await proc.assign(spec(tmp_path))
    await proc.close()


async def test_the_real_child_preloads_then_runs_the_job_it_is_given(tmp_path: Path) -> None:
    job = spec(tmp_path, framework="timm")  # fails fast once assigned: no such plugin
    async with await JobProcess.spare(tmp_path / "spare", gpus=[]) as proc:
        assert await proc.assign(job)
        async with asyncio.timeout(120):  # the spare imports torch and Ultralytics first
            messages = [m async for m in proc.messages()]
            assert await proc.wait() == 1
    started, failed = messages
    assert isinstance(started, Started) and started.pid == proc.pid
    assert isinstance(failed, Failed) and failed.code == "INVALID_CONFIG" and "timm" in failed.message
    log = (job.work_dir / "trainer.log").read_text()
    assert "plugins preloaded in" in log  # the child's output moved to the attempt's log
    assert (tmp_path / "spare" / "ultralytics-config").is_dir()  # Ultralytics' settings from its preload


async def test_the_real_child_exits_quietly_when_no_job_comes(tmp_path: Path) -> None:
    proc = await JobProcess.spare(tmp_path / "spare", gpus=[])
    stdin = proc._process.stdin
    assert stdin is not None
    stdin.close()  # what a runner that dies does to it
    async with asyncio.timeout(120):
        assert [m async for m in proc.messages()] == []
        assert await proc.wait() == 0
    await proc.close()


def pool(tmp_path: Path, fake_python: str, slots: int = 2) -> SparePool:
    async def spawn(scratch: Path, gpus: list[int]) -> JobProcess:
        return await JobProcess.spare(scratch, gpus=gpus, python=fake_python)

    return SparePool(tmp_path / "spares", [[n] for n in range(slots)], spawn)


async def test_the_pool_keeps_one_spare_per_free_slot(tmp_path: Path, fake_python: str) -> None:
    spares = pool(tmp_path, fake_python)
    await spares.start()
    first = spares.spares
    assert sorted(first) == [0, 1]
    taken = await spares.take(0)
    assert taken is first[0] and sorted(spares.spares) == [1]
    await spares.release(0, taken)  # never given its job: it stays the slot's spare
    assert spares.spares[0] is taken
    used = await spares.take(0)
    assert used is not None and await used.assign(spec(tmp_path))
    await spares.release(0, None)  # its attempt ended: a new spare
    assert spares.spares[0] not in (taken, first[1]) and spares.spares[1] is first[1]
    await used.close()
    children = list(spares.spares.values())
    await spares.close()
    assert spares.spares == {} and all(c.returncode is not None for c in children)
    await spares.release(1, None)  # an attempt that ends after shutdown starts nothing
    assert spares.spares == {}


async def test_the_pool_starts_a_spare_on_demand_and_replaces_dead_ones(tmp_path: Path, fake_python: str) -> None:
    spares = pool(tmp_path, fake_python, slots=1)
    on_demand = await spares.take(0)  # no start(): the attempt still gets a child at once
    assert on_demand is not None and spares.spares == {}
    await spares.release(0, on_demand)
    on_demand.kill()
    for _ in range(100):  # replaced after a 2 s pause
        replacement = spares.spares.get(0)
        if replacement not in (None, on_demand):
            break
        await asyncio.sleep(0.1)
    assert replacement is not None and replacement is not on_demand and replacement.returncode is None
    await spares.close()
    assert replacement.returncode is not None
