"""`python -m vtp_trainer_runner.child`: one training attempt, started by the runner's `JobProcess`.

Reads the spec named by `VTP_JOB_SPEC`, reports on the pipe `VTP_REPORT_FD`, runs the job's plugin
and makes sure the attempt ends with exactly one Finished or Failed. Exit status: 0 when it
finished (completed, cancelled or stopped for requeue), 1 when it failed.

A spare child (`VTP_SPARE_DIR` instead of `VTP_JOB_SPEC`) first preloads the installed plugins, then
reads one line from stdin: `{"spec": ..., "cwd": ..., "log": ...}`. EOF instead means it is not
needed: it exits 0 without a report.
"""

from __future__ import annotations

import atexit
import json
import os
import sys
import time
import traceback
from pathlib import Path

from vtp_trainer_runner.plugin import get_plugin, preload_plugins
from vtp_trainer_runner.protocol import Finished
from vtp_trainer_runner.sdk import SPARE_ENV, TrainerContext
from vtp_trainer_runner.spec import JobSpec


def run(ctx: TrainerContext) -> int:
    """Run the attempt the environment describes; returns the exit status."""
    ctx.started()
    try:
        if ctx.spec_path is None:
            raise ValueError("VTP_JOB_SPEC is not set")
        spec = JobSpec.read(ctx.spec_path)
        plugin = get_plugin(spec.framework)
    except (OSError, ValueError, KeyError) as exc:
        ctx.fail("INVALID_CONFIG", f"bad job spec: {exc}", 0)
    else:
        try:
            plugin.train(ctx, spec)
        except (Exception, SystemExit) as exc:  # a plugin bug must still end the attempt properly
            traceback.print_exc()
            ctx.fail("TRAINER_CRASHED", f"{type(exc).__name__}: {exc}")
        if ctx.terminal is None:  # the plugin returned without saying how it ended
            stop = ctx.stop_requested()
            ctx.finished("completed" if stop is None else "cancelled" if stop == "cancel" else "stopped_for_requeue")
    ctx.close(restore_signal_handlers=False)  # the process exits next: a late stop signal only sets a flag
    return 0 if isinstance(ctx.terminal, Finished) else 1


def wait_for_job(ctx: TrainerContext, scratch: Path) -> bool:
    """A spare's warm-up, then its job from stdin; False when stdin closed without one."""
    began = time.monotonic()
    preload_plugins(scratch)
    ready = time.monotonic()
    line = sys.stdin.buffer.readline()
    if not line.strip():
        return False
    job = json.loads(line)
    ctx.spec_path = Path(job["spec"])
    os.chdir(job["cwd"])
    # From here on as if started cold: output to the attempt's log, stdin /dev/null.
    sys.stdout.flush()
    sys.stderr.flush()
    log = os.open(job["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    null = os.open(os.devnull, os.O_RDONLY)
    for fd, target in ((log, 1), (log, 2), (null, 0)):
        os.dup2(fd, target)
    os.close(log)
    os.close(null)
    waited = time.monotonic() - ready
    print(f"spare trainer (pid {os.getpid()}): plugins preloaded in {ready - began:.2f} s, then idle {waited:.2f} s")
    return True


def main() -> None:
    ctx = TrainerContext.from_env()  # stop signals that come before the job are kept, not fatal
    scratch = os.environ.get(SPARE_ENV)
    status = run(ctx) if scratch is None or wait_for_job(ctx, Path(scratch)) else 0
    # Library clean-up (atexit: data loader workers, files) runs; interpreter teardown does not: with
    # torch loaded it takes seconds and frees nothing the kernel would not, while the runner waits.
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


if __name__ == "__main__":
    main()
