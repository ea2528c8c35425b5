#!/bin/sh
# Run by services/inference/Dockerfile, as root, after the service is installed: swaps the CPU
# `onnxruntime` for the package named by $1 (the ONNXRUNTIME_PACKAGE build argument).
#
#   onnxruntime      nothing to do (the default image).
#   onnxruntime-gpu  ONNX Runtime's CUDA build, of the version pip installed for the CPU, or the newest
#                    one before it when the CUDA build of that version is not published (yet). Both
#                    packages own the `onnxruntime` module: the CPU one goes first, or uninstalling it
#                    afterwards would delete files of the GPU one. The [cuda,cudnn] extras bring the
#                    CUDA and cuDNN libraries that build was made for as pip packages, so the base image
#                    needs none (the host needs a driver for that CUDA major); ldconfig makes them
#                    visible to the loader, which ONNX Runtime's CUDA provider needs (it does not look
#                    in site-packages by itself).
set -eu

package="${1:?usage: swap-onnxruntime.sh onnxruntime|onnxruntime-gpu}"
case "$package" in
  onnxruntime) exit 0 ;;
  onnxruntime-gpu) ;;
  *) echo "ONNXRUNTIME_PACKAGE must be onnxruntime or onnxruntime-gpu, not '$package'" >&2; exit 2 ;;
esac

cpu_version="$(python -c 'from importlib.metadata import version; print(version("onnxruntime"))')"
python -m pip uninstall -y onnxruntime
python -m pip install --no-cache-dir "onnxruntime-gpu[cuda,cudnn]<=${cpu_version}"

site_packages="$(python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
find "$site_packages/nvidia" -name 'lib*.so*' -printf '%h\n' | sort -u > /etc/ld.so.conf.d/vtp-onnxruntime-gpu.conf
ldconfig

# Fail the build, not the first request: the CUDA provider is compiled in and every library it links
# resolves (all but the driver's libcuda, which the NVIDIA Container Toolkit mounts at run time).
python -c 'import onnxruntime as ort; assert "CUDAExecutionProvider" in ort.get_available_providers(), ort.get_available_providers()'
provider="$(python -c 'import os, onnxruntime; print(os.path.join(os.path.dirname(onnxruntime.__file__), "capi", "libonnxruntime_providers_cuda.so"))')"
missing="$(ldd "$provider" | grep 'not found' | grep -v 'libcuda\.so' || true)"
if [ -n "$missing" ]; then
  echo "libonnxruntime_providers_cuda.so cannot load:" >&2
  echo "$missing" >&2
  exit 1
fi
gpu_version="$(python -c 'from importlib.metadata import version; print(version("onnxruntime-gpu"))')"
echo "onnxruntime-gpu ${gpu_version} replaces onnxruntime ${cpu_version}"
