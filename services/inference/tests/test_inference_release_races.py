"""Concurrent changes of one deployment never unload a Triton model that a committed state serves (fakes).

Two preparations of the same content for one deployment each load their own Triton model (a runtime
key of their own): the one refused releases its model, never the one the other commits, even when
its release decided before that commit and unloads after it. A stopped deployment's models are
unloaded only while it is still stopped: an activation committed meanwhile keeps them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from datetime import UTC, datetime
from typing import TypeVar

import pytest
from inference_release_fakes import TOKEN, Env

from vtp_inference.domain.model import NameTaken, Status
from vtp_inference.domain.model_refs import models_of, runtime_key
from vtp_inference.service_layer.commands import update_deployment
from vtp_inference.service_layer.releasing import release_models
from vtp_inference.service_layer.switching import switch_export

T = TypeVar("T")


def _on_loop(loop: asyncio.AbstractEventLoop, work: Awaitable[T]) -> T:
    """Run `work` to its end on the test's loop, from the thread a release runs in (the loop is free)."""

    async def wrapped() -> T:
        return await work

    return asyncio.run_coroutine_threadsafe(wrapped(), loop).result(timeout=30)


async def test_a_refused_preparation_never_unloads_the_same_model_another_committed():
    env = Env()
    d = await env.create()
    taken = await env.create()
    same = env.exports.add()  # both switch to this export: the same model bytes, the same sha256
    loop = asyncio.get_running_loop()
    committed = []

    def commit_the_other() -> None:  # B decided its model is free (A not committed yet); A commits now
        committed.append(_on_loop(loop, switch_export(env.deps, env.caller, TOKEN, d.id, same)))

    env.triton.before_release = commit_the_other  # B's unload waits until A has committed
    with pytest.raises(NameTaken):  # B: prepared, then refused at its commit (the name is taken)
        await switch_export(env.deps, env.caller, TOKEN, d.id, same, {"name": taken.name})

    [a] = committed
    assert a.export_id == same and a.model is not None
    served = (runtime_key(d.id, a.model), a.model["sha256"][:12])
    assert served in env.triton.held  # A's Triton model is loaded: the next request is served, not a 503
    assert env.nothing_left_over()  # and B's own model is gone


async def test_both_preparations_of_the_same_content_committed_keep_their_models_until_dropped():
    env = Env()
    d = await env.create()
    same = env.exports.add()
    first, second = await asyncio.gather(*(switch_export(env.deps, env.caller, TOKEN, d.id, same) for _ in range(2)))
    assert first.model and second.model and runtime_key(d.id, first.model) != runtime_key(d.id, second.model)
    assert env.nothing_left_over()  # one serves, the other is `previous`: both loaded, nothing else


async def test_a_stopped_deployment_activated_meanwhile_keeps_its_models():
    env = Env()
    d = await env.create()
    stopped = await update_deployment(env.deps, env.caller, d.id, {}, "deactivate")
    assert stopped.status == Status.STOPPED and not env.triton.held  # unloaded: it serves nothing

    await update_deployment(env.deps, env.caller, d.id, {}, "activate")
    for key in env.served():  # a replica serves it again: its request loaded the model into Triton
        env.triton.held[key] = datetime.now(UTC)
    await release_models(env.deps, stopped, *models_of(stopped))  # the deactivation's release, late
    assert set(env.triton.held) == env.served()  # active again: nothing unloaded
