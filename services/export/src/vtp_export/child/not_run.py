"""An export whose runtime this exporter cannot run (CoreML off macOS): packaged, its parity `not_run`.

The rule: such an export ends `succeeded` (the conversion worked and the package is complete), but
its parity report says `status: not_run` with the reason, `passed: false`, and a warning. Nothing
is faked: no number is reported for a comparison that was not made. Deployments refuse it (they
need `passed`), and it never becomes the job's default. The package's `samples/expected.json` holds
the PyTorch checkpoint's detections, so the user can run the comparison where the runtime runs.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from vtp_export.child import package, parity


def package_unchecked(
    spec: dict[str, Any],
    model_names: dict[int, str],
    weights: Path,
    exported: Path,
    model_file: str,
    out: Path,
    images: list[Path],
    timings: dict[str, float],
    reason: str,
) -> dict[str, Any]:
    t = time.monotonic()
    imgsz = spec["options"]["imgsz"]
    samples = images[: min(4, len(images))]
    pt_backend = parity.load(weights)
    expected: dict[str, list[list[float]]] = {}
    output_shape: list[int] = []
    for image in samples:
        x, shape = parity.tensor(image, imgsz)
        raw = parity.raw_output(pt_backend, x)
        output_shape = list(raw.shape)
        expected[image.name] = parity.detections(raw, imgsz, shape, spec["parity_conf"]).tolist()
    report: dict[str, Any] = {
        "status": "not_run",
        "passed": False,
        "reason": reason,
        "precision": spec["precision"],
        "tolerances": spec["tolerances"],
        "failures": [],
        "warnings": [
            f"parity not run: {reason}; deployments refuse this export and it never becomes the job's default",
            "samples/expected.json holds the PyTorch checkpoint's detections, not this export's",
        ],
    }
    meta = package.metadata(spec, model_names, output_shape, model_file)
    archive = package.build(spec, exported, model_file, meta, report, samples, expected, out)
    timings["package_seconds"] = round(time.monotonic() - t, 3)
    return {"ok": True, "package": str(archive), "parity": report, "metadata": meta, "timings": timings}
