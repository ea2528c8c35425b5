"""Each service image installs every in-repo package the service depends on."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LIBRARIES = {"vtp-contracts": "contracts", "vtp-runtime": "libs/runtime", "vtp-dice": "libs/dice"}
SERVICES = sorted(p for p in (ROOT / "services").iterdir() if (p / "pyproject.toml").exists())


def _in_repo_deps(pyproject: Path) -> set[str]:
    deps = tomllib.loads(pyproject.read_text())["project"]["dependencies"]
    names = {d.split(">")[0].split("=")[0].split("[")[0].strip() for d in deps}
    found = {LIBRARIES[n] for n in names if n in LIBRARIES}
    for lib in list(found):  # libraries' own in-repo dependencies
        found |= _in_repo_deps(ROOT / lib / "pyproject.toml")
    return found


@pytest.mark.parametrize("service", SERVICES, ids=lambda p: p.name)
def test_dockerfile_copies_and_installs_every_in_repo_dependency(service: Path):
    dockerfile = (service / "Dockerfile").read_text()
    for lib in _in_repo_deps(service / "pyproject.toml"):
        assert f"COPY {lib}/ {lib}/" in dockerfile, f"{service.name} image lacks {lib}"
        assert f"./{lib} " in dockerfile or f"./{lib}\n" in dockerfile, f"{service.name} image does not install {lib}"
