"""SIGKILL each service mid-journey and let the stack restart it (``LocalStack.up``, what
``vtp-stack up`` does: it restarts only what died).

In flight at each kill: a training job past its first epoch, the webhooks of its events, and a
dataset upload half sent. One workload is shared: the services are killed one after another
while the same job trains (a new one is submitted when it nears its end). After each kill the
upload is stored whole or not at all (a retry then stores it once), and the job moves on with
every event so far delivered to the webhook receiver. The last test checks every job of the
module: completed exactly once, each epoch recorded once per attempt, every event's webhook
acknowledged with one `webhook-id` however often it was tried, each attempt's command sent once.
"""

from __future__ import annotations

from typing import Any

import pytest

from vtp_localstack.stack import LocalStack

from .journey import Journey, kill
from .recovery import scenario
from .upload import InFlightUpload

pytestmark = [pytest.mark.integration, pytest.mark.chaos]

# Process names in the stack's pid table; "gateway" is the gateway app, and the jobs service's
# outbox relay runs on its own in this stack (see conftest).
VICTIMS = ["jobs", "datasets", "notifier", "identity", "gateway", "trainer-runner", "jobs-outbox-relay"]


@pytest.mark.parametrize("victim", VICTIMS)
def test_killed_service_recovers(
    victim: str, chaos_stack: LocalStack, journey: Journey, upload_zip: bytes, reference_upload: dict[str, Any]
) -> None:
    with scenario(f"kill {victim}") as clock:
        job_id, epoch = journey.in_flight()
        in_flight = InFlightUpload(journey, upload_zip).start()
        clock.fault()
        kill(chaos_stack, victim)
        if victim == "jobs-outbox-relay":
            # Submitted while the relay is dead: its command waits in the outbox for the restart.
            journey.submit()
        chaos_stack.up()
        clock.mark("restarted")
        in_flight.settle(reference_upload)
        clock.mark("upload_settled")
        journey.progressed(job_id, epoch)
        clock.mark("converged")


def test_every_job_completed_exactly_once(journey: Journey) -> None:
    with scenario("all kills: jobs complete") as clock:
        for job_id in list(journey.jobs):
            journey.check_job(job_id)
        clock.mark("converged")
