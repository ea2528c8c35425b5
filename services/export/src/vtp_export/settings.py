"""Settings of the export service and its exporter worker (environment, prefix ``VTP_``)."""

import os
import socket
from pathlib import Path

from pydantic import Field

from vtp_runtime.settings import ServiceSettings

# Parity tolerances per precision: raw-output difference (box rows in pixels, score rows),
# matched-box IoU, score difference, class agreement, and the task metric's drop.
DEFAULT_TOLERANCES: dict[str, dict[str, float]] = {
    "fp32": {
        "box_px": 0.05,
        "score": 1e-3,
        "min_iou": 0.99,
        "score_diff": 0.005,
        "class_agreement": 1.0,
        "metric": 0.01,
    },
    "fp16": {
        "box_px": 1.0,
        "score": 0.01,
        "min_iou": 0.95,
        "score_diff": 0.02,
        "class_agreement": 0.98,
        "metric": 0.02,
    },
    "int8": {"box_px": 8.0, "score": 0.1, "min_iou": 0.8, "score_diff": 0.1, "class_agreement": 0.9, "metric": 0.05},
}


class ExportSettings(ServiceSettings):
    service_name: str = "export"
    http_port: int = 8105
    jobs_url: str = Field("http://127.0.0.1:8102", description="Jobs service, to resolve recorded checkpoints.")
    datasets_url: str = Field("http://127.0.0.1:8103", description="Datasets service, for the job's snapshot.")
    exporter_enabled: bool = Field(True, description="Run the exporter worker in this process.")
    exporter_id: str = Field(default_factory=lambda: f"{socket.gethostname()}-{os.getpid()}")
    exporter_slots: int = Field(1, ge=1, le=32, description="Exports run at once by this worker.")
    exporter_work_dir: Path = Field(Path(".vtp/data/exporter"), description="Attempts' directories, dataset cache.")
    exporter_cache_max_bytes: int = Field(5 << 30, ge=0)
    export_lease_seconds: float = Field(30.0, gt=0, description="A worker silent this long loses its export.")
    export_heartbeat_seconds: float = Field(3.0, gt=0, description="How often a worker renews its leases.")
    export_watchdog_seconds: float = Field(5.0, gt=0, description="How often expired leases are looked for.")
    export_max_attempts: int = Field(3, ge=1, description="Attempts before an export whose exporter crashes fails.")
    export_toolchain_pythons: dict[str, str] = Field(
        default_factory=dict,
        description='Per format, the Python of its own venv, e.g. {"mnn": "/srv/.venv-exporters/mnn/bin/python"}'
        " (make setup-exporters writes .venv-exporters/toolchains.json).",
    )
    export_toolchain_probe_seconds: float = Field(
        600.0, gt=0, description="Start-up probe, in the background: how long a venv may take to import its toolchain."
    )
    export_parity_images: int = Field(8, ge=1, le=64, description="Validation images compared output by output.")
    export_parity_conf: float = Field(0.001, gt=0, lt=1, description="Score threshold of compared detections.")
    export_parity_tolerances: dict[str, dict[str, float]] = Field(default_factory=lambda: dict(DEFAULT_TOLERANCES))
    export_debug_options: bool = Field(
        False, description="Accept the test-only option `debug_perturb` that corrupts an export. Never in production."
    )
