"""How well the quad follows, from the world's truth (the controller never sees it).

Per camera frame: the hero's pixels in the true labels (in view: more than 3, the course's
presence rule), the quad's distance to the hero's centre (``HERO_CENTRE`` above her feet),
the controller's mode, and whether two positions point at the hero: the follower's
``object_detected`` (a wrong detection is more than ``wrong_within`` metres from her,
horizontally) and, in follow mode, the target the controller flies after (a wrong-target
frame, and a wrong-person frame when someone else is nearer to it than she is).

Losses are the follower's own: a loss lasts from the last ``object_detected`` on the hero
before an ``object_lost`` to the next ``object_detected`` on her; the time to re-acquire runs
from the ``object_lost``, and again from the first frame after it in which she is in view.
Detections of anything else in between do not end a loss.
Out-of-view episodes are the truth's: runs of frames without the hero.
Shares weigh each frame by the simulated time until the next one.
"""

from __future__ import annotations

import csv
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

HERO_CENTRE = 1.0      # m above the ground
IN_VIEW_PIXELS = 3     # the hero is in view with more pixels than this
NEAR = (2.0, 6.0)      # m, the distance band to stay in


@dataclass
class FrameRecord:
    t: float
    hero_pixels: int
    distance: float            # m, quad to the hero's centre
    height: float              # m, the quad above the ground
    mode: str
    detected: bool
    detection_error: float     # m, horizontal, object_detected to the hero (nan: none)
    target_error: float        # m, horizontal, the followed target to the hero (nan: none)
    wrong_detection: bool
    wrong_target: bool
    wrong_person: bool         # the followed target is nearer someone else than the hero
    set_aside: bool            # the controller set a detection aside (its gate)
    lost: bool                 # an object_lost arrived with this frame

    @property
    def in_view(self) -> bool:
        return self.hero_pixels > IN_VIEW_PIXELS


class LoopMetrics:
    def __init__(self, wrong_within: float = 1.5, near: tuple[float, float] = NEAR):
        self.wrong_within, self.near = wrong_within, near
        self.frames: list[FrameRecord] = []
        self.end_time: float | None = None

    def add(self, t: float, hero_pixels: int, quad_position: np.ndarray, mode: str,
            people_xy: np.ndarray, detected: tuple[float, float, float] | None, lost: bool,
            target: np.ndarray | None = None, set_aside: bool = False) -> FrameRecord:
        """One camera frame. ``people_xy`` (P, 2): the hero first, then everyone else;
        ``detected``: where the follower put the hero in this frame (None: nowhere); ``lost``:
        whether it said she was lost;
        ``target``: what the controller follows, None when it follows nobody; ``set_aside``:
        the controller did not believe this frame's detection."""
        hero = np.array([people_xy[0][0], people_xy[0][1], HERO_CENTRE])

        def gaps(point) -> np.ndarray:
            return np.linalg.norm(people_xy - np.asarray(point, float)[:2], axis=1)

        detection_error = float(gaps(detected)[0]) if detected is not None else math.nan
        target_error, wrong_person = math.nan, False
        if target is not None:
            to_people = gaps(target)
            target_error = float(to_people[0])
            wrong_person = (target_error > self.wrong_within and len(to_people) > 1
                            and float(to_people[1:].min()) < target_error)
        record = FrameRecord(t=t, hero_pixels=int(hero_pixels),
                             distance=float(np.linalg.norm(quad_position - hero)),
                             height=float(quad_position[2]), mode=mode,
                             detected=detected is not None, detection_error=detection_error,
                             target_error=target_error,
                             wrong_detection=detection_error > self.wrong_within,
                             wrong_target=target_error > self.wrong_within,
                             wrong_person=wrong_person, set_aside=set_aside,
                             lost=lost)
        self.frames.append(record)
        return record

    def finish(self, t: float) -> None:
        """The simulated time at which the run ended (after the last frame)."""
        self.end_time = t

    def _weights(self) -> np.ndarray:
        t = np.array([f.t for f in self.frames])
        end = self.end_time if self.end_time is not None else (
            t[-1] + (t[-1] - t[-2] if len(t) > 1 else 0.0))
        return np.diff(np.append(t, end))

    def summary(self) -> dict:
        f = self.frames
        if not f:
            return {"frames": 0}
        w = self._weights()
        total = float(w.sum()) or 1.0
        t = np.array([r.t for r in f])
        in_view = np.array([r.in_view for r in f])
        distance = np.array([r.distance for r in f])
        near = (distance >= self.near[0]) & (distance <= self.near[1])
        detections = [r for r in f if r.detected]
        reacquire, gaps, after_view, lost_at, last_seen = [], [], [], None, None
        back_in_view = None
        for r in f:
            if r.lost and lost_at is None:
                lost_at, back_in_view = r.t, None
                gap_from = r.t if last_seen is None else last_seen
            elif r.detected and not r.wrong_detection:
                if lost_at is not None:
                    reacquire.append(r.t - lost_at)
                    gaps.append(r.t - gap_from)
                    after_view.append(r.t - (r.t if back_in_view is None else back_in_view))
                    lost_at = None
                last_seen = r.t
            if lost_at is not None and r.in_view and back_in_view is None:
                back_in_view = r.t
        episodes, start = [], None
        for r in f:
            if not r.in_view and start is None:
                start = r.t
            elif r.in_view and start is not None:
                episodes.append(r.t - start)
                start = None
        if start is not None:
            episodes.append(t[-1] + w[-1] - start)
        modes = {}
        for r, wk in zip(f, w, strict=True):
            modes[r.mode] = modes.get(r.mode, 0.0) + float(wk) / total
        errors = np.array([r.detection_error for r in detections])
        return {
            "seconds": round(total, 3), "frames": len(f),
            "hero_in_view_share": round(float(w[in_view].sum()) / total, 4),
            "within_2_6m_share": round(float(w[near].sum()) / total, 4),
            "acquired_at_s": round(detections[0].t, 3) if detections else None,
            "losses": len(reacquire) + (lost_at is not None),
            "loss_s": [round(x, 2) for x in gaps],
            "loss_max_s": round(max(gaps), 2) if gaps else None,
            "reacquire_s": [round(x, 2) for x in reacquire],
            "reacquire_max_s": round(max(reacquire), 2) if reacquire else None,
            # from the frame she is back in view (the truth's) to the follower's detection
            "reacquire_after_view_s": [round(x, 2) for x in after_view],
            "reacquire_after_view_max_s": round(max(after_view), 2) if after_view else None,
            "not_reacquired": int(lost_at is not None),
            "out_of_view_episodes": len(episodes),
            "out_of_view_longest_s": round(max(episodes), 2) if episodes else 0.0,
            "detections": len(detections),
            "wrong_detections": sum(r.wrong_detection for r in detections),
            "detection_error_median_m": round(float(np.median(errors)), 3) if len(errors)
            else None,
            "set_aside": sum(r.set_aside for r in f),
            "wrong_target_frames": sum(r.wrong_target for r in f),
            "wrong_person_frames": sum(r.wrong_person for r in f),
            # runs of wrong-person frames: each a switch to someone else
            "identity_switches": sum(r.wrong_person and (k == 0 or not f[k - 1].wrong_person)
                                     for k, r in enumerate(f)),
            "distance_median_m": round(float(np.median(distance)), 2),
            "distance_p5_p95_m": [round(float(v), 2) for v in np.percentile(distance, [5, 95])],
            "mode_share": {k: round(v, 4) for k, v in sorted(modes.items())},
        }

    def write_csv(self, path: str | Path) -> None:
        with open(path, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(asdict(self.frames[0])) if self.frames
                                    else ["t"])
            writer.writeheader()
            for r in self.frames:
                writer.writerow({k: (round(v, 4) if isinstance(v, float) else v)
                                 for k, v in asdict(r).items()})
