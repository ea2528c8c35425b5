"""Supervisor: restarts with backoff, names a task that keeps failing in health, recovers; wired into build_app."""

from __future__ import annotations

import asyncio
import logging

import httpx
import pytest
from fakes import ADMIN_TOKEN, FakeVerifier

from vtp_runtime.http.app import AppParts, build_app
from vtp_runtime.periodic import periodic
from vtp_runtime.supervision import Background, Backoff, Supervisor, report_failure, report_ok


class FakeTime:
    """A clock that only moves when told; `sleep` records each backoff and stops after `until` sleeps."""

    def __init__(self, stop: asyncio.Event, until: int) -> None:
        self.now = 0.0
        self.slept: list[float] = []
        self._stop, self._until = stop, until

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float, stop: asyncio.Event) -> None:
        self.slept.append(seconds)
        self.now += seconds
        if len(self.slept) >= self._until:
            self._stop.set()


def supervisor(time: FakeTime, **kw: object) -> Supervisor:
    return Supervisor(
        backoff=Backoff(initial=1.0, maximum=8.0, jitter=0.5),
        clock=time.clock,
        sleep=time.sleep,
        uniform=lambda low, high: high,  # no jitter: the delays are exact
        **kw,  # type: ignore[arg-type]
    )


async def test_a_crashing_task_is_restarted_with_growing_backoff_and_its_traceback_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    stop = asyncio.Event()
    time = FakeTime(stop, until=5)
    runs: list[int] = []

    async def crashes(stop: asyncio.Event) -> None:
        runs.append(1)
        raise ValueError("bug in the loop")

    with caplog.at_level(logging.ERROR, logger="vtp_runtime.supervision"):
        await supervisor(time).run(Background("relay", crashes), stop)
    assert len(runs) == 5
    assert time.slept == [1.0, 2.0, 4.0, 8.0, 8.0]  # doubling, capped
    failures = [r for r in caplog.records if "background task relay failed" in r.getMessage()]
    assert len(failures) == 5 and failures[0].exc_info is not None
    assert failures[0].exc_info[0] is ValueError


def test_jitter_shortens_the_delay_by_at_most_its_fraction() -> None:
    backoff = Backoff(initial=2.0, maximum=60.0, jitter=0.25)
    assert backoff.delay(3, lambda low, high: low) == 8.0 * 0.75
    assert backoff.delay(3, lambda low, high: high) == 8.0


async def test_health_names_a_task_after_k_failures_in_a_row_and_recovers_after_a_success() -> None:
    sup = supervisor(FakeTime(asyncio.Event(), until=100), unhealthy_after=2)
    stop = asyncio.Event()
    probes: list[str | None] = []

    async def keeps_failing(stop: asyncio.Event) -> None:
        report_failure(RuntimeError("database down"))
        probes.append(await _probe(sup))
        report_failure(RuntimeError("database down"))
        probes.append(await _probe(sup))
        report_ok()
        probes.append(await _probe(sup))
        stop.set()

    await sup.run(Background("watchdog", keeps_failing), stop)
    assert probes[0] is None
    assert probes[1] is not None and "watchdog: 2 failures in a row (RuntimeError: database down)" in probes[1]
    assert probes[2] is None


async def test_a_task_that_returns_while_the_service_runs_is_restarted() -> None:
    stop = asyncio.Event()
    time = FakeTime(stop, until=2)
    runs: list[int] = []

    async def returns_early(stop: asyncio.Event) -> None:
        runs.append(1)

    sup = supervisor(time)
    await sup.run(Background("listener", returns_early), stop)
    assert len(runs) == 2
    assert sup.states["listener"].restarts == 2
    assert "returned while the service was running" in (sup.states["listener"].last_error or "")


async def test_a_restarted_task_that_stays_up_is_healthy_again() -> None:
    stop = asyncio.Event()
    time = FakeTime(stop, until=100)
    sup = supervisor(time, unhealthy_after=2, stable_seconds=60.0)
    runs: list[int] = []
    probes: list[str | None] = []

    async def crashes_twice(stop: asyncio.Event) -> None:
        runs.append(1)
        if len(runs) <= 2:
            raise OSError("socket closed")
        probes.append(await _probe(sup))  # just restarted after 2 crashes: still failing
        time.now += 61.0  # ... then it stays up for a minute
        probes.append(await _probe(sup))
        stop.set()

    await sup.run(Background("listener", crashes_twice), stop)
    assert probes[0] is not None and "listener" in probes[0]
    assert probes[1] is None


async def test_an_error_while_stopping_is_not_a_crash() -> None:
    stop = asyncio.Event()
    time = FakeTime(stop, until=100)

    async def fails_on_the_way_out(stop: asyncio.Event) -> None:
        stop.set()
        raise ConnectionError("broker closed")

    sup = supervisor(time)
    await sup.run(Background("relay", fails_on_the_way_out), stop)
    assert time.slept == [] and sup.states["relay"].restarts == 0


def test_two_tasks_with_one_name_are_refused() -> None:
    async def idle(stop: asyncio.Event) -> None:
        await stop.wait()

    with pytest.raises(ValueError, match="unique"):
        Supervisor().start([Background("a", idle), Background("a", idle)], asyncio.Event())


async def test_periodic_rounds_report_to_the_supervisor() -> None:
    stop = asyncio.Event()
    sup = Supervisor(unhealthy_after=2)
    rounds: list[int] = []

    async def job() -> None:
        rounds.append(1)
        if len(rounds) >= 2:
            stop.set()
        raise RuntimeError("sweep failed")

    await sup.run(periodic("blob sweep", 0.0, job), stop)
    assert sup.states["blob sweep"].streak == 2
    assert [s.name for s in sup.failing()] == ["blob sweep"]


async def test_build_app_supervises_every_background_task_and_health_names_the_failing_one() -> None:
    crashed = asyncio.Event()

    async def broken(stop: asyncio.Event) -> None:
        crashed.set()
        raise RuntimeError("wedged")

    async def fine(stop: asyncio.Event) -> None:
        await stop.wait()

    sup = Supervisor(backoff=Backoff(initial=0.01, maximum=0.01), unhealthy_after=1)
    parts = AppParts("widgets", "1.0", FakeVerifier(), background=[Background("broken loop", broken)], supervisor=sup)
    parts.background.append(Background("fine loop", fine))
    app = build_app(parts)
    transport = httpx.ASGITransport(app=app)
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    async with app.router.lifespan_context(app), httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        await asyncio.wait_for(crashed.wait(), 10)
        response = await c.get("/health", headers=admin)
        anonymous = await c.get("/health")
        metrics = await c.get("/metrics", headers=admin)
    assert response.status_code == 503 and anonymous.status_code == 503
    assert response.json()["checks"]["background"]["status"] == "down"
    assert "broken loop" in response.json()["checks"]["background"]["error"]
    assert "fine loop" not in response.json()["checks"]["background"]["error"]
    assert 'vtp_background_task_failing{task="broken loop"} 1' in metrics.text
    assert 'vtp_background_task_failing{task="fine loop"} 0' in metrics.text


async def _probe(sup: Supervisor) -> str | None:
    try:
        await sup.probe()
    except RuntimeError as exc:
        return str(exc)
    return None


async def test_a_consumer_that_is_not_running_turns_health_down_naming_its_topics() -> None:
    from faststream.kafka import KafkaBroker

    from vtp_runtime.service import _consumers_running

    broker = KafkaBroker("127.0.0.1:1")

    @broker.subscriber("job.log.v1", group_id="jobs")
    async def handle(body: bytes) -> None: ...

    with pytest.raises(RuntimeError, match=r"consumers stopped: job\.log\.v1"):
        await _consumers_running(broker)  # declared but stopped (never started, or stopped by faststream)
