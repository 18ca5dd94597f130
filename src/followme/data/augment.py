"""Batch augmentation on tensors, on whatever device the batch lives on.

Every random draw comes from the ``torch.Generator`` passed in, so a batch's augmentation is a
pure function of its seed: training can stop and resume at any batch and repeat itself exactly.

images: (B, 3, S, S) float in [0, 255]; labels: (B, S, S) int64 in {0, 1, 2}.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from followme.labels import BACKGROUND, HERO, PEOPLE


@dataclass
class AugmentConfig:
    flip: float = 0.5  # probability of a horizontal flip
    shift: float = 0.3  # probability of the course's shift-and-pad
    max_shift: float = 0.25  # largest shift, as a share of the image size
    jitter: float = 0.2  # brightness and contrast jitter amplitude
    paste: float = 0.5  # probability of pasting a small hero into an image without one
    paste_height: tuple[int, int] = (8, 60)  # pasted hero height, in pixels of a 256 px image


def _rand(n: int, g: torch.Generator, device) -> torch.Tensor:
    return torch.rand(n, generator=g, device=g.device).to(device)


def flip(images: torch.Tensor, labels: torch.Tensor, p: float, g: torch.Generator):
    """Flip each image left-right with probability p."""
    do = _rand(len(images), g, images.device) < p
    images = torch.where(do[:, None, None, None], images.flip(-1), images)
    labels = torch.where(do[:, None, None], labels.flip(-1), labels)
    return images, labels


def shift_and_pad(images: torch.Tensor, labels: torch.Tensor, p: float, max_shift: float,
                  g: torch.Generator):
    """The course's shift-and-pad: move the picture, fill the uncovered part with black pixels
    labelled background."""
    b, _, h, w = images.shape
    do = _rand(b, g, images.device) < p
    shift = (_rand(2 * b, g, images.device).view(b, 2) * 2 - 1) * max_shift * 2 * do[:, None]
    theta = torch.zeros(b, 2, 3, device=images.device)
    theta[:, 0, 0] = theta[:, 1, 1] = 1
    theta[:, :, 2] = shift  # grid units: 2 = the whole image
    grid = F.affine_grid(theta, (b, 1, h, w), align_corners=False)
    images = F.grid_sample(images, grid, mode="nearest", padding_mode="zeros", align_corners=False)
    onehot = F.one_hot(labels, 3).permute(0, 3, 1, 2).float()
    onehot = F.grid_sample(onehot, grid, mode="nearest", padding_mode="zeros", align_corners=False)
    onehot[:, BACKGROUND] += onehot.sum(1) == 0
    return images, onehot.argmax(1)


def jitter(images: torch.Tensor, amount: float, g: torch.Generator) -> torch.Tensor:
    """Per-image brightness and contrast: x -> (x - mean) * c + mean * b."""
    b = len(images)
    r = (_rand(2 * b, g, images.device).view(b, 2) * 2 - 1) * amount + 1
    mean = images.mean(dim=(1, 2, 3), keepdim=True)
    out = (images - mean) * r[:, 0, None, None, None] + mean * r[:, 1, None, None, None]
    return out.clamp(0, 255)


class HeroBank:
    """Hero cut-outs (RGB + alpha) taken from images where the hero is large and whole."""

    def __init__(self, cutouts: list[tuple[torch.Tensor, torch.Tensor]]):
        self.cutouts = cutouts

    def __len__(self) -> int:
        return len(self.cutouts)

    @classmethod
    def from_arrays(cls, images: np.ndarray, labels: np.ndarray, hero_pixels: np.ndarray,
                    min_pixels: int = 800, limit: int = 400, seed: int = 0) -> HeroBank:
        """images (N, S, S, 3) uint8, labels (N, S, S); hero_pixels counted at full size."""
        rng = np.random.default_rng(seed)
        candidates = np.flatnonzero(hero_pixels >= min_pixels)
        rng.shuffle(candidates)
        cutouts = []
        for i in candidates:
            hero = labels[i] == HERO
            rows, cols = np.flatnonzero(hero.any(1)), np.flatnonzero(hero.any(0))
            s = hero.shape[0]
            if rows[0] == 0 or cols[0] == 0 or rows[-1] == s - 1 or cols[-1] == s - 1:
                continue  # cut by the frame: not a whole person
            box = np.s_[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
            rgb = torch.from_numpy(np.ascontiguousarray(images[i][box])).permute(2, 0, 1).float()
            alpha = torch.from_numpy(hero[box].astype(np.float32))[None]
            cutouts.append((rgb, alpha))
            if len(cutouts) >= limit:
                break
        return cls(cutouts)

    def to(self, device) -> HeroBank:
        return HeroBank([(r.to(device), a.to(device)) for r, a in self.cutouts])


def paste_heroes(images: torch.Tensor, labels: torch.Tensor, bank: HeroBank, p: float,
                 height: tuple[int, int], g: torch.Generator):
    """Shrink heroes from the bank to a far-away size and paste them onto background, in images
    that have no hero. The spot is plausible: on the row of another person when there is one
    (people stand on the ground at that distance), else in the lower three quarters."""
    if not len(bank) or p <= 0:
        return images, labels
    b, _, s, _ = images.shape
    has_hero = (labels == HERO).flatten(1).any(1)
    chosen = torch.nonzero((_rand(b, g, images.device) < p) & ~has_hero).flatten().tolist()
    if not chosen:
        return images, labels
    images, labels = images.clone(), labels.clone()
    scale = s / 256
    for i in chosen:
        u = torch.rand(6, generator=g, device=g.device).tolist()
        rgb, alpha = bank.cutouts[int(u[0] * len(bank))]
        h = max(3, round((height[0] + u[1] * (height[1] - height[0])) * scale))
        w = max(1, round(h * rgb.shape[2] / rgb.shape[1]))
        if h >= s or w >= s:
            continue
        people = torch.nonzero(labels[i] == PEOPLE)
        if len(people):
            foot = int(people[int(u[2] * len(people)), 0]) + 1
            top = min(max(foot - h, 0), s - h)
        else:
            top = int(s // 4 + u[2] * (s - s // 4 - h))
        left = int(u[3] * (s - w))
        if (labels[i, top:top + h, left:left + w] != BACKGROUND).any():
            continue
        small = F.interpolate(torch.cat([rgb, alpha])[None], size=(h, w), mode="bilinear",
                              antialias=True, align_corners=False)[0]
        a = small[3:].clamp(0, 1)
        patch = images[i, :, top:top + h, left:left + w]
        images[i, :, top:top + h, left:left + w] = patch * (1 - a) + small[:3] * a
        labels[i, top:top + h, left:left + w][a[0] > 0.5] = HERO
    return images, labels


def augment(images: torch.Tensor, labels: torch.Tensor, cfg: AugmentConfig, g: torch.Generator,
            bank: HeroBank | None = None):
    """All augmentations of one batch, in a fixed order."""
    if bank is not None:
        images, labels = paste_heroes(images, labels, bank, cfg.paste, cfg.paste_height, g)
    if cfg.shift > 0:
        images, labels = shift_and_pad(images, labels, cfg.shift, cfg.max_shift, g)
    if cfg.flip > 0:
        images, labels = flip(images, labels, cfg.flip, g)
    if cfg.jitter > 0:
        images = jitter(images, cfg.jitter, g)
    return images, labels
