"""Detached processes with pid files: start once, find again later, stop for good.

A pid file records the pid and the process start time, so a recycled pid is
never mistaken for our process. Each process leads its own session, so stopping
its process group also stops any children it spawned.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from vtp_localstack.users import as_user


@dataclass(frozen=True)
class ProcessSpec:
    """How to run one component of the stack."""

    name: str
    argv: Sequence[str]
    env: Mapping[str, str] = field(default_factory=dict)
    port: int | None = None
    stop_signal: int = signal.SIGTERM
    user: str | None = None  # run as this OS user (PostgreSQL refuses to run as root)
    cwd: Path | None = None


class ProcessTable:
    """The pid files and logs of one run directory."""

    def __init__(self, run_dir: Path) -> None:
        self.pid_dir = run_dir / "pids"
        self.log_dir = run_dir / "logs"

    def log_path(self, name: str) -> Path:
        return self.log_dir / f"{name}.log"

    def _pid_path(self, name: str) -> Path:
        return self.pid_dir / f"{name}.json"

    def find(self, name: str) -> psutil.Process | None:
        """The live process recorded for `name`, or None."""
        try:
            record = json.loads(self._pid_path(name).read_text())
            proc = psutil.Process(record["pid"])
            if abs(proc.create_time() - record["started"]) > 1 or proc.status() == psutil.STATUS_ZOMBIE:
                return None
            return proc
        except (OSError, ValueError, KeyError, psutil.Error):
            return None

    def start(self, spec: ProcessSpec) -> psutil.Process:
        self.pid_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, **spec.env}
        with open(self.log_path(spec.name), "ab") as log:
            log.write(f"\n--- {time.strftime('%Y-%m-%d %H:%M:%S')} starting {spec.name}\n".encode())
            log.flush()
            popen = subprocess.Popen(
                list(spec.argv),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=spec.cwd,
                start_new_session=True,
                **as_user(spec.user),
            )
        proc = psutil.Process(popen.pid)
        record = {
            "pid": popen.pid,
            "started": proc.create_time(),
            "signal": int(spec.stop_signal),
            "argv": list(spec.argv),
        }
        self._pid_path(spec.name).write_text(json.dumps(record))
        return proc

    def stop(self, name: str, timeout: float = 15.0) -> bool:
        """Stop `name` and its process group; True if something was running."""
        proc = self.find(name)
        path = self._pid_path(name)
        if proc is None:
            path.unlink(missing_ok=True)
            return False
        sig = json.loads(path.read_text()).get("signal", signal.SIGTERM)
        _signal_group(proc.pid, sig)
        try:
            proc.wait(timeout)
        except psutil.TimeoutExpired:
            _signal_group(proc.pid, signal.SIGKILL)
            proc.wait(5)
        _signal_group(proc.pid, signal.SIGKILL)  # stragglers left in the group
        path.unlink(missing_ok=True)
        return True

    def names(self) -> list[str]:
        return sorted(p.stem for p in self.pid_dir.glob("*.json")) if self.pid_dir.exists() else []


def _signal_group(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def port_open(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.3)
        return sock.connect_ex((host, port)) == 0


def wait_until(predicate: Callable[[], bool], timeout: float, what: str, interval: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not ready after {timeout:.0f}s")
        time.sleep(interval)
