"""Which export toolchains this deployment has: probed, never installed.

Each format runs in a Python environment (the service's own, or a separate venv configured
per format for toolchains that conflict with the default ones). The probe asks that
interpreter whether the format's modules are importable (`importlib.util.find_spec`, no
import), so capabilities report what is really installed and the exporter never has to
fall back on Ultralytics' run-time pip installs.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
from dataclasses import dataclass

from vtp_export.domain.formats import FORMATS, NOT_OFFERED

_PROBE = (
    "import importlib.util as u, json, sys; print(json.dumps({m: u.find_spec(m) is not None for m in sys.argv[1:]}))"
)


@dataclass(frozen=True)
class Availability:
    available: bool
    reason: str | None
    python: str


def gpu_present() -> bool:
    return os.path.exists("/proc/driver/nvidia/version") or shutil.which("nvidia-smi") is not None


class Toolchains:
    def __init__(self, pythons: dict[str, str] | None = None, default_python: str = sys.executable) -> None:
        self._pythons = {fmt: pythons.get(fmt, default_python) if pythons else default_python for fmt in FORMATS}
        self._found: dict[str, dict[str, bool]] = {}
        self._gpu = gpu_present()

    def python_for(self, fmt: str) -> str:
        return self._pythons[fmt]

    async def probe(self) -> None:
        """Ask every configured interpreter which modules it has (once, at start-up)."""
        by_python: dict[str, set[str]] = {}
        for fmt, python in self._pythons.items():
            by_python.setdefault(python, set()).update(FORMATS[fmt].modules)
        for python, modules in by_python.items():
            self._found[python] = await _probe(python, sorted(modules))

    def availability(self, fmt: str) -> Availability:
        spec, python = FORMATS[fmt], self._pythons[fmt]
        if fmt in NOT_OFFERED:
            return Availability(False, NOT_OFFERED[fmt], python)
        if spec.gpu and not self._gpu:
            return Availability(False, f"{spec.title} needs an NVIDIA GPU, and this exporter has none", python)
        if spec.gpu:  # the child exports on the CPU; a GPU route with its own parity tolerances is not written yet
            return Availability(False, f"{spec.title} exports are not implemented by this exporter yet", python)
        found = self._found.get(python)
        if found is None:
            return Availability(False, f"the Python environment {python} could not be probed", python)
        missing = [m for m in spec.modules if not found.get(m)]
        if missing:
            hint = " (make setup-exporters)" if spec.note.startswith("heavy") else ""
            return Availability(False, f"toolchain not installed: {', '.join(missing)}{hint}", python)
        return Availability(True, None, python)


async def _probe(python: str, modules: list[str]) -> dict[str, bool]:
    try:
        process = await asyncio.create_subprocess_exec(
            python, "-c", _PROBE, *modules, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL
        )
        out, _ = await asyncio.wait_for(process.communicate(), 60)
        found: dict[str, bool] = json.loads(out)
        return found
    except (OSError, TimeoutError, ValueError):
        return {}
