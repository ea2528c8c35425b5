"""COCO run-length masks -> DICE polygons (DICE segmentation holds polygons only).

A mask is decoded with pycocotools and traced with OpenCV along its outline: one polygon per
connected part, vertices on the outer pixels (pixel accuracy). A mask with a hole cannot be
written as DICE polygons without filling the hole, so it is refused rather than changed.
"""

from __future__ import annotations

from typing import Any


class MaskError(ValueError):
    """An RLE that cannot become polygons; `code` says why."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def is_rle(segmentation: object) -> bool:
    return isinstance(segmentation, dict)


def rle_polygons(rle: dict[str, Any], width: int, height: int) -> list[list[float]]:
    """The outline polygons of an RLE mask (compressed or uncompressed counts) of a `width` x `height` image."""
    import cv2
    import numpy as np
    from pycocotools import mask as mask_utils

    size = rle.get("size")
    counts = rle.get("counts")
    if not (isinstance(size, list) and len(size) == 2 and all(isinstance(v, int) and v > 0 for v in size)):
        raise MaskError("coco_rle_invalid", "size must be [height, width]")
    if size != [height, width]:
        raise MaskError("coco_rle_size_mismatch", f"size {size}, the image is [{height}, {width}] (height, width)")
    try:
        if isinstance(counts, list):  # uncompressed: turn into the compressed form pycocotools decodes
            if not all(isinstance(c, int) and c >= 0 for c in counts) or sum(counts) != height * width:
                raise ValueError(f"counts must be non-negative integers summing to {height * width}")
            encoded = mask_utils.frPyObjects({"size": size, "counts": counts}, height, width)
        elif isinstance(counts, str):
            encoded = {"size": size, "counts": counts.encode("ascii")}
        else:
            raise ValueError("counts must be a string or a list of integers")
        mask = np.ascontiguousarray(mask_utils.decode(encoded), dtype=np.uint8)
    except MaskError:
        raise
    except Exception as exc:  # pycocotools raises many kinds on hostile counts: all mean "does not decode"
        raise MaskError("coco_rle_invalid", f"the RLE mask does not decode: {exc}") from exc
    if mask.shape != (height, width) or not mask.any():
        raise MaskError("coco_rle_invalid", "the RLE mask is empty or not of the image's size")
    contours, hierarchy = cv2.findContours(mask, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
    if hierarchy is not None and (hierarchy[0][:, 3] >= 0).any():
        raise MaskError("coco_mask_hole_unsupported", "the mask has a hole; DICE polygons cannot represent holes")
    polygons = [[float(v) for v in c.reshape(-1)] for c in contours if len(c) >= 3]
    if not polygons:  # parts one or two pixels wide: no area to outline
        raise MaskError("coco_rle_invalid", "the mask is too thin to outline as a polygon")
    return polygons
