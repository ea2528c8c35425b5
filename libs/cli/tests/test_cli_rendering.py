"""What people read: the live epochs, the job and parity tables, detections, plots and drawn images."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cli_fakes import DEPLOYMENT_ID, EXPORT_ID, JOB_ID, FakeClient, a_png, job, parity
from PIL import Image

from vtp_cli.follow import EpochTable, eta_text
from vtp_cli.plot import chart

EPOCH = {
    "epoch": 1, "total_epochs": 2, "epoch_seconds": 3.25,
    "train_losses": {"box_loss": 1.5, "cls_loss": 3.0},
    "val_metrics": {"mAP50-95": 0.1, "mAP50": 0.2, "precision": 0.3, "recall": 0.4},
}  # fmt: skip


def _feed(*epochs: dict[str, Any], end: str = "completed") -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = [{"type": "job_status", "event_id": "e0", "data": {"status": "started"}}]
    for i, epoch in enumerate(epochs):
        messages.append({"type": "progress", "event_id": f"e{i + 1}", "data": {**epoch, "eta_seconds": 65}})
        metrics = {k: v for k, v in epoch.items() if k != "epoch_seconds"}  # as the notifier sends them
        messages.append({"type": "metrics", "event_id": f"e{i + 1}", "data": metrics})
    if end == "failed":
        messages.append({"type": "error", "event_id": "ef", "data": {"error": {"code": "OOM", "message": "boom"}}})
    else:
        messages.append({"type": "job_status", "event_id": "ez", "data": {"status": end}})
    return messages


def test_epoch_rows_are_aligned_under_their_header() -> None:
    table = EpochTable()
    header = table.header(EPOCH)
    row = table.row(EPOCH)
    assert header.split() == ["epoch", "box_loss", "cls_loss", "precision", "recall", "mAP50", "mAP50-95", "time"]
    with_val_losses = {**EPOCH, "val_metrics": {**EPOCH["val_metrics"], "box_loss": 1.2}}  # type: ignore[dict-item]
    wide = EpochTable()
    assert wide.header(with_val_losses).split()[-2] == "val_box_loss"
    assert len(wide.header(with_val_losses)) == len(wide.row(with_val_losses))
    assert row.split() == ["1/2", "1.5000", "3.0000", "0.3000", "0.4000", "0.2000", "0.1000", "3.2s"]
    assert len(header) == len(row)
    assert eta_text(65) == "ETA 1:05" and eta_text(None) == "ETA -" and eta_text(7300) == "ETA 2h01m"


def test_train_follows_the_job_to_its_final_table(fake: FakeClient, vtp: Any) -> None:
    fake.messages = _feed(EPOCH, {**EPOCH, "epoch": 2})
    states = iter([job("queued"), job("completed")])  # before following; once the feed has ended
    fake.jobs.get = lambda *a, **k: next(states, job("completed"))  # type: ignore[method-assign]
    result = vtp("train", "data=22222222-2222-2222-2222-222222222222", "epochs=2")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert any(line.split()[:2] == ["epoch", "box_loss"] for line in lines)
    rows = [line.split() for line in lines if line.strip().startswith(("1/2", "2/2"))]
    assert [row[0] for row in rows] == ["1/2", "2/2"]
    assert [row[-1] for row in rows] == ["3.2s", "3.2s"]  # the epoch's time, from its progress message
    assert f"job {JOB_ID}" in result.stdout
    assert "best" in result.stdout and "mAP50-95 0.250" in result.stdout
    assert f"next: vtp export {JOB_ID} --format onnx" in result.stdout


def test_a_failed_job_exits_1(fake: FakeClient, vtp: Any) -> None:
    calls = iter([job("running"), job("failed", error={"code": "OOM", "message": "boom"})])
    fake.jobs.get = lambda *a, **k: next(calls, job("failed", error={"code": "OOM", "message": "boom"}))  # type: ignore[method-assign]
    fake.messages = _feed(EPOCH, end="failed")
    result = vtp("jobs", "watch", JOB_ID)
    assert result.exit_code == 1
    assert "job failed: OOM boom" in result.stdout
    assert "OOM: boom" in result.stdout


def test_ctrl_c_asks_and_cancels_the_job(fake: FakeClient, vtp: Any) -> None:
    fake.answers["jobs.get"] = job("running")
    fake.messages = [*_feed(EPOCH)[:3], KeyboardInterrupt()]
    result = vtp("jobs", "watch", JOB_ID, input="cancel\n")
    assert "Cancel the job, or only stop watching it?" in result.output
    assert fake.called("jobs.cancel") == [((JOB_ID,), {"reason": "cancelled from the vtp command line"})]
    assert result.exit_code == 1  # the job will not complete


def test_ctrl_c_can_only_stop_watching(fake: FakeClient, vtp: Any) -> None:
    fake.answers["jobs.get"] = job("running")
    fake.messages = [KeyboardInterrupt()]
    result = vtp("jobs", "watch", JOB_ID, input="\n")  # the default: stop watching
    assert result.exit_code == 0
    assert not fake.called("jobs.cancel")
    assert f"vtp jobs watch {JOB_ID}" in result.stdout


def test_parity_report(fake: FakeClient, vtp: Any) -> None:
    export = {
        "id": EXPORT_ID, "job_id": JOB_ID, "name": "v1", "format": "onnx", "status": "succeeded", "stage": None,
        "options": {"imgsz": 64}, "checkpoint": {"kind": "best"}, "attempt": 1, "is_default": True,
        "artifact": {"sha256": "cd" * 32, "size_bytes": 10_500_000}, "parity": parity(), "error": None,
        "timings": {},
    }  # fmt: skip
    fake.answers["exports.create"] = {**export, "status": "queued", "parity": None, "artifact": None}
    fake.answers["exports.get"] = export
    result = vtp("export", JOB_ID, "--format", "onnx", "--half", "dynamic=true")
    assert result.exit_code == 0, result.output
    ((_, kwargs),) = fake.called("exports.create")
    assert kwargs["options"] == {"dynamic": True, "half": True}
    out = result.stdout
    assert "parity passed (fp32, square 64x64 (rect=False))" in out
    row = next(line for line in out.splitlines() if "max box diff" in line)
    assert "0.0012" in row and "0.05" in row
    assert "0.7110 -> 0.7105 (-0.0005)" in out
    assert f"next: vtp deploy {EXPORT_ID}" in out

    fake.answers["exports.get"] = {**export, "status": "failed", "parity": parity(False),
                                   "error": {"code": "PARITY_FAILED", "message": "box outputs differ"}}  # fmt: skip
    result = vtp("export", JOB_ID)
    assert result.exit_code == 1
    assert "parity FAILED" in result.stdout and "failed: box outputs differ by 3.2 px > 0.05" in result.stdout


def test_deploy_prints_the_endpoint_and_a_curl_line(fake: FakeClient, vtp: Any) -> None:
    fake.answers["exports.get"] = {"id": EXPORT_ID, "job_id": JOB_ID, "name": "v1", "format": "onnx"}
    fake.answers["deployments.create"] = _deployment()
    result = vtp("deploy", EXPORT_ID, "conf=0.3")
    assert result.exit_code == 0, result.output
    (((_, name), kwargs),) = fake.called("deployments.create")
    assert (name, kwargs) == ("onnx-11111111-v1", {"runtime": "onnxruntime", "conf": 0.3})
    endpoint = f"http://gateway.test/api/v1/deployments/{DEPLOYMENT_ID}/predict"
    assert f'curl -H "Authorization: Bearer $VTP_TOKEN" -F file=@image.jpg {endpoint}' in result.stdout
    assert vtp("deploy", EXPORT_ID, "thresh=1").exit_code == 2


def _deployment(**extra: Any) -> dict[str, Any]:
    return {
        "id": DEPLOYMENT_ID, "name": "shapes", "export_id": EXPORT_ID, "export_version": 1, "task_type": "detect",
        "runtime": "onnxruntime", "status": "ready", "defaults": {"conf": 0.25}, "classes": {"0": "circle"},
        "imgsz": 64, "error": None, "previous_export": None, "updated_at": "2026-12-02T10:00:00", **extra,
    }  # fmt: skip


def test_predict_prints_detections_and_draws_them(fake: FakeClient, vtp: Any, tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    a_png(folder / "a.png", (200, 100))
    a_png(folder / "b.png", (100, 100))
    (folder / "notes.txt").write_text("not an image")
    fake.answers["deployments.list"] = {"items": [_deployment()], "total": 1, "limit": 200, "offset": 0}
    box = {
        "class_id": 0, "class_name": "circle", "confidence": 0.91, "xyxy": [10.0, 20.0, 90.0, 80.0],
        "xywhn": [0.25, 0.5, 0.4, 0.6], "polygons": [[[10, 20], [90, 20], [50, 80]]], "keypoints": [[50, 50, 0.9]],
    }  # fmt: skip
    fake.answers["deployments.predict"] = {
        "deployment_id": DEPLOYMENT_ID, "name": "shapes", "export_id": EXPORT_ID, "export_version": 1,
        "task": "detect", "parameters": {}, "total_ms": 5.0,
        "images": [{"index": 0, "width": 200, "height": 100, "detections": [box], "timings_ms": {"inference": 2.0}},
                   {"index": 1, "width": 100, "height": 100, "detections": [], "timings_ms": {"inference": 1.0}}],
    }  # fmt: skip
    out = tmp_path / "out"
    result = vtp("predict", "shapes", str(folder), "conf=0.5", "classes=0", "--save", str(out))
    assert result.exit_code == 0, result.output
    (((deployment_id, images), kwargs),) = fake.called("deployments.predict")
    assert deployment_id == DEPLOYMENT_ID and [p.name for p in images] == ["a.png", "b.png"]
    assert kwargs == {"conf": 0.5, "classes": [0]}
    row = next(line for line in result.stdout.splitlines() if "circle (0)" in line)
    assert "0.910" in row and "10.0" in row and "mask (1 polygon), 1 keypoints" in row
    drawn = Image.open(out / "a.png").convert("RGB")
    assert drawn.getpixel((10, 50)) != (40, 80, 120)  # the box's left edge is drawn
    assert drawn.getpixel((150, 95)) == (40, 80, 120)  # outside every shape: untouched
    assert Image.open(out / "b.png").getpixel((50, 50)) == (40, 80, 120)
    answer = fake.answers["deployments.predict"]
    fake.answers["deployments.predict"] = {**answer, "images": answer["images"][:1]}
    result = vtp("predict", "shapes", str(folder / "a.png"), "--json")
    assert json.loads(result.stdout)["images"][0]["file"].endswith("a.png")

    assert vtp("predict", "nameless", str(folder)).exit_code == 3
    assert vtp("predict", "shapes", str(tmp_path / "missing.jpg")).exit_code == 2
    assert vtp("predict", "shapes", str(folder), "size=3").exit_code == 2


def test_metrics_table_and_plot(fake: FakeClient, vtp: Any) -> None:
    epochs = [{**EPOCH, "epoch": e, "val_metrics": {"mAP50": e / 10}, "learning_rate": 0.01} for e in range(1, 6)]
    fake.answers["jobs.metrics"] = {"job_id": JOB_ID, "attempts": [{"attempt": 1, "epochs": epochs}]}
    result = vtp("jobs", "metrics", JOB_ID, "--plot")
    assert result.exit_code == 0, result.output
    assert "training losses" in result.stdout and "validation metrics" in result.stdout
    assert any(0x2800 < ord(c) <= 0x28FF for c in result.stdout)  # braille dots: the curves


def test_chart_draws_each_series_between_its_labels() -> None:
    text = chart("loss", {"a": [(1, 1.0), (2, 0.5), (3, 0.25)], "b": [(1, 0.2)]}, width=20, height=5).plain
    lines = text.splitlines()
    assert lines[0] == "loss"
    assert lines[1].startswith("  1 ┤") and lines[5].startswith("0.2 ┤")
    assert lines[1][5] != "⠀" and lines[5][5] != "⠀"  # both series start at the left edge
    assert "● a" in lines[-1] and "● b" in lines[-1]
    assert chart("empty", {}).plain == "empty\n(no data)\n"


def test_classification_and_pose_answers(tmp_path: Path) -> None:
    from rich.console import Console

    from vtp_cli.draw import draw
    from vtp_cli.render import detections_table

    image = a_png(tmp_path / "c.png", (120, 80))
    answer = {"width": 120, "height": 80, "top5": [{"class_id": 2, "class_name": "cat", "confidence": 0.8}]}
    console = Console(width=200, record=True)
    console.print(detections_table("c.png", answer))
    text = console.export_text()
    assert "top 1 classes" in text and "cat (2)" in text and "0.800" in text
    drawn = Image.open(draw(image, answer, tmp_path / "out" / "c.png")).convert("RGB")
    assert drawn.getpixel((0, 0)) == (40, 80, 120) and drawn.tobytes() != Image.open(image).convert("RGB").tobytes()
    pose = {"class_id": 0, "class_name": "person", "confidence": 0.9, "xyxy": [10, 10, 60, 70],
            "keypoints": [[30, 30, 0.9], [40, 40, 0.1], [50, 50]]}  # fmt: skip
    drawn = Image.open(draw(image, {"detections": [pose]}, tmp_path / "out" / "p.png")).convert("RGB")
    assert drawn.getpixel((30, 30)) != (40, 80, 120)  # a visible keypoint
    assert drawn.getpixel((40, 40)) == (40, 80, 120)  # below the visibility threshold: not drawn
    assert drawn.getpixel((50, 50)) != (40, 80, 120)  # x, y only: drawn


def test_train_json_prints_only_the_final_job(fake: FakeClient, vtp: Any) -> None:
    fake.messages = _feed(EPOCH)
    states = iter([job("queued"), job("completed")])
    fake.jobs.get = lambda *a, **k: next(states, job("completed"))  # type: ignore[method-assign]
    result = vtp("train", "data=22222222-2222-2222-2222-222222222222", "epochs=2", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["status"] == "completed"
