#!/usr/bin/env bash
# Copy the pure-Python packages a lent GPU machine lacks (it has torch, pandas, matplotlib,
# joblib, tqdm, scipy, pytest) from this checkout's .venv into benchmarks/device_site/, which the
# device tool carries with the working tree (git-ignored; about 1 MB).
set -euo pipefail
cd "$(dirname "$0")/.."
site=$(uv run python -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
rm -rf benchmarks/device_site && mkdir -p benchmarks/device_site
# not pytest: a carried copy would shadow the device's own
for pkg in tabulate torch_fidelity threadpoolctl.py; do cp -r "$site/$pkg" benchmarks/device_site/; done
du -sh benchmarks/device_site
