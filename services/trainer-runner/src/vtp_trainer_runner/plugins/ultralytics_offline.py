"""Keep Ultralytics off the network: no update checks, analytics, pip installs or weight downloads.

Models come from yaml or local files (see `ultralytics.model_source`), plots are off (they fetch a
font); what is left is configured here, before and just after Ultralytics is imported.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any


def use_offline_environment(work_dir: Path) -> None:
    """Set before the first `import ultralytics`, which reads these; the runner's values win."""
    os.environ.setdefault("YOLO_OFFLINE", "1")  # no update checks, analytics or platform calls
    os.environ.setdefault("YOLO_AUTOINSTALL", "0")  # never pip-install a missing requirement
    os.environ.setdefault("YOLO_CONFIG_DIR", str(work_dir / "ultralytics-config"))  # a writable settings dir


def no_amp_check_download() -> None:
    """Ultralytics' AMP check runs yolo26n.pt on GPUs and downloads it when missing, offline mode or not.

    The check still runs when the weights are already on the machine (or on CPU, where it answers
    at once); otherwise AMP stays on, as the check itself decides when it cannot download.
    """
    from ultralytics.engine import trainer
    from ultralytics.utils import WEIGHTS_DIR

    module: Any = trainer  # untyped; the name is looked up there at call time
    real = module.check_amp

    def check_amp(model: Any) -> bool:
        if next(model.parameters()).device.type in {"cpu", "mps"} or (WEIGHTS_DIR / "yolo26n.pt").is_file():
            return bool(real(model))
        logging.getLogger("ultralytics").warning(
            "AMP check skipped: yolo26n.pt is not on this machine and is never downloaded; AMP stays on "
            "(set amp=False for GPUs with known AMP problems)"
        )
        return True

    if not getattr(real, "vtp_offline", False):
        check_amp.vtp_offline = True  # type: ignore[attr-defined]
        module.check_amp = check_amp
