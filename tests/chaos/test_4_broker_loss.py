"""The broker restarts and forgets everything (Tansu keeps topics in memory): topics, undelivered
commands, consumer groups' offsets. The platform converges: the stack re-creates the topics,
consumers and producers reconnect by themselves, and a job whose command was lost is sent again
by the jobs service (same attempt). A job submitted just before the restart completes, and so does
the one that was training through it."""

from __future__ import annotations

import pytest

from vtp_localstack.stack import LocalStack

from .conftest import CHAOS_SERVICES
from .journey import Journey, eventually, kill
from .recovery import scenario
from .test_2_lost_command import _command_rows

pytestmark = [pytest.mark.integration, pytest.mark.chaos]


def test_broker_restart_loses_nothing_that_matters(chaos_stack: LocalStack, journey: Journey) -> None:
    services = [*CHAOS_SERVICES, "gateway", "jobs-outbox-relay"]
    pids = {name: proc.pid for name in services if (proc := chaos_stack.table.find(name)) is not None}
    with scenario("restart broker") as clock:
        training = journey.submit()
        journey.wait_training(training)
        late = journey.submit()  # the runner is busy: this command waits in the broker...
        eventually(lambda: _command_rows(chaos_stack, late)[0]["published_at"], "the late command in the broker")
        clock.fault()
        try:
            kill(chaos_stack, "kafka")  # ...and is lost with it
        finally:
            chaos_stack.up()
        clock.mark("broker_up")
        now = {name: proc.pid for name in services if (proc := chaos_stack.table.find(name)) is not None}
        assert now == pids, "no service was restarted: each reconnected by itself"
        journey.check_job(training)
        clock.mark("training_done")
        job = journey.check_job(late)
        assert job["attempt"] == 1, "the lost command was sent again for the same attempt"
        clock.mark("converged")
