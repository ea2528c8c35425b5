"""The orphan sweep's reach: the temporary folders a crash left in the Triton repository, older than the
grace, go; one a live preparation is writing stays; a scoped sweep (`prefix`, `held`, `leftovers`) looks
at nothing else (service layer and the repository adapter, fakes and a temporary directory)."""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from inference_release_fakes import Env

from vtp_inference.adapters.triton_repository import TritonRepository
from vtp_inference.service_layer.sweeping import Held, sweep_orphans

HOUR = timedelta(hours=1)


def _folder(root: Path, name: str, age: timedelta, files: dict[str, timedelta] | None = None) -> Path:
    """A folder (and files in it), last modified `age` ago (each file at its own age)."""
    folder = root / name
    (folder / "1").mkdir(parents=True)
    for rel, file_age in (files or {}).items():
        (folder / rel).write_bytes(b"x")
        at = (datetime.now(UTC) - file_age).timestamp()
        os.utime(folder / rel, (at, at))
    for path in (folder / "1", folder):
        at = (datetime.now(UTC) - age).timestamp()
        os.utime(path, (at, at))
    return folder


def test_leftovers_older_than_the_cutoff_go_and_one_being_written_stays(tmp_path: Path):
    key = f"{uuid.uuid4()}-1a2b3c4d"
    crashed = _folder(tmp_path, f".tmp-vtp-{key}-0123456789ab-00000001", 2 * HOUR, {"config.pbtxt": 2 * HOUR})
    young = _folder(tmp_path, f".tmp-vtp-{key}-0123456789ab-00000002", timedelta(seconds=5))
    # An old folder whose model file is still being written (a slow write): newer inside, so it stays.
    writing = _folder(tmp_path, f".tmp-vtp-{key}-0123456789ab-00000003", 2 * HOUR, {"1/model.onnx": timedelta(0)})
    model = _folder(tmp_path, f"vtp-{key}-0123456789ab", 2 * HOUR)  # a model: the sweep's `held` decides on it
    other = _folder(tmp_path, ".tmp-someone-else", 2 * HOUR)
    repository = TritonRepository(tmp_path)

    scoped = repository.remove_leftovers(datetime.now(UTC) - HOUR, match=f".tmp-vtp-{key}")
    assert scoped == 1 and not crashed.exists()
    assert young.exists() and writing.exists() and model.exists() and other.exists()
    assert repository.remove_leftovers(datetime.now(UTC) - HOUR) == 1 and not other.exists()  # the whole repository
    assert young.exists() and writing.exists() and model.exists()
    assert TritonRepository(tmp_path / "missing").remove_leftovers(datetime.now(UTC)) == 0


def test_a_write_leaves_no_temporary_folder(tmp_path: Path):
    repository = TritonRepository(tmp_path)
    repository.write("vtp-k-0123456789ab", {"config.pbtxt": b"name", "1/model.onnx": b"onnx"})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["vtp-k-0123456789ab"]
    assert repository.remove_leftovers(datetime.now(UTC) + HOUR) == 0  # a model is never a leftover


async def test_the_sweep_removes_leftovers_and_stays_within_its_scope(tmp_path: Path):
    env = Env()
    d = await env.create()
    later = datetime.now(UTC) + 2 * HOUR  # everything stored so far is older than the grace then
    await env.store.put_bytes("deployments/p/other/x-0/model.onnx", b"another test's orphan")
    await env.store.put_bytes(f"deployments/{d.project_id}/{d.id}/x-0/model.onnx", b"orphan of this deployment")
    theirs = (f"{uuid.uuid4()}-00000000", "0123456789ab")  # another test's orphan model
    env.triton.held[theirs] = datetime.now(UTC)
    mine = (f"{d.id}-00000000", "abcdef012345")
    env.triton.held[mine] = datetime.now(UTC)
    crashed = _folder(tmp_path, ".tmp-vtp-crashed", 3 * HOUR)
    cut: list[datetime] = []

    def leftovers(cutoff: datetime) -> int:
        cut.append(cutoff)
        return TritonRepository(tmp_path).remove_leftovers(cutoff)

    def held() -> list[Held]:
        return [h for h in env.triton.listing() if h.key.startswith(str(d.id))]

    prefix = f"deployments/{d.project_id}/{d.id}/"
    swept = await sweep_orphans(env.deps, 3600, held, now=later, prefix=prefix, leftovers=leftovers)
    assert (swept.files, swept.models, swept.leftovers) == (1, 1, 1) and cut == [later - HOUR]
    assert "deployments/p/other/x-0/model.onnx" in env.store.objects
    assert set(env.triton.held) == env.served() | {theirs}  # this deployment's model stays, and theirs
    assert not crashed.exists()
