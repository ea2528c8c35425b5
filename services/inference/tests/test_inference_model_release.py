"""Model files and Triton models are released when nothing references them any more (service layer, fakes).

A prepared model that is not committed (a name taken, a refused probe, a deployment deleted meanwhile)
leaves no file and no Triton model behind; a committed change releases what it stops referencing (the
model two switches back, a canary ended by a switch, a rollback or the traffic route, a deleted
deployment's models) and keeps what is still referenced elsewhere; a failed release never fails the
request, and the orphan sweep releases it later, sparing what is younger than its grace.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from inference_release_fakes import TOKEN, Env

from vtp_inference.adapters.triton_repository import TritonRepository
from vtp_inference.domain.model import DeploymentNotFound, NameTaken, RequestRefused, Status
from vtp_inference.domain.model_refs import files_of, runtime_key
from vtp_inference.domain.traffic import Share
from vtp_inference.service_layer.commands import delete_deployment
from vtp_inference.service_layer.sweeping import sweep_orphans
from vtp_inference.service_layer.switching import rollback, switch_export
from vtp_inference.service_layer.traffic import set_traffic


async def test_a_refused_switch_leaves_no_file_and_no_triton_model_behind():
    env = Env()
    kept = await env.create()
    taken = await env.create()
    before = (env.stored(), set(env.triton.held))
    assert kept.status == Status.READY and len(before[0]) == 4 and len(before[1]) == 2

    with pytest.raises(NameTaken):  # prepared, then refused at the commit: both or neither
        await switch_export(env.deps, env.caller, TOKEN, kept.id, env.exports.add(), {"name": taken.name})
    assert (env.stored(), set(env.triton.held)) == before

    with pytest.raises(RequestRefused) as refused:  # loaded in Triton, then the probe refuses it
        await switch_export(env.deps, env.caller, TOKEN, kept.id, env.exports.add(broken=True))
    assert refused.value.problems[0].code == "export_rejected"
    assert (env.stored(), set(env.triton.held)) == before

    async def delete_it() -> None:  # a concurrent change: deleted while the switch prepares
        await delete_deployment(env.deps, env.caller, kept.id)

    env.exports.during_download = delete_it
    with pytest.raises(DeploymentNotFound):
        await switch_export(env.deps, env.caller, TOKEN, kept.id, env.exports.add())
    assert env.nothing_left_over() and len(env.stored()) == 2  # `taken`'s two files only


async def test_a_refused_split_leaves_nothing_behind():
    env = Env()
    d = await env.create()
    with pytest.raises(RequestRefused):
        await set_traffic(env.deps, env.caller, TOKEN, d.id, [Share(d.export_id, 80), Share(env.exports.add(True), 20)])
    assert env.nothing_left_over() and len(env.stored()) == 2


async def test_a_creation_refused_or_deleted_meanwhile_leaves_nothing_behind():
    env = Env()
    failed = await env.create(env.exports.add(broken=True))
    assert failed.status == Status.FAILED and failed.error_code == "MODEL_INVALID"
    assert env.nothing_left_over() and not env.stored() and not env.triton.held

    async def delete_it() -> None:
        [creating] = [d for d in env.db.rows.values() if d.status == Status.CREATING and d.deleted_at is None]
        await delete_deployment(env.deps, env.caller, creating.id)

    env.exports.during_download = delete_it
    await env.create()
    assert env.nothing_left_over() and not env.stored() and not env.triton.held


async def test_committed_changes_release_what_they_stop_referencing():
    env = Env()
    first, second, third, canary = (env.exports.add() for _ in range(4))
    d = await env.create(first)
    await switch_export(env.deps, env.caller, TOKEN, d.id, second)
    await switch_export(env.deps, env.caller, TOKEN, d.id, third)  # `first` is two switches back: released
    assert env.nothing_left_over() and len(env.stored()) == 4

    split = await set_traffic(env.deps, env.caller, TOKEN, d.id, [Share(third, 80), Share(canary, 20)])
    files = {ref["uri"] for ref in files_of((split.canary or {})["model"])}
    reweighed = await set_traffic(env.deps, env.caller, TOKEN, d.id, [Share(third, 70), Share(canary, 30)])
    assert (reweighed.canary or {})["model"] == (split.canary or {})["model"] and files <= env.stored()  # reused
    assert env.nothing_left_over() and len(env.stored()) == 6

    await switch_export(env.deps, env.caller, TOKEN, d.id, first)  # ends the split: the canary goes, and `second`
    assert env.nothing_left_over() and not files & env.stored() and len(env.stored()) == 4

    await set_traffic(env.deps, env.caller, TOKEN, d.id, [Share(first, 50), Share(canary, 50)])
    assert len(env.stored()) == 6
    back = await rollback(env.deps, env.caller, d.id)  # ends the split too
    assert back.export_id == third and back.canary is None
    assert env.nothing_left_over() and len(env.stored()) == 4

    await set_traffic(env.deps, env.caller, TOKEN, d.id, [Share(third, 50), Share(canary, 50)])
    await set_traffic(env.deps, env.caller, TOKEN, d.id, [Share(third, 100)])  # the traffic route ends it
    assert env.nothing_left_over() and len(env.stored()) == 4

    await delete_deployment(env.deps, env.caller, d.id)
    assert not env.stored() and not env.triton.held


async def test_deleting_a_deployment_keeps_files_another_deployment_references():
    env = Env()
    a, b = await env.create(), await env.create()
    shared = env.db.rows[a.id].model
    env.db.rows[b.id].previous = {"export_id": str(a.export_id), "export_version": 1, "model": shared, "model_meta": {}}
    await delete_deployment(env.deps, env.caller, a.id)
    assert {ref["uri"] for ref in files_of(shared)} <= env.stored()  # still referenced by b
    assert env.stored() == env.referenced() and len(env.stored()) == 4
    # a's Triton model stays too: b names it, and the model's runtime key goes with it (b would load that one).
    assert set(env.triton.held) == env.served() == {(runtime_key(d.id, m), m["sha256"][:12]) for d, m in
                                                    ((b, b.model or {}), (a, shared or {}))}  # fmt: skip


async def test_a_failed_release_never_fails_the_request_and_the_sweep_releases_it_later():
    env = Env()
    first, second, third = (env.exports.add() for _ in range(3))
    d = await env.create(first)
    await switch_export(env.deps, env.caller, TOKEN, d.id, second)
    env.store.failing, env.triton.down = True, True
    switched = await switch_export(env.deps, env.caller, TOKEN, d.id, third)  # `first` cannot be released now
    assert switched.export_id == third
    assert not env.nothing_left_over() and len(env.stored()) == 6
    env.store.failing, env.triton.down = False, False

    now = datetime.now(UTC)
    young = await sweep_orphans(env.deps, 3600, env.triton.listing, now=now)  # within the grace: kept
    assert (young.files, young.models) == (0, 0)
    swept = await sweep_orphans(env.deps, 3600, env.triton.listing, now=now + timedelta(hours=2))
    assert (swept.files, swept.models) == (2, 1)
    assert env.nothing_left_over() and len(env.stored()) == 4

    await env.store.put_bytes("deployments/p/d/x-0/model.onnx", b"left by a dead replica")
    env.store.objects["batches/p/b/rows.jsonl"] = (b"{}", now - timedelta(days=9))  # not a model: never swept
    env.db.rows[d.id].canary = {"model": {"uri": "s3://elsewhere/k", "sha256": "00" * 32}}  # names nothing here
    swept = await sweep_orphans(env.deps, 3600, env.triton.listing, now=now + timedelta(hours=2))
    assert swept.files == 1 and "batches/p/b/rows.jsonl" in env.store.objects


def test_the_triton_repository_lists_its_models_by_deployment_and_sha(tmp_path: Path):
    repository = TritonRepository(tmp_path)
    key = str(uuid.uuid4())
    (tmp_path / f"vtp-{key}-0123456789ab" / "1").mkdir(parents=True)
    (tmp_path / f".tmp-vtp-{key}-0123456789ab-1a2b3c4d").mkdir()  # being written: not a model yet
    (tmp_path / "someone-elses-model").mkdir()
    [(found, sha, written)] = repository.held()
    assert (found, sha) == (key, "0123456789ab") and written <= datetime.now(UTC)
    assert TritonRepository(tmp_path / "missing").held() == []
