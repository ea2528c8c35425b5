"""`vtp login` and `vtp whoami`; a revoked or wrong token exits 4."""

from __future__ import annotations

import json
import stat
from typing import Any

import pytest

from vtp_client import Client
from vtp_localstack.stack import LocalStack

from .conftest import Vtp, eventually

pytestmark = pytest.mark.integration


def test_login_saves_url_and_token_readable_by_the_user_only(vtp: Vtp, project: dict[str, Any]) -> None:
    result = vtp("login", vtp.url, "--token", project["token"], VTP_TOKEN=None, VTP_URL=None)
    assert result.returncode == 0, result.stderr
    assert f"project {project['id']}" in result.stdout
    assert stat.S_IMODE(vtp.config.stat().st_mode) == 0o600
    assert json.loads(vtp.config.read_text()) == {"url": vtp.url, "token": project["token"]}
    # From now on, without VTP_URL or VTP_TOKEN, the saved login is used.
    me = vtp.json("whoami", VTP_TOKEN=None, VTP_URL=None)
    assert (me["project_id"], me["token_id"], me["url"]) == (project["id"], project["token_id"], vtp.url)
    shown = vtp("whoami", VTP_TOKEN=None, VTP_URL=None)
    assert f"project  {project['id']}" in shown.stdout and "CLI " in shown.stdout


def test_login_refuses_a_token_the_gateway_does_not_accept(vtp: Vtp, tmp_path: Any) -> None:
    other = tmp_path / "config.json"
    result = vtp("login", vtp.url, "--token", "vtp_not_a_token", VTP_CONFIG=str(other))
    assert result.returncode == 4
    assert result.stderr.startswith("error: ") and "HTTP 401" in result.stderr
    assert not other.exists()


def test_the_environment_overrides_the_saved_login(vtp: Vtp) -> None:
    result = vtp("whoami", VTP_TOKEN="vtp_wrong")
    assert result.returncode == 4
    assert "Traceback" not in result.stderr


def test_a_revoked_token_exits_4(vtp: Vtp, stack: LocalStack, admin_token: str, project: dict[str, Any]) -> None:
    with Client(stack.cfg.gateway_url, admin_token) as admin:
        issued = admin.tokens.create(project["id"], "to revoke")
        assert vtp("whoami", VTP_TOKEN=issued.token).returncode == 0
        admin.tokens.revoke(issued.id)
    # Services trust a verified token for a few seconds (VTP_TOKEN_CACHE_SECONDS): refused within that.
    result = eventually(lambda: (r := vtp("jobs", "ls", VTP_TOKEN=issued.token)).returncode != 0 and r, 60)
    assert result.returncode == 4, result.stderr
    assert "HTTP 401" in result.stderr and "vtp login" in result.stderr
