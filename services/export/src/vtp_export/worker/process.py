"""One exporter child: `python -m vtp_export.child.main SPEC` in its own session, reporting on a pipe.

The child may run in another virtual environment (a toolchain that conflicts with the default
ones): it imports only the standard library, numpy, torch, Ultralytics, the format's runtime and
`vtp_export.child`, found through PYTHONPATH. It never installs anything (YOLO_AUTOINSTALL=false,
YOLO_OFFLINE=true, and pip gets no index). Reports are JSON lines on the inherited fd `VTP_REPORT_FD`;
its output goes to `export.log` in the attempt's directory.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
from collections.abc import AsyncIterator
from contextlib import suppress
from pathlib import Path
from typing import Any

import vtp_export

REPORT_FD_ENV = "VTP_REPORT_FD"
MAX_LINE = 1 << 22
# Ultralytics 8.4 reads YOLO_AUTOINSTALL once (`utils.AUTOINSTALL`): check_requirements then only warns.
# A pip that some toolchain still starts finds no index and no local wheels, so it installs nothing.
CHILD_ENV = {
    "YOLO_AUTOINSTALL": "false",
    "YOLO_OFFLINE": "true",
    "YOLO_VERBOSE": "true",
    "PYTHONUNBUFFERED": "1",
    "PIP_NO_INDEX": "1",
    "PIP_FIND_LINKS": "",
}


def _write_spec(work_dir: Path, spec: dict[str, Any]) -> Path:
    work_dir.mkdir(parents=True, exist_ok=True)
    path = work_dir / "export-spec.json"
    path.write_text(json.dumps(spec))
    return path


SRC_ROOT = str(Path(vtp_export.__file__).resolve().parents[1])  # what PYTHONPATH needs for vtp_export.child


class ChildProcess:
    def __init__(
        self, process: asyncio.subprocess.Process, reader: asyncio.StreamReader, pipe: asyncio.BaseTransport
    ) -> None:
        self._process, self._reader, self._pipe = process, reader, pipe

    @classmethod
    async def start(cls, python: str, spec: dict[str, Any], work_dir: Path) -> ChildProcess:
        spec_path = _write_spec(work_dir, spec)
        # The worker's own settings (VTP_*: store and broker credentials) stay in the worker.
        env = {k: v for k, v in os.environ.items() if not k.startswith("VTP_")}
        env.update(CHILD_ENV, PYTHONPATH=SRC_ROOT, YOLO_CONFIG_DIR=str(work_dir / "ultralytics-config"))
        log = os.open(work_dir / "export.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        read_fd, write_fd = os.pipe()
        env[REPORT_FD_ENV] = str(write_fd)
        try:
            process = await asyncio.create_subprocess_exec(
                python,
                "-m",
                "vtp_export.child.main",
                str(spec_path),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=asyncio.subprocess.STDOUT,
                env=env,
                pass_fds=(write_fd,),
                start_new_session=True,
                cwd=work_dir,
            )
        except BaseException:
            os.close(read_fd)
            raise
        finally:
            os.close(write_fd)  # only the child holds it now: EOF means the child is gone
            os.close(log)
        reader = asyncio.StreamReader(limit=MAX_LINE)
        pipe, _ = await asyncio.get_running_loop().connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(read_fd, "rb", buffering=0)
        )
        return cls(process, reader, pipe)

    @property
    def pid(self) -> int:
        return self._process.pid

    async def reports(self) -> AsyncIterator[dict[str, Any]]:
        """Reports in order until the child closes the pipe; a malformed line is skipped."""
        while True:
            try:
                line = await self._reader.readline()
            except ValueError:
                continue
            if not line:
                return
            with suppress(ValueError):
                report = json.loads(line)
                if isinstance(report, dict):
                    yield report

    def kill(self) -> None:
        """SIGKILL to the child's whole process group."""
        with suppress(ProcessLookupError, PermissionError):
            os.killpg(self._process.pid, signal.SIGKILL)

    async def wait(self) -> int:
        return await self._process.wait()

    async def close(self) -> None:
        if self._process.returncode is None:
            self.kill()
        await self._process.wait()
        self._pipe.close()
