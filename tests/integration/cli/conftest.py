"""The `vtp` command against the real stack: each test runs the installed console script in a subprocess.

One project and token per test session of this package, one generated dataset, and one short
training job (1 epoch, 64 px, as the export tests) that export, deploy and predict reuse.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest

from vtp_client import Client
from vtp_dice.sample import generate
from vtp_localstack.stack import LocalStack

VTP = Path(sys.executable).parent / "vtp"
TRAIN_ARGS = ["model=yolo11n", "epochs=1", "imgsz=64", "batch=8", "workers=0", "seed=0"]  # the export tests' job
T = TypeVar("T")


def eventually(probe: Callable[[], T | None], timeout: float = 120.0) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.5)


@dataclass
class Vtp:
    """Runs `vtp` as a user would: VTP_URL/VTP_TOKEN in the environment, a config file of its own."""

    url: str
    token: str | None
    config: Path

    def env(self, **overrides: str | None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("VTP_")}
        env |= {"VTP_URL": self.url, "VTP_CONFIG": str(self.config), "COLUMNS": "200", "NO_COLOR": "1"}
        if self.token:
            env["VTP_TOKEN"] = self.token
        for key, value in overrides.items():
            if value is None:
                env.pop(key, None)
            else:
                env[key] = value
        return env

    def __call__(self, *args: str, timeout: float = 900, **env: str | None) -> subprocess.CompletedProcess[str]:
        started = time.monotonic()
        result = subprocess.run(
            [str(VTP), *args], env=self.env(**env), capture_output=True, text=True, timeout=timeout, check=False
        )
        if transcript := os.environ.get("VTP_CLI_TRANSCRIPT"):  # every command as a user saw it, for review
            with open(transcript, "a") as log:
                took = time.monotonic() - started
                log.write(f"$ vtp {' '.join(args)}   # exit {result.returncode}, {took:.1f} s\n")
                log.write(result.stdout + result.stderr + "\n")
        return result

    def json(self, *args: str, **env: str | None) -> Any:
        result = self(*args, "--json", **env)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)


@pytest.fixture(scope="package")
def project(stack: LocalStack, admin_token: str) -> dict[str, Any]:
    """A project of its own and a token of it (never the admin's)."""
    with Client(stack.cfg.gateway_url, admin_token) as admin:
        created = admin.projects.create(f"CLI {uuid.uuid4().hex[:6]}")
        issued = admin.tokens.create(created.id, "cli-tests")
    return {"id": str(created.id), "token": issued.token, "token_id": str(issued.id)}


@pytest.fixture(scope="package")
def vtp(stack: LocalStack, project: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Vtp:
    return Vtp(stack.cfg.gateway_url, project["token"], tmp_path_factory.mktemp("vtp-config") / "config.json")


@pytest.fixture(scope="package")
def dataset_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate(tmp_path_factory.mktemp("cli-data") / "shapes", images=24, size=(96, 96), seed=7)


@pytest.fixture(scope="package")
def uploaded(vtp: Vtp, dataset_dir: Path) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    """`vtp data upload FOLDER` (zipped by the CLI), as a person runs it, and the dataset it made."""
    result = vtp("data", "upload", str(dataset_dir), "--name", "cli shapes")
    assert result.returncode == 0, result.stderr
    dataset_id = re.search(r"^dataset\s+([0-9a-f-]{36})", result.stdout, re.M)
    assert dataset_id, result.stdout
    return result, vtp.json("data", "show", dataset_id.group(1))


@pytest.fixture(scope="package")
def trained(
    vtp: Vtp, uploaded: tuple[subprocess.CompletedProcess[str], dict[str, Any]]
) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    """`vtp train data=ID ...` followed live to its end, and the job it ran."""
    result = vtp("train", f"data={uploaded[1]['id']}", *TRAIN_ARGS, "--name", "cli run")
    assert result.returncode == 0, result.stdout + result.stderr
    job_id = re.search(r"^job ([0-9a-f-]{36}) queued", result.stdout, re.M)
    assert job_id, result.stdout
    return result, vtp.json("jobs", "show", job_id.group(1))


@pytest.fixture(scope="package")
def exported(
    vtp: Vtp, trained: tuple[subprocess.CompletedProcess[str], dict[str, Any]]
) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    """`vtp export JOB --format onnx`, waited for, and the export."""
    result = vtp("export", trained[1]["id"], "--format", "onnx")
    assert result.returncode == 0, result.stdout + result.stderr
    export_id = re.search(r"^export ([0-9a-f-]{36}) ", result.stdout, re.M)
    assert export_id, result.stdout
    return result, vtp.json("exports", "show", export_id.group(1))


@pytest.fixture(scope="package")
def deployed(
    vtp: Vtp, exported: tuple[subprocess.CompletedProcess[str], dict[str, Any]]
) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    """`vtp deploy EXPORT --name cli-shapes`, and the deployment."""
    result = vtp("deploy", exported[1]["id"], "--name", "cli-shapes")
    assert result.returncode == 0, result.stdout + result.stderr
    return result, vtp.json("deployments", "show", "cli-shapes")
