#!/usr/bin/env bash
# One GPU check, prepared to run in at most 6 minutes on one lent GPU, writing one results file.
#
#   scripts/gpu_check.sh [--dry-run] [--out DIR] [--wheels DIR] [--data DIR]
#
#   --out DIR     where results.md (and the JSON of each bench) go (default: $OUT, else ./gpu_check_out)
#   --wheels DIR  wheels to `pip install --no-deps` first: the device image has torch, torchvision,
#                 lightning, torchmetrics and tensorboard but not Hydra. On a machine with internet:
#                   pip download --no-deps -d wheels hydra-core omegaconf antlr4-python3-runtime==4.9.3
#                 and carry the folder (run tool: carry=["wheels"]); then `pip install --no-deps -e .`
#   --data DIR    the real datasets (mnist/, sign_mnist/: about 41 MB, fits a carry); without it the
#                 benches train on generated data of the real sizes (throughput does not depend on pixels)
#   --dry-run     everything on the CPU (CNNZOO_DEVICE=cpu), tiny sizes: the test suite runs this (< 60 s)
#   PYTHON=...    the interpreter (default: python)
#
# Steps (each under its own timeout; a failing step is recorded and the next one runs):
#   1. environment: nvidia-smi, torch/CUDA versions, torch.cuda.is_bf16_supported()
#   2. pytest -m gpu: train fp32/bf16, evaluate, predict, a deterministic resume, host syncs per 100 steps
#   3. scripts/bench.py --device cuda: cnnzoo fp32 and bf16, compile=reduce-overhead, the hand loop (fp32, bf16)
#   4. one asl_cnn epoch as a whole `python -m cnnzoo.train` process at batch 32 and 512, precision=auto
set -u
cd "$(dirname "$0")/.."
DRY=0; OUT_DIR="${OUT:-gpu_check_out}"; WHEELS=""; DATA="${CNNZOO_DATA_DIR:-}"
while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) DRY=1 ;;
    --out) OUT_DIR="$2"; shift ;;
    --wheels) WHEELS="$2"; shift ;;
    --data) DATA="$2"; shift ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
[ "${CNNZOO_DEVICE:-}" = cpu ] && DRY=1
mkdir -p "$OUT_DIR"; OUT_DIR="$(cd "$OUT_DIR" && pwd)"
PY="${PYTHON:-python}"
REPORT="$OUT_DIR/results.md"
WORK="$(mktemp -d)"
START=$(date +%s)

if [ "$DRY" = 1 ]; then
  export CNNZOO_DEVICE=cpu DEVICE=cpu ACCEL=cpu
  BENCH_ARGS=(--quick --models asl_cnn --contenders cnnzoo_bf16,hand_cl_bf16); EPOCH_LIMIT=("+trainer.limit_train_batches=2"); BATCHES=(32)
  PYTEST_TIMEOUT=120; BENCH_TIMEOUT=60; EPOCH_TIMEOUT=60  # generous: the CPU may be shared
else
  export CNNZOO_DEVICE=cuda DEVICE=cuda ACCEL=gpu
  BENCH_ARGS=(--rounds 5 --steps 200 --warmup 30 --models asl_cnn,fashion_cnn
              --contenders cnnzoo,cnnzoo_bf16,cnnzoo_compiled,hand_cl,hand_cl_bf16); EPOCH_LIMIT=(); BATCHES=(32 512)
  PYTEST_TIMEOUT=150; BENCH_TIMEOUT=120; EPOCH_TIMEOUT=40
fi
export CUBLAS_WORKSPACE_CONFIG=:4096:8

{
  echo "# cnnzoo GPU check ($(date -u +%Y-%m-%dT%H:%M:%SZ)$([ "$DRY" = 1 ] && echo ', DRY RUN on CPU'))"
  echo
} > "$REPORT"

section() {  # section TITLE TIMEOUT_S COMMAND...: run, record rc, seconds and the output's tail
  local title="$1" limit="$2"; shift 2
  local began=$(date +%s) rc
  timeout "$limit" "$@" > "$WORK/step.log" 2>&1; rc=$?
  { echo "## $title"; echo; echo "rc=$rc, $(( $(date +%s) - began )) s: \`$*\`"; echo; echo '```';
    tail -n 40 "$WORK/step.log"; echo '```'; echo; } >> "$REPORT"
  return 0
}

if [ -n "$WHEELS" ]; then
  section "install wheels (--no-deps)" 120 "$PY" -m pip install --no-deps --no-index "$WHEELS"/*.whl
fi
if ! "$PY" -c "import cnnzoo" 2>/dev/null; then
  section "install cnnzoo (--no-deps -e .)" 120 "$PY" -m pip install --no-deps --no-index --no-build-isolation -e .
fi

section "environment" 60 "$PY" -c "
import subprocess, torch
print('torch', torch.__version__, 'cuda', torch.version.cuda, 'available', torch.cuda.is_available())
if torch.cuda.is_available():
    print(torch.cuda.get_device_name(), 'bf16 supported:', torch.cuda.is_bf16_supported())
    print(subprocess.run(['nvidia-smi'], capture_output=True, text=True).stdout)
"

if [ -z "$DATA" ] || [ ! -d "$DATA" ]; then  # generated data of the real sizes (tiny in a dry run)
  DATA="$WORK/data"
  "$PY" - "$DATA" "$DRY" <<'PYEOF'
import sys
from pathlib import Path
sys.path.insert(0, ".")
from tests.conftest import write_idx_dataset, write_sign_dataset
root, dry = Path(sys.argv[1]), sys.argv[2] == "1"
write_sign_dataset(root / "sign_mnist", n_train=200 if dry else 27455, n_test=100 if dry else 7172)
for name, seed in (("mnist", 1), ("fashion_mnist", 2)):
    write_idx_dataset(root / name, n_train=200 if dry else 60000, n_test=100 if dry else 10000, seed=seed)
PYEOF
  echo "data: generated ($DATA)" >> "$REPORT"; echo >> "$REPORT"
fi
export CNNZOO_DATA_DIR="$DATA" XDG_CACHE_HOME="$WORK/cache"

section "pytest -m gpu (CNNZOO_DEVICE=$CNNZOO_DEVICE)" "$PYTEST_TIMEOUT" "$PY" -m pytest -q -m gpu -p no:cacheprovider tests/test_gpu.py
section "throughput (scripts/bench.py --device $DEVICE)" "$BENCH_TIMEOUT" "$PY" scripts/bench.py --device "$DEVICE" \
  "${BENCH_ARGS[@]}" --json "$OUT_DIR/bench.json"
for batch in "${BATCHES[@]}"; do
  section "one asl_cnn epoch, whole process, batch $batch, precision=auto" "$EPOCH_TIMEOUT" "$PY" -m cnnzoo.train \
    model=asl_cnn trainer.max_epochs=1 "trainer.accelerator=$ACCEL" data.batch_size="$batch" precision=auto \
    "hydra.run.dir=$WORK/epoch_$batch" "${EPOCH_LIMIT[@]}"
done
echo "total: $(( $(date +%s) - START )) s" >> "$REPORT"
rm -rf "$WORK"
echo "wrote $REPORT"
