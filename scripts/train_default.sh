#!/usr/bin/env bash
# Trains the shipped default model (src/followme/assets/default_model.pt): the default recipe on
# the RoboND training set, selected on validation_grade. About 6 minutes on one H200 GPU, about
# 85 minutes on a 2-core CPU. Then: cp runs/default/best.pt src/followme/assets/default_model.pt
set -euo pipefail
# followme from PATH, else from the repository's .venv (README's setup)
command -v followme >/dev/null || PATH="$(cd "$(dirname "$0")/.." && pwd)/.venv/bin:$PATH"
command -v followme >/dev/null || { echo "$0: no followme: run README's setup first" >&2; exit 1; }
DATA=${DATA:-../shared/data/robond}
followme train --train "$DATA/train" --val "$DATA/validation_grade" \
    --model fcn_res --epochs 60 --batch-size 32 --lr 3e-3 --val-every 4 --seed 0 \
    --out "${OUT:-runs/default}" "$@"
followme evaluate --model "${OUT:-runs/default}/best.pt" --out "${OUT:-runs/default}/evaluate"
