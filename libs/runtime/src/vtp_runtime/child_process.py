"""A worker's child process that reports on a pipe: `python -m MODULE` in its own session.

The child inherits the write end of a pipe, its fd number in an environment variable; the worker
reads lines from the read end until EOF, which comes once every process holding the write end
(the child and anything it forked) is gone. The child runs in a session of its own, so `kill()`
takes its whole process group down at once (data loader workers, converters it started). Its
stdout and stderr are appended to a log file. What the lines mean is the caller's business.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import suppress
from pathlib import Path

PARENT_ONLY_PREFIX = "VTP_"  # the worker's own settings (object-store and broker credentials)


class ReportingChild:
    """One started child; iterate `lines()` to the end, then `await wait()`, and always `close()`."""

    def __init__(
        self, process: asyncio.subprocess.Process, reader: asyncio.StreamReader, pipe: asyncio.BaseTransport
    ) -> None:
        self.process, self._reader, self._pipe = process, reader, pipe

    @classmethod
    async def spawn(
        cls,
        python: str,
        module: str,
        args: Sequence[str] = (),
        *,
        env: Mapping[str, str],
        report_fd_env: str,
        log_path: Path,
        cwd: Path,
        max_line: int,
        stdin: int = asyncio.subprocess.DEVNULL,
    ) -> ReportingChild:
        """Start `python -m module *args` in `cwd`.

        Its environment is this process's without the `VTP_*` settings, plus `env`, plus
        `report_fd_env` naming the pipe's fd. A line longer than `max_line` bytes is dropped.
        """
        child_env = {k: v for k, v in os.environ.items() if not k.startswith(PARENT_ONLY_PREFIX)}
        child_env.update(env)
        log = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        read_fd, write_fd = os.pipe()  # both ends non-inheritable; pass_fds hands the write end over
        child_env[report_fd_env] = str(write_fd)
        try:
            process = await asyncio.create_subprocess_exec(
                python,
                "-m",
                module,
                *args,
                stdin=stdin,
                stdout=log,
                stderr=asyncio.subprocess.STDOUT,
                env=child_env,
                pass_fds=(write_fd,),
                start_new_session=True,
                cwd=cwd,
            )
        except BaseException:
            os.close(read_fd)
            raise
        finally:
            os.close(write_fd)  # only the child may hold it: EOF then means the child (group) is gone
            os.close(log)
        reader = asyncio.StreamReader(limit=max_line)
        pipe, _ = await asyncio.get_running_loop().connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(read_fd, "rb", buffering=0)
        )
        return cls(process, reader, pipe)

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def returncode(self) -> int | None:
        return self.process.returncode

    async def lines(self) -> AsyncIterator[bytes | None]:
        """The pipe's lines in order until EOF; None in place of a line over `max_line` (dropped)."""
        while True:
            try:
                line = await self._reader.readline()
            except ValueError:  # over the limit: the reader has discarded it
                yield None
                continue
            if not line:
                return
            yield line

    def signal(self, signum: int) -> None:
        """Send `signum` to the child itself (not its group), unless it has been reaped."""
        if self.process.returncode is None:  # not reaped yet, so the pid is still ours
            with suppress(ProcessLookupError):
                os.kill(self.process.pid, signum)

    def kill(self) -> None:
        """SIGKILL to the child's whole process group."""
        # The group outlives a reaped child while members remain; Linux never reuses a live group's id.
        with suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)

    async def wait(self) -> int:
        """The exit status; negative when killed by a signal."""
        return await self.process.wait()

    async def close(self) -> None:
        """Kill the group if the child still runs, reap it and close the pipes."""
        if self.process.returncode is None:
            self.kill()
        await self.process.wait()
        if self.process.stdin is not None:
            self.process.stdin.close()
        self._pipe.close()
