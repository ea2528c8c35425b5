"""ReportingChild: a real `python -m` child in its own session, reporting lines on an inherited pipe."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

import pytest

from vtp_runtime.child_process import ReportingChild

CHILD = """
import os, subprocess, sys, time
fd = int(os.environ["REPORT_FD"])
print("env", os.environ.get("VTP_SECRET"), os.environ.get("EXTRA"), sys.argv[1:], flush=True)
if sys.argv[1:] == ["reports"]:
    os.write(fd, b'{"a": 1}\\n' + b"x" * 3000 + b"\\n" + b'{"b": 2}\\n')
elif sys.argv[1:] == ["forks"]:  # a grandchild holds the pipe too: EOF only once the whole group is gone
    grandchild = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], pass_fds=(fd,))
    os.write(fd, b"%d\\n" % grandchild.pid)
    time.sleep(60)
else:
    time.sleep(60)
"""


async def spawn(tmp_path: Path, arg: str) -> ReportingChild:
    (tmp_path / "reporting_child.py").write_text(CHILD)
    return await ReportingChild.spawn(
        sys.executable,
        "reporting_child",
        [arg],
        env={"EXTRA": "1"},
        report_fd_env="REPORT_FD",
        log_path=tmp_path / "child.log",
        cwd=tmp_path,
        max_line=1024,
    )


async def test_lines_come_in_order_an_overlong_one_is_dropped_and_the_worker_settings_stay_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VTP_SECRET", "s3cr3t")
    child = await spawn(tmp_path, "reports")
    try:
        async with asyncio.timeout(30):
            lines = [line async for line in child.lines()]
            assert await child.wait() == 0
    finally:
        await child.close()
    assert lines == [b'{"a": 1}\n', None, b'{"b": 2}\n']
    assert (tmp_path / "child.log").read_text() == "env None 1 ['reports']\n"  # output in the log; no VTP_*


async def test_kill_takes_the_whole_group_down_and_the_pipe_then_ends(tmp_path: Path) -> None:
    child = await spawn(tmp_path, "forks")
    try:
        async with asyncio.timeout(30):
            lines = child.lines()
            assert int((await anext(lines)) or b"0") > 0  # the grandchild started and holds the pipe
            child.kill()
            assert [line async for line in lines] == []  # EOF: nothing holds the write end any more
            assert await child.wait() == -signal.SIGKILL
    finally:
        await child.close()


async def test_signal_reaches_the_child_and_close_reaps_it(tmp_path: Path) -> None:
    child = await spawn(tmp_path, "waits")
    try:
        child.signal(signal.SIGTERM)
        async with asyncio.timeout(30):
            assert await child.wait() == -signal.SIGTERM
        assert child.returncode == -signal.SIGTERM
        child.signal(signal.SIGTERM)  # reaped: nothing is sent to a pid that may be reused
    finally:
        await child.close()
