#!/usr/bin/env bash
# The paper profile on a GPU machine: the plan, then `reproduce all`, with the wall time of
# every phase, the table and the fidelity verdicts printed at the end.
#
#   bash scripts/gpu-paper.sh DATA_DIR OUT_DIR
#
# Needs only torch, numpy, matplotlib, scikit-learn and tqdm (runs from the source tree with
# PYTHONPATH=src, no install). DATA_DIR holds the MNIST and Fashion-MNIST IDX files.
set -euo pipefail
data=${1:?DATA_DIR}
out=${2:?OUT_DIR}
export PYTHONPATH=src PYTHONUNBUFFERED=1
ginv() { python3 -m ginv.cli "$@"; }

command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total --format=csv
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"
ginv reproduce all --profile paper --plan --data-dir "$data" --out "$out"
start=$(date +%s)
ginv reproduce all --profile paper --data-dir "$data" --out "$out" --quiet
echo "wall time: $(( $(date +%s) - start )) s"
cat "$out/summary.json"
cat "$out/table/table.csv"
cat "$out/fidelity/claims.csv"
