"""Training, top to bottom: config -> data -> model -> loop -> validation -> checkpoints.

Every batch's sampling and augmentation come from a generator seeded by (seed, epoch, batch),
so a run stopped at any batch and resumed repeats the uninterrupted run exactly.
"""

from __future__ import annotations

import argparse
import copy
import csv
import io
import json
import logging
import math
import signal
import threading
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from followme import distributed
from followme.atomic import write_atomic, write_text_atomic
from followme.board import TrainingBoard
from followme.checkpoint import NORMALIZATION, read_checkpoint, save_checkpoint
from followme.data.augment import AugmentConfig, HeroBank, augment
from followme.data.cache import load_folders
from followme.evaluation.grading import load_grading_set, score_labels
from followme.evaluation.score import final_score
from followme.labels import HERO
from followme.models import (
    DEFAULT_IMAGE_SIZE,
    DEFAULT_MODEL,
    MAX_IMAGE_SIZE,
    create_model,
    model_config,
)
from followme.segment.frames import batched_logits, to_png_probabilities

log = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    train: str | list[str] = "data/robond/train"  # one RoboND folder, or several as one set
    val: str | None = None  # a RoboND or grading folder scored each epoch; None: no validation
    model: str = DEFAULT_MODEL
    out: str = "runs/default"
    epochs: int = 30
    epochs_given: bool = True  # --epochs was set by the user (else a resumed run keeps its own)
    minutes: float | None = None  # train for this long: the epoch count is set after epoch 1
    batch_size: int = 32
    lr: float = 3e-3
    weight_decay: float = 1e-4
    warmup_epochs: float = 1.0
    dice_weight: float = 1.0  # soft-dice loss on the hero, added to cross-entropy
    far_hero_weight: float = 3.0  # extra sampling weight of images with a small hero
    image_size: int = DEFAULT_IMAGE_SIZE
    seed: int = 0
    threads: int | None = None
    device: str | None = None
    bf16: bool | None = None  # bf16 autocast; None: where the device supports it
    skip_bad: bool = False
    resume: bool = False
    init: str | None = None  # start from this checkpoint's weights (fine-tuning), not fresh ones
    val_every: int = 1  # validate every N epochs (and always after the first and the last)
    max_batches: int | None = None  # stop after this many batches in all (tests, profiling)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    optimizer: str = "adamw"  # or "adam" (no weight decay), the course's
    schedule: str = "cosine"  # warm-up then cosine decay, or "constant" (the course's)
    steps_per_epoch: int | None = None  # batches an epoch; None: one pass over the data
    tensorboard: str | None = None  # write the run for TensorBoard here (board.py)

    @classmethod
    def from_recipe(cls, recipe: str, **given) -> TrainConfig:
        """A recipe's settings (``RECIPES``), then ``given`` over them."""
        if recipe not in RECIPES:
            raise ValueError(f"--recipe {recipe}: unknown; choose one of: "
                             f"{', '.join(sorted(RECIPES))}")
        return cls(**{**copy.deepcopy(RECIPES[recipe]), **given})


    def check(self) -> None:
        """Refuse settings that cannot train, naming the flag."""
        from followme.models import MODELS

        if self.model not in MODELS:
            raise ValueError(f"--model {self.model}: unknown; choose one of: "
                             f"{', '.join(sorted(MODELS))}")
        stride = 2 ** len(MODELS[self.model].encoder)
        for flag, value, ok, what in (
                ("--epochs", self.epochs, self.minutes is not None or self.epochs >= 1,
                 "at least 1"),
                ("--minutes", self.minutes, self.minutes is None or self.minutes > 0,
                 "more than 0"),
                ("--batch-size", self.batch_size, self.batch_size >= 1, "at least 1"),
                ("--lr", self.lr, self.lr > 0 and math.isfinite(self.lr), "more than 0"),
                ("--val-every", self.val_every, self.val_every >= 1, "at least 1"),
                ("--threads", self.threads, self.threads is None or self.threads >= 1,
                 "at least 1"),
                ("--image-size", self.image_size,
                 32 <= self.image_size <= MAX_IMAGE_SIZE and self.image_size % stride == 0,
                 f"a multiple of {stride} from 32 to {MAX_IMAGE_SIZE} for {self.model}"),
                ("--dice-weight", self.dice_weight, self.dice_weight >= 0, "0 or more"),
                ("--far-hero-weight", self.far_hero_weight, self.far_hero_weight >= 0,
                 "0 or more"),
                ("--steps-per-epoch", self.steps_per_epoch,
                 self.steps_per_epoch is None or self.steps_per_epoch >= 1, "at least 1"),
                ("optimizer", self.optimizer, self.optimizer in ("adamw", "adam"),
                 "adamw or adam"),
                ("schedule", self.schedule, self.schedule in ("cosine", "constant"),
                 "cosine or constant")):
            if not ok:
                raise ValueError(f"{flag} {value}: must be {what}")


# The course's notebook as it ran (../shared/seed, the project notebook's printed
# hyperparameters): Adam at 0.01, categorical cross-entropy, batch 150, 50 epochs of 50 steps, the
# seed FCN, no augmentation (data_iterator.py's shift-and-pad call is commented out), a constant
# learning rate. Keras' iterator draws each epoch's 50 batches from a shuffled pass over the data.
RECIPES: dict[str, dict] = {
    "default": {},
    "course": dict(model="seed", lr=0.01, batch_size=150, epochs=50, steps_per_epoch=50,
                   optimizer="adam", weight_decay=0.0, schedule="constant", warmup_epochs=0.0,
                   dice_weight=0.0, far_hero_weight=0.0,
                   augment=AugmentConfig(flip=0.0, shift=0.0, jitter=0.0, paste=0.0)),
}


# ---------------------------------------------------------------------------------- helpers
def check_output_folder(out: Path, resume: bool) -> None:
    """A folder that holds a run is continued with --resume, never replaced."""
    held = [f for f in ("last.pt", "best.pt", "log.csv", "history.json") if (out / f).exists()]
    if held and not resume:
        raise FileExistsError(f"--out {out} holds a training run ({', '.join(held)}): continue "
                              "it with --resume, or choose another --out")
    if held and resume and not (out / "last.pt").exists():
        raise FileExistsError(f"--resume {out}: no last.pt to continue from, but it holds "
                              f"{', '.join(held)}: choose another --out")


def check_resumable(path: Path, ckpt: dict, cfg: TrainConfig) -> None:
    """--resume continues the run as it was started: same model, image size and batch size, and
    the same length unless none is given."""
    cfg_run = ckpt.get("train_config", {})
    same = {"--model": (ckpt.get("model_name"), cfg.model),
            "--image-size": (ckpt.get("image_size"), cfg.image_size),
            "--batch-size": (cfg_run.get("batch_size"), cfg.batch_size)}
    for flag, (was, now) in same.items():
        if was != now:
            raise ValueError(f"--resume {path}: that run has {flag} {was}, not {now}; resume it "
                             f"with {flag} {was}")
    if ckpt.get("model_config") != model_config(cfg.model).to_dict():
        raise ValueError(f"--resume {path}: its {cfg.model} configuration differs from this "
                         "version's registry")


def initial_weights(cfg: TrainConfig) -> dict[str, torch.Tensor]:
    """The weights of checkpoint ``cfg.init``, refused unless it is ``cfg.model`` at
    ``cfg.image_size`` with the registry's configuration and the usual normalisation."""
    ckpt = read_checkpoint(cfg.init)
    if ckpt["model_name"] != cfg.model or ckpt["image_size"] != cfg.image_size or \
            ckpt["model_config"] != model_config(cfg.model).to_dict() or \
            ckpt["normalization"] != NORMALIZATION:
        raise ValueError(f"--init {cfg.init} is {ckpt['model_name']} at {ckpt['image_size']} "
                         f"px: fine-tune it with --model {ckpt['model_name']} --image-size "
                         f"{ckpt['image_size']} (and the registry's configuration)")
    return ckpt["model"]


def pick_device(name: str | None) -> torch.device:
    if name:
        return torch.device(name)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def bf16_supported(device: torch.device) -> bool:
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()


def batch_generator(seed: int, epoch: int, batch: int, device: torch.device) -> torch.Generator:
    g = torch.Generator(device=device if device.type == "cuda" else "cpu")
    g.manual_seed(seed * 1_000_003 + epoch * 100_003 + batch)
    return g


def sampling_weights(hero_pixels: np.ndarray, far_weight: float) -> torch.Tensor:
    """Images with a far-away hero (4 to 999 pixels at full size) are drawn more often."""
    far = (hero_pixels > 3) & (hero_pixels < 1000)
    return torch.as_tensor(1.0 + far_weight * far, dtype=torch.float64)


def epoch_order(weights: torch.Tensor, seed: int, epoch: int,
                count: int | None = None) -> torch.Tensor:
    """``count`` (default: one per image) image indices for an epoch, drawn by ``weights``."""
    g = torch.Generator().manual_seed(seed * 7919 + epoch)
    return torch.multinomial(weights, count or len(weights), replacement=True, generator=g)


def lr_at(step: int, total: int, warmup: int, peak: float, schedule: str = "cosine") -> float:
    """Linear warm-up, then cosine decay to 1% of the peak; or the peak throughout."""
    if schedule == "constant":
        return peak
    if step < warmup:
        return peak * (step + 1) / warmup
    t = min(1.0, (step - warmup) / max(1, total - warmup))
    return peak * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * t)))


def loss_fn(logits: torch.Tensor, labels: torch.Tensor, dice_weight: float) -> torch.Tensor:
    """Cross-entropy plus a per-image soft dice on the hero channel, which like the course's
    per-image IoU weighs a far-away hero as much as a near one. logits (B, 3, S, S)."""
    logits = logits.float()
    loss = F.cross_entropy(logits, labels)
    if dice_weight:
        p = logits.softmax(1)[:, HERO].flatten(1)
        t = (labels == HERO).flatten(1).float()
        dice = 1 - (2 * (p * t).sum(1) + 1) / (p.sum(1) + t.sum(1) + 1)
        loss = loss + dice_weight * dice.mean()
    return loss


def train_step(model: nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor,
               dice_weight: float, bf16: bool, channels_last: bool = True) -> torch.Tensor:
    """One optimizer step on a batch: x (B, 3, S, S) float pixels in [0, 255], y (B, S, S)
    class indices. Returns the loss, still on the device."""
    x = x * NORMALIZATION["scale"] + NORMALIZATION["offset"]
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=bf16):
        logits = model(x)
    loss = loss_fn(logits, y, dice_weight)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return loss.detach()


def write_log(out: Path, history: list[dict]) -> None:
    text = io.StringIO()
    w = csv.DictWriter(text, fieldnames=list(dict.fromkeys(k for h in history for k in h)))
    w.writeheader()
    w.writerows(history)
    write_text_atomic(out / "log.csv", text.getvalue())
    write_text_atomic(out / "history.json", json.dumps(history, indent=1))
    plot_history(history, out / "loss.png")


def plot_history(history: list[dict], path: Path) -> None:
    """Train and validation loss per epoch, and the validation score, as the seed's
    LoggerPlotter drew them."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    a.plot([h["epoch"] for h in history], [h["train_loss"] for h in history], ".-", label="train")
    val = [h for h in history if "val_loss" in h]
    if val:
        ep = [h["epoch"] for h in val]
        a.plot(ep, [h["val_loss"] for h in val], "o-", label="validation")
        b.plot(ep, [h["val_final_score"] for h in val], "o-", label="final score")
        b.plot(ep, [h["val_hero_iou"] for h in val], "o-", label="hero IoU (all images)")
        b.legend()
    a.set(xlabel="epoch", ylabel="loss", title="loss")
    a.legend()
    b.set(xlabel="epoch", title="validation")
    fig.tight_layout()
    write_atomic(path, lambda f: fig.savefig(f, format="png", dpi=80))
    plt.close(fig)


@torch.inference_mode()
def validate(model, grading, device, batch_size: int, dice_weight: float) -> dict:
    """Validation loss and the course figures on a grading set, from one pass over it."""
    loss_sum, subsets = 0.0, {}
    for name, arr in zip(grading.subsets, grading.arrays, strict=True):
        predictions = []
        for start, logits in batched_logits(model, arr.images, batch_size, device=device):
            y = torch.from_numpy(np.array(arr.labels[start:start + len(logits)])).long().to(device)
            loss_sum += float(loss_fn(logits, y, dice_weight)) * len(logits)
            predictions.append(to_png_probabilities(logits))
        subsets[name] = score_labels(
            np.concatenate(predictions) if predictions else np.zeros((0, 0, 0, 3), np.uint8),
            np.asarray(arr.labels), arr.names, arr.hero_pixels)
    figures = final_score(subsets)
    n = sum(len(arr) for arr in grading.arrays)
    model.train()
    all_iou = [v["iou_hero"] * v["n"] for v in figures["subsets"].values()]
    return {"val_loss": loss_sum / n, "val_hero_iou": sum(all_iou) / n,
            "val_final_score": figures["final_score"], "val_weight": figures["weight"],
            "val_final_iou": figures["final_iou"]}


class CtrlC:
    """The first Ctrl-C asks the loop to stop at the end of the current batch, so the saved state
    is a whole number of batches; a second one interrupts at once."""

    def __init__(self):
        self.stop = False
        self.aborted = False
        self.previous = None
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGINT, self._handler)

    def _handler(self, signum, frame):
        if self.stop:
            self.aborted = True
            raise KeyboardInterrupt
        self.stop = True
        log.warning("Ctrl-C: stopping after this batch (again to abort)")

    def restore(self) -> None:
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)


# ---------------------------------------------------------------------------------- training
def train(cfg: TrainConfig) -> dict:
    """Train a model; returns the last epoch's log row, with ``interrupted`` set after Ctrl-C.
    Writes ``out/last.pt``, ``out/best.pt``, ``out/log.csv`` and ``out/loss.png``."""
    proc = distributed.start(pick_device(cfg.device))
    rank, world, main, device = proc.rank, proc.world, proc.main, proc.device
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.backends.cudnn.benchmark = True
    torch.manual_seed(cfg.seed)
    if cfg.batch_size % world:
        raise ValueError(f"--batch-size {cfg.batch_size} must divide over {world} processes")
    cfg.check()
    out = Path(cfg.out)
    check_output_folder(out, cfg.resume)
    if main:
        out.mkdir(parents=True, exist_ok=True)

    # a wrong --init or --resume is refused before the data is loaded
    resuming = cfg.resume and (out / "last.pt").exists()
    init_weights = initial_weights(cfg) if cfg.init and not resuming else None
    resumed = None
    if resuming:
        resumed = read_checkpoint(out / "last.pt")
        check_resumable(out / "last.pt", resumed, cfg)
        total = resumed["train_state"]["total_epochs"]
        if cfg.epochs_given and total is not None and cfg.epochs != total:
            done = resumed["train_state"]["epoch"]
            raise ValueError(
                f"--resume {out}: that run was planned for {total} epochs (its learning-rate "
                f"schedule too), not --epochs {cfg.epochs}; to train on from it, start a new run "
                f"with --init {out / 'last.pt'} --out NEW" if done >= total else
                f"--resume {out}: that run was planned for {total} epochs, not --epochs "
                f"{cfg.epochs}; resume it without --epochs")

    # ---- data: decoded once into uint8 arrays, held whole in memory (or on the GPU)
    train_arrays = load_folders(cfg.train, cfg.image_size, skip_bad=cfg.skip_bad, progress=main)
    images = torch.from_numpy(np.array(train_arrays.images)).to(device)  # (N,S,S,3)
    labels = torch.from_numpy(np.array(train_arrays.labels)).to(device)  # (N,S,S)
    bank = HeroBank.from_arrays(train_arrays.images, train_arrays.labels,
                                train_arrays.hero_pixels, seed=cfg.seed).to(device)
    weights = sampling_weights(train_arrays.hero_pixels, cfg.far_hero_weight)
    grading = load_grading_set(cfg.val, cfg.image_size, skip_bad=cfg.skip_bad,
                               progress=main) if cfg.val else None
    if len(images) < cfg.batch_size:
        raise ValueError(f"{cfg.train}: {len(images)} images, fewer than --batch-size")
    n_batches = cfg.steps_per_epoch or len(images) // cfg.batch_size
    log.info("train: %d images (%d far-hero), %d hero cut-outs; val: %s", len(images),
             int((weights > 1).sum()), len(bank), len(grading) if grading else "none")

    # ---- model and optimizer
    model = create_model(cfg.model).to(device).to(memory_format=torch.channels_last)
    if world > 1:
        model = distributed.with_global_batchnorm(model)
    opt = (torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
           if cfg.optimizer == "adamw" else torch.optim.Adam(model.parameters(), lr=cfg.lr))
    use_bf16 = bf16_supported(device) if cfg.bf16 is None else cfg.bf16
    state = {"epoch": 0, "batch": 0, "total_epochs": cfg.epochs if not cfg.minutes else None,
             "best_score": None, "history": [], "train_seconds": 0.0}
    if init_weights is not None:
        model.load_state_dict(init_weights)
        log.info("starting from the weights of %s", cfg.init)
    if resumed is not None:
        model.load_state_dict(resumed["model"])
        opt.load_state_dict(resumed["optimizer"])
        state = resumed["train_state"]
        if state["total_epochs"] is not None and state["epoch"] >= state["total_epochs"]:
            log.info("%s: this run is finished (%d of %d epochs); nothing to resume",
                     out, state["epoch"], state["total_epochs"])
        else:
            log.info("resumed from %s at epoch %d batch %d", out / "last.pt",
                     state["epoch"] + 1, state["batch"])
    ddp_model = torch.nn.parallel.DistributedDataParallel(model) if world > 1 else model

    def checkpoint(path: Path, with_optimizer: bool = True) -> None:
        ckpt = {"arch": "fcn", "model_name": cfg.model,
                "model_config": model_config(cfg.model).to_dict(),
                "image_size": cfg.image_size, "normalization": NORMALIZATION,
                "model": model.state_dict(), "train_state": state,
                "train_config": asdict(cfg)}
        if with_optimizer:
            ckpt["optimizer"] = opt.state_dict()
        save_checkpoint(path, ckpt)

    # ---- the loop
    warmup = int(cfg.warmup_epochs * n_batches)
    local = cfg.batch_size // world
    seen_batches = 0
    row: dict = state["history"][-1] if state["history"] else {}
    board = TrainingBoard(cfg.tensorboard, grading) if cfg.tensorboard and main else None
    ctrl_c = CtrlC()
    finished = False  # every process reached the end together (not an error, not Ctrl-C)
    try:
        while state["total_epochs"] is None or state["epoch"] < state["total_epochs"]:
            epoch = state["epoch"]
            order = epoch_order(weights, cfg.seed, epoch,
                                cfg.steps_per_epoch and n_batches * cfg.batch_size)
            total = (state["total_epochs"] or max(epoch + 1, 2)) * n_batches
            bar = tqdm(range(state["batch"], n_batches), desc=f"epoch {epoch + 1}",
                       disable=not main, unit="batch", dynamic_ncols=True)
            t0, count = time.perf_counter(), 0
            model.train()
            for b in bar:
                step = epoch * n_batches + b
                for group in opt.param_groups:
                    group["lr"] = lr_at(step, total, warmup, cfg.lr, cfg.schedule)
                idx = order[b * cfg.batch_size:(b + 1) * cfg.batch_size].to(device)
                g = batch_generator(cfg.seed, epoch, b, device)
                x, y = augment(images[idx].permute(0, 3, 1, 2).float(), labels[idx].long(),
                               cfg.augment, g, bank)
                x, y = x[rank * local:(rank + 1) * local], y[rank * local:(rank + 1) * local]
                loss = train_step(ddp_model, opt, x, y, cfg.dice_weight, use_bf16)
                if world > 1:
                    loss = distributed.mean_over_processes(loss)
                state["loss_sum"] = state.get("loss_sum", 0.0) + loss.item()
                count += 1
                state["batch"] = b + 1
                if count % 10 == 0 or b + 1 == n_batches:
                    elapsed = time.perf_counter() - t0
                    bar.set_postfix(loss=f"{loss.item():.4f}", refresh=False,
                                    img_s=f"{count * cfg.batch_size / elapsed:.0f}")
                seen_batches += 1
                if ctrl_c.stop:
                    raise KeyboardInterrupt
                if cfg.max_batches and seen_batches >= cfg.max_batches:
                    raise StopIteration
            bar.close()
            epoch_seconds = time.perf_counter() - t0
            state["train_seconds"] += epoch_seconds
            row = {"epoch": epoch + 1, "train_loss": state.pop("loss_sum", 0.0) / n_batches,
                   "lr": opt.param_groups[0]["lr"], "seconds": round(epoch_seconds, 2),
                   "images_per_s": round(count * cfg.batch_size / epoch_seconds, 1)}
            last_epoch = state["total_epochs"] is not None and epoch + 1 == state["total_epochs"]
            if grading is not None and main and (
                    epoch == 0 or last_epoch or (epoch + 1) % cfg.val_every == 0):
                t1 = time.perf_counter()
                row.update(validate(model, grading, device, 64, cfg.dice_weight))
                row["val_seconds"] = round(time.perf_counter() - t1, 2)
            if state["total_epochs"] is None:  # --minutes: fix the length after epoch 1
                # from the time per batch: a resumed epoch 1 timed only part of its batches
                per_epoch = epoch_seconds / count * n_batches + \
                    row.get("val_seconds", 0) / cfg.val_every
                state["total_epochs"] = max(2, int(cfg.minutes * 60 / per_epoch))
                if world > 1:  # every process must agree on the length
                    state["total_epochs"] = distributed.broadcast_int(state["total_epochs"])
                log.info("--minutes %.1f: training for %d epochs", cfg.minutes,
                         state["total_epochs"])
            state["epoch"], state["batch"] = epoch + 1, 0
            state["history"].append(row)
            if board is not None:
                board.epoch(row, model, device, NORMALIZATION)
            if main:
                score = row.get("val_final_score", -row["train_loss"])
                if ("val_final_score" in row or grading is None) and (
                        state["best_score"] is None or score > state["best_score"]):
                    state["best_score"] = score
                    checkpoint(out / "best.pt", with_optimizer=False)
                checkpoint(out / "last.pt")
                write_log(out, state["history"])
                log.info("epoch %d: %s", epoch + 1,
                         " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                                  for k, v in row.items()))
        finished = True
    except StopIteration:
        if main:
            checkpoint(out / "last.pt")
        finished = True
    except KeyboardInterrupt:
        row = {**row, "interrupted": True}
        if main and ctrl_c.aborted:  # mid-batch: weights and BatchNorm statistics half-updated
            log.warning("aborted: %s was not rewritten; it holds the last finished epoch",
                        out / "last.pt")
        elif main:
            checkpoint(out / "last.pt")
            log.warning("interrupted: saved %s at epoch %d batch %d; continue with --resume",
                        out / "last.pt", state["epoch"] + 1, state["batch"])
    finally:
        ctrl_c.restore()
        if board is not None:
            board.close()
        distributed.stop(proc, wait=finished)
    return row


# the flags a recipe sets: left out on the command line, they take the recipe's value
RECIPE_FLAGS = ("model", "epochs", "batch_size", "lr", "dice_weight", "far_hero_weight",
                "steps_per_epoch")


def add_arguments(p: argparse.ArgumentParser) -> None:
    """``followme train``; defaults are TrainConfig's (and the recipe's, for RECIPE_FLAGS)."""
    from followme.models import MODELS

    d = TrainConfig()
    p.add_argument("--train", required=True, nargs="+", metavar="DIR",
                   help="RoboND folder(s); several train as one set (e.g. real and sim data)")
    p.add_argument("--val", metavar="DIR", help="RoboND or grading folder, scored each epoch")
    p.add_argument("--recipe", default="default", choices=sorted(RECIPES),
                   help="default: ours; course: the seed notebook's (seed FCN, Adam 0.01, batch "
                        "150, 50 epochs of 50 steps, no augmentation); flags given override it")
    p.add_argument("--model", choices=sorted(MODELS), help=f"default {d.model}")
    p.add_argument("--epochs", type=int, help=f"default {d.epochs}; a resumed run keeps its own")
    p.add_argument("--minutes", type=float, help="train this long instead of --epochs")
    p.add_argument("--batch-size", type=int, help=f"default {d.batch_size}")
    p.add_argument("--lr", type=float, help=f"default {d.lr:g}")
    p.add_argument("--steps-per-epoch", type=int, metavar="N",
                   help="batches an epoch (default: one pass over the data)")
    p.add_argument("--image-size", type=int, default=d.image_size)
    p.add_argument("--out", default=d.out)
    p.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    p.add_argument("--init", metavar="CKPT",
                   help="start from this checkpoint's weights (fine-tuning; same --model)")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--threads", type=int)
    p.add_argument("--device", help="cpu, cuda, cuda:1 ... (default: cuda when present)")
    p.add_argument("--skip-bad", action="store_true")
    p.add_argument("--val-every", type=int, default=d.val_every, metavar="N",
                   help="validate every N epochs")
    p.add_argument("--max-batches", type=int, help=argparse.SUPPRESS)
    p.add_argument("--dice-weight", type=float, help=f"default {d.dice_weight:g}")
    p.add_argument("--far-hero-weight", type=float, help=f"default {d.far_hero_weight:g}")
    p.add_argument("--paste", type=float,
                   help=f"hero copy-paste probability (default {d.augment.paste:g})")
    p.add_argument("--no-bf16", action="store_true", help="train in float32 only")
    p.add_argument("--tensorboard", metavar="DIR",
                   help="also write the losses, the validation figures and sample predictions "
                        "for TensorBoard to DIR (pip install -e '.[tensorboard]')")


def run(a: argparse.Namespace) -> int:
    given = {k: getattr(a, k) for k in RECIPE_FLAGS if getattr(a, k) is not None}
    cfg = TrainConfig.from_recipe(
        a.recipe, **given, train=a.train, val=a.val, out=a.out, minutes=a.minutes,
        epochs_given=a.epochs is not None, image_size=a.image_size, seed=a.seed,
        threads=a.threads, device=a.device, skip_bad=a.skip_bad, resume=a.resume, init=a.init,
        max_batches=a.max_batches, val_every=a.val_every, bf16=False if a.no_bf16 else None,
        tensorboard=a.tensorboard)
    if a.paste is not None:
        cfg.augment = replace(cfg.augment, paste=a.paste)
    row = train(cfg)
    print(json.dumps(row))
    return 130 if row.get("interrupted") else 0

