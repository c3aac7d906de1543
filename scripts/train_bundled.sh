#!/usr/bin/env bash
# Retrain every bundled model (CPU, about 15-25 minutes in all on 2 cores).
set -euo pipefail
PY=${PYTHON:-python}
for ds in digits shapes orientation; do
  $PY -m morphlib train "$ds"
  $PY -m morphlib train "$ds" --robust l2:1.0
  $PY -m morphlib train "$ds" --arch effnet
done
