"""Targets -> the hero, kept by identity: each frame's candidates (every group of hero pixels,
``target.locate_people``) -> Detected, Lost or nothing.

The segmentation calls anyone in her colours "hero". Which of them is she is the tracker's
call, on two kinds of evidence:

- **motion**: a constant-velocity Kalman filter (filterpy) of her ground position. A candidate
  counts only inside the filter's gate (its Mahalanobis distance under ``gate``, the chi-square
  0.999 point for 2 degrees of freedom), and the nearest in that sense is preferred: a look-alike
  a few metres off is not her, however large her mask;
- **appearance**: her head, torso, legs and feet in colour (``appearance.py``), in a space learned
  from simulated crops of people dressed alike; her look there is the mean of her own crops,
  taken only when the choice was sure (no one else nearly as likely). It breaks ties inside
  the gate, and it decides re-acquisition once the motion has gone stale.

After ``lost_after`` misses in a row the follower says Lost (the course's rule: the 7th miss),
but the filter goes on predicting her for ``coast`` s: when she comes out from behind something,
the candidate where her motion puts her, and that looks like her, is taken back at once. After
``coast`` s only appearance is left: the candidate most like her, and alike enough, starts the
track again.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from filterpy.common import Q_discrete_white_noise
from filterpy.kalman import KalmanFilter

from followme.follower.appearance import Appearance, shipped
from followme.follower.target import Target


@dataclass(frozen=True)
class Detected:
    """The hero is at ``world`` (ROS world frame, metres); ``target`` holds the frame's
    measurements where they are known (not for an answer read back from a wire)."""

    world: tuple[float, float, float]
    target: Target | None = None


@dataclass(frozen=True)
class Lost:
    """The hero, seen before, has been missed ``lost_after`` frames in a row."""


FollowEvent = Detected | Lost


@dataclass(frozen=True)
class TrackSettings:
    accel: float = 2.5           # m/s^2, her manoeuvres: the filter's process noise
    noise: float = 0.25          # m, a detection's horizontal error at 0 m ...
    noise_per_m: float = 0.04    # ... growing by this much per metre of depth
    gate: float = 13.8           # chi-square, 2 degrees of freedom, p = 0.999
    coast: float = 8.0           # s the filter predicts her after her last detection
    look: float = 1.0            # the weight of the look's squared distance against the motion's
    # her look's squared distance (in her own crops' scatter, appearance.py): within ``alike``
    # re-acquires her after a loss (92 % of her crops, a third of look-alikes' in the sim);
    # beyond ``stranger`` is not she even where her motion puts her (0.1 % of her crops)
    alike: float = 40.0
    stranger: float = 300.0
    centre: float = 0.05         # image widths: the first sighting is the largest this central
    settle: int = 10             # crops before her look counts in full
    sure: float = 6.0            # a choice this much cheaper than the next: her look learns
    learn: float = 0.1           # how fast her look and size follow her crops
    grown: float = 1.3           # a mask this many times her size lately is trusted less

    def __post_init__(self):
        if self.accel <= 0 or self.noise <= 0 or self.gate <= 0 or self.coast < 0 \
                or not 0 < self.learn <= 1:
            raise ValueError("accel, noise and gate positive; coast not negative; learn in "
                             "(0, 1]")


class HeroTracker:
    """One quad's follow state. ``update(candidates, t)`` per processed frame: Detected for the
    candidate that is she; Lost once, on the ``lost_after``-th frame in a row without her,
    following a sighting; otherwise None. Malformed and dropped frames are not updates."""

    def __init__(self, lost_after: int = 7, settings: TrackSettings | None = None,
                 appearance: Appearance | None = None):
        if lost_after < 1:
            raise ValueError("lost_after must be at least 1")
        self.lost_after = lost_after  # the course's follower.py: object_lost on the 7th miss
        self.settings = settings or TrackSettings()
        self.filter: KalmanFilter | None = None
        self.height = 0.0            # m, her last measured z: the filter is horizontal
        self.appearance: Appearance | None = shipped() if appearance is None else appearance
        self.look: np.ndarray | None = None    # her mean embedded crop
        self.crops = 0                         # how many went into it
        self.size: float | None = None         # her pixels lately
        self.last_time: float | None = None   # the last update
        self.seen_time = -np.inf               # her last detection
        self.seen = False                      # since the last Lost
        self.misses = 0

    # ---- the filter ----
    def _start(self, target: Target, t: float, sure: bool) -> None:
        self.size = None
        kf = KalmanFilter(dim_x=4, dim_z=2)     # state (x, vx, y, vy)
        kf.x = np.array([target.world[0], 0.0, target.world[1], 0.0])
        kf.H = np.array([[1.0, 0, 0, 0], [0, 0, 1.0, 0]])
        kf.P = np.diag([self._noise(target) ** 2, 2.0 ** 2] * 2)  # standing, or walking
        self.filter = kf
        self._remember(target, t, sure)

    def _noise(self, target: Target, by_size: bool = False) -> float:
        """A detection's horizontal error, m. ``by_size``: a mask much larger than she has been
        lately likely holds someone else too, and moves the filter that much less."""
        noise = self.settings.noise + self.settings.noise_per_m * max(target.depth, 0.0)
        if by_size and self.size is not None:
            noise *= max(1.0, target.pixels / (self.settings.grown * self.size))
        return noise

    def _predict(self, t: float) -> None:
        dt = max(0.0, t - self.last_time) if self.last_time is not None else 0.0
        if self.filter is None or dt == 0.0:
            return
        kf = self.filter
        kf.F = np.array([[1.0, dt, 0, 0], [0, 1.0, 0, 0], [0, 0, 1.0, dt], [0, 0, 0, 1.0]])
        kf.Q = Q_discrete_white_noise(dim=2, dt=dt, var=self.settings.accel ** 2, block_size=2)
        kf.predict()

    def _distance(self, target: Target) -> float:
        """Squared Mahalanobis distance of ``target`` from the prediction."""
        kf = self.filter
        r = self._noise(target) ** 2 * np.eye(2)
        innovation = np.asarray(target.world[:2]) - kf.H @ kf.x
        s = kf.H @ kf.P @ kf.H.T + r
        return float(innovation @ np.linalg.solve(s, innovation))

    def _measure(self, target: Target, t: float, sure: bool) -> None:
        self.filter.update(np.asarray(target.world[:2]),
                           R=self._noise(target, by_size=True) ** 2 * np.eye(2))
        self._remember(target, t, sure)

    def _remember(self, target: Target, t: float, sure: bool) -> None:
        """Her height, time and size from ``target``; her look too when the choice was
        ``sure`` and the mask is not much larger than she has been lately (two people)."""
        s = self.settings
        grown = self.size is not None and target.pixels > s.grown * self.size
        self.height = float(target.world[2])
        self.seen_time = t
        self.size = target.pixels if self.size is None else \
            (1 - s.learn) * self.size + s.learn * target.pixels
        crop = self._embed(target)
        if crop is None or not sure or grown:
            return
        self.crops += 1
        rate = max(s.learn, 1.0 / self.crops)  # the mean of her first crops, then a moving one
        self.look = crop if self.look is None else (1 - rate) * self.look + rate * crop

    def _embed(self, target: Target) -> np.ndarray | None:
        if self.appearance is None or target.appearance is None:
            return None
        return self.appearance.embed(target.appearance)

    def _unlike(self, crop: np.ndarray | None) -> float:
        """The squared distance of an embedded look from hers, in units of her own crops'
        scatter; its expected value (the embedding's dimensions) where either is unknown."""
        if self.look is None or crop is None:
            return 0.0 if self.appearance is None else float(self.appearance.dims)
        return float(np.sum((crop - self.look) ** 2))

    # ---- choosing ----
    def choose(self, candidates: list[Target], t: float) -> tuple[Target | None, bool]:
        """Which candidate is she, or None, and whether that choice is sure enough to learn
        her look from: the first sighting, or no other candidate within ``sure`` of her cost.
        Does not change the state. Inside the gate the cost is the motion's squared distance
        plus ``look`` times the look's: two chi-square distances, one sum."""
        s = self.settings
        if not candidates:
            return None, False
        if self.filter is None:  # the first sighting: the largest where the camera looks
            nearest = min(c.off_centre for c in candidates)
            return max((c for c in candidates if c.off_centre <= nearest + s.centre),
                       key=lambda c: c.pixels), True
        unlike = [self._unlike(self._embed(c)) for c in candidates]
        if t - self.seen_time <= s.coast:
            most = s.stranger if self.seen else s.alike  # after a loss, only someone like her
            weight = s.look * min(1.0, self.crops / s.settle)  # a look of few crops is rough
            costs = sorted((d + weight * unlike[k], k) for k, d in
                           enumerate(self._distance(c) for c in candidates)
                           if d <= s.gate and unlike[k] <= most)
            if not costs:
                return None, False
            sure = len(costs) == 1 or costs[1][0] - costs[0][0] >= s.sure
            return candidates[costs[0][1]], sure
        least, k = min((u, k) for k, u in enumerate(unlike))
        return (candidates[k], False) if least <= s.alike else (None, False)

    def update(self, candidates: list[Target] | Target | None, t: float | None = None
               ) -> FollowEvent | None:
        """One processed frame's candidates (largest first; a single Target or None is one
        or none), taken at ``t`` s (the frame's timestamp; now when None)."""
        if candidates is None:
            candidates = []
        elif isinstance(candidates, Target):
            candidates = [candidates]
        t = time.monotonic() if t is None else float(t)
        self._predict(t)
        stale = t - self.seen_time > self.settings.coast
        her, sure = self.choose(candidates, t)
        self.last_time = t
        if her is not None:
            if self.filter is None or stale:
                self._start(her, t, sure)
            else:
                self._measure(her, t, sure)
            self.seen, self.misses = True, 0
            return Detected(her.world, her)
        if not self.seen:
            return None
        self.misses += 1
        if self.misses < self.lost_after:
            return None
        self.seen, self.misses = False, 0
        return Lost()

    def predicted(self) -> tuple[float, float, float] | None:
        """Where the filter has her now (the last update's time), or None before a sighting."""
        if self.filter is None:
            return None
        return float(self.filter.x[0]), float(self.filter.x[2]), self.height
