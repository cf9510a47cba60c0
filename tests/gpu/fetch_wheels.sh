#!/usr/bin/env bash
# Download, here, the wheels run_gpu_checks.sh installs on a GPU machine that reaches no index:
# what sm_notebook and its GPU checks need beyond that machine's image (python3 3.12 with cupy,
# numpy, pytest, ml-dtypes; see the device notes). Versions are the ones installed here.
#
#   bash tests/gpu/fetch_wheels.sh          -> .whl/ (git-ignored), then carry ".whl" with the run
#
# About 1 MB in all; the device tool carries at most 64 MiB with the working tree.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$REPO"
DEST="${WHEELS_DIR:-.whl}"
PY="${PYTHON:-python3}"
EXCLUDE="$(git rev-parse --git-common-dir)/info/exclude"
if [[ "$DEST" == .whl ]] && ! grep -qx '/.whl/' "$EXCLUDE" 2> /dev/null; then
    echo '/.whl/' >> "$EXCLUDE"
    echo "added /.whl/ to $EXCLUDE"
fi
version() { "$PY" -c "import importlib.metadata as m; print(m.version('$1'))"; }
packages=(
    "protobuf==$(version protobuf)"
    "google-crc32c==$(version google-crc32c)"
    "array-api-compat==$(version array-api-compat)"
    "array-api-strict==$(version array-api-strict)"
)
mkdir -p "$DEST"
"$PY" -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d "$DEST" "${packages[@]}"
ls -la "$DEST"
