"""`vtp batch` and `vtp batches`: the source and parameters sent, the folder zipped, the live watch, exit codes."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import cli_fakes
import pytest
import typer
from cli_fakes import DEPLOYMENT_ID, NOW, FakeClient, a_png

from vtp_cli import batch_view
from vtp_cli.commands.batch import parse_sources

BATCH_ID = "66666666-6666-6666-6666-666666666666"


def a_batch(status: str, done: int = 0, total: int = 8, **extra: Any) -> dict[str, Any]:
    return {
        "id": BATCH_ID, "deployment_id": DEPLOYMENT_ID, "status": status, "task": "detect",
        "source": {"kind": "zip", "sha256": "ab" * 32, "size_bytes": 4000, "images": total},
        "parameters": {"conf": 0.25, "iou": 0.7, "max_det": 300, "classes": None},
        "progress": {"total_images": total, "processed_images": done, "failed_images": 0, "chunk_size": 4,
                     "chunks_done": done // 4, "total_chunks": 2},
        "attempt": 1, "cancel_requested": False,
        "timings": {"created_at": NOW, "started_at": None, "finished_at": None, "run_seconds": None},
        "results": {}, "error": None, **extra,
    }  # fmt: skip


class Batches(cli_fakes.Batches):
    """Answers `get` from a script of states; records what `create` was sent (and the zip's entries)."""

    def __init__(self, fake: FakeClient, states: list[dict[str, Any]]) -> None:
        super().__init__(fake)
        self.states = states
        self.entries: list[str] = []

    def create(self, deployment_id: str, source: Path | None = None, **kwargs: Any) -> dict[str, Any]:
        self.fake.calls.append(("batches.create", (deployment_id, source), kwargs))
        if source is not None:
            with zipfile.ZipFile(source) as zf:
                self.entries = zf.namelist()
        return a_batch("queued")

    def get(self, deployment_id: str, batch_id: str) -> dict[str, Any]:
        return self.states.pop(0) if len(self.states) > 1 else self.states[0]

    def results(self, deployment_id: str, batch_id: str, dest: Path, **kwargs: Any) -> Path:
        self.fake.calls.append(("batches.results", (deployment_id, batch_id, dest), kwargs))
        target = dest / f"batch-{batch_id}.jsonl" if dest.is_dir() else dest
        target.write_text('{"index": 0}\n')
        return target


@pytest.fixture(autouse=True)
def no_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(batch_view, "POLL_SECONDS", 0.0)


def test_sources_and_parameters_are_read_from_the_arguments(tmp_path: Path) -> None:
    archive = tmp_path / "a.zip"
    archive.write_bytes(b"PK")
    assert parse_sources([str(archive), "conf=0.5", "classes=0,2"]) == (archive, {}, {"conf": 0.5, "classes": [0, 2]})
    assert parse_sources(["snapshot=abc", "split=val", "classes=1"]) == (
        None, {"snapshot_id": "abc", "split": "val"}, {"classes": [1]},
    )  # fmt: skip
    for wrong in (
        [str(archive), "snapshot=abc"],  # two sources
        ["conf=0.5"],  # none
        [str(archive), "split=val"],  # a split without a snapshot
        [str(archive), "lr0=0.1"],  # not a predict parameter
        [str(tmp_path / "missing.zip")],
    ):
        with pytest.raises(typer.BadParameter):
            parse_sources(wrong)


def test_a_folder_is_zipped_uploaded_and_watched_to_its_end(fake: FakeClient, vtp: Any, tmp_path: Path) -> None:
    (tmp_path / "photos" / "sub").mkdir(parents=True)
    a_png(tmp_path / "photos" / "b.png")
    a_png(tmp_path / "photos" / "sub" / "a.png")
    (tmp_path / "photos" / "notes.txt").write_text("skipped")
    finished = a_batch("succeeded", 8, results={"jsonl": {"size_bytes": 900, "download": "/x/results"}})
    batches = Batches(fake, [a_batch("queued"), a_batch("running", 4), finished])
    fake.batches = batches
    result = vtp("batch", DEPLOYMENT_ID, str(tmp_path / "photos"), "conf=0.5", "-o", str(tmp_path / "rows.jsonl"))
    assert result.exit_code == 0, result.output
    assert batches.entries == ["b.png", "sub/a.png"]  # images only, relative to the folder
    ((deployment, _), kwargs), *_ = fake.called("batches.create")
    assert deployment == DEPLOYMENT_ID and kwargs["conf"] == 0.5 and callable(kwargs["progress"])
    assert "zipped 2 image(s)" in result.stdout and f"batch {BATCH_ID} queued 0/8 images" in result.stdout
    assert "succeeded 8/8 images" in result.stdout and "saved " in result.stdout
    assert (tmp_path / "rows.jsonl").read_text() == '{"index": 0}\n'
    assert fake.called("batches.results")[0][1]["format"] == "jsonl"


def test_a_snapshot_batch_and_a_failed_one_exits_1(fake: FakeClient, vtp: Any) -> None:
    failed = a_batch("failed", 4, error={"code": "MODEL_UNAVAILABLE", "message": "gone"})
    fake.batches = Batches(fake, [failed])
    result = vtp("batch", DEPLOYMENT_ID, "snapshot=77777777-7777-7777-7777-777777777777", "split=val")
    assert result.exit_code == 1, result.output
    ((_, source), kwargs), *_ = fake.called("batches.create")
    assert source is None and kwargs == {"snapshot_id": "77777777-7777-7777-7777-777777777777", "split": "val"}
    assert "MODEL_UNAVAILABLE: gone" in result.stdout and "saved" not in result.stdout


def test_no_watch_ls_show_cancel_and_results(fake: FakeClient, vtp: Any, tmp_path: Path) -> None:
    archive = tmp_path / "in.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("a.png", a_png(tmp_path / "a.png").read_bytes())
    batches = Batches(fake, [a_batch("succeeded", 8, results={"coco": {"size_bytes": 10, "download": "/c"}})])
    fake.batches = batches
    queued = vtp("batch", DEPLOYMENT_ID, str(archive), "--no-watch")
    assert queued.exit_code == 0 and f"watch: vtp batches watch {DEPLOYMENT_ID} {BATCH_ID}" in queued.stdout
    assert batches.entries == ["a.png"]

    fake.answers["batches.list"] = [a_batch("running", 4)]
    listed = vtp("batches", "ls", DEPLOYMENT_ID, "--status", "running")
    assert listed.exit_code == 0 and BATCH_ID in listed.stdout and "4/8" in listed.stdout
    assert fake.called("batches.list")[0][1] == {"status": "running", "limit": 50}
    shown = vtp("batches", "show", DEPLOYMENT_ID, BATCH_ID)
    assert shown.exit_code == 0 and "succeeded 8/8 images" in shown.stdout and "results coco" in shown.stdout
    fake.answers["batches.cancel"] = a_batch("running", 4, cancel_requested=True)
    cancelled = vtp("batches", "cancel", DEPLOYMENT_ID, BATCH_ID)
    assert cancelled.exit_code == 0 and "cancel requested" in cancelled.stdout
    saved = vtp("batches", "results", DEPLOYMENT_ID, BATCH_ID, "--format", "coco", "-o", str(tmp_path))
    assert saved.exit_code == 0 and f"batch-{BATCH_ID}.jsonl" in saved.stdout
    assert fake.called("batches.results")[0][1]["format"] == "coco"
