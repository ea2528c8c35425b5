"""key=value parsing, and how `vtp train` turns the arguments into a job request."""

from __future__ import annotations

from typing import Any

import pytest
import typer
from cli_fakes import DATASET_ID, JOB_ID, FakeClient

from vtp_cli.commands.train import build_request, split_config, task_of
from vtp_cli.kv import parse_pairs, parse_value


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("50", 50),
        ("-1", -1),
        ("0.01", 0.01),
        ("1e-3", 0.001),
        ("true", True),
        ("False", False),
        ("none", None),
        ("NULL", None),
        ("AdamW", "AdamW"),
        ("[0, 2]", [0, 2]),
        ('{"a": 1}', {"a": 1}),
        ("[not json", "[not json"),
        ("nan", "nan"),
        ("inf", "inf"),
        ("0,2", "0,2"),
        (DATASET_ID, DATASET_ID),
        ("", ""),
    ],
)
def test_values_are_typed_like_ultralytics(text: str, value: Any) -> None:
    assert parse_value(text) == value
    assert type(parse_value(text)) is type(value)


def test_pairs_later_key_wins_and_values_may_hold_equals() -> None:
    assert parse_pairs(["epochs=5", "name=a=b", "epochs=7"]) == {"epochs": 7, "name": "a=b"}


@pytest.mark.parametrize("bad", ["epochs", "=5", "5=epochs", "-e=1"])
def test_a_non_pair_is_a_usage_error(bad: str) -> None:
    with pytest.raises(typer.BadParameter, match="expected key=value"):
        parse_pairs(["epochs=5", bad])


def test_train_usage_errors_exit_2(fake: FakeClient, vtp: Any) -> None:
    result = vtp("train", "model=yolo11n", "epochs")
    assert result.exit_code == 2
    assert "expected key=value" in result.output
    result = vtp("train", "model=yolo11n", "epochs=5")
    assert result.exit_code == 2
    assert "data=DATASET_ID is required" in result.output
    result = vtp("train", "data=nope")
    assert result.exit_code == 2
    result = vtp("train", f"data={DATASET_ID}", "--preset", "insane")
    assert result.exit_code == 2
    assert "unknown preset 'insane'; one of easy" in result.output
    assert not fake.called("jobs.create")


@pytest.mark.parametrize(
    ("model", "task"),
    [("yolo11n", "detect"), ("yolo11s-seg", "segment"), ("yolo11n-pose.pt", "pose"), ("yolo11m-cls.yaml", "classify")],
)
def test_task_from_the_model_name(model: str, task: str) -> None:
    assert task_of(model) == task


def test_keys_go_to_config_or_advanced_config_by_the_schema_and_arguments_beat_the_preset() -> None:
    from cli_fakes import SCHEMA

    preset = SCHEMA["presets"]["easy"]  # type: ignore[index]
    config, advanced = split_config({"epochs": 3, "mosaic": 0.5, "typo": 1}, SCHEMA, preset)
    assert config == {"epochs": 3, "imgsz": 416, "typo": 1}  # unknown keys go where the server names them
    assert advanced == {"cos_lr": False, "mosaic": 0.5}


def test_the_request_from_arguments(fake: FakeClient) -> None:
    values = {"data": DATASET_ID, "model": "yolo11n-seg", "epochs": 1, "cos_lr": True, "snapshot": JOB_ID}
    request = build_request(fake, values, None, None)
    assert request == {
        "dataset_id": DATASET_ID,
        "name": f"yolo11n-seg on {DATASET_ID[:8]}",
        "task_type": "segment",
        "model": "yolo11n-seg",
        "config": {"epochs": 1},
        "advanced_config": {"cos_lr": True},
        "framework": "ultralytics",
        "priority": 0,
        "snapshot_id": JOB_ID,
    }


def test_fine_tuning_from_a_job_takes_its_task(fake: FakeClient) -> None:
    fake.answers["jobs.get"] = {**fake.answers["jobs.get"], "task_type": "pose"}
    request = build_request(fake, {"data": DATASET_ID, "model": JOB_ID}, None, "mine")
    assert (request["task_type"], request["model"], request["name"]) == ("pose", JOB_ID, "mine")


def test_train_submits_and_returns_at_once_with_no_follow(fake: FakeClient, vtp: Any) -> None:
    result = vtp("train", f"data={DATASET_ID}", "epochs=2", "imgsz=64", "amp=false", "--no-follow", "--json")
    assert result.exit_code == 0, result.output
    ((args, kwargs),) = fake.called("jobs.create")
    assert args == (DATASET_ID,)
    assert kwargs["config"] == {"epochs": 2, "imgsz": 64, "amp": False}
    assert '"status": "queued"' in result.stdout


def test_jobs_cancel_and_restart_send_what_was_asked(fake: FakeClient, vtp: Any) -> None:
    result = vtp("jobs", "cancel", JOB_ID, "--reason", "wrong data")
    assert result.exit_code == 0 and "cancel requested" in result.stdout
    assert [(str(a[0]), k) for a, k in fake.called("jobs.cancel")] == [(JOB_ID, {"reason": "wrong data"})]
    fake.answers["jobs.restart"] = {**fake.answers["jobs.get"], "attempt": 2, "status": "queued"}
    result = vtp("jobs", "restart", JOB_ID, "--no-resume")
    assert result.exit_code == 0 and "attempt 2, status queued" in result.stdout
    assert [k for _, k in fake.called("jobs.restart")] == [{"resume": False}]


def test_export_and_deploy_arguments(fake: FakeClient, vtp: Any) -> None:
    assert vtp("export", JOB_ID, "opset").exit_code == 2  # not key=value
    fake.answers["exports.create"] = {"id": JOB_ID, "status": "queued"}
    result = vtp("export", JOB_ID, "--checkpoint", "3", "--format", "openvino", "--no-wait", "--json")
    assert result.exit_code == 0 and '"status": "queued"' in result.stdout
    assert [(a[1], k) for a, k in fake.called("exports.create")] == [("openvino", {"checkpoint": 3, "options": {}})]
