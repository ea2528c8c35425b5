"""VTP_URL / VTP_TOKEN override the saved config file, which only its user can read."""

from __future__ import annotations

import stat
from pathlib import Path

from vtp_client.config import config_path, load_config, resolve, save_config


def test_the_config_file_lives_in_the_user_config_dir() -> None:
    assert config_path({"XDG_CONFIG_HOME": "/x"}) == Path("/x/vtp/config.json")
    assert config_path({"HOME": "/h"}).parts[-3:] == (".config", "vtp", "config.json")
    assert config_path({"VTP_CONFIG": "/etc/vtp.json"}) == Path("/etc/vtp.json")


def test_saved_with_mode_600_and_read_back(tmp_path: Path) -> None:
    path = tmp_path / "vtp" / "config.json"
    path.parent.mkdir()
    path.write_text("{}")
    path.chmod(0o644)  # a file left from before keeps no wider mode
    save_config("http://gw:8080/", "vtp_secret", path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_config(path) == {"url": "http://gw:8080", "token": "vtp_secret"}
    assert not list(path.parent.glob("*.tmp"))


def test_environment_overrides_the_file_and_arguments_override_both(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    save_config("http://saved:1", "saved-token", path)
    env = {"VTP_CONFIG": str(path)}
    assert resolve(env=env) == resolve(env=env, path=path)
    settings = resolve(env=env)
    assert (settings.url, settings.token, settings.url_source, settings.token_source) == (
        "http://saved:1",
        "saved-token",
        "file",
        "file",
    )
    settings = resolve(env=env | {"VTP_URL": "http://env:2", "VTP_TOKEN": "env-token"})
    assert (settings.url, settings.token, settings.url_source) == ("http://env:2", "env-token", "env")
    settings = resolve("http://arg:3", env=env | {"VTP_URL": "http://env:2"})
    assert (settings.url, settings.token, settings.url_source) == ("http://arg:3", "saved-token", "argument")


def test_without_anything_the_local_stack_and_no_token(tmp_path: Path) -> None:
    settings = resolve(env={"VTP_CONFIG": str(tmp_path / "missing.json")})
    assert (settings.url, settings.token, settings.url_source) == ("http://127.0.0.1:8080", None, "default")
    (tmp_path / "broken.json").write_text("not json")
    assert load_config(tmp_path / "broken.json") == {}
