"""What each export format accepts: tasks, options and the toolchain it needs.

Options are normalised (defaults filled, inapplicable ones refused) before the content
key is computed, so two requests that mean the same export are the same export.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

SUPPORTED_TASKS = ("detect", "segment", "classify", "pose")
ALL_TASKS = ("detect", "segment", "classify", "pose")
# Formats whose export, parity gate and predict.py are verified per task (integration tests);
# detect takes every format, the other tasks only these so far.
_VERIFIED = ("onnx", "torchscript", "openvino")  # NCNN passes too, but its export takes minutes: not in CI yet
TASK_FORMATS: dict[str, tuple[str, ...]] = {"segment": _VERIFIED, "pose": _VERIFIED, "classify": _VERIFIED}


def task_format_reason(task: str, fmt: str) -> str | None:
    """Why `fmt` is refused for `task` (None: it is offered)."""
    allowed = TASK_FORMATS.get(task)
    if allowed is None or fmt in allowed:
        return None
    verified = ", ".join(allowed)
    return f"{fmt} exports of {task} models are not verified yet (parity gate and predictor); {task}: {verified}"


OPTION_NAMES = ("imgsz", "half", "int8", "dynamic", "simplify", "opset", "batch", "nms")


@dataclass(frozen=True)
class FormatSpec:
    name: str
    title: str
    modules: tuple[str, ...]  # Python modules the exporter child needs (export and parity runtime)
    options: frozenset[str]  # options this format takes besides imgsz and batch
    gpu: bool = False
    runtime: str = ""  # what the package's predict.py imports
    note: str = ""
    heavy: bool = False  # installed by `make setup-exporters` into a virtual environment of its own
    parity_system: str | None = None  # the only OS its runtime runs on (platform.system()), if not any
    extra: dict[str, str] = field(default_factory=dict)


_BASE = ("torch", "ultralytics")
FORMATS: dict[str, FormatSpec] = {
    f.name: f
    for f in (
        FormatSpec(
            "onnx",
            "ONNX",
            (*_BASE, "onnx", "onnxslim", "onnxruntime"),
            frozenset({"dynamic", "simplify", "opset"}),
            runtime="onnxruntime",
        ),
        FormatSpec("torchscript", "TorchScript", _BASE, frozenset(), runtime="torch"),
        FormatSpec("openvino", "OpenVINO", (*_BASE, "openvino"), frozenset({"dynamic", "half"}), runtime="openvino"),
        FormatSpec("ncnn", "NCNN", (*_BASE, "ncnn", "pnnx"), frozenset(), runtime="ncnn"),
        FormatSpec(
            "engine", "TensorRT", (*_BASE, "tensorrt"), frozenset({"dynamic", "half"}), gpu=True, runtime="tensorrt"
        ),
        FormatSpec(
            "mnn",
            "MNN",
            (*_BASE, "MNN", "onnx", "onnxslim", "onnxruntime"),  # Ultralytics converts a simplified ONNX
            frozenset(),
            runtime="MNN",
            heavy=True,
        ),
        FormatSpec(
            "litert",
            "LiteRT",
            (*_BASE, "litert_torch", "ai_edge_litert"),
            frozenset(),
            runtime="ai-edge-litert",
            heavy=True,
        ),
        FormatSpec(
            "tflite",
            "TFLite (TensorFlow route)",
            (*_BASE, "tensorflow"),
            frozenset(),
            runtime="tensorflow",
            note="the SavedModel route mis-scales boxes; use litert",
        ),
        FormatSpec(
            "paddle",
            "PaddlePaddle",
            (*_BASE, "paddle", "x2paddle.convert"),
            frozenset(),
            runtime="paddlepaddle",
            heavy=True,
        ),
        FormatSpec(
            "coreml",
            "CoreML",
            (*_BASE, "coremltools"),
            frozenset(),
            runtime="coremltools (macOS)",
            note="its runtime needs macOS: the parity report says not_run",
            heavy=True,
            parity_system="Darwin",
        ),
    )
}
NOT_OFFERED = {
    "tflite": "not offered: use litert (Ultralytics 8.4 writes .tflite through LiteRT; the TensorFlow"
    " SavedModel route loads with every box scaled twice)"
}


@dataclass(frozen=True)
class Problem:
    pointer: str
    code: str
    message: str


def normalise_options(fmt: str, options: dict[str, Any], default_imgsz: int) -> tuple[dict[str, Any], list[Problem]]:
    """Defaults filled in and every option checked against the format; all problems at once."""
    spec = FORMATS[fmt]
    problems: list[Problem] = []

    def bad(name: str, message: str, code: str = "option_not_supported") -> None:
        problems.append(Problem(f"/options/{name}", code, message))

    for name in options:
        if name not in OPTION_NAMES:
            bad(name, f"unknown option {name!r}; known: {', '.join(OPTION_NAMES)}")
    imgsz = options.get("imgsz", default_imgsz)
    if not isinstance(imgsz, int) or isinstance(imgsz, bool) or not 32 <= imgsz <= 2048 or imgsz % 32:
        bad("imgsz", "imgsz must be a multiple of 32 between 32 and 2048", "invalid_option")
    flags: dict[str, bool] = {}
    for name in ("half", "int8", "dynamic", "simplify", "nms"):
        value = options.get(name, name == "simplify" and "simplify" in spec.options)
        if not isinstance(value, bool):
            bad(name, f"{name} must be true or false", "invalid_option")
            continue
        flags[name] = value
        if value and name not in spec.options:
            bad(name, _unsupported_reason(name, spec))
    if flags.get("half") and flags.get("int8"):
        bad("half", "half and int8 exclude each other", "invalid_option")
    opset = options.get("opset")
    if opset is not None:
        if "opset" not in spec.options:
            bad("opset", f"opset applies to ONNX only, not {spec.title}")
        elif not isinstance(opset, int) or isinstance(opset, bool) or not 11 <= opset <= 22:
            bad("opset", "opset must be an integer between 11 and 22", "invalid_option")
    batch = options.get("batch", 1)
    if not isinstance(batch, int) or isinstance(batch, bool) or not 1 <= batch <= 64:
        bad("batch", "batch must be an integer between 1 and 64", "invalid_option")
    elif batch != 1 and not flags.get("dynamic"):
        bad("batch", "a fixed batch other than 1 is not offered; use dynamic=true (batch is then the largest)")
    normal: dict[str, Any] = {"imgsz": imgsz, "batch": batch, **{k: v for k, v in flags.items() if k != "nms"}}
    normal = {k: v for k, v in normal.items() if k in ("imgsz", "batch") or k in spec.options}
    if "opset" in spec.options:
        normal["opset"] = opset
    return normal, problems


def _unsupported_reason(name: str, spec: FormatSpec) -> str:
    if name == "int8":
        return "int8 needs calibration data, which this deployment does not provide yet"
    if name == "nms":
        return "nms inside the model is not offered: the package's predictor applies NMS"
    if name == "half":
        return f"half precision is not offered for {spec.title} on a CPU-only exporter"
    return f"{name} does not apply to {spec.title}"


def parity_not_run(fmt: str, system: str) -> str | None:
    """Why the parity gate cannot run this format on an exporter on `system`, or None when it can."""
    needed = FORMATS[fmt].parity_system
    if needed is None or needed == system:
        return None
    return f"{FORMATS[fmt].title} models run only on {_SYSTEMS.get(needed, needed)}; this exporter runs on {system}"


_SYSTEMS = {"Darwin": "macOS"}


def precision(options: dict[str, Any]) -> str:
    """Which parity tolerances apply."""
    return "int8" if options.get("int8") else "fp16" if options.get("half") else "fp32"
