"""One exporter child: `python -m vtp_export.child.main SPEC` in its own session, reporting on a pipe.

The child may run in another virtual environment (a toolchain that conflicts with the default
ones): it imports only the standard library, numpy, torch, Ultralytics, the format's runtime and
`vtp_export.child`, found through PYTHONPATH. It never installs anything (YOLO_AUTOINSTALL=false,
YOLO_OFFLINE=true, and pip gets no index). Reports are JSON lines on the inherited fd `VTP_REPORT_FD`;
its output goes to `export.log` in the attempt's directory.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import suppress
from pathlib import Path
from typing import Any

import vtp_export
from vtp_runtime.child_process import ReportingChild

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
    def __init__(self, child: ReportingChild) -> None:
        self._child = child

    @classmethod
    async def start(cls, python: str, spec: dict[str, Any], work_dir: Path) -> ChildProcess:
        spec_path = _write_spec(work_dir, spec)
        env = {**CHILD_ENV, "PYTHONPATH": SRC_ROOT, "YOLO_CONFIG_DIR": str(work_dir / "ultralytics-config")}
        child = await ReportingChild.spawn(
            python,
            "vtp_export.child.main",
            [str(spec_path)],
            env=env,
            report_fd_env=REPORT_FD_ENV,
            log_path=work_dir / "export.log",
            cwd=work_dir,
            max_line=MAX_LINE,
        )
        return cls(child)

    @property
    def pid(self) -> int:
        return self._child.pid

    async def reports(self) -> AsyncIterator[dict[str, Any]]:
        """Reports in order until the child closes the pipe; a malformed or over-long line is skipped."""
        async for line in self._child.lines():
            if line is None:
                continue
            with suppress(ValueError):
                report = json.loads(line)
                if isinstance(report, dict):
                    yield report

    def kill(self) -> None:
        """SIGKILL to the child's whole process group."""
        self._child.kill()

    async def wait(self) -> int:
        return await self._child.wait()

    async def close(self) -> None:
        await self._child.close()
