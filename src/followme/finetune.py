"""Fine-tuning: ``followme.training.train`` starting from a checkpoint's weights.

``train`` either builds a fresh model or resumes ``OUT/last.pt``. ``start_from`` writes
``OUT/last.pt`` as a run that has not trained a batch yet: the checkpoint's weights, a fresh
optimizer, epoch 0. ``train`` with ``resume`` then fine-tunes those weights with its usual
warm-up, schedule, augmentation and logs.
"""

from __future__ import annotations

from dataclasses import asdict, replace
from pathlib import Path

import torch

from followme.checkpoint import load_checkpoint, save_checkpoint
from followme.models import model_config
from followme.training import TrainConfig, train


def start_from(init: str | Path | None, cfg: TrainConfig) -> Path:
    """Write ``cfg.out``/last.pt from checkpoint ``init`` (None: the shipped model); refuses an
    existing one. Returns its path."""
    loaded = load_checkpoint(init)
    if loaded.name != cfg.model or loaded.image_size != cfg.image_size or \
            loaded.checkpoint["model_config"] != model_config(cfg.model).to_dict():
        raise ValueError(f"{init or 'the shipped model'} is {loaded.name} at "
                         f"{loaded.image_size} px: fine-tune it with --model {loaded.name} "
                         f"--image-size {loaded.image_size} (and the registry's configuration)")
    last = Path(cfg.out) / "last.pt"
    if last.exists():
        raise FileExistsError(f"{last} exists: resume it with `followme train --resume`, or "
                              "choose a new --out")
    optimizer = torch.optim.AdamW(loaded.model.parameters(), lr=cfg.lr,
                                  weight_decay=cfg.weight_decay)
    state = {"epoch": 0, "batch": 0, "total_epochs": None if cfg.minutes else cfg.epochs,
             "best_score": -1.0, "history": [], "train_seconds": 0.0}
    save_checkpoint(last, {"model_name": cfg.model, "model_config": model_config(cfg.model)
                           .to_dict(), "image_size": cfg.image_size,
                           "normalization": loaded.normalization,
                           "model": loaded.model.state_dict(), "optimizer": optimizer.state_dict(),
                           "train_state": state, "train_config": asdict(cfg)})
    return last


def fine_tune(init: str | Path | None, cfg: TrainConfig) -> dict:
    """``train(cfg)`` from the weights of ``init``; returns its last log row."""
    cfg = replace(cfg, resume=True)
    start_from(init, cfg)
    return train(cfg)
