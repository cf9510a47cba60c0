#!/usr/bin/env bash
# The cupy backend on a real NVIDIA GPU (issue 15), in one run of under 10 minutes.
#
#   OUT=./gpu_results bash tests/gpu/run_gpu_checks.sh        (from anywhere; runs in the repo root)
#
# Stages, each with its own timeout and all inside one total budget (default 480 s), each
# logging to $OUT/<stage>.log and a line of $OUT/stages.tsv (name, exit status, seconds):
#   env        nvidia-smi: GPU, driver, CUDA version (picks the cupy wheel: CUDA 12 -> cupy-cuda12x,
#              13 -> cupy-cuda13x, 11 -> cupy-cuda11x)
#   install    a virtualenv (system site-packages visible) with this package, pytest,
#              array-api-strict and the cupy wheel; skipped for what already imports
#   cupy_smoke one small cupy computation on the device (first kernel compile included)
#   gpu_tests  tests/unit/test_backends.py, gpu-marked tests included (junit XML in $OUT)
#   fixtures   every fixture signature on cupy vs TensorFlow's stored outputs and vs numpy,
#              plus model.to("cupy") / output placement checks -> $OUT/fixtures_cupy.json
#   bench      MobileNetV2 alpha 0.35 batch 64, cupy vs numpy, batch-1 overhead, transfer share
#              -> $OUT/bench_gpu.json and .txt
#   resnet50   only when time is left (>= 240 s): pip install tensorflow-cpu, export
#              keras.applications.ResNet50(weights=None) (no download), check it on cupy
#              against TensorFlow, benchmark it at batch 32 -> $OUT/resnet50_*.json, bench_resnet50.*
# $OUT/summary.txt collects the results at the end. Exit status 0 when the essential stages
# (gpu_tests, fixtures, bench) passed.
#
# Network: the install stages need PyPI (pip). With no network, provide wheels in a directory and
# set GPU_CHECKS_WHEELHOUSE=DIR (pip install --no-index --find-links DIR), or use an image where
# cupy is already importable: the install stage then only checks. pip is run with short timeouts
# and one retry, so an unreachable index fails in seconds rather than minutes.
#
# Settings (environment): OUT (default ./gpu_results), PYTHON (default python3),
# GPU_CHECKS_BUDGET_S (480), GPU_CHECKS_BACKEND (cupy; "numpy" or "array_api_strict" run every
# stage without a GPU, to test this script), GPU_CHECKS_SKIP_INSTALL (0; 1 uses $PYTHON as is),
# GPU_CHECKS_RESNET50 (auto; 0 never, 1 even when short of time), GPU_CHECKS_RESNET_BATCH (32),
# GPU_CHECKS_STAGES (all; or a list such as "gpu_tests fixtures" to rerun only those), GPU_CHECKS_VENV
# (${TMPDIR:-/tmp}/sm_notebook_gpu_venv), GPU_CHECKS_WHEELHOUSE, GPU_CHECKS_TF (tensorflow-cpu==2.21.*).

set -u -o pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$REPO" || exit 2
OUT="${OUT:-./gpu_results}"
mkdir -p "$OUT" && OUT="$(cd "$OUT" && pwd)"
BUDGET_S="${GPU_CHECKS_BUDGET_S:-480}"
BACKEND="${GPU_CHECKS_BACKEND:-cupy}"
SKIP_INSTALL="${GPU_CHECKS_SKIP_INSTALL:-0}"
RESNET50="${GPU_CHECKS_RESNET50:-auto}"
VENV="${GPU_CHECKS_VENV:-${TMPDIR:-/tmp}/sm_notebook_gpu_venv}"
WHEELHOUSE="${GPU_CHECKS_WHEELHOUSE:-}"
TF_SPEC="${GPU_CHECKS_TF:-tensorflow-cpu==2.21.*}"
PY="${PYTHON:-python3}"
STAGE_LIST="${GPU_CHECKS_STAGES:-all}"
RESNET_BATCH="${GPU_CHECKS_RESNET_BATCH:-32}"
START=$(date +%s)
STAGES="$OUT/stages.tsv"
SUMMARY="$OUT/summary.txt"
printf 'stage\texit\tseconds\tlimit_s\n' > "$STAGES"
export PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1 TF_CPP_MIN_LOG_LEVEL=2
export CUPY_CACHE_DIR="${CUPY_CACHE_DIR:-${TMPDIR:-/tmp}/sm_notebook_cupy_cache}"

note() { echo "[$(( $(date +%s) - START ))s] $*" | tee -a "$OUT/progress.log"; }
remaining() { echo $(( BUDGET_S - ($(date +%s) - START) )); }
wanted() { [[ "$STAGE_LIST" == all || "$1" == env || " $STAGE_LIST " == *" $1 "* ]]; }

# stage NAME MAX_SECONDS COMMAND...: run with a timeout that also fits the total budget.
stage() {
    local name=$1 max=$2 left limit t0 rc
    shift 2
    if ! wanted "$name" && ! wanted "${name%%_*}"; then
        printf '%s\tnot asked\t0\t0\n' "$name" >> "$STAGES"
        return 98
    fi
    left=$(( $(remaining) - 10 ))
    limit=$(( max < left ? max : left ))
    if (( limit < 15 )); then
        note "$name: skipped, the budget is spent"
        printf '%s\tskipped\t0\t0\n' "$name" >> "$STAGES"
        return 99
    fi
    note "$name: start (limit ${limit}s)"
    t0=$(date +%s)
    if declare -F "$1" > /dev/null; then  # a function of this script: run it in a child bash
        timeout --kill-after=10 "$limit" bash -c '"$@"' _ "$@" > "$OUT/$name.log" 2>&1 < /dev/null
    else
        timeout --kill-after=10 "$limit" "$@" > "$OUT/$name.log" 2>&1 < /dev/null
    fi
    rc=$?
    printf '%s\t%s\t%s\t%s\n' "$name" "$rc" "$(( $(date +%s) - t0 ))" "$limit" >> "$STAGES"
    if (( rc == 124 || rc == 137 )); then note "$name: TIMED OUT after ${limit}s"; else note "$name: exit $rc"; fi
    tail -n 3 "$OUT/$name.log" | sed 's/^/    /'
    return $rc
}

pip_install() {  # pip with short network timeouts; the wheelhouse instead of PyPI when given
    local extra=(--retries 1 --timeout 15 --progress-bar off)
    if [[ -n "$WHEELHOUSE" ]]; then extra+=(--no-index --find-links "$WHEELHOUSE"); fi
    "$PY" -m pip install "${extra[@]}" "$@"
}

# ---------------------------------------------------------------- env
# The stage functions run in a child bash under `timeout`: what they use is exported.
export PY VENV BACKEND WHEELHOUSE TF_SPEC OUT
export -f pip_install

env_stage() {
    if ! command -v nvidia-smi > /dev/null; then
        echo "nvidia-smi not found: no NVIDIA driver on this machine"
        return 1
    fi
    nvidia-smi
    nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap --format=csv
}
export -f env_stage
stage env 30 env_stage
cp "$OUT/env.log" "$OUT/nvidia-smi.txt" 2>/dev/null
CUDA_VERSION=$(grep -so 'CUDA Version: [0-9.]*' "$OUT/env.log" 2>/dev/null | head -n 1 | awk '{print $3}')
CUDA_MAJOR=${CUDA_VERSION%%.*}
case "$CUDA_MAJOR" in
    11) CUPY_WHEEL=cupy-cuda11x ;;
    13) CUPY_WHEEL=cupy-cuda13x ;;
    *) CUPY_WHEEL=cupy-cuda12x ;;  # 12, or unknown (the most common driver today)
esac
note "driver CUDA version: ${CUDA_VERSION:-unknown} -> $CUPY_WHEEL"
export CUPY_WHEEL

# ---------------------------------------------------------------- install
install_stage() {
    "$PY" -c 'import sys; assert sys.version_info >= (3, 10), sys.version; print(sys.version)' || return 1
    if [[ ! -x "$VENV/bin/python" ]]; then
        "$PY" -m venv --system-site-packages "$VENV" || { echo "venv failed: using $PY itself"; return 3; }
    fi
    PY="$VENV/bin/python"
    local wanted=()
    "$PY" -c 'import sm_notebook, google.protobuf, ml_dtypes, google_crc32c, array_api_compat, IPython, ipywidgets' \
        2> /dev/null || wanted+=(-e .)
    "$PY" -c 'import pytest' 2> /dev/null || wanted+=(pytest)
    "$PY" -c 'import array_api_strict' 2> /dev/null || wanted+=(array-api-strict)
    if [[ "$BACKEND" == cupy ]]; then
        "$PY" -c 'import cupy' 2> /dev/null || wanted+=("$CUPY_WHEEL")
    fi
    if (( ${#wanted[@]} == 0 )); then echo "everything needed already imports"; return 0; fi
    echo "installing: ${wanted[*]}"
    pip_install "${wanted[@]}"
}
export -f install_stage
if [[ "$SKIP_INSTALL" == 1 ]]; then
    note "install: skipped (GPU_CHECKS_SKIP_INSTALL=1), using $PY"
else
    stage install 200 install_stage
    case $? in
        0) PY="$VENV/bin/python" ;;
        3) note "install: no virtualenv; using $PY" ;;
        98) [[ -x "$VENV/bin/python" ]] && PY="$VENV/bin/python"
            note "install: not asked; using $PY" ;;
        *) [[ -x "$VENV/bin/python" ]] && PY="$VENV/bin/python"
           note "install: FAILED (no network? see install.log); going on with what imports" ;;
    esac
fi
"$PY" -m pip freeze > "$OUT/pip_freeze.txt" 2> /dev/null

# ---------------------------------------------------------------- the checks
if [[ "$BACKEND" == cupy ]]; then
    stage cupy_smoke 90 "$PY" -c '
import time, cupy
start = time.perf_counter()
x = cupy.arange(1 << 20, dtype=cupy.float32)
print("sum", float((x * 2).sum()), "in", round(time.perf_counter() - start, 2), "s")
props = cupy.cuda.runtime.getDeviceProperties(0)
print("device", props["name"], "cupy", cupy.__version__, "runtime", cupy.cuda.runtime.runtimeGetVersion())'
fi

stage gpu_tests 150 "$PY" -m pytest -p no:cacheprovider -q -rA tests/unit/test_backends.py \
    --junitxml="$OUT/gpu_tests.xml"
GPU_TESTS_RC=$?
if [[ "$BACKEND" == cupy ]] && grep -q 'SKIPPED.*GPU test' "$OUT/gpu_tests.log" 2> /dev/null; then
    note "gpu_tests: the gpu-marked tests were SKIPPED (cupy or the GPU unavailable): counted as failed"
    GPU_TESTS_RC=1
fi

stage fixtures 170 "$PY" tests/gpu/check_fixtures_cupy.py --backend "$BACKEND" --out "$OUT/fixtures_cupy.json" \
    --budget-s 140
FIXTURES_RC=$?

BENCH_BACKENDS="$BACKEND,numpy"
[[ "$BACKEND" == numpy ]] && BENCH_BACKENDS=numpy
stage bench 170 "$PY" benchmarks/bench_gpu.py --backends "$BENCH_BACKENDS" --seconds 6 --budget-s 140 \
    --out "$OUT/bench_gpu.json"
BENCH_RC=$?

# ---------------------------------------------------------------- ResNet50 (when time is left)
resnet_stage() {
    "$PY" -c 'import tensorflow' 2> /dev/null || pip_install "$TF_SPEC" || return 1
    "$PY" tests/gpu/export_resnet50.py "$RESNET_ROOT"
}
RESNET_ROOT="${TMPDIR:-/tmp}/sm_notebook_resnet50"  # ~100 MB: kept out of $OUT
export -f resnet_stage
export RESNET_ROOT PY
if [[ "$RESNET50" == 0 ]]; then
    note "resnet50: skipped (GPU_CHECKS_RESNET50=0)"
elif [[ "$RESNET50" != 1 ]] && (( $(remaining) < 240 )); then
    note "resnet50: skipped, $(remaining)s left (< 240 s)"
    printf 'resnet50\tskipped\t0\t0\n' >> "$STAGES"
elif ! wanted resnet50; then
    printf 'resnet50\tnot asked\t0\t0\n' >> "$STAGES"
elif stage resnet50_export 200 resnet_stage; then
    stage resnet50_check 60 "$PY" tests/gpu/check_fixtures_cupy.py --backend "$BACKEND" \
        --fixtures-root "$RESNET_ROOT" --out "$OUT/resnet50_check.json" --budget-s 40
    stage resnet50_bench 120 "$PY" benchmarks/bench_gpu.py --backends "$BENCH_BACKENDS" --seconds 5 \
        --budget-s 90 --model "resnet50=$RESNET_ROOT/models/resnet50:$RESNET_BATCH" --out "$OUT/bench_resnet50.json"
fi

# ---------------------------------------------------------------- summary
{
    echo "sm_notebook GPU checks, $(date -u +%Y-%m-%dT%H:%M:%SZ), backend $BACKEND, $(( $(date +%s) - START )) s"
    awk '/^name, driver_version/ { getline; print "GPU (name, driver, memory, compute capability): " $0 }' \
        "$OUT/env.log" 2> /dev/null
    echo "CUDA (driver) ${CUDA_VERSION:-unknown}, wheel $CUPY_WHEEL"
    echo
    column -t -s $'\t' "$STAGES" 2> /dev/null || cat "$STAGES"
    echo
    echo "== gpu_tests: $(grep -E '[0-9]+ (passed|failed|error)' "$OUT/gpu_tests.log" 2> /dev/null | tail -n 1)"
    grep -E '^(PASSED|FAILED|SKIPPED|ERROR)' "$OUT/gpu_tests.log" 2> /dev/null | grep -i 'gpu\|cupy' | head -n 20
    echo
    for f in fixtures_cupy resnet50_check; do
        [[ -f "$OUT/$f.json" ]] || continue
        "$PY" - "$OUT/$f.json" <<'PYEOF'
import json, sys
report = json.load(open(sys.argv[1]))
print(f"== {sys.argv[1].rsplit('/', 1)[-1]}: {report.get('summary', '(cut short: no summary)')}")
for case in report["cases"]:
    if not case["ok"]:
        worst = {k: (o.get("max_abs_err"), o.get("placement")) for k, o in case.get("outputs", {}).items()
                 if not o.get("ok", True)}
        print(f"  FAIL {case['fixture']} {case['signature']}: {case.get('error', '')[:200]} {worst}")
if "move_check" in report:
    print("  move check:", {k: v for k, v in report["move_check"].items() if k != "traceback"})
PYEOF
    done
    echo
    for f in bench_gpu bench_resnet50; do
        [[ -f "$OUT/$f.txt" ]] && cat "$OUT/$f.txt"
    done
} > "$SUMMARY" 2>&1
cat "$SUMMARY"
ok() { [[ $1 == 0 || $1 == 98 ]]; }  # 98: not asked for in GPU_CHECKS_STAGES
ok "$GPU_TESTS_RC" && ok "$FIXTURES_RC" && ok "$BENCH_RC"
