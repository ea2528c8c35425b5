"""Predictions drawn on their images with Pillow: boxes and labels, polygons (masks) and keypoints when the
answer has them, the top class for classification. Coordinates are in the original image's pixels after
EXIF orientation, so the image is turned the same way first."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageFont, ImageOps

# Ultralytics' palette, so a class has the colour users know from `yolo predict`.
PALETTE = (
    "#FF3838",
    "#FF9D97",
    "#FF701F",
    "#FFB21D",
    "#CFD231",
    "#48F90A",
    "#92CC17",
    "#3DDB86",
    "#1A9334",
    "#00D4BB",
    "#2C99A8",
    "#00C2FF",
    "#344593",
    "#6473FF",
    "#0018EC",
    "#8438FF",
    "#520085",
    "#CB38FF",
    "#FF95C8",
    "#FF37C7",
)


def colour(class_id: int) -> str:
    return PALETTE[class_id % len(PALETTE)]


def _rgba(hex_colour: str, alpha: int) -> tuple[int, int, int, int]:
    value = hex_colour.lstrip("#")
    return int(value[0:2], 16), int(value[2:4], 16), int(value[4:6], 16), alpha


def _polygons(detection: dict[str, Any]) -> list[list[tuple[float, float]]]:
    """A segmentation answer's outlines: `polygons`, each [[x, y], ...] in the image's pixels."""
    outlines = [[(float(x), float(y)) for x, y, *_ in polygon] for polygon in detection.get("polygons") or []]
    return [points for points in outlines if len(points) >= 3]


def _keypoints(detection: dict[str, Any]) -> list[tuple[float, float, float]]:
    found = []
    for point in detection.get("keypoints") or []:
        if isinstance(point, dict):
            x, y = point.get("x", 0), point.get("y", 0)
            score = point.get("visible", point.get("score", point.get("confidence", 1.0)))
        else:
            x, y, score = [*list(point), 1.0][:3]
        found.append((float(x or 0), float(y or 0), float(score or 0)))
    return found


def draw(image_path: Path, result: dict[str, Any], target: Path) -> Path:
    """Write `image_path` with `result`'s detections drawn to `target`."""
    image = ImageOps.exif_transpose(Image.open(image_path)).convert("RGB")
    line = max(2, round(min(image.size) / 250))
    font = ImageFont.load_default(size=max(12, line * 6))
    overlay = Image.new("RGBA", image.size, (0, 0, 0, 0))
    shade = ImageDraw.Draw(overlay)
    detections = result.get("detections") or []
    for d in detections:
        for polygon in _polygons(d):
            shade.polygon(polygon, fill=_rgba(colour(int(d.get("class_id", 0))), 90))
    image = Image.alpha_composite(image.convert("RGBA"), overlay).convert("RGB")
    pen = ImageDraw.Draw(image)
    for d in detections:
        hue = colour(int(d.get("class_id", 0)))
        x1, y1, x2, y2 = d.get("xyxy", [0, 0, 0, 0])
        pen.rectangle((x1, y1, x2, y2), outline=hue, width=line)
        label = f"{d.get('class_name', d.get('class_id'))} {d.get('confidence', 0):.2f}"
        left, top, right, bottom = pen.textbbox((x1, y1), label, font=font)
        above = max(0.0, y1 - (bottom - top) - 2 * line)
        pen.rectangle((x1, above, x1 + (right - left) + 2 * line, above + (bottom - top) + 2 * line), fill=hue)
        pen.text((x1 + line, above + line - (top - y1)), label, fill="white", font=font)
        for x, y, score in _keypoints(d):
            if score > 0.5:
                r = line + 1
                pen.ellipse((x - r, y - r, x + r, y + r), fill=hue, outline="white")
    top5 = result.get("top5") or []
    if top5:
        best = top5[0]
        pen.text(
            (line * 2, line * 2), f"{best.get('class_name')} {best.get('confidence', 0):.2f}", fill="white", font=font
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    image.save(target)
    return target
