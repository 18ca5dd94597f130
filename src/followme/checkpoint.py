"""Self-describing checkpoints: every command rebuilds the model from the file alone.

A checkpoint is a plain dict: its architecture (``arch``: a key of ``models.ARCHS``), the
model's name and config, the image size and the input normalisation, the weights, and for
training also the optimizer, the position in training and the history. Files written before
the ``arch`` key are read as "keras" when their config holds a Keras graph, else as "fcn".

Checkpoints are read with ``weights_only=True`` only, and everything they carry is checked
before a model is built, so a damaged, foreign or hostile file ends in one ValueError that
names the file and says what is wrong with it.
"""

from __future__ import annotations

import math
import warnings
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from followme.atomic import write_atomic
from followme.models import ARCHS

FORMAT = "followme-checkpoint-1"
# Pixels scale to [-1, 1] as the course did: (x / 255 - 0.5) * 2 == x * scale + offset.
NORMALIZATION = {"scale": 2 / 255, "offset": -1.0}
SHIPPED_MODEL = Path(__file__).parent / "assets" / "default_model.pt"
SIM_MODEL = Path(__file__).parent / "assets" / "sim_model.pt"  # fine-tuned on our sim's frames
# What every command needs of a checkpoint (training adds its own state beside these).
__all__ = ["LoadedModel", "load_checkpoint", "read_checkpoint", "save_checkpoint",
           "NORMALIZATION", "SHIPPED_MODEL", "SIM_MODEL"]
REQUIRED_KEYS = ("model_name", "model_config", "image_size", "normalization", "model")


def checkpoint_arch(ckpt: dict) -> str:
    """The architecture a checkpoint names (or, written before the key, its config shows)."""
    if "arch" in ckpt:
        return ckpt["arch"]
    config = ckpt.get("model_config")
    return "keras" if isinstance(config, dict) and "keras" in config else "fcn"


@dataclass
class LoadedModel:
    model: nn.Module
    name: str
    image_size: int
    normalization: dict
    checkpoint: dict


# ------------------------------------------------------------------------------------ writing
def save_checkpoint(path: str | Path, state: dict) -> None:
    """Write atomically: a temp file beside the target, then a rename. On failure (a full disk)
    the previous file at ``path`` is left as it was and no temp file remains. ``state`` names
    its ``arch``."""
    if state.get("arch") not in ARCHS:
        raise ValueError(f"{path}: a checkpoint needs an arch, one of {', '.join(ARCHS)}")
    write_atomic(Path(path), lambda f: torch.save({"format": FORMAT, **state}, f))


# ------------------------------------------------------------------------------------ reading
def read_checkpoint(path: str | Path) -> dict:
    """The checkpoint dict at ``path``, with the keys every command needs, each of the right
    kind; ValueError naming the file for anything else (never a torch traceback)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such checkpoint")
    with open(path, "rb") as f:
        head = f.read(64)
    what = _not_pytorch(path, head)
    if what:
        raise ValueError(f"{path}{what}")
    try:
        with warnings.catch_warnings():  # a plain pickle's protocol: the error below says it all
            warnings.filterwarnings("ignore", "Detected pickle protocol", UserWarning)
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for a damaged file; re-raised, never hidden
        raise ValueError(f"{path}: {_load_error(e)}") from e
    if not isinstance(ckpt, dict):
        raise ValueError(f"{path}: not a followme checkpoint (a PyTorch file holding a "
                         f"{type(ckpt).__name__}, not a checkpoint dict)")
    if ckpt.get("format") != FORMAT:
        found = ckpt.get("format")
        why = f"format {found!r:.40}, not {FORMAT!r}" if found else "no 'format' key"
        raise ValueError(f"{path}: not a followme checkpoint ({why})")
    missing = [k for k in REQUIRED_KEYS if k not in ckpt]
    if missing:
        raise ValueError(f"{path}: not a complete followme checkpoint (no "
                         f"{', '.join(map(repr, missing))})")
    problem = _check_fields(ckpt)
    if problem:
        raise ValueError(f"{path}: {problem}")
    return ckpt


def load_checkpoint(path: str | Path | None = None) -> LoadedModel:
    """Rebuild the model of a checkpoint, in eval mode. No path: the shipped default model."""
    path = Path(path) if path else SHIPPED_MODEL
    ckpt = read_checkpoint(path)
    name = ckpt["model_name"]
    check, build = ARCHS[checkpoint_arch(ckpt)]
    try:
        check(ckpt["model_config"], ckpt["image_size"])
        model = build(ckpt["model_config"])
    except (ValueError, TypeError, KeyError, IndexError, AttributeError) as e:
        detail = f"no {e.args[0]!r:.60}" if isinstance(e, KeyError) and e.args else str(e)
        raise ValueError(f"{path}: a bad model_config ({name:.40}): "
                         f"{_first_line(detail)}") from e
    mismatch = _weights_mismatch(model, ckpt["model"])
    if mismatch:
        raise ValueError(f"{path}: its weights do not fit its model_config ({name:.40}): "
                         f"{mismatch}")
    try:
        model.load_state_dict(ckpt["model"])
    except RuntimeError as e:
        raise ValueError(f"{path}: its weights do not fit its model_config ({name:.40}): "
                         f"{_first_line(_state_dict_error(e))}") from e
    model.eval()
    return LoadedModel(model, name, ckpt["image_size"], ckpt["normalization"], ckpt)


ZIP_MAGIC = b"PK\x03\x04"
HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
PICKLE_PROTOCOLS = (b"\x80\x02", b"\x80\x03", b"\x80\x04", b"\x80\x05")  # torch's legacy format
ONNX_FIELDS = {0x12, 0x1A, 0x22, 0x2A, 0x32, 0x3A, 0x42}  # ModelProto fields after ir_version


def _not_pytorch(path: Path, head: bytes) -> str:
    """What a file that torch.load cannot read is, as a message tail after the file name;
    "" for a file that starts like a PyTorch file."""
    size = path.stat().st_size
    if size == 0:
        return ": empty file (0 bytes)"
    if head.startswith(ZIP_MAGIC):
        try:
            with zipfile.ZipFile(path) as z:
                names = z.namelist()
        except (zipfile.BadZipFile, OSError):
            return ": not a readable checkpoint (a damaged or truncated PyTorch file)"
        if any(n.endswith("/data.pkl") for n in names):
            return ""
        return ": not a followme checkpoint (a zip archive, not a PyTorch file)"
    if head.startswith(PICKLE_PROTOCOLS):
        return ""
    looks_onnx = len(head) > 2 and head[0] == 0x08 and head[1] < 0x80 and head[2] in ONNX_FIELDS
    if path.suffix.lower() == ".onnx" or looks_onnx:
        return (" is an ONNX model: commands that take .onnx are follow; export writes it "
                "(the others need a followme checkpoint, .pt)")
    if head.startswith(HDF5_MAGIC):
        return (" is an HDF5 file (a Keras model?): `followme import-keras` turns a RoboND "
                "Keras model into a followme checkpoint")
    if not head.strip(b"\x00") and not _has_nonzero(path):
        return f": not a readable checkpoint (all {size:,} bytes are zero: a damaged file)"
    return ": not a followme checkpoint (not a PyTorch file)"


def _has_nonzero(path: Path) -> bool:
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            if block.strip(b"\x00"):
                return True
    return False


def _load_error(e: Exception) -> str:
    """torch.load's error as a message tail, without torch's advice to retry with
    weights_only=False (a followme checkpoint never needs it; running pickled code is unsafe)."""
    text = str(e)
    if "Weights only load failed" in text or "weights_only" in text:
        return ("not a followme checkpoint (a PyTorch or pickle file holding Python objects, "
                "not only weights and plain data; such a file is never loaded: it could run code)")
    if isinstance(e, EOFError) or not text.strip():
        return "not a readable checkpoint (a truncated PyTorch file)"
    return f"not a readable checkpoint (a damaged PyTorch file: {_first_line(text)})"


def _check_fields(ckpt: dict) -> str:
    """What is wrong with the kinds of the required entries; "" when nothing is."""
    name, size, norm, weights = (ckpt["model_name"], ckpt["image_size"], ckpt["normalization"],
                                 ckpt["model"])
    if not isinstance(name, str):
        return f"model_name is a {type(name).__name__}, not a string"
    arch = checkpoint_arch(ckpt)
    if not isinstance(arch, str) or arch not in ARCHS:
        return f"arch {arch!r:.40}: not one of {', '.join(ARCHS)}"
    if not isinstance(ckpt["model_config"], dict):
        return f"model_config is a {type(ckpt['model_config']).__name__}, not a dict"
    if not isinstance(size, int) or isinstance(size, bool):
        return f"image_size = {size!r:.40}: not an int"
    if not isinstance(norm, dict):
        return f"normalization is a {type(norm).__name__}, not a dict with scale and offset"
    for key in ("scale", "offset"):
        v = norm.get(key)
        if not (isinstance(v, (float, int)) and not isinstance(v, bool) and math.isfinite(v)):
            return f"normalization {key} = {v!r:.40}: want a finite number"
    if norm["scale"] == 0:
        return "normalization scale = 0: every image would look the same"
    if not isinstance(weights, Mapping):
        return f"model (the weights) is a {type(weights).__name__}, not a state dict"
    for key, value in weights.items():
        if not isinstance(key, str) or not isinstance(value, torch.Tensor):
            return f"model (the weights) holds {key!r:.60}: {type(value).__name__}, not a tensor"
    return ""


def _weights_mismatch(model: nn.Module, weights: Mapping) -> str:
    """The first weight that is missing, unexpected or of the wrong shape; "" when all fit."""
    expected = model.state_dict()
    for key, value in expected.items():
        if key not in weights:
            return f"no weight {key}"
        if tuple(weights[key].shape) != tuple(value.shape):
            return (f"{key} has shape {tuple(weights[key].shape)}, the model needs "
                    f"{tuple(value.shape)}")
    for key in weights:
        if key not in expected:
            return f"unexpected weight {key:.80}"
    return ""


def _state_dict_error(e: RuntimeError) -> str:
    """load_state_dict's first complaint, without its 'Error(s) in loading ...' header."""
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    return lines[1] if len(lines) > 1 else (lines[0] if lines else type(e).__name__)


def _first_line(text: str, limit: int = 200) -> str:
    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    return line if len(line) <= limit else line[:limit - 3] + "..."
