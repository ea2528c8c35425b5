"""Triton Inference Server for the local stack, from the `nvidia-pytriton` wheel (server 2.51).

The wheel ships a `tritonserver` binary with the Python backend only, which runs on a CPU. It is
not installed into the virtual environment (it pins numpy < 2, the platform pins numpy 2): only
the server is unpacked into a cache directory (`python -m vtp_localstack.triton fetch`, run by
`make setup`). When it is there, `vtp-stack up` starts it with `--model-control-mode=explicit`
on a repository directory that the inference service writes models into.
"""

from __future__ import annotations

import argparse
import os
import shutil
import site
import subprocess
import sys
import sysconfig
import tempfile
import zipfile
from pathlib import Path

from vtp_localstack.config import StackConfig
from vtp_localstack.processes import ProcessSpec

WHEEL = "nvidia-pytriton==0.7.0"  # tritonserver 2.51
_KEEP = ("pytriton/tritonserver/", "nvidia_pytriton.libs/")


def server_bin(root: Path) -> Path:
    return root / "pytriton" / "tritonserver" / "bin" / "tritonserver"


def fetch(root: Path) -> Path:
    """Unpack the server from the wheel into `root` once (idempotent); returns the binary."""
    binary = server_bin(root)
    if binary.exists():
        return binary
    with tempfile.TemporaryDirectory(prefix="vtp-triton-") as tmp:
        pip = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--dest", tmp, WHEEL]
        subprocess.run(pip, check=True)
        wheel = next(Path(tmp).glob("nvidia_pytriton-*.whl"))
        staging = Path(tmp) / "unpacked"
        with zipfile.ZipFile(wheel) as archive:
            archive.extractall(staging, [n for n in archive.namelist() if n.startswith(_KEEP)])
        server = staging / "pytriton" / "tritonserver"
        stub = server / "python_backend_stubs" / f"{sys.version_info.major}.{sys.version_info.minor}"
        shutil.copy2(stub / "triton_python_backend_stub", server / "backends" / "python")
        for executable in (
            server / "bin" / "tritonserver",
            server / "backends" / "python" / "triton_python_backend_stub",
        ):
            executable.chmod(0o755)
        root.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(root, ignore_errors=True)
        shutil.move(str(staging), root)
    return binary


def available(cfg: StackConfig) -> bool:
    return cfg.triton and server_bin(cfg.triton_dir).exists()


def model_repository(cfg: StackConfig) -> Path:
    return cfg.run_path / "data" / "triton-models"


def triton_spec(cfg: StackConfig) -> ProcessSpec:
    """tritonserver on HTTP only, loading models on request from the shared repository directory."""
    root, repository = cfg.triton_dir, model_repository(cfg)
    repository.mkdir(parents=True, exist_ok=True)
    server = root / "pytriton" / "tritonserver"
    argv = [
        str(server / "bin" / "tritonserver"),
        f"--model-repository={repository}",
        "--model-control-mode=explicit",
        f"--backend-directory={server / 'backends'}",
        f"--http-address={cfg.host}",
        f"--http-port={cfg.triton_port}",
        "--allow-grpc=false",
        "--allow-metrics=false",
        "--exit-timeout-secs=5",  # stop promptly even while clients keep connections open
    ]
    # The wheel's libraries, and this interpreter's libpython before the system's (the stub links
    # libpython3.x); PYTHONPATH is where the generated model.py finds numpy and onnxruntime.
    libs = [str(root / "nvidia_pytriton.libs"), str(sysconfig.get_config_var("LIBDIR"))]
    env = {"LD_LIBRARY_PATH": os.pathsep.join(libs), "PYTHONPATH": os.pathsep.join(site.getsitepackages())}
    return ProcessSpec("triton", argv, env=env, port=cfg.triton_port, cwd=cfg.run_path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("command", choices=["fetch", "path"])
    parser.add_argument("--dir", type=Path, default=None, help="default: VTP_TRITON_DIR or ~/.cache/vtp/...")
    args = parser.parse_args()
    root = args.dir or StackConfig().triton_dir
    print(fetch(root) if args.command == "fetch" else server_bin(root))


if __name__ == "__main__":
    main()
