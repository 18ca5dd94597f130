"""``followme train`` from a checkpoint's weights instead of a fresh model (fine-tuning):

    python tools/fine_tune.py --init CKPT train --train DIR --out OUT [followme train options]

It writes OUT/last.pt from CKPT (``followme.finetune.start_from``), then runs the train command
with ``--resume``. Without --init, the shipped model is the start.
"""

from __future__ import annotations

import argparse
import sys

from followme.cli import build_parser, main
from followme.finetune import start_from
from followme.training import TrainConfig


def run(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--init", metavar="CKPT", help="the weights to start from (default: shipped)")
    p.add_argument("train_args", nargs=argparse.REMAINDER,
                   help="'train' and its options, as for followme")
    a = p.parse_args(argv)
    if not a.train_args or a.train_args[0] != "train":
        p.error("give the train command: ... train --train DIR --out OUT [options]")
    t = build_parser().parse_args(a.train_args)
    start_from(a.init, TrainConfig(model=t.model, image_size=t.image_size, out=t.out, lr=t.lr,
                                   epochs=t.epochs, minutes=t.minutes))
    return main(a.train_args + ["--resume"])


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
