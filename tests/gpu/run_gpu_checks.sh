#!/usr/bin/env bash
# The cupy backend on a real NVIDIA GPU (issue 15), in one run of under 10 minutes.
#
#   OUT=./gpu_results bash tests/gpu/run_gpu_checks.sh        (from anywhere; runs in the repo root)
#
# With this workplace's device tool: `bash tests/gpu/fetch_wheels.sh` here once, then one run with
# command "bash tests/gpu/run_gpu_checks.sh", carry [".whl"], timeout_s 540 ($OUT is set there).
#
# Network: none is assumed. The GPU machines lent here reach nothing outside (no PyPI): their
# image's python3 (3.12) already holds cupy-cuda13x, numpy, pytest and ml-dtypes; what
# sm_notebook needs beyond that (protobuf >= 7.35.1, google-crc32c, array-api-compat, and
# array-api-strict for its test module) travels as wheels in .whl/ (made here by
# tests/gpu/fetch_wheels.sh, carried with the run) and is installed into a private
# --target directory put first on PYTHONPATH. Where pip can reach an index, missing packages
# are installed from it instead (short timeouts: an unreachable index fails in seconds).
# ResNet50 needs TensorFlow to export it: it runs only where TensorFlow imports or installs.
#
# Stages, each under its own timeout and all inside one budget (default 420 s); each logs to
# the work directory and adds a line to stages.tsv (name, exit status, seconds, limit):
#   env        nvidia-smi: GPU, driver, CUDA version (the cupy wheel to use if none is present:
#              CUDA 13 -> cupy-cuda13x, 12 -> cupy-cuda12x, 11 -> cupy-cuda11x)
#   install    carried wheels, then whatever is still missing, if an index answers
#   cupy_smoke one small cupy computation on the device (first kernel compile included)
#   gpu_tests  tests/unit/test_backends.py, gpu-marked tests included; a skipped GPU test
#              counts as a failure here
#   fixtures   every fixture signature on cupy vs TensorFlow's stored outputs and vs numpy,
#              plus the model.to("cupy") / output placement checks
#   bench      MobileNetV2 alpha 0.35 batch 64, cupy vs numpy, batch-1 overhead, transfer share
#   resnet50   only with >= 240 s left and TensorFlow importable (or installable): export
#              keras.applications.ResNet50(weights=None) (no download), check it on cupy
#              against TensorFlow, benchmark it at batch 32
# What comes back in $OUT (at most 8 files, the device tool's limit), rewritten after every
# stage so that a run cut short still returns what it did: summary.txt (read this first),
# stages.tsv, fixtures_cupy.json, bench_gpu.json, resnet50.json (check + benchmark), logs.tar.gz
# (every stage's log, junit XML, nvidia-smi, pip freeze). Exit status 0 when gpu_tests,
# fixtures and bench passed.
#
# Settings (environment): OUT (./gpu_results), PYTHON (python3), GPU_CHECKS_BUDGET_S (420),
# GPU_CHECKS_BACKEND (cupy; "numpy" or "array_api_strict" run every stage without a GPU, to test
# this script), GPU_CHECKS_SKIP_INSTALL (0), GPU_CHECKS_WHEELS (.whl), GPU_CHECKS_RESNET50 (auto;
# 0 never, 1 even when short of time), GPU_CHECKS_RESNET_BATCH (32), GPU_CHECKS_STAGES (all; or
# e.g. "gpu_tests fixtures" to rerun only those), GPU_CHECKS_WORK (${TMPDIR:-/tmp}/sm_notebook_gpu),
# GPU_CHECKS_TF (tensorflow-cpu==2.21.*).

set -u -o pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$REPO" || exit 2
OUT="${OUT:-./gpu_results}"
mkdir -p "$OUT" && OUT="$(cd "$OUT" && pwd)"
WORK="${GPU_CHECKS_WORK:-${TMPDIR:-/tmp}/sm_notebook_gpu}"
rm -rf "$WORK/logs" && mkdir -p "$WORK/logs" "$WORK/results"
LOGS="$WORK/logs" RESULTS="$WORK/results"
BUDGET_S="${GPU_CHECKS_BUDGET_S:-420}"
BACKEND="${GPU_CHECKS_BACKEND:-cupy}"
SKIP_INSTALL="${GPU_CHECKS_SKIP_INSTALL:-0}"
WHEELS="${GPU_CHECKS_WHEELS:-.whl}"
RESNET50="${GPU_CHECKS_RESNET50:-auto}"
RESNET_BATCH="${GPU_CHECKS_RESNET_BATCH:-32}"
STAGE_LIST="${GPU_CHECKS_STAGES:-all}"
TF_SPEC="${GPU_CHECKS_TF:-tensorflow-cpu==2.21.*}"
SITE="$WORK/site"            # packages installed by this script, first on PYTHONPATH
RESNET_ROOT="$WORK/resnet50"  # the export is ~200 MB: it stays out of $OUT
PY="${PYTHON:-python3}"
START=$(date +%s)
STAGES="$RESULTS/stages.tsv"
printf 'stage\texit\tseconds\tlimit_s\n' > "$STAGES"
export PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1 TF_CPP_MIN_LOG_LEVEL=2
export CUPY_CACHE_DIR="${CUPY_CACHE_DIR:-$WORK/cupy_cache}"
export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"

note() { echo "[$(( $(date +%s) - START ))s] $*" | tee -a "$LOGS/progress.log"; }
remaining() { echo $(( BUDGET_S - ($(date +%s) - START) )); }
wanted() { [[ "$STAGE_LIST" == all || "$1" == env || " $STAGE_LIST " == *" $1 "* ]]; }

publish() {  # copy the results to $OUT: at most 8 files, none below it
    cp "$RESULTS"/*.json "$RESULTS"/stages.tsv "$OUT"/ 2> /dev/null
    [[ -f "$RESULTS/summary.txt" ]] && cp "$RESULTS/summary.txt" "$OUT/"
    tar -czf "$OUT/logs.tar.gz.partial" -C "$WORK" logs 2> /dev/null && mv "$OUT/logs.tar.gz.partial" "$OUT/logs.tar.gz"
}

# stage NAME MAX_SECONDS COMMAND...: run with a timeout that also fits the total budget.
stage() {
    local name=$1 max=$2 left limit t0 rc
    shift 2
    if ! wanted "$name" && ! wanted "${name%%_*}"; then
        printf '%s\tnot asked\t0\t0\n' "$name" >> "$STAGES"
        return 98
    fi
    left=$(( $(remaining) - 15 ))
    limit=$(( max < left ? max : left ))
    if (( limit < 15 )); then
        note "$name: skipped, the budget is spent"
        printf '%s\tskipped\t0\t0\n' "$name" >> "$STAGES"
        return 99
    fi
    note "$name: start (limit ${limit}s)"
    t0=$(date +%s)
    if declare -F "$1" > /dev/null; then  # a function of this script: run it in a child bash
        timeout --kill-after=10 "$limit" bash -c '"$@"' _ "$@" > "$LOGS/$name.log" 2>&1 < /dev/null
    else
        timeout --kill-after=10 "$limit" "$@" > "$LOGS/$name.log" 2>&1 < /dev/null
    fi
    rc=$?
    printf '%s\t%s\t%s\t%s\n' "$name" "$rc" "$(( $(date +%s) - t0 ))" "$limit" >> "$STAGES"
    if (( rc == 124 || rc == 137 )); then note "$name: TIMED OUT after ${limit}s"; else note "$name: exit $rc"; fi
    tail -n 3 "$LOGS/$name.log" | sed 's/^/    /'
    publish
    return $rc
}

# The stage functions run in a child bash under `timeout`: what they use is exported.
export PY BACKEND WHEELS SITE TF_SPEC RESNET_ROOT

pip_online() {  # pip install into $SITE from an index, failing fast when none answers
    "$PY" -m pip install --retries 1 --timeout 10 --progress-bar off --no-cache-dir --target "$SITE" "$@"
}

# ---------------------------------------------------------------- env
env_stage() {
    if ! command -v nvidia-smi > /dev/null; then
        echo "nvidia-smi not found: no NVIDIA driver on this machine"
        return 1
    fi
    nvidia-smi
    nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap --format=csv
}
export -f env_stage pip_online
stage env 30 env_stage
CUDA_VERSION=$(grep -so 'CUDA Version: [0-9.]*' "$LOGS/env.log" | head -n 1 | awk '{print $3}')
case "${CUDA_VERSION%%.*}" in
    11) CUPY_WHEEL=cupy-cuda11x ;;
    12) CUPY_WHEEL=cupy-cuda12x ;;
    *) CUPY_WHEEL=cupy-cuda13x ;;  # 13, or unknown: the lent machines' driver is CUDA 13
esac
export CUPY_WHEEL
note "driver CUDA version: ${CUDA_VERSION:-unknown} -> $CUPY_WHEEL if cupy is missing"

# ---------------------------------------------------------------- install
install_stage() {
    "$PY" -c 'import sys; assert sys.version_info >= (3, 10), sys.version; print(sys.executable, sys.version)' || return 1
    mkdir -p "$SITE"
    if compgen -G "$WHEELS/*.whl" > /dev/null; then
        echo "carried wheels: $(cd "$WHEELS" && echo *.whl)"
        "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" \
            "$WHEELS"/*.whl || return 1
    fi
    local missing=()
    "$PY" - <<'PYEOF' || missing+=("protobuf>=7.35.1,<8")
import google.protobuf
version = tuple(int(p) for p in google.protobuf.__version__.split(".")[:2])
print("protobuf", google.protobuf.__version__)
raise SystemExit(version < (7, 35))
PYEOF
    "$PY" -c 'import numpy' 2> /dev/null || missing+=(numpy)
    "$PY" -c 'import ml_dtypes' 2> /dev/null || missing+=(ml_dtypes)
    "$PY" -c 'import google_crc32c' 2> /dev/null || missing+=(google-crc32c)
    "$PY" -c 'import array_api_compat' 2> /dev/null || missing+=(array-api-compat)
    "$PY" -c 'import array_api_strict' 2> /dev/null || missing+=(array-api-strict)
    "$PY" -c 'import pytest' 2> /dev/null || missing+=(pytest)
    if [[ "$BACKEND" == cupy ]]; then "$PY" -c 'import cupy' 2> /dev/null || missing+=("$CUPY_WHEEL"); fi
    if (( ${#missing[@]} == 0 )); then echo "everything needed imports"; return 0; fi
    echo "missing: ${missing[*]}; trying an index"
    pip_online "${missing[@]}"
}
export -f install_stage
if [[ "$SKIP_INSTALL" == 1 ]]; then
    note "install: skipped (GPU_CHECKS_SKIP_INSTALL=1)"
elif ! stage install 150 install_stage; then
    note "install: incomplete (see install.log); going on with what imports"
fi
"$PY" -m pip freeze > "$LOGS/pip_freeze.txt" 2> /dev/null
"$PY" -c 'import sm_notebook, sys; print("sm_notebook from", sm_notebook.__file__)' >> "$LOGS/progress.log" 2>&1

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

stage gpu_tests 120 "$PY" -m pytest -p no:cacheprovider -q -rA tests/unit/test_backends.py \
    --junitxml="$LOGS/gpu_tests.xml"
GPU_TESTS_RC=$?
if [[ "$BACKEND" == cupy ]] && grep -q 'SKIPPED.*GPU test' "$LOGS/gpu_tests.log" 2> /dev/null; then
    note "gpu_tests: the gpu-marked tests were SKIPPED (cupy or the GPU unavailable): counted as failed"
    GPU_TESTS_RC=1
fi

stage fixtures 150 "$PY" tests/gpu/check_fixtures_cupy.py --backend "$BACKEND" \
    --out "$RESULTS/fixtures_cupy.json" --budget-s 120
FIXTURES_RC=$?

BENCH_BACKENDS="$BACKEND,numpy"
[[ "$BACKEND" == numpy ]] && BENCH_BACKENDS=numpy
stage bench 150 "$PY" benchmarks/bench_gpu.py --backends "$BENCH_BACKENDS" --seconds 5 --budget-s 120 \
    --out "$RESULTS/bench_gpu.json"
BENCH_RC=$?

# ---------------------------------------------------------------- ResNet50 (when time is left)
resnet_export() {
    "$PY" -c 'import tensorflow' 2> /dev/null || pip_online "$TF_SPEC" || {
        echo "TensorFlow is neither importable nor installable here: no ResNet50 export"; return 1; }
    "$PY" tests/gpu/export_resnet50.py "$RESNET_ROOT"
}
export -f resnet_export
if [[ "$RESNET50" == 0 ]] || ! wanted resnet50; then
    printf 'resnet50\tnot asked\t0\t0\n' >> "$STAGES"
elif [[ "$RESNET50" != 1 ]] && (( $(remaining) < 240 )); then
    note "resnet50: skipped, $(remaining)s left (< 240 s)"
    printf 'resnet50\tskipped\t0\t0\n' >> "$STAGES"
elif stage resnet50_export 200 resnet_export; then
    stage resnet50_check 60 "$PY" tests/gpu/check_fixtures_cupy.py --backend "$BACKEND" \
        --fixtures-root "$RESNET_ROOT" --out "$WORK/resnet50_check.json" --budget-s 40
    stage resnet50_bench 120 "$PY" benchmarks/bench_gpu.py --backends "$BENCH_BACKENDS" --seconds 5 \
        --budget-s 90 --model "resnet50=$RESNET_ROOT/models/resnet50:$RESNET_BATCH" --out "$WORK/resnet50_bench.json"
    "$PY" - "$WORK/resnet50_check.json" "$WORK/resnet50_bench.json" "$RESULTS/resnet50.json" <<'PYEOF'
import json, sys
from pathlib import Path
check, bench, out = map(Path, sys.argv[1:])
merged = {name: json.loads(path.read_text()) if path.is_file() else None
          for name, path in (("check", check), ("bench", bench))}
out.write_text(json.dumps(merged, indent=1))
PYEOF
    cp "$WORK/resnet50_bench.txt" "$LOGS/" 2> /dev/null
fi

# ---------------------------------------------------------------- summary
{
    echo "sm_notebook GPU checks, $(date -u +%Y-%m-%dT%H:%M:%SZ), backend $BACKEND, $(( $(date +%s) - START )) s"
    awk '/^name, driver_version/ { getline; print "GPU (name, driver, memory, compute capability): " $0 }' \
        "$LOGS/env.log" 2> /dev/null
    echo "CUDA (driver) ${CUDA_VERSION:-unknown}"
    grep -h '^device ' "$LOGS/cupy_smoke.log" 2> /dev/null
    echo
    column -t -s $'\t' "$STAGES" 2> /dev/null || cat "$STAGES"
    echo
    echo "== gpu_tests: $(grep -E '[0-9]+ (passed|failed|error)' "$LOGS/gpu_tests.log" 2> /dev/null | tail -n 1)"
    grep -E '^(PASSED|FAILED|SKIPPED|ERROR)' "$LOGS/gpu_tests.log" 2> /dev/null | head -n 20
    echo
    for f in "$RESULTS/fixtures_cupy.json" "$WORK/resnet50_check.json"; do
        [[ -f "$f" ]] || continue
        "$PY" - "$f" <<'PYEOF'
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
    cat "$RESULTS/bench_gpu.txt" "$LOGS/resnet50_bench.txt" 2> /dev/null
} > "$RESULTS/summary.txt" 2>&1
mv "$RESULTS/bench_gpu.txt" "$LOGS/" 2> /dev/null  # its table is in summary.txt
publish
cat "$RESULTS/summary.txt"
ok() { [[ $1 == 0 || $1 == 98 ]]; }  # 98: not asked for in GPU_CHECKS_STAGES
ok "$GPU_TESTS_RC" && ok "$FIXTURES_RC" && ok "$BENCH_RC"
