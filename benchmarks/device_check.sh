#!/usr/bin/env bash
# The prepared GPU check, for one run on a lent GPU machine (see benchmarks/README.md). The
# machine has python3 with torch, pandas, matplotlib, joblib, tqdm, scipy and pytest; the few
# pure-Python packages it lacks travel in benchmarks/device_site (made here by
# benchmarks/make_device_site.sh, carried with the working tree; no pytest among them, so
# the device's own is used).
# Writes everything under $OUT (default /tmp/device_check). The essential numbers come
# first (launches per step, GPU-busy fraction, the 480-cell wall time), then the optional
# test. Timeouts: 20 + 150 + 270 + 60 = 500 s, under the README's 9-minute budget.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/device_check}
mkdir -p "$OUT"
export PYTHONPATH="$PWD:$PWD/benchmarks/device_site${PYTHONPATH:+:$PYTHONPATH}"
export OMP_NUM_THREADS=1
log() { echo "== $* ($(date +%T))" | tee -a "$OUT/steps.txt"; }

log environment
{ nvidia-smi; timeout 20 python3 -c "import torch; print(torch.__version__, torch.version.cuda, torch.cuda.get_device_name(0))"; } \
  > "$OUT/env.txt" 2>&1

log "bench: eager and graphed, stacks 1 and 20: launches per step and GPU-busy fraction"
timeout 150 python3 -m sweeps.bench --device cuda --models gan,mmdnet,mmdgan,gram --stack 1,20 --timed-steps 100 \
  --repeats 2 --warmup 10 --out "$OUT/bench" > "$OUT/bench.txt" 2>&1
echo "bench exit $?" | tee -a "$OUT/steps.txt"
python3 - "$OUT/bench/bench.csv" <<'PY' 2>&1 | tee -a "$OUT/steps.txt"
import sys, pandas as pd
t = pd.read_csv(sys.argv[1])
print(t[["model", "stack", "mode", "ms_per_step", "launches_per_step", "gpu_busy"]].to_string(index=False))
PY

log "the paper's ring experiment, 5 seeds, 480 cells, no figures"
start=$(date +%s)
timeout 270 python3 -m sweeps.stability --models gan,mmdnet,mmdgan,gram --dataset ring2d,ring3d \
  --seeds 0,1,2,3,4 --devices cuda:0 --no-figures --out "$OUT/sweep" > "$OUT/sweep.txt" 2>&1
echo "480 cells: exit $? after $(( $(date +%s) - start )) s wall" | tee -a "$OUT/steps.txt"
grep -E "cells \(|trained" "$OUT/sweep.txt" | tail -5 | tee -a "$OUT/steps.txt"
rm -rf "$OUT/sweep"  # 480 records: the wall time is the measurement

log "optional: graph replay vs eager, every objective (float64)"
timeout 60 python3 -m pytest -q -p no:cacheprovider tests/3_engine/test_graphs.py > "$OUT/test_graphs.txt" 2>&1
tail -3 "$OUT/test_graphs.txt" | tee -a "$OUT/steps.txt"
log done
