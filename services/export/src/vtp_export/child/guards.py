"""What the child switches off in a toolchain before using it: nothing may be installed or sent at run time."""

from __future__ import annotations

import sys


def block_mnn_telemetry() -> None:
    """MNN's converter imports `MNN.tools.utils.log`, which pip-installs aliyun-log-python-sdk when it is
    missing (a protobuf downgrade) and reports each conversion to Alibaba's servers. `mnnconvert` ignores a
    failing import of it, so making that import fail keeps the export offline and the venv unchanged."""
    sys.modules["MNN.tools.utils.log"] = None  # type: ignore[assignment]
