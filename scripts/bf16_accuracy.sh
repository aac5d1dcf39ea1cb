#!/usr/bin/env bash
# The bf16 accuracy check: asl_cnn, mnist_cnn, fashion_cnn and their _best recipes, 3 seeds each,
# trained with precision=bf16 and recorded as scripts/reproduce.py records, so the bf16 table
# (docs/results_bf16.md) can be read next to the fp32 one (docs/results.md);
# scripts/bf16_compare.py prints the two side by side, seed by seed.
#
#   CNNZOO_DATA_DIR=/work/shared/data scripts/bf16_accuracy.sh [more reproduce.py options, e.g. --jobs 1]
#
# A long real-data job (hours on a 2-core CPU; resumable: a record is never re-run, a stopped run
# resumes from its last.ckpt). Add trainer=gpu for a GPU. README.md is not touched: reproduce.py
# rewrites a scratch copy of it.
set -eu
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"
OUT="${BF16_OUT:-outputs/reproduce_bf16}"
mkdir -p "$OUT" docs/results/bf16_runs
cp README.md "$OUT/README.scratch.md"
exec "$PY" scripts/reproduce.py \
  --only asl_cnn,asl_cnn_best,mnist_cnn,mnist_cnn_best,fashion_cnn,fashion_cnn_best --exact \
  --seeds 1,2,3 \
  --out "$OUT" \
  --records docs/results/bf16_runs \
  --doc docs/results_bf16.md \
  --curves docs/results_bf16_asl_cnn_curves.png \
  --readme "$OUT/README.scratch.md" \
  "$@" precision=bf16
