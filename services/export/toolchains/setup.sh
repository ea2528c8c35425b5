#!/usr/bin/env bash
# `make setup-exporters`: one virtual environment per heavy export toolchain, under .venv-exporters/<name>.
#
#   services/export/toolchains/setup.sh [mnn] [litert] [paddle] [coreml]   (default: all four)
#
# Each environment gets the platform's pinned torch/torchvision/Ultralytics (from constraints.txt; pip
# takes PyTorch from this machine's wheels), the export child (`-e services/export --no-deps`: the child
# imports only numpy, torch, Ultralytics, OpenCV and the format's runtime) and the toolchain of <name>.txt,
# exactly pinned, with everything else held to <name>.lock (the versions recorded when it was last built).
# Every package Ultralytics' exporter and loader check for the format is installed here, so with
# YOLO_AUTOINSTALL=false nothing is ever pip-installed at export time.
# Last, .venv-exporters/toolchains.json maps each format to its environment's Python; the local stack
# passes it to the export service as VTP_EXPORT_TOOLCHAIN_PYTHONS.
set -euo pipefail
cd "$(dirname "$0")/../../.."
ROOT=$(pwd)
HERE=services/export/toolchains
PYTHON=${PYTHON:-$(command -v python3.11 || command -v python3)}
DEST=${VTP_EXPORTERS_DIR:-$ROOT/.venv-exporters}
NAMES=("$@")
[ ${#NAMES[@]} -gt 0 ] || NAMES=(mnn litert paddle coreml)

# What each toolchain's child imports (Ultralytics' exporter and loader for the format, and predict.py).
declare -A IMPORTS=(
    [mnn]="MNN onnx onnxslim onnxruntime"
    [litert]="litert_torch ai_edge_litert.interpreter"
    [paddle]="paddle.inference x2paddle.convert"
    [coreml]="coremltools"
)

base=$(mktemp)
trap 'rm -f "$base"' EXIT
# The training stack's pins, so an export runs the very Ultralytics and torch that trained the model.
grep -E '^(torch|torchvision|ultralytics|ultralytics-thop|opencv-python)==' constraints.txt >"$base"

build() {
    local name=$1 venv=$DEST/$1
    local req=$HERE/$name.txt lock=$HERE/$name.lock
    [ -f "$req" ] || { echo "setup-exporters: unknown toolchain '$name' (no $req)" >&2; return 2; }
    if [ -f "$venv/.installed" ] && [ "$venv/.installed" -nt "$req" ] && { [ ! -f "$lock" ] || [ "$venv/.installed" -nt "$lock" ]; }; then
        echo "setup-exporters: $name is up to date ($venv)"
        return 0
    fi
    local start=$SECONDS
    echo "setup-exporters: building $name in $venv"
    rm -rf "$venv"
    "$PYTHON" -m venv "$venv"
    local pip=("$venv/bin/python" -m pip --quiet)
    local pins=(-c "$base")
    [ -f "$lock" ] && pins+=(-c "$lock")
    "${pip[@]}" install --upgrade pip
    "${pip[@]}" install "${pins[@]}" torch torchvision  # on its own, as in make setup: from the local wheels
    "${pip[@]}" install "${pins[@]}" ultralytics -r "$req"
    "${pip[@]}" install --no-deps -e services/export
    # Import what the exporter child will import, so a toolchain that does not load fails here, not in an
    # export. MNN goes through Ultralytics' import_execstack, which clears the executable-stack flag that
    # glibc >= 2.41 refuses on its shared objects: done once here, never by an export.
    YOLO_OFFLINE=true YOLO_AUTOINSTALL=false "$venv/bin/python" -c "
import importlib, sys
from ultralytics.utils.files import import_execstack
for name in sys.argv[1:]:
    import_execstack(name, '_mnncengine*.so', '_tools*.so') if name == 'MNN' else importlib.import_module(name)
" ${IMPORTS[$name]}
    "${pip[@]}" freeze --exclude-editable >"$venv/versions.txt"
    touch "$venv/.installed"
    echo "setup-exporters: $name built in $((SECONDS - start)) s, $(du -sh "$venv" | cut -f1)"
}

# The venvs are independent: built side by side (about 3 minutes for all four here), each into its own
# log, shown when it is done.
mkdir -p "$DEST"
pids=()
for name in "${NAMES[@]}"; do
    build "$name" >"$DEST/$name.log" 2>&1 &
    pids+=($!)
done
failed=0
for i in "${!NAMES[@]}"; do
    if ! wait "${pids[$i]}"; then
        failed=1
        echo "setup-exporters: ${NAMES[$i]} FAILED (log: $DEST/${NAMES[$i]}.log)" >&2
    fi
    cat "$DEST/${NAMES[$i]}.log"
done

# Every venv carries the same torch (its CUDA libraries are most of each one's 6-7 GB): identical files of
# 1 MB and more become hard links when util-linux `hardlink` is there (26 GB -> 9.5 GB here, in 30 s).
# Safe: pip replaces files instead of writing into them, and MNN's one in-place fix is done above.
if command -v hardlink >/dev/null; then
    hardlink --content --respect-name --minimum-size 1M --quiet "$DEST" || echo "setup-exporters: hardlink failed (no harm)"
fi

# The mapping format -> Python, for every environment that is built (absolute paths: services run elsewhere).
"$PYTHON" - "$DEST" <<'EOF'
import json, pathlib, sys
dest = pathlib.Path(sys.argv[1])
pythons = {
    venv.name: str((venv / "bin" / "python").absolute())
    for venv in sorted(dest.iterdir())
    if (venv / ".installed").exists()
}
(dest / "toolchains.json").write_text(json.dumps(pythons, indent=1) + "\n")
print(f"setup-exporters: {dest / 'toolchains.json'}: {', '.join(pythons) or 'none'}")
EOF
exit $failed
