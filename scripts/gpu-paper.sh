#!/usr/bin/env bash
# The paper profile on a GPU machine: the plan (also as JSON), then `reproduce all`; at the
# end, per phase (each experiment) its wall time, FLOPs and FLOP rate (also as a share of the
# matmul rate the plan probed), the table, the fidelity verdicts, and, given a CPU run's
# table.csv, the cell-by-cell comparison with it (scripts/compare-tables.py's tolerances).
#
#   bash scripts/gpu-paper.sh DATA_DIR OUT_DIR [CPU_TABLE_CSV]
#
# Needs only torch, numpy, matplotlib, scikit-learn and tqdm (runs from the source tree with
# PYTHONPATH=src, no install). DATA_DIR holds the MNIST and Fashion-MNIST IDX files.
# Float32 throughout: ginv leaves TF32 as PyTorch's default (off for matmuls), so the table
# compares with a CPU run's; PROFILE=smoke runs the same steps small (a check of the script).
set -euo pipefail
data=${1:?DATA_DIR}
out=${2:?OUT_DIR}
cpu_table=${3:-}
profile=${PROFILE:-paper}
here=$(cd "$(dirname "$0")" && pwd)
export PYTHONPATH="$here/../src" PYTHONUNBUFFERED=1
ginv() { python3 -m ginv.cli "$@"; }
mkdir -p "$out"

command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total --format=csv
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(),
'matmul precision', torch.get_float32_matmul_precision())"
# before the run, into the same OUT: runs already there are free in the plan as in the run
ginv reproduce all --profile "$profile" --plan --plan-json "$out/plan.json" --data-dir "$data" --out "$out"
start=$(date +%s)
ginv reproduce all --profile "$profile" --data-dir "$data" --out "$out" --quiet
echo "wall time: $(( $(date +%s) - start )) s"
echo
python3 "$here/phase-rates.py" "$out/plan.json" "$out/summary.json"
echo
cat "$out/table/table.csv"
cat "$out/fidelity/claims.csv"
if [[ -n "$cpu_table" ]]; then
  echo
  python3 "$here/compare-tables.py" "$cpu_table" "$out/table/table.csv"
fi
