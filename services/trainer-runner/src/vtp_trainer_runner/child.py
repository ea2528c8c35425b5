"""`python -m vtp_trainer_runner.child`: one training attempt, started by the runner's `JobProcess`.

Reads the spec named by `VTP_JOB_SPEC`, reports on the pipe `VTP_REPORT_FD`, runs the job's plugin
and makes sure the attempt ends with exactly one Finished or Failed. Exit status: 0 when it
finished (completed, cancelled or stopped for requeue), 1 when it failed.
"""

from __future__ import annotations

import atexit
import os
import sys
import traceback

from vtp_trainer_runner.plugin import get_plugin
from vtp_trainer_runner.protocol import Finished
from vtp_trainer_runner.sdk import TrainerContext
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
    ctx.close()
    return 0 if isinstance(ctx.terminal, Finished) else 1


def main() -> None:
    status = run(TrainerContext.from_env())
    # Library clean-up (atexit: data loader workers, files) runs; interpreter teardown does not: with
    # torch loaded it takes seconds and frees nothing the kernel would not, while the runner waits.
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


if __name__ == "__main__":
    main()
