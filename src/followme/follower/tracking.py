"""Targets -> the hero, kept by identity: each frame's candidates (every group of hero pixels,
``target.locate_people``) -> Detected, Lost or nothing.

The segmentation calls anyone in her colours "hero". Which of them is she is the tracker's
call, on three kinds of evidence:

- **motion**: a constant-velocity Kalman filter (filterpy) of her ground position. A candidate
  counts only inside the filter's gate (its Mahalanobis distance under ``gate``, the chi-square
  0.999 point for 2 degrees of freedom), and the nearest in that sense is preferred: a look-alike
  a few metres off is not her, however large her mask;
- **appearance**: colour histograms of her upper and lower body (``appearance.py``), learned
  from her own crops as she is followed. It breaks ties inside the gate, and it decides
  re-acquisition once the motion has gone stale;
- **size**: her pixels lately. A candidate far from her size costs gate units (a patch of her
  colours on a passer-by is not she), and a mask much larger than hers (hers merged with someone
  else's) moves the filter far less than hers would.

When two candidates cost about the same (she and a look-alike parting after their masks merged,
often as one of them turns), the tracker does not guess: it follows both for ``decide`` s, the
second with a copy of her filter placed on it, and keeps the second only if the choices made
after it cost clearly less: the one who went on as she was going is she.

After ``lost_after`` misses in a row the follower says Lost (the course's rule: the 7th miss),
but the filter goes on predicting her for ``coast`` s: when she comes out from behind something,
the candidate where her motion puts her, and that looks like her, is taken back at once. After
``coast`` s only appearance is left: the candidate most like her, and alike enough, starts the
track again.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass

import numpy as np
from filterpy.common import Q_discrete_white_noise
from filterpy.kalman import KalmanFilter

from followme.follower.appearance import similarity
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


@dataclass
class Rival:
    """One of two hypotheses of who she is: its own tracker, the summed cost of its choices,
    and its answer to the last frame."""

    tracker: HeroTracker
    cost: float
    event: FollowEvent | None


@dataclass(frozen=True)
class TrackSettings:
    accel: float = 2.5           # m/s^2, her manoeuvres: the filter's process noise
    noise: float = 0.25          # m, a detection's horizontal error at 0 m ...
    noise_per_m: float = 0.04    # ... growing by this much per metre of depth
    gate: float = 13.8           # chi-square, 2 degrees of freedom, p = 0.999
    coast: float = 8.0           # s the filter predicts her after her last detection
    look: float = 10.0           # gate units that a dissimilar look costs a candidate
    alike: float = 0.55          # the least similarity that re-acquires her
    centre: float = 0.05         # image widths: the first sighting is the largest this central
    learn: float = 0.1           # how fast her look and size follow her crops
    grown: float = 1.3           # a mask this many times her size lately is trusted less
    resize: float = 2.0          # gate units a candidate e (or 1/e) times her size costs
    ambiguous: float = 1.5       # gate units: two candidates this close in cost are both
    decide: float = 1.0          # followed for this many s (ambiguous 0: never); then the
    evidence: float = 2.0        # second is she if its choices cost this many units less

    def __post_init__(self):
        if self.accel <= 0 or self.noise <= 0 or self.gate <= 0 or not 0 < self.learn <= 1 \
                or min(self.coast, self.resize, self.ambiguous, self.decide, self.evidence) < 0:
            raise ValueError("accel, noise and gate positive; coast, resize, ambiguous, decide "
                             "and evidence not negative; learn in (0, 1]")


class HeroTracker:
    """One quad's follow state. ``update(candidates, t)`` per processed frame: Detected for the
    candidate that is she; Lost once, on the ``lost_after``-th frame in a row without her,
    following a sighting; otherwise None. Malformed and dropped frames are not updates."""

    def __init__(self, lost_after: int = 7, settings: TrackSettings | None = None):
        if lost_after < 1:
            raise ValueError("lost_after must be at least 1")
        self.lost_after = lost_after  # the course's follower.py: object_lost on the 7th miss
        self.settings = settings or TrackSettings()
        self.filter: KalmanFilter | None = None
        self.height = 0.0            # m, her last measured z: the filter is horizontal
        self.look: np.ndarray | None = None
        self.size: float | None = None         # her pixels lately
        self.last_time: float | None = None   # the last update
        self.seen_time = -np.inf               # her last detection
        self.seen = False                      # since the last Lost
        self.misses = 0
        self.last_cost = 0.0                   # of the last update's choice (gate: none)
        self.forks = True                      # may split into two hypotheses
        self.rivals: list[Rival] = []          # the two, while they are undecided
        self.fork_time = -np.inf

    # ---- the filter ----
    def _start(self, target: Target, t: float) -> None:
        self.size = None
        kf = KalmanFilter(dim_x=4, dim_z=2)     # state (x, vx, y, vy)
        kf.x = np.array([target.world[0], 0.0, target.world[1], 0.0])
        kf.H = np.array([[1.0, 0, 0, 0], [0, 0, 1.0, 0]])
        kf.P = np.diag([self._noise(target) ** 2, 2.0 ** 2] * 2)  # standing, or walking
        self.filter = kf
        self._remember(target, t)

    def _noise(self, target: Target, by_size: bool = False) -> float:
        """A detection's horizontal error, m. ``by_size``: a mask much larger than she has been
        lately likely holds someone else too (their masks merged; its centre is often theirs,
        the nearer is the larger): its error grows with the square of the excess, so that a
        mask twice the ``grown`` size counts about a sixteenth as much as hers would."""
        noise = self.settings.noise + self.settings.noise_per_m * max(target.depth, 0.0)
        if by_size and self.size is not None:
            noise *= max(1.0, target.pixels / (self.settings.grown * self.size)) ** 2
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

    def _measure(self, target: Target, t: float) -> None:
        self.filter.update(np.asarray(target.world[:2]),
                           R=self._noise(target, by_size=True) ** 2 * np.eye(2))
        self._remember(target, t)

    def _place(self, target: Target, t: float) -> None:
        """Her filter moved onto ``target``, velocity kept, uncertain by its error."""
        kf = self.filter
        kf.x[[0, 2]] = target.world[:2]
        kf.P[[0, 1, 2, 3], [1, 0, 3, 2]] = 0.0
        kf.P[[0, 2], [0, 2]] = self._noise(target) ** 2
        self._remember(target, t)

    def _remember(self, target: Target, t: float) -> None:
        self.height = float(target.world[2])
        self.seen_time = t
        self.size = target.pixels if self.size is None else \
            (1 - self.settings.learn) * self.size + self.settings.learn * target.pixels
        if target.appearance is not None:
            self.look = target.appearance if self.look is None else \
                (1 - self.settings.learn) * self.look + self.settings.learn * target.appearance

    def _alike(self, target: Target) -> float:
        """Her look against the candidate's, 1 alike to 0; 1 when either is unknown."""
        if self.look is None or target.appearance is None:
            return 1.0
        return similarity(self.look, target.appearance)

    def _resized(self, target: Target) -> float:
        """The cost of a candidate's size against hers lately: a blob a tenth of her size (a
        stray patch of her colours on a passer-by) is not she, though it lies where she should."""
        if self.size is None or target.pixels <= 0:
            return 0.0
        return self.settings.resize * abs(float(np.log(target.pixels / self.size)))

    # ---- choosing ----
    def ranked(self, candidates: list[Target], t: float) -> list[tuple[float, int]]:
        """(cost, index) of each candidate inside the gate that looks alike enough, cheapest
        first, while her motion is fresh (within ``coast`` s); else none."""
        s = self.settings
        if self.filter is None or t - self.seen_time > s.coast:
            return []
        need = s.alike if not self.seen else 0.0
        costs = []
        for k, c in enumerate(candidates):
            distance, alike = self._distance(c), self._alike(c)
            if distance <= s.gate and alike >= need:
                costs.append((distance + s.look * (1 - alike) + self._resized(c), k))
        return sorted(costs)

    def choose(self, candidates: list[Target], t: float) -> Target | None:
        """Which candidate is she, or None. Does not change the state."""
        s = self.settings
        if not candidates:
            return None
        if self.filter is None:  # the first sighting: the largest where the camera looks
            nearest = min(c.off_centre for c in candidates)
            return max((c for c in candidates if c.off_centre <= nearest + s.centre),
                       key=lambda c: c.pixels)
        if t - self.seen_time <= s.coast:
            costs = self.ranked(candidates, t)
            return candidates[costs[0][1]] if costs else None
        looks = [(self._alike(c), k) for k, c in enumerate(candidates)]
        best, k = max(looks)
        return candidates[k] if best >= s.alike else None

    def update(self, candidates: list[Target] | Target | None, t: float | None = None
               ) -> FollowEvent | None:
        """One processed frame's candidates (largest first; a single Target or None is one
        or none), taken at ``t`` s (the frame's timestamp; now when None)."""
        if candidates is None:
            candidates = []
        elif isinstance(candidates, Target):
            candidates = [candidates]
        t = time.monotonic() if t is None else float(t)
        if self.rivals:
            return self._update_rivals(candidates, t)
        self._predict(t)
        stale = t - self.seen_time > self.settings.coast
        ranked = [] if stale else self.ranked(candidates, t)
        if self.forks and len(ranked) >= 2 and \
                ranked[1][0] - ranked[0][0] < self.settings.ambiguous:
            return self._fork(candidates, ranked[:2], t)
        if ranked:
            her = candidates[ranked[0][1]]
        else:  # a first sighting or a stale track choose otherwise; a fresh one has none
            her = self.choose(candidates, t) if self.filter is None or stale else None
        self.last_time = t
        self.last_cost = ranked[0][0] if ranked else self.settings.gate
        if her is not None:
            if self.filter is None or stale:
                self._start(her, t)
            else:
                self._measure(her, t)
            self.seen, self.misses = True, 0
            return Detected(her.world, her)
        if not self.seen:
            return None
        self.misses += 1
        if self.misses < self.lost_after:
            return None
        self.seen, self.misses = False, 0
        return Lost()

    # ---- two hypotheses ----
    def _fork(self, candidates: list[Target], pair: list[tuple[float, int]], t: float
              ) -> Detected:
        """Two candidates fit her about as well: two copies of the tracker, the first measuring
        the cheaper as usual, the second with her filter placed on the other (her velocity
        kept), choose on their own for ``decide`` s; meanwhile and then, ``_leader`` is she."""
        self.last_time = t
        rivals = []
        for n, (cost, k) in enumerate(pair):
            twin = copy.deepcopy(self)
            twin.forks = False
            if n == 0:
                twin._measure(candidates[k], t)
            else:
                twin._place(candidates[k], t)
            twin.seen, twin.misses, twin.last_cost = True, 0, cost
            rivals.append(Rival(twin, cost, Detected(candidates[k].world, candidates[k])))
        self.rivals, self.fork_time = rivals, t
        return rivals[0].event

    def _update_rivals(self, candidates: list[Target], t: float) -> FollowEvent | None:
        for rival in self.rivals:
            rival.event = rival.tracker.update(candidates, t)
            rival.cost += rival.tracker.last_cost
        best = self._leader()
        if t - self.fork_time >= self.settings.decide:
            forks = self.forks
            self.__dict__.update(best.tracker.__dict__)
            self.forks, self.rivals = forks, []
        return best.event

    def _leader(self) -> Rival:
        """The first choice, unless the other's choices have cost ``evidence`` less."""
        first, other = self.rivals
        return other if other.cost + self.settings.evidence < first.cost else first

    def predicted(self) -> tuple[float, float, float] | None:
        """Where the filter has her now (the last update's time), or None before a sighting."""
        if self.rivals:
            return self._leader().tracker.predicted()
        if self.filter is None:
            return None
        return float(self.filter.x[0]), float(self.filter.x[2]), self.height
