#!/usr/bin/env bash
# The prepared GPU check of the "paper experiment at GPU speed" issue, for one run on a lent
# GPU machine (see benchmarks/README.md). The machine has torch, pandas, matplotlib, joblib,
# tqdm and scipy; the few pure-Python packages it lacks travel in benchmarks/device_site
# (made here by benchmarks/make_device_site.sh, carried with the working tree).
# Writes everything under $OUT (default /tmp/device_check). Budget: about 9 minutes.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/device_check}
mkdir -p "$OUT"
export PYTHONPATH="$PWD:$PWD/benchmarks/device_site${PYTHONPATH:+:$PYTHONPATH}"
export OMP_NUM_THREADS=1
log() { echo "== $* ($(date +%T))" | tee -a "$OUT/steps.txt"; }

log environment
{ nvidia-smi; python -c "import torch; print(torch.__version__, torch.version.cuda, torch.cuda.get_device_name(0))"; } \
  > "$OUT/env.txt" 2>&1

log "graph replay vs eager, every objective, 50 steps"
timeout 120 python -m pytest -q -p no:cacheprovider tests/test_graphs.py > "$OUT/test_graphs.txt" 2>&1
tail -3 "$OUT/test_graphs.txt" | tee -a "$OUT/steps.txt"

log "bench: eager and graphed, stacks 1 and 20"
timeout 150 python -m sweeps.bench --device cuda --models gan,mmdnet,mmdgan,gram --stack 1,20 --timed-steps 100 \
  --repeats 2 --warmup 10 --out "$OUT/bench" > "$OUT/bench.txt" 2>&1
tail -12 "$OUT/bench.txt" | tee -a "$OUT/steps.txt"

log "the paper's ring experiment, 5 seeds, 480 cells"
start=$(date +%s)
timeout 330 python -m sweeps.stability --models gan,mmdnet,mmdgan,gram --dataset ring2d,ring3d \
  --seeds 0,1,2,3,4 --devices cuda:0 --out "$OUT/sweep" > "$OUT/sweep.txt" 2>&1
echo "exit $? after $(( $(date +%s) - start )) s" | tee -a "$OUT/steps.txt"
grep -E "^\| |cells \(|trained" "$OUT/sweep.txt" | tail -20 | tee -a "$OUT/steps.txt"
rm -rf "$OUT/sweep/stability"/*/*/*_*/  # keep tables and figures, not 480 records
log done
