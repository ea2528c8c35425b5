"""Each service image installs every in-repo package the service depends on; the inference image's
ONNX Runtime build argument (Docker is not needed: nothing is built)."""

from __future__ import annotations

import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml

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


SWAP = "services/inference/scripts/swap-onnxruntime.sh"


def _args(dockerfile: str) -> tuple[dict[str, str], dict[str, str]]:
    """(ARGs before the first FROM: usable in FROM only, ARGs after it: usable in RUN), name -> default."""
    before: dict[str, str] = {}
    after: dict[str, str] = {}
    seen_from = False
    for line in dockerfile.splitlines():
        seen_from = seen_from or line.startswith("FROM ")
        if line.startswith("ARG "):
            name, _, default = line.removeprefix("ARG ").partition("=")
            (after if seen_from else before)[name] = default
    return before, after


def test_compose_build_args_are_declared_where_the_dockerfile_uses_them():
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    for name, service in compose["services"].items():
        build = service.get("build")
        if not isinstance(build, dict) or not build.get("args"):
            continue
        dockerfile = (ROOT / build.get("context", ".") / build["dockerfile"]).read_text()
        before, after = _args(dockerfile)
        for arg in build["args"]:
            in_from = any(line.startswith("FROM ") and f"${{{arg}}}" in line for line in dockerfile.splitlines())
            assert arg in (before if in_from else after), f"{name}: {arg} is not declared where it is used"


def test_the_inference_image_swaps_in_onnxruntime_gpu_only_when_asked():
    dockerfile = (ROOT / "services" / "inference" / "Dockerfile").read_text()
    before, after = _args(dockerfile)
    assert before == {"BASE_IMAGE": "python:3.11-slim"} and "FROM ${BASE_IMAGE}" in dockerfile
    assert after == {"ONNXRUNTIME_PACKAGE": "onnxruntime"}
    install = next(block for block in dockerfile.split("\nRUN ") if "pip install" in block)
    # In the same layer as the install, before the sources (the script among them) are removed.
    assert install.index("./services/inference") < install.index(SWAP) < install.index("rm -rf /opt/vtp/src")
    assert f'sh {SWAP} "${{ONNXRUNTIME_PACKAGE}}"' in install
    script = (ROOT / SWAP).read_text()
    uninstall = script.index("pip uninstall -y onnxruntime\n")
    assert uninstall < script.index('pip install --no-cache-dir "onnxruntime-gpu[cuda,cudnn]<=${cpu_version}"')
    assert "ldconfig" in script and "CUDAExecutionProvider" in script


@pytest.mark.parametrize(("package", "succeeds"), [("onnxruntime", True), ("onnxruntime-openvino", False), ("", False)])
def test_the_swap_leaves_the_cpu_image_alone_and_refuses_other_packages(package: str, succeeds: bool, tmp_path: Path):
    """Only the default and refused values run here: the onnxruntime-gpu path replaces packages."""
    guard = tmp_path / "python"  # first on PATH: a script that went on would stop here, touching nothing
    guard.write_text("#!/bin/sh\necho 'the swap went on to python' >&2\nexit 99\n")
    guard.chmod(0o755)
    done = subprocess.run(
        ["sh", str(ROOT / SWAP), package],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        env={"PATH": f"{tmp_path}:/usr/bin:/bin"},
    )
    assert done.returncode in ((0,) if succeeds else (1, 2)), done.stderr
    assert done.stdout == ""
    assert "went on" not in done.stderr
    assert bool(done.stderr) is not succeeds  # a refusal says why
