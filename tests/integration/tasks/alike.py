"""Two deployments of one job's model on different runtimes answer the same photos alike, per task.

The reference is the ONNX Runtime deployment; a detection is answered by one of the same class with
box IoU >= 0.99 and confidence within 0.01 (one tied in score with another of its class may be
answered by the other anchor: NMS order), its mask IoU >= 0.95 or its keypoints within 0.1; classify's
top-5 holds the same classes, the same top-1, each probability within 0.01.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import numpy as np

from .test_tasks_predict import groups, mask_iou, match, predict, raster


def _compared(reference: list[dict[str, Any]], ours: list[dict[str, Any]], name: str) -> list[tuple[dict, list]]:
    """Each of the reference's detections with ours that answer it."""
    rows = np.asarray([[*d["xyxy"], d["confidence"], d["class_id"]] for d in reference]).reshape(-1, 6)
    same = groups(rows) if len(rows) else []
    pairs = []
    for k, d in enumerate(reference):
        candidates = match(ours, d["class_id"], d["confidence"], d["xyxy"])
        assert candidates or len(same[k]) > 1, (name, d)
        if candidates:
            pairs.append((d, candidates))
    assert abs(len(ours) - len(reference)) <= sum(len(g) > 1 for g in same), (name, len(ours), len(reference))
    return pairs


def assert_alike(admin: httpx.Client, task: str, reference: dict, ours: dict, photos: dict[str, Path]) -> int:
    """Both deployments' answers on the photos agree; how many detections (or top-5 lists) were compared."""
    theirs_all, ours_all = predict(admin, reference, photos)["images"], predict(admin, ours, photos)["images"]
    compared, worst = 0, 0.0
    for name, theirs, mine in zip(photos, theirs_all, ours_all, strict=True):
        shape = (theirs["height"], theirs["width"])
        assert (mine["height"], mine["width"]) == shape, name
        if task == "classify":
            assert mine["top5"][0]["class_id"] == theirs["top5"][0]["class_id"], name
            probs = {e["class_id"]: e["confidence"] for e in theirs["top5"]}
            assert {e["class_id"] for e in mine["top5"]} == set(probs), name
            assert max(abs(e["confidence"] - probs[e["class_id"]]) for e in mine["top5"]) <= 0.01, name
            compared += 1
            continue
        for d, candidates in _compared(theirs["detections"], mine["detections"], name):
            if task == "segment":
                expected = raster(d["polygons"], shape)
                assert max(mask_iou(raster(c["polygons"], shape), expected) for c in candidates) >= 0.95, (name, d)
            else:
                distance = min(float(np.abs(np.subtract(c["keypoints"], d["keypoints"])).max()) for c in candidates)
                assert distance < 0.1, (name, d, distance)  # pixels of the photo (x, y) and visibility score
                worst = max(worst, distance)
            compared += 1
    if task == "pose":
        print("pose instances", compared, "max keypoint difference", worst)
    return compared
