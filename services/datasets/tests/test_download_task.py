"""Which task a YOLO or COCO download writes when the request names none."""

from __future__ import annotations

from typing import Any

import pytest

from vtp_datasets.domain.model import TaskNotInDataset, TaskRequired
from vtp_datasets.service_layer.content import Content
from vtp_datasets.service_layer.downloads import download_task
from vtp_dice.format import Task
from vtp_dice.manifest import Manifest


def _content(*tasks: Task) -> Content:
    docs: dict[Task, dict[str, Any]] = {t: {} for t in tasks}
    return Content(Manifest({t: "0" * 64 for t in tasks}, ()), docs, None)


@pytest.mark.parametrize("task", ["segmentation", "pose", "classification", "detection"])
def test_a_snapshot_of_one_task_downloads_that_task(task: Task) -> None:
    assert download_task(_content(task), "yolo", None) == task


def test_coco_takes_the_only_task_it_can_write() -> None:
    assert download_task(_content("classification", "pose"), "coco", None) == "pose"
    with pytest.raises(TaskNotInDataset, match="coco cannot write any of the snapshot's tasks \\(classification\\)"):
        download_task(_content("classification"), "coco", None)


def test_several_tasks_are_listed_for_the_caller_to_choose() -> None:
    with pytest.raises(TaskRequired) as raised:
        download_task(_content("segmentation", "detection", "classification"), "yolo", None)
    assert raised.value.tasks == ["classification", "detection", "segmentation"]
    assert "classification, detection, segmentation" in str(raised.value)


def test_a_named_task_is_kept_or_refused() -> None:
    content = _content("segmentation", "detection")
    assert download_task(content, "coco", "segmentation") == "segmentation"
    with pytest.raises(TaskNotInDataset, match="detection, segmentation"):
        download_task(content, "yolo", "pose")
    with pytest.raises(TaskNotInDataset, match="no classification layout"):
        download_task(_content("classification"), "coco", "classification")
