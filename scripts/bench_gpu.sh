#!/usr/bin/env bash
# One prepared GPU benchmark run (docs/benchmarks.md, "GPU"): installs the CUDA wheels, prints the device, and
# runs scripts/bench.py (butt, cmt, landau_zener), scripts/bench_scaling.py, scripts/roofline.py
# (butt and cmt) and a 10^9-module wall-time run of the default job, each step under its own
# `timeout`, so that a slow step cannot eat the whole budget (~10 minutes of device time).
#
#   bash scripts/bench_gpu.sh              # on the GPU machine, from the repository root
#   bash scripts/bench_gpu.sh --cpu-smoke  # (or SMOKE=1) here: no install, small counts, CPU
#
# Everything it writes goes to "${OUT:-out_gpu}" (at most 8 files: what a device run brings
# back): steps.log (one line per step, with its exit status and time), env.txt (nvidia-smi,
# jax.devices(), versions), bench.log/bench.json, scaling.log/scaling.json, roofline.log (one
# JSON object per coupler) and run1e9.log (the command's summary and its wall time). The
# 10^9 store itself goes to STORE_DIR (default /tmp/yieldmc_gpu_store: thousands of chunk
# files, not worth bringing back). Settings (environment variables, defaults in brackets):
#   BENCH_SAMPLES [2^24]  NUMPY_SAMPLES [2^18]  REPEATS [3]  BLOCK [2^20: engine.block_size on
#   the GPU; a 16 384-module block is launch-bound there]  SCALING_SAMPLES [2^23]
#   RUN_SAMPLES [10^9]  T_PIP [300]  T_BENCH [180]  T_SCALING [120]  T_ROOFLINE [60, each]
#   T_RUN [180]  VENV [.venv-gpu]  WHEELS [.whl: wheels for an offline install, if present]
#   PYTHON [python3]
#
# Install: a virtual environment with `pip install -e '.[cuda]'` (and, optionally, the `fused`
# extra for bench.py's fused-kernel baseline). Where pip cannot reach the package index it
# says so and tries the machine's own CUDA JAX instead (a venv with --system-site-packages,
# yieldmc installed without dependencies, missing ones from $WHEELS); the versions it ran
# with are in env.txt. If neither works it stops with a message that names what is missing.
set -uo pipefail

SMOKE=${SMOKE:-0}
[[ "${1:-}" == "--cpu-smoke" ]] && SMOKE=1
OUT=${OUT:-out_gpu}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
cd "$(dirname "$0")/.."

if [[ "$SMOKE" == 1 ]]; then  # the same steps on this CPU, small and quick
    BENCH_SAMPLES=${BENCH_SAMPLES:-65536}; NUMPY_SAMPLES=${NUMPY_SAMPLES:-16384}; REPEATS=${REPEATS:-1}
    BLOCK=${BLOCK:-16384}; SCALING_SAMPLES=${SCALING_SAMPLES:-65536}; RUN_SAMPLES=${RUN_SAMPLES:-65536}
    SCALING_BLOCKS=${SCALING_BLOCKS:-"8192 16384"}
    T_BENCH=${T_BENCH:-900}; T_SCALING=${T_SCALING:-300}; T_ROOFLINE=${T_ROOFLINE:-120}; T_RUN=${T_RUN:-300}
else
    BENCH_SAMPLES=${BENCH_SAMPLES:-16777216}; NUMPY_SAMPLES=${NUMPY_SAMPLES:-262144}; REPEATS=${REPEATS:-3}
    BLOCK=${BLOCK:-1048576}; SCALING_SAMPLES=${SCALING_SAMPLES:-8388608}; RUN_SAMPLES=${RUN_SAMPLES:-1000000000}
    SCALING_BLOCKS=${SCALING_BLOCKS:-"16384 65536 262144 524288"}  # bench_scaling: 4 blocks per call <= 2^21
    T_BENCH=${T_BENCH:-180}; T_SCALING=${T_SCALING:-120}; T_ROOFLINE=${T_ROOFLINE:-60}; T_RUN=${T_RUN:-180}
fi
T_PIP=${T_PIP:-300}
PER_CALL=$(( 2097152 / BLOCK )); (( PER_CALL < 1 )) && PER_CALL=1  # blocks_per_call x block_size <= 2^21
ENGINE_KEYS="engine.block_size=$BLOCK engine.blocks_per_call=$PER_CALL"
STORE_DIR=${STORE_DIR:-/tmp/yieldmc_gpu_store}
export PYTHONUNBUFFERED=1

log() { echo "[bench_gpu $(date +%H:%M:%S)] $*" | tee -a "$OUT/steps.log"; }

# step NAME LIMIT_S LOGFILE COMMAND...: runs COMMAND under `timeout`, output appended to LOGFILE,
# one line with the exit status and the wall time in steps.log; never stops the script.
step() {
    local name=$1 limit=$2 logfile=$3; shift 3
    log "$name: start (timeout ${limit} s): $*"
    local t0=$SECONDS rc
    timeout --kill-after=10 "$limit" "$@" >>"$logfile" 2>&1
    rc=$?
    local how="exit $rc"
    [[ $rc == 124 || $rc == 137 ]] && how="TIMED OUT after ${limit} s (exit $rc)"
    log "$name: $how, $(( SECONDS - t0 )) s"
    tail -n 25 "$logfile"
    return 0
}

log "mode: $([[ $SMOKE == 1 ]] && echo 'CPU smoke test' || echo GPU); OUT=$OUT; engine keys: $ENGINE_KEYS"

# ---------------------------------------------------------------------------- environment
if [[ "$SMOKE" == 1 ]]; then
    PY=${PYTHON:-python3}
    log "install: skipped (smoke test: the current interpreter, $($PY --version 2>&1))"
else
    VENV=${VENV:-.venv-gpu}
    [[ "$VENV" == /* ]] || VENV="$PWD/$VENV"
    WHEELS=${WHEELS:-.whl}
    BASE=${PYTHON:-python3}
    PIP_FAST=(--retries 1 --timeout 15 --disable-pip-version-check)
    PY=$BASE
    make_venv() {  # make_venv [--system-site-packages]: PY becomes the venv's python, else stays
        rm -rf "$VENV"
        if "$BASE" -m venv "$@" "$VENV" >>"$OUT/steps.log" 2>&1; then PY="$VENV/bin/python"
        else log "install: could not create a venv ($BASE -m venv $*); installing into $BASE's own environment"; fi
    }
    make_venv
    if timeout "$T_PIP" "$PY" -m pip install "${PIP_FAST[@]}" -q -e '.[cuda]' >>"$OUT/steps.log" 2>&1; then
        log "install: pip install -e '.[cuda]' done"
        timeout "$T_PIP" "$PY" -m pip install "${PIP_FAST[@]}" -q -e '.[fused]' >>"$OUT/steps.log" 2>&1 \
            || log "install: the fused extra (numba) failed; bench.py reports the fused kernel as not measured"
    else
        log "install: pip could NOT install '.[cuda]' (no access to the package index from this machine?)."
        log "install: falling back to this machine's own CUDA JAX ($BASE with --system-site-packages), yieldmc without dependencies"
        PY=$BASE
        make_venv --system-site-packages
        if [[ -d "$WHEELS" ]] && ls "$WHEELS"/*.whl >/dev/null 2>&1; then
            "$PY" -m pip install -q --no-index --no-deps "$WHEELS"/*.whl >>"$OUT/steps.log" 2>&1 \
                && log "install: wheels from $WHEELS installed" || log "install: wheels from $WHEELS FAILED"
        fi
        if ! "$PY" -m pip install -q --no-index --no-deps --no-build-isolation -e . >>"$OUT/steps.log" 2>&1; then
            export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
            log "install: pip install --no-deps -e . failed; yieldmc runs from the source tree (PYTHONPATH=$PWD)"
        fi
        missing=$(cd / && "$PY" - <<'EOF'  # from / : the checkout itself must not count as installed
import importlib.util
need = ["yieldmc", "jax", "numpy", "xarray", "zarr", "hydra", "omegaconf", "matplotlib", "yaml", "scipy", "optax",
        "tqdm"]
print(" ".join(m for m in need if importlib.util.find_spec(m) is None))
EOF
)
        if [[ -n "$missing" ]]; then
            log "install: FAILED. Missing Python packages: $missing. pip cannot reach the package index here:"
            log "install: carry them as wheels in $WHEELS (see the device notes) or run where PyPI is reachable."
            exit 3
        fi
        log "install: fallback environment complete (see env.txt for its jax version: the project pins jax <0.11)"
    fi
fi

{
    echo "== nvidia-smi"; nvidia-smi 2>&1 || echo "nvidia-smi: not available"
    echo "== python"; "$PY" --version
    echo "== jax"
    "$PY" -c "import jax, jaxlib; print('jax', jax.__version__, 'jaxlib', jaxlib.__version__); print('backend', jax.default_backend()); print('devices', jax.devices())"
    echo "== packages"
    "$PY" -m pip list 2>/dev/null | grep -i -E '^(jax|jaxlib|jax-cuda|numba|numpy|xarray|zarr|hydra-core) ' || true
    echo "== host"; nproc; (lscpu | head -20) 2>/dev/null
} >"$OUT/env.txt" 2>&1
cat "$OUT/env.txt"
BACKEND=$("$PY" -c "import jax; print(jax.default_backend())" 2>/dev/null)
if [[ "$SMOKE" != 1 && "$BACKEND" != "gpu" ]]; then
    log "WARNING: JAX's backend is '$BACKEND', not gpu: the figures below are NOT GPU figures"
fi

# -------------------------------------------------------------------------------- steps
# shellcheck disable=SC2086  # ENGINE_KEYS and SCALING_BLOCKS are word lists
step bench "$T_BENCH" "$OUT/bench.log" "$PY" scripts/bench.py --samples "$BENCH_SAMPLES" \
    --repeats "$REPEATS" --numpy-samples "$NUMPY_SAMPLES" --no-single-thread \
    --cases butt adiabatic_cmt adiabatic_landau_zener --engine-overrides $ENGINE_KEYS --json "$OUT/bench.json"

# shellcheck disable=SC2086
step scaling "$T_SCALING" "$OUT/scaling.log" "$PY" scripts/bench_scaling.py --real --devices 1 \
    --blocks $SCALING_BLOCKS --samples "$SCALING_SAMPLES" --repeats 3 --json "$OUT/scaling.json" package/coupler=butt

for coupler in butt cmt; do
    case $coupler in butt) ov="package/coupler=butt" ;; cmt) ov="package.coupler.model=cmt" ;; esac
    # shellcheck disable=SC2086
    step "roofline_$coupler" "$T_ROOFLINE" "$OUT/roofline.log" "$PY" scripts/roofline.py $ov $ENGINE_KEYS
done

rm -rf "$STORE_DIR/run1e9.zarr" "$STORE_DIR/hydra"  # a complete store would only be verified, not recomputed
mkdir -p "$STORE_DIR"
# shellcheck disable=SC2086
step "run_${RUN_SAMPLES}" "$T_RUN" "$OUT/run1e9.log" "$PY" -m yieldmc samples="$RUN_SAMPLES" $ENGINE_KEYS \
    output.dir="$STORE_DIR" output.name=run1e9.zarr output.plots=false progress=false \
    hydra.run.dir="$STORE_DIR/hydra"

log "done; files in $OUT: $(ls "$OUT" | tr '\n' ' ')"
