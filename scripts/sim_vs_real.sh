#!/usr/bin/env bash
# Does sim data help the real score? Two models trained from scratch with the same recipe and
# the same time budget, one on the RoboND training set, one on it plus sim frames; both are
# selected on validation_grade and scored there, and on a held-out sim grading split (other
# worlds). On a 2-core CPU the two trainings share it, one thread each (about MINUTES + 10 min
# in all). Figures: OUT/summary.md.
set -euo pipefail
# followme from PATH, else from the repository's .venv (README's setup)
command -v followme >/dev/null || PATH="$(cd "$(dirname "$0")/.." && pwd)/.venv/bin:$PATH"
command -v followme >/dev/null || { echo "$0: no followme: run README's setup first" >&2; exit 1; }
DATA=${DATA:-../shared/data/robond}
OUT=${OUT:-runs/sim_vs_real}
MINUTES=${MINUTES:-25}
SIM_FRAMES=${SIM_FRAMES:-2000}
mkdir -p "$OUT"

[ -d "$OUT/sim_train/images" ] || followme sim record --out "$OUT/sim_train" \
    --frames "$SIM_FRAMES" --mode mixed --seed 100
[ -d "$OUT/sim_grade/following_images" ] || followme sim record --out "$OUT/sim_grade" \
    --frames 600 --mode mixed --seed 200 --grade

recipe=(--val "$DATA/validation_grade" --model fcn_res --minutes "$MINUTES" --batch-size 32
        --lr 3e-3 --val-every 2 --seed 0 --threads 1)
followme train --train "$DATA/train" "${recipe[@]}" --out "$OUT/real" > "$OUT/real.log" 2>&1 &
followme train --train "$DATA/train" "$OUT/sim_train" "${recipe[@]}" --out "$OUT/real_sim" \
    > "$OUT/real_sim.log" 2>&1 &
wait

for run in real real_sim; do
    followme evaluate --model "$OUT/$run/best.pt" --grade-dir "$DATA/validation_grade" \
        --out "$OUT/$run/eval_real" > /dev/null
    followme evaluate --model "$OUT/$run/best.pt" --grade-dir "$OUT/sim_grade" \
        --out "$OUT/$run/eval_sim" > /dev/null
done
python3 - "$OUT" <<'EOF'
import json
import sys
from pathlib import Path

out = Path(sys.argv[1])
rows = ["| trained on | validation_grade final_score | IoU following | IoU patrol_with_targ "
        "| sim held-out final_score |", "| --- | ---: | ---: | ---: | ---: |"]
for run, name in (("real", "RoboND train"), ("real_sim", "RoboND train + sim")):
    real = json.loads((out / run / "eval_real" / "score.json").read_text())
    sim = json.loads((out / run / "eval_sim" / "score.json").read_text())
    subsets = real["subsets"]
    rows.append(f"| {name} | {real['final_score']:.4f} "
                f"| {subsets['following_images']['iou_hero']:.4f} "
                f"| {subsets['patrol_with_targ']['iou_hero']:.4f} | {sim['final_score']:.4f} |")
(out / "summary.md").write_text("\n".join(rows) + "\n")
print("\n".join(rows))
EOF
