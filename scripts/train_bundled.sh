#!/usr/bin/env bash
# Retrain every bundled model into assets/ (CPU only; seeded, so reruns give the same numbers).
# Each line is one `python -m morphlib train` run; see `python -m morphlib train --help`.
set -euo pipefail
PY=${PYTHON:-python}
for ds in ${DATASETS:-digits shapes orientation}; do
  $PY -m morphlib train "$ds"
  $PY -m morphlib train "$ds" --robust l2:1.0
  $PY -m morphlib train "$ds" --arch effnet
done
