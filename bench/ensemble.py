"""How far averaging models goes: the course score on a grading folder of each checkpoint alone
and of the mean softmax of every combination of two or more of them. An average of our own runs
is the best teacher a distillation into one of them could copy, so it bounds that lever (issue
11). Not a way to score the follower: it runs one model.

    python bench/ensemble.py CKPT CKPT [CKPT ...] [--grade-dir DIR] [--threads 2]
"""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path

import numpy as np
import torch

from followme.checkpoint import load_checkpoint
from followme.evaluation.evaluate import find_grade_dir
from followme.evaluation.grading import load_grading_set, score_labels
from followme.evaluation.score import final_score
from followme.segment.frames import batched_logits


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("models", nargs="+", help="checkpoints, two or more")
    p.add_argument("--grade-dir", help="default: validation_grade")
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    try:
        grading = load_grading_set(find_grade_dir(a.grade_dir), 160)
    except (OSError, ValueError) as e:
        raise SystemExit(f"bench/ensemble.py: {e}") from None
    probs = {}
    for path in a.models:
        try:
            model = load_checkpoint(path).model
        except (OSError, ValueError) as e:
            raise SystemExit(f"bench/ensemble.py: {e}") from None
        probs[path] = [np.concatenate([logits.softmax(1).numpy() for _, logits in
                                       batched_logits(model, arr.images, 64)])
                       for arr in grading.arrays]

    def score(paths: tuple[str, ...]) -> dict:
        subsets = {}
        for k, (name, arr) in enumerate(zip(grading.subsets, grading.arrays, strict=True)):
            mean = sum(probs[q][k] for q in paths) / len(paths)
            png = (torch.from_numpy(mean) * 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()
            subsets[name] = score_labels(png, np.asarray(arr.labels), arr.names,
                                         arr.hero_pixels)
        return final_score(subsets)

    names = {q: f"{Path(q).parent.name}/{Path(q).name}" for q in a.models}
    print("| models | final_score | weight |\n| --- | ---: | ---: |")
    for r in range(1, len(a.models) + 1):
        for combo in itertools.combinations(a.models, r):
            f = score(combo)
            print(f"| {' + '.join(names[q] for q in combo)} | {f['final_score']:.4f} | "
                  f"{f['weight']:.4f} |")


if __name__ == "__main__":
    main()
