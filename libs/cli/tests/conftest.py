"""Every test talks to a fake client through the real command tree (typer's CliRunner)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from cli_fakes import FakeClient
from typer.testing import CliRunner

from vtp_cli import follow, session
from vtp_cli.main import app


@pytest.fixture()
def fake(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> Iterator[FakeClient]:
    client = FakeClient()
    monkeypatch.setattr(session, "connect", lambda: client)
    monkeypatch.setenv("VTP_URL", "http://gateway.test")
    monkeypatch.setenv("VTP_TOKEN", "vtp_test")
    monkeypatch.setenv("VTP_CONFIG", str(tmp_path / "config.json"))
    monkeypatch.setenv("COLUMNS", "200")  # wide tables, so assertions see whole ids
    monkeypatch.setattr(follow, "QUIET_POLL_SECONDS", 0.2)
    yield client


@pytest.fixture()
def vtp() -> Callable[..., Any]:
    runner = CliRunner()

    def invoke(*args: str, input: str | None = None) -> Any:
        return runner.invoke(app, list(args), input=input)

    return invoke
