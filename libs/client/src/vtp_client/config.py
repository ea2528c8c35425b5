"""Where the CLI finds the gateway and the token: `VTP_URL` / `VTP_TOKEN`, else the saved config file.

The file is `$XDG_CONFIG_HOME/vtp/config.json` (default `~/.config/vtp/config.json`; `VTP_CONFIG`
names another), written with mode 600 because it holds a token.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from vtp_client.transport import DEFAULT_URL

__all__ = ["Settings", "config_path", "load_config", "resolve", "save_config"]


@dataclass(frozen=True)
class Settings:
    """The resolved gateway URL and token, and where each came from (`argument`, `env`, `file`, `default`)."""

    url: str
    token: str | None
    url_source: str
    token_source: str


def config_path(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    if env.get("VTP_CONFIG"):
        return Path(env["VTP_CONFIG"]).expanduser()
    base = Path(env["XDG_CONFIG_HOME"]) if env.get("XDG_CONFIG_HOME") else Path.home() / ".config"
    return base / "vtp" / "config.json"


def load_config(path: Path | None = None) -> dict[str, str]:
    """The saved `{"url", "token"}` (either may be missing); empty when there is no readable file."""
    path = path or config_path()
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {k: str(v) for k, v in data.items() if k in ("url", "token") and isinstance(v, str) and v}


def save_config(url: str, token: str | None, path: Path | None = None) -> Path:
    """Write url and token readable only by the user (600), replacing the file atomically."""
    path = path or config_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    body = json.dumps({"url": url.rstrip("/")} | ({"token": token} if token else {}), indent=2) + "\n"
    partial = path.with_name(path.name + ".tmp")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w") as out:
            out.write(body)
        os.chmod(partial, 0o600)  # O_CREAT's mode does not change a file left over from before
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return path


def resolve(
    url: str | None = None,
    token: str | None = None,
    *,
    env: Mapping[str, str] | None = None,
    path: Path | None = None,
) -> Settings:
    """Arguments first, then `VTP_URL` / `VTP_TOKEN`, then the config file, then the local stack's URL."""
    env = os.environ if env is None else env
    saved = load_config(path or config_path(env))
    found_url, url_source = _first((url, "argument"), (env.get("VTP_URL"), "env"), (saved.get("url"), "file"))
    found_token, token_source = _first((token, "argument"), (env.get("VTP_TOKEN"), "env"), (saved.get("token"), "file"))
    return Settings((found_url or DEFAULT_URL).rstrip("/"), found_token, url_source, token_source)


def _first(*candidates: tuple[str | None, str]) -> tuple[str | None, str]:
    for value, source in candidates:
        if value:
            return value, source
    return None, "default"
