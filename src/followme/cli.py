"""``followme <verb>``: one command line, each verb a module with ``add_arguments`` and ``run``.

The table below is the whole command line. A verb's module is imported only when that verb
runs, so ``followme follow`` never loads the simulator and ``followme --help`` loads nothing.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from dataclasses import dataclass

log = logging.getLogger("followme")


@dataclass(frozen=True)
class Verb:
    words: tuple[str, ...]  # ("train",) or ("sim", "follow")
    module: str
    help: str
    add: str = "add_arguments"  # the module's functions, when one module serves two verbs
    run: str = "run"


VERBS = (
    Verb(("data", "check"), "followme.data.check",
         "counts, class shares, hero sizes; fails on bad data"),
    Verb(("data", "prepare"), "followme.data.prepare",
         "QuadSim recordings (RAW/<run>/IMG/ or RAW/<split>/<run>/IMG/) -> images/ + masks/, as "
         "the course's preprocess_ims.py"),
    Verb(("model", "summary"), "followme.models.summary",
         "layer output shapes and parameter count"),
    Verb(("train",), "followme.training", "train a segmentation model"),
    Verb(("predict",), "followme.segment.predict",
         "write prediction PNGs for a folder of images"),
    Verb(("evaluate",), "followme.evaluation.evaluate", "the course score on a grading folder"),
    Verb(("export",), "followme.segment.onnx", "a checkpoint as an ONNX file for ONNX Runtime"),
    Verb(("import-keras",), "followme.keras_import.convert",
         "a RoboND Keras model -> a followme checkpoint"),
    Verb(("follow",), "followme.follower",
         "serve QuadSim: camera frames in, the hero's position out"),
    Verb(("sim", "record"), "followme.sim.record",
         "fly the simulated quad, write images/ + masks/"),
    Verb(("sim", "follow"), "followme.sim.commands",
         "the closed loop: sim camera -> follower -> quad", "add_follow_arguments", "run_follow"),
    Verb(("sim", "serve"), "followme.sim.commands",
         "be QuadSim: stream sim frames to a follower", "add_serve_arguments", "run_serve"),
    Verb(("sim", "scenarios"), "followme.sim.scenarios", "list the closed-loop scenarios"),
    Verb(("sim", "vehicle"), "followme.sim.vehicle_cmd",
         "be a PX4 or ArduPilot vehicle on a MAVLink URL, in real time, until Ctrl-C"),
    Verb(("demo",), "followme.demo", "record sim data, fine-tune, score, follow: the whole job"),
)
GROUPS = {"data": "check or prepare RoboND data", "model": "inspect architectures",
          "sim": "the simulated world: record data, follow the hero"}


def _chosen(argv: list[str]) -> Verb | None:
    """The verb that ``argv`` names (options before it skipped), or None."""
    words = [w for w in argv if not w.startswith("-")][:2]
    for verb in VERBS:
        if tuple(words[:len(verb.words)]) == verb.words:
            return verb
    return None


def _attach(verb: Verb, c: argparse.ArgumentParser) -> None:
    """The verb's options and its run function, from its module."""
    try:
        module = importlib.import_module(verb.module)
        getattr(module, verb.add)(c)
    except ModuleNotFoundError as e:
        extra = " (the [sim] extra: pip install -e '.[sim]')" if verb.words[0] in ("sim", "demo") \
            else ""
        raise ValueError(f"followme {' '.join(verb.words)} needs {e.name}{extra}") from e
    c.set_defaults(verb_run=getattr(module, verb.run))


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The parser; only the verb that ``argv`` names gets its options (and imports its module)."""
    chosen = _chosen(sys.argv[1:] if argv is None else argv)
    p = argparse.ArgumentParser(prog="followme", description="Segment the hero in camera frames, "
                                "score her the course's way, and follow her.")
    p.add_argument("-v", "--verbose", action="store_true")
    verbs = p.add_subparsers(dest="verb", required=True)
    groups: dict[str, argparse._SubParsersAction] = {}
    for verb in VERBS:
        parent = verbs
        if len(verb.words) == 2:
            if verb.words[0] not in groups:
                group = verbs.add_parser(verb.words[0], help=GROUPS[verb.words[0]])
                groups[verb.words[0]] = group.add_subparsers(dest=f"{verb.words[0]}_verb",
                                                             required=True)
            parent = groups[verb.words[0]]
        c = parent.add_parser(verb.words[-1], help=verb.help, description=verb.help)
        c.set_defaults(verb_spec=verb)
        if verb == chosen:
            _attach(verb, c)
    return p


def main(argv: list[str] | None = None) -> int:
    from followme.data.robond import DataError

    try:
        args = build_parser(argv).parse_args(argv)
        logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                            format="%(levelname)s %(message)s" if args.verbose else "%(message)s")
        return args.verb_run(args)
    except (DataError, OSError, ValueError, KeyError) as e:
        print(f"followme: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
