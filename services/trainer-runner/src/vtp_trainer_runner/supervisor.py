"""The runner's side of a training attempt: start the child, read its reports, signal it.

The child runs `python -m vtp_trainer_runner.child` in its own session (so its data loader
workers form one process group that `kill()` takes down at once), with the write end of a pipe
inherited as `VTP_REPORT_FD` and its stdout/stderr appended to a log file. A spare child (`spare()`)
is started before its job is known and reads the job from its stdin (`assign()`).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType

from vtp_runtime.child_process import ReportingChild
from vtp_trainer_runner.protocol import Failed, Finished, Log, Message, Terminal, parse_message
from vtp_trainer_runner.sdk import JOB_SPEC_ENV, REPORT_FD_ENV, SPARE_ENV
from vtp_trainer_runner.spec import JobSpec

MAX_LINE = 1 << 20  # a report line longer than this is dropped (with a warning), never buffered forever
SPEC_FILE = "job-spec.json"
LOG_FILE = "trainer.log"
SPARE_LOG = "spare.log"


class JobProcess:
    """One running child; iterate `messages()` to the end, then `await wait()`.

    `start()` runs an attempt at once; `spare()` starts a child that warms up first and `assign()`s it one.
    """

    def __init__(self, spec: JobSpec | None, child: ReportingChild) -> None:
        self.spec, self._child, self._process = spec, child, child.process  # spec: None in a spare
        self.terminal: Terminal | None = None  # the child's Finished or Failed, once read

    @classmethod
    async def start(
        cls,
        spec: JobSpec,
        env_overrides: Mapping[str, str] | None = None,
        gpus: Sequence[int] | None = None,
        log_path: Path | None = None,
        python: str = sys.executable,
    ) -> JobProcess:
        """Write the spec into `spec.work_dir` and start the child.

        The child gets the runner's environment without its `VTP_*` settings, plus `env_overrides`.
        `gpus` become CUDA_VISIBLE_DEVICES (an empty list hides every GPU); None leaves it as inherited.
        Output goes to `log_path` (default `work_dir/trainer.log`).
        """
        spec.work_dir.mkdir(parents=True, exist_ok=True)
        spec_path = spec.write(spec.work_dir / SPEC_FILE)
        env = {**(env_overrides or {}), JOB_SPEC_ENV: str(spec_path)}
        log = log_path or spec.work_dir / LOG_FILE
        return await cls._spawn(spec, env, gpus, log, spec.work_dir, python, asyncio.subprocess.DEVNULL)

    @classmethod
    async def spare(
        cls,
        scratch: Path,
        env_overrides: Mapping[str, str] | None = None,
        gpus: Sequence[int] | None = None,
        python: str = sys.executable,
    ) -> JobProcess:
        """Start a pre-warmed child: it preloads the plugins in `scratch`, then waits for `assign()`.

        Environment and GPUs as for `start`; they are fixed now, before any framework is imported.
        Until it is assigned its output is appended to `scratch/spare.log`.
        """
        os.makedirs(scratch, exist_ok=True)
        env = {**(env_overrides or {}), SPARE_ENV: str(scratch)}
        return await cls._spawn(None, env, gpus, scratch / SPARE_LOG, scratch, python, asyncio.subprocess.PIPE)

    async def assign(self, spec: JobSpec, log_path: Path | None = None) -> bool:
        """Give a spare its attempt: the spec file as `start` writes it; False when the spare is gone."""
        stdin = self._process.stdin
        if stdin is None or self.spec is not None or self._process.returncode is not None:
            return False
        spec.work_dir.mkdir(parents=True, exist_ok=True)
        job = {"spec": str(spec.write(spec.work_dir / SPEC_FILE)), "cwd": str(spec.work_dir)}
        job["log"] = str(log_path or spec.work_dir / LOG_FILE)
        try:
            stdin.write(json.dumps(job).encode() + b"\n")
            await stdin.drain()
            stdin.close()  # EOF after the one line: a spare takes one attempt
        except (BrokenPipeError, ConnectionResetError):
            return False
        self.spec = spec
        return True

    @classmethod
    async def _spawn(
        cls,
        spec: JobSpec | None,
        env_overrides: Mapping[str, str],
        gpus: Sequence[int] | None,
        log_path: Path,
        cwd: Path,
        python: str,
        stdin: int,
    ) -> JobProcess:
        env = {**env_overrides, "PYTHONUNBUFFERED": "1"}  # the runner's own VTP_* settings stay in the runner
        if gpus is not None:
            env["CUDA_VISIBLE_DEVICES"] = ",".join(str(g) for g in gpus)
        child = await ReportingChild.spawn(
            python,
            "vtp_trainer_runner.child",
            env=env,
            report_fd_env=REPORT_FD_ENV,
            log_path=log_path,
            cwd=cwd,
            max_line=MAX_LINE,
            stdin=stdin,
        )
        return cls(spec, child)

    @property
    def pid(self) -> int:
        return self._process.pid

    @property
    def returncode(self) -> int | None:
        return self._process.returncode

    async def messages(self) -> AsyncIterator[Message]:
        """Reports in order until the child closes the pipe; a malformed line becomes a warning Log."""
        async for line in self._child.lines():
            if line is None:
                yield Log(level="warning", message=f"trainer report line over {MAX_LINE} bytes dropped")
                continue
            if not line.strip():
                continue
            try:
                message = parse_message(line)
            except ValueError:
                message = Log(level="warning", message=f"malformed trainer report: {line[:200]!r}")
            if isinstance(message, Finished | Failed) and self.terminal is None:
                self.terminal = message
            yield message

    def cancel(self) -> None:
        """User cancel (SIGUSR1): the trainer saves `last` and finishes as cancelled."""
        self._signal(signal.SIGUSR1)

    def stop_for_requeue(self) -> None:
        """Runner shutting down (SIGTERM): the trainer saves `last` and finishes as stopped_for_requeue."""
        self._signal(signal.SIGTERM)

    def kill(self) -> None:
        """SIGKILL to the child's whole process group (its data loader workers included)."""
        self._child.kill()

    async def wait(self) -> int:
        """The exit status: 0 finished, 1 failed, negative when killed by a signal."""
        return await self._child.wait()

    async def close(self) -> None:
        """Kill the group if the child still runs, reap it and close the pipes."""
        await self._child.close()

    def _signal(self, signum: int) -> None:
        self._child.signal(signum)

    async def __aenter__(self) -> JobProcess:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()
