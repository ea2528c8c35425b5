"""Segment and pose postprocessing of the inference service against Ultralytics' own, on the same tensors.

The outputs of a 640 px model are made up with a known number of confident, well separated instances
(every other anchor scores below the threshold), so both sides do the same work: ours
(`vtp_inference.service_layer.tasks.predict` on a fake model that returns the tensors: NMS with the
extra columns, masks from one matrix product, one `cv2.resize` per mask, in-place crops, contours;
keypoints scaled in one step) and Ultralytics' (`non_max_suppression`, `process_mask` upsampled,
`scale_boxes`, `Masks.xy` contours / `scale_coords` keypoints, on torch CPU tensors, one thread).
Both include the letterbox of a 1280x720 image and its float tensor (ours inside `predict`, theirs
as `BasePredictor.preprocess` makes it). The prototypes are smooth, as a trained model's are.
Calls alternate between the two, so load on the machine hits both alike.

    python bench/task_postprocess.py [--instances 20] [--repeat 30]

Prints the median milliseconds per image of each and the ratio theirs / ours (> 1: ours is faster).
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import torch

from vtp_inference.service_layer import tasks

IMGSZ, NC, ANCHORS = 640, 80, 8400


@dataclass
class Fake:
    outs: list[np.ndarray]
    input_shape: Any = (1, 3, IMGSZ, IMGSZ)
    platform: str = "fake"
    input_name: str = "images"
    output_name: str = "output0"
    output_shape: Any = None

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.outs[0]

    def run_all(self, x: np.ndarray) -> list[np.ndarray]:
        return self.outs


@dataclass(frozen=True)
class Params:
    conf: float = 0.25
    iou: float = 0.7
    max_det: int = 300
    classes: list[int] | None = None


def outputs(task: str, n: int, rng: np.random.Generator) -> list[np.ndarray]:
    extra = 32 if task == "segment" else 17 * 3
    out = np.zeros((1, 4 + NC + extra, ANCHORS), np.float32)
    out[0, 4 : 4 + NC] = rng.uniform(0, 0.1, (NC, ANCHORS))  # noise under the threshold
    picks = rng.choice(ANCHORS, n, replace=False)
    side = int(np.ceil(np.sqrt(n)))
    for k, a in enumerate(picks):  # a grid of separate boxes: nothing suppressed
        cx, cy = (k % side + 0.5) * IMGSZ / side, (k // side + 0.5) * IMGSZ / side
        out[0, :4, a] = (cx, cy, IMGSZ / side * 0.6, IMGSZ / side * 0.6)
        out[0, 4 + k % NC, a] = 0.9
    out[0, 4 + NC :] = rng.normal(0, 1, (extra, ANCHORS)) * (IMGSZ / 4 if task == "pose" else 1)
    if task == "pose":
        out[0, 4 + NC + 2 :: 3] = rng.uniform(0, 1, (17, ANCHORS))
    found = [out]
    if task == "segment":
        # Smooth prototypes (as a trained model's are): masks are blobs, not noise with endless contours.
        coarse = rng.normal(0, 1, (12, 12, 32)).astype(np.float32)
        smooth = cv2.resize(coarse, (IMGSZ // 4, IMGSZ // 4), interpolation=cv2.INTER_CUBIC)
        found.append(np.ascontiguousarray(smooth.transpose(2, 0, 1))[None])
    return found


def theirs(task: str, outs: list[np.ndarray], image: np.ndarray) -> None:
    from ultralytics.data.augment import LetterBox
    from ultralytics.engine.results import Masks
    from ultralytics.utils.nms import non_max_suppression
    from ultralytics.utils.ops import process_mask, scale_boxes, scale_coords

    padded = LetterBox(new_shape=(IMGSZ, IMGSZ), auto=False)(image=image)  # and its tensor, as BasePredictor does
    torch.from_numpy(np.ascontiguousarray(padded[None, ..., ::-1].transpose(0, 3, 1, 2))).float() / 255
    det = non_max_suppression(torch.from_numpy(outs[0]), 0.25, 0.7, max_det=300, nc=NC)[0]
    if task == "segment":
        masks = process_mask(torch.from_numpy(outs[1][0]), det[:, 6:], det[:, :4], (IMGSZ, IMGSZ), upsample=True)
        det[:, :4] = scale_boxes((IMGSZ, IMGSZ), det[:, :4], image.shape)
        Masks(masks, image.shape[:2]).xy  # noqa: B018  (the contours, computed on access)
    else:
        kpts = det[:, 6:].view(len(det), 17, 3)
        scale_coords((IMGSZ, IMGSZ), kpts, image.shape)
        det[:, :4] = scale_boxes((IMGSZ, IMGSZ), det[:, :4], image.shape)


def medians_ms(runs: list[Any], repeat: int) -> list[float]:
    """Median milliseconds of each run, alternated call by call so load on the machine hits both alike."""
    for run in runs:
        run()  # warm
    times: list[list[float]] = [[] for _ in runs]
    for _ in range(repeat):
        for k, run in enumerate(runs):
            t = time.perf_counter()
            run()
            times[k].append(time.perf_counter() - t)
    return [statistics.median(t) * 1000 for t in times]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--instances", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (720, 1280, 3), dtype=np.uint8)
    names = {str(i): f"c{i}" for i in range(NC)}
    for task in ("segment", "pose"):
        outs = outputs(task, args.instances, rng)
        meta = {"names": names, "imgsz": IMGSZ, "mask_dim": 32, "kpt_shape": [17, 3]}
        model = Fake(outs)
        answer, _ = tasks.predict(task, model, meta, image, Params())  # type: ignore[arg-type]
        ours, other = medians_ms(
            [
                lambda task=task, model=model, meta=meta: tasks.predict(task, model, meta, image, Params()),  # type: ignore[arg-type]
                lambda task=task, outs=outs: theirs(task, outs, image),
            ],
            args.repeat,
        )
        found = len(answer["detections"])
        print(f"{task}: {found} instances, ours {ours:.2f} ms, Ultralytics {other:.2f} ms, ratio {other / ours:.2f}")


if __name__ == "__main__":
    main()
