"""``followme <verb>``: one command line, each verb a module.

  data check / data prepare   followme.data.check / followme.data.prepare
  model summary               followme.models.summary
  train                       followme.training
  predict                     followme.segment.predict
  evaluate                    followme.evaluation.evaluate
  export --onnx               followme.segment.onnx
  import-keras                followme.keras_import.convert
  follow                      followme.follower
  sim record                  followme.sim.record
  sim follow / sim serve      followme.sim.commands (loop.py, serve.py)
  demo                        followme.demo
"""

from __future__ import annotations

import argparse
import json
import logging
import sys

log = logging.getLogger("followme")


def cmd_data_check(a: argparse.Namespace) -> int:
    from followme.data.check import folder_stats, format_stats

    for folder in a.dirs:
        print(format_stats(folder_stats(folder, skip_bad=a.skip_bad)))
    return 0


def cmd_data_prepare(a: argparse.Namespace) -> int:
    from followme.data.prepare import prepare

    written = prepare(a.raw, a.out)
    for folder, n in written.items():
        print(f"wrote {n} image/mask pairs to {folder}")
    if not written:
        print(f"{a.raw}: no frame could be read (see the warnings above)")
        return 1
    return 0


def cmd_model_summary(a: argparse.Namespace) -> int:
    from followme.models.summary import summary

    print(summary(a.name, a.image_size))
    return 0


def cmd_train(a: argparse.Namespace) -> int:
    from dataclasses import replace

    from followme.training import TrainConfig, train

    # flags left out take the recipe's value, then TrainConfig's default
    chosen = {"model": a.model, "epochs": a.epochs, "batch_size": a.batch_size, "lr": a.lr,
              "dice_weight": a.dice_weight, "far_hero_weight": a.far_hero_weight,
              "steps_per_epoch": a.steps_per_epoch}
    cfg = TrainConfig.from_recipe(
        a.recipe, **{k: v for k, v in chosen.items() if v is not None},
        train=a.train, val=a.val, out=a.out, minutes=a.minutes,
        epochs_given=a.epochs is not None, image_size=a.image_size, seed=a.seed,
        threads=a.threads, device=a.device, skip_bad=a.skip_bad, resume=a.resume, init=a.init,
        max_batches=a.max_batches, val_every=a.val_every, bf16=False if a.no_bf16 else None)
    if a.paste is not None:
        cfg.augment = replace(cfg.augment, paste=a.paste)
    row = train(cfg)
    print(json.dumps(row))
    return 130 if row.get("interrupted") else 0


def cmd_predict(a: argparse.Namespace) -> int:
    from followme.checkpoint import load_checkpoint
    from followme.segment.predict import predict_folder

    written = predict_folder(load_checkpoint(a.model), a.images, a.out, overlays=a.overlay)
    print(f"wrote {len(written)} predictions to {a.out}")
    return 0


def cmd_evaluate(a: argparse.Namespace) -> int:
    from followme.evaluation.evaluate import evaluate, find_grade_dir, score_markdown

    figures = evaluate(find_grade_dir(a.grade_dir), a.out, model=a.model, pred_dir=a.pred_dir,
                       skip_bad=a.skip_bad, run_name=a.run_name)
    print(score_markdown(figures))
    print(f"wrote {a.out}/score.json, {a.out}/score.md and {a.out}/<subset>_samples.png")
    return 0


def cmd_export(a: argparse.Namespace) -> int:
    from followme.segment.onnx import export_onnx

    diff = export_onnx(a.checkpoint, a.out)
    print(f"wrote {a.out}: uint8 (B, S, S, 3) frames -> (B, S, S, 3) probabilities; "
          f"agrees with PyTorch to {diff:.1e}")
    return 0


def cmd_import_keras(a: argparse.Namespace) -> int:
    from followme.keras_import.convert import cmd_import_keras

    return cmd_import_keras(a)


def cmd_follow(a: argparse.Namespace) -> int:
    from followme.follower import cmd_follow

    return cmd_follow(a)


def cmd_sim_record(a: argparse.Namespace) -> int:
    from followme.sim.record import cmd_sim_record

    return cmd_sim_record(a)


def cmd_sim_follow(a: argparse.Namespace) -> int:
    from followme.sim.commands import cmd_sim_follow

    return cmd_sim_follow(a)


def cmd_sim_serve(a: argparse.Namespace) -> int:
    from followme.sim.commands import cmd_sim_serve

    return cmd_sim_serve(a)


def cmd_demo(a: argparse.Namespace) -> int:
    from followme.demo import cmd_demo

    return cmd_demo(a)


def build_parser() -> argparse.ArgumentParser:
    from followme.models import DEFAULT_MODEL, MODELS
    from followme.training import RECIPES

    p = argparse.ArgumentParser(prog="followme", description=__doc__.split("\n")[0])
    p.add_argument("-v", "--verbose", action="store_true")
    verbs = p.add_subparsers(dest="verb", required=True)

    data = verbs.add_parser("data", help="check or prepare RoboND data")
    data_verbs = data.add_subparsers(dest="data_verb", required=True)
    c = data_verbs.add_parser("check", help="counts, class shares, hero sizes; fails on bad data")
    c.add_argument("dirs", nargs="+", metavar="DIR")
    c.add_argument("--skip-bad", action="store_true", help="skip bad files instead of failing")
    c.set_defaults(func=cmd_data_check)
    c = data_verbs.add_parser(
        "prepare", help="QuadSim recordings (RAW/<run>/IMG/ or RAW/<split>/<run>/IMG/) -> "
                        "images/ + masks/, as the course's preprocess_ims.py")
    c.add_argument("raw", metavar="RAW")
    c.add_argument("out", metavar="OUT")
    c.set_defaults(func=cmd_data_prepare)

    model = verbs.add_parser("model", help="inspect architectures")
    model_verbs = model.add_subparsers(dest="model_verb", required=True)
    c = model_verbs.add_parser("summary", help="layer output shapes and parameter count")
    c.add_argument("name", choices=sorted(MODELS))
    c.add_argument("--image-size", type=int, default=160)
    c.set_defaults(func=cmd_model_summary)

    c = verbs.add_parser("train", help="train a segmentation model")
    c.add_argument("--train", required=True, nargs="+", metavar="DIR",
                   help="RoboND folder(s); several train as one set (e.g. real and sim data)")
    c.add_argument("--val", metavar="DIR", help="RoboND or grading folder, scored each epoch")
    c.add_argument("--recipe", default="default", choices=sorted(RECIPES),
                   help="default: ours; course: the seed notebook's (seed FCN, Adam 0.01, batch "
                        "150, 50 epochs of 50 steps, no augmentation); flags given override it")
    c.add_argument("--model", choices=sorted(MODELS), help=f"default {DEFAULT_MODEL}")
    c.add_argument("--epochs", type=int, help="default 30; a resumed run keeps its own")
    c.add_argument("--minutes", type=float, help="train this long instead of --epochs")
    c.add_argument("--batch-size", type=int, help="default 32")
    c.add_argument("--lr", type=float, help="default 3e-3")
    c.add_argument("--steps-per-epoch", type=int, metavar="N",
                   help="batches an epoch (default: one pass over the data)")
    c.add_argument("--image-size", type=int, default=160)
    c.add_argument("--out", default="runs/default")
    c.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    c.add_argument("--init", metavar="CKPT",
                   help="start from this checkpoint's weights (fine-tuning; same --model)")
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--threads", type=int)
    c.add_argument("--device", help="cpu, cuda, cuda:1 ... (default: cuda when present)")
    c.add_argument("--skip-bad", action="store_true")
    c.add_argument("--val-every", type=int, default=1, metavar="N", help="validate every N epochs")
    c.add_argument("--max-batches", type=int, help=argparse.SUPPRESS)
    c.add_argument("--dice-weight", type=float, help="default 1")
    c.add_argument("--far-hero-weight", type=float, help="default 3")
    c.add_argument("--paste", type=float, help="hero copy-paste probability (default 0.5)")
    c.add_argument("--no-bf16", action="store_true", help="train in float32 only")
    c.set_defaults(func=cmd_train)

    c = verbs.add_parser("predict", help="write prediction PNGs for a folder of images")
    c.add_argument("--model", metavar="CKPT", help="default: the shipped model")
    c.add_argument("--images", required=True, metavar="DIR")
    c.add_argument("--out", required=True, metavar="DIR")
    c.add_argument("--overlay", action="store_true", help="also write tinted overlays")
    c.set_defaults(func=cmd_predict)

    c = verbs.add_parser("evaluate", help="the course score on a grading folder")
    c.add_argument("--model", metavar="CKPT", help="default: the shipped model")
    c.add_argument("--grade-dir", metavar="DIR",
                   help="default: data/robond/validation_grade, then "
                        "../shared/data/robond/validation_grade")
    c.add_argument("--out", default="runs/evaluate", metavar="OUT")
    c.add_argument("--pred-dir", metavar="DIR",
                   help="score existing predictions: DIR/<subset>/ or the course's "
                        "DIR/<subset>_<run_name>/")
    c.add_argument("--run-name", help="with --pred-dir: which run's <subset>_<run_name>/")
    c.add_argument("--skip-bad", action="store_true",
                   help="skip unreadable or unpaired files instead of failing")
    c.set_defaults(func=cmd_evaluate)

    c = verbs.add_parser("export", help="a checkpoint as an ONNX file for ONNX Runtime")
    c.add_argument("--onnx", action="store_true", required=True, help="the format (ONNX)")
    c.add_argument("checkpoint", metavar="CKPT")
    c.add_argument("out", metavar="OUT.onnx")
    c.set_defaults(func=cmd_export)

    c = verbs.add_parser("import-keras", help="a RoboND Keras model -> a followme checkpoint")
    c.add_argument("files", nargs="+", metavar="FILE",
                   help="CONFIG_JSON WEIGHTS_H5 (as model_tools.save_network wrote them), "
                        "or one MODEL.h5 holding both")
    c.add_argument("--out", required=True, metavar="CKPT")
    c.add_argument("--image-size", type=int,
                   help="only for a model whose input has no fixed size")
    c.set_defaults(func=cmd_import_keras)

    from followme.follower import add_arguments as add_follow_arguments

    c = verbs.add_parser("follow", help="serve QuadSim: camera frames in, the hero's position out")
    add_follow_arguments(c)
    c.set_defaults(func=cmd_follow)

    sim = verbs.add_parser("sim", help="the simulated world: record data, follow the hero")
    sim_verbs = sim.add_subparsers(dest="sim_verb", required=True)
    c = sim_verbs.add_parser("record", help="fly the simulated quad, write images/ + masks/")
    c.add_argument("--out", required=True, metavar="DIR")
    c.add_argument("--frames", type=int, required=True, metavar="N")
    c.add_argument("--mode", choices=("patrol", "follow", "mixed"), default="mixed")
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--grade", action="store_true",
                   help="write following_images/, patrol_with_targ/, patrol_non_targ/ by hero size")
    c.add_argument("--resume", action="store_true",
                   help="continue the recording in a non-empty DIR (same settings)")
    c.add_argument("--interval", type=float, help="simulated seconds between frames (0.5)")
    c.add_argument("--scenario-frames", type=int, metavar="N", help="frames per world (200)")
    c.add_argument("--people", type=int, nargs=2, metavar=("MIN", "MAX"),
                   help="crowd size per world (10 40)")
    c.add_argument("--depth", action="store_true", help="also write depth/*.png as QuadSim does")
    c.set_defaults(func=cmd_sim_record)

    from followme.demo import add_arguments as add_demo_arguments
    from followme.sim.commands import add_follow_arguments as add_sim_follow_arguments
    from followme.sim.commands import add_serve_arguments as add_sim_serve_arguments

    c = sim_verbs.add_parser("follow", help="the closed loop: sim camera -> follower -> quad")
    add_sim_follow_arguments(c)
    c.set_defaults(func=cmd_sim_follow)
    c = sim_verbs.add_parser("serve", help="be QuadSim: stream sim frames to a follower")
    add_sim_serve_arguments(c)
    c.set_defaults(func=cmd_sim_serve)

    c = verbs.add_parser("demo", help="record sim data, fine-tune, score, follow: the whole job")
    add_demo_arguments(c)
    c.set_defaults(func=cmd_demo)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s %(message)s" if args.verbose else "%(message)s")
    from followme.data.robond import DataError

    try:
        return args.func(args)
    except (DataError, OSError, ValueError, KeyError) as e:
        print(f"followme: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
