"""The hero tracker: motion gate, appearance, loss and re-acquisition, on made-up candidates."""

from __future__ import annotations

import numpy as np
import pytest

from followme.follower.appearance import describe, hsv, similarity
from followme.follower.target import Target
from followme.follower.tracking import Detected, HeroTracker, Lost, TrackSettings


def look(top: tuple[int, int, int], bottom: tuple[int, int, int]) -> np.ndarray:
    """The appearance vector of a person in a ``top`` shirt and ``bottom`` trousers."""
    rgb = np.zeros((20, 10, 3), np.uint8)
    rgb[:10], rgb[10:] = top, bottom
    rows, cols = np.nonzero(np.ones((20, 10), bool))
    return describe(rgb[rows, cols], rows)


HER = look((210, 25, 25), (150, 20, 25))
OTHER = look((40, 90, 200), (60, 60, 60))


def person(x: float, y: float, pixels: int = 300, appearance=HER, off_centre=0.1) -> Target:
    return Target((x, y, 1.0), (80.0, 80.0), 5.0, pixels, off_centre, appearance)


def walk(tracker: HeroTracker, start: float, until: float, dt: float = 0.2, speed: float = 1.2,
         others=lambda t: []):
    """She walks along +x from x = 0 at ``speed``; feeds frames from ``start`` to ``until``."""
    events = []
    for t in np.arange(start, until, dt):
        candidates = sorted([person(speed * t, 0.0)] + others(t), key=lambda c: -c.pixels)
        events.append(tracker.update(candidates, float(t)))  # largest first, as located
    return events


def test_appearance_tells_colours_apart_and_matches_itself():
    assert similarity(HER, HER) == pytest.approx(1.0)
    assert similarity(HER, OTHER) < 0.2
    assert describe(np.zeros((4, 3), np.uint8), np.arange(4)) is None
    grey = hsv(np.array([[128, 128, 128], [255, 0, 0]], np.uint8))
    assert grey[0, 1] == 0 and grey[1].tolist() == [0.0, 1.0, 1.0]


def test_first_sighting_is_the_one_the_camera_looks_at():
    tracker = HeroTracker()
    event = tracker.update([person(5, 5, 900, off_centre=0.4), person(0, 0, 200)], 0.0)
    assert event == Detected((0.0, 0.0, 1.0), person(0, 0, 200))


def test_a_fragment_at_the_centre_does_not_outweigh_her_beside_it():
    """The sim's first frame, seed 3: a 21-pixel fragment nearest the image centre, her
    66-pixel mask 0.01 image widths further out: the first sighting is she."""
    tracker = HeroTracker()
    event = tracker.update([person(0, 0, 66, off_centre=0.01),
                            person(1.6, 0, 21, off_centre=0.0)], 0.0)
    assert event.world[:2] == (0.0, 0.0)


def test_a_bigger_lookalike_off_her_motion_is_not_taken():
    tracker = HeroTracker()
    walk(tracker, 0.0, 4.0)
    # a look-alike twice her size, 2.5 m to her side, walking beside her
    events = walk(tracker, 4.0, 8.0, others=lambda t: [person(1.2 * t, 2.5, 900)])
    assert all(isinstance(e, Detected) and abs(e.world[1]) < 0.1 for e in events)


def test_crossing_lookalike_is_kept_apart_by_her_velocity():
    """A look-alike walks towards her on the same line and passes her: the filter's velocity
    keeps the right one after they meet."""
    tracker = HeroTracker()
    walk(tracker, 0.0, 4.0)

    def oncoming(t):  # from x = 12 at t = 4, at 1.2 m/s the other way, 0.6 m to the side
        return [person(12.0 - 1.2 * (t - 4.0), 0.6, 400)]

    events = walk(tracker, 4.0, 12.0, others=oncoming)
    assert all(abs(e.world[1]) < 0.1 for e in events if isinstance(e, Detected))
    assert sum(isinstance(e, Detected) for e in events) >= len(events) - 2


def test_a_small_patch_of_her_colours_where_she_should_be_does_not_take_her_place():
    """The run scenario, seed 1, 96 s: she turns sharply; a 27-pixel patch of her colours on a
    passer-by lies where she would have walked on, she (her usual size) a little further from
    the prediction. Her size lately decides; without it the patch is taken."""
    patch = HER * 0.9 + OTHER * 0.1

    def turn(settings: TrackSettings) -> Detected:
        tracker = HeroTracker(settings=settings)
        walk(tracker, 0.0, 4.0)                     # at x = 4.8, walking +x at 1.2 m/s
        return tracker.update([person(4.75, 0.55, 290), person(5.04, 0.0, 27, patch)], 4.2)

    assert turn(TrackSettings()).world[:2] == (4.75, 0.55)
    assert turn(TrackSettings(resize=0.0)).world[:2] == (5.04, 0.0)


def test_a_lookalike_merged_into_her_mask_for_two_frames_does_not_take_her_place():
    """lookalikes, seed 2, 69 s: a look-alike walks 1.1 m beside her, nearer the camera and
    twice her size; for two frames their masks are one, placed on him (the larger); then they
    part, she partly hidden behind him. A mask far larger than she has been moves her filter
    by little, so that when they part she is the nearer to it."""
    tracker = HeroTracker()

    def beside(t):
        return [person(1.2 * t, 1.1, 800)]

    walk(tracker, 0.0, 2.0)
    walk(tracker, 2.0, 4.0, others=beside)
    for t in (4.0, 4.2):
        tracker.update([person(1.2 * t, 1.1, 1100)], t)
    events = [tracker.update(sorted([person(1.2 * t, 0.0, 320), person(1.2 * t, 1.1, 500)],
                                    key=lambda c: -c.pixels), t)
              for t in np.arange(4.4, 6.0, 0.2)]
    assert all(isinstance(e, Detected) and e.world[1] == 0.0 for e in events)


def test_after_a_head_on_merge_the_one_who_goes_on_as_she_went_is_she():
    """A look-alike walks head-on at her, 0.7 m to her side; their masks are one for two
    frames, placed on him (the larger), which pulls her filter his way. When they part he is
    the nearer to it: the first choice. Both are followed for ``decide`` s, and she, who walks
    on as she was walking, costs less than he, who goes the other way: she is kept."""

    def him(t):
        return (1.2 * 4.4 - 1.2 * (t - 4.4), 0.7)

    def run(settings):
        tracker = HeroTracker(settings=settings)
        walk(tracker, 0.0, 4.0)
        for t in (4.0, 4.2):
            tracker.update([person(1.2 * t, 0.0), person(*him(t))], t)
        for t in (4.4, 4.6):
            tracker.update([person(*him(t), 450)], t)
        return [tracker.update([person(1.2 * t, 0.0), person(*him(t))], float(t)).world[1]
                for t in np.arange(4.8, 6.8, 0.2)]

    assert run(TrackSettings(ambiguous=0.0)) == [0.7] * 10   # one hypothesis: he is taken
    sides = run(TrackSettings())
    assert sides[5:] == [0.0] * 5                            # after decide (1 s): she


def test_lost_on_the_seventh_miss_then_taken_back_where_her_motion_puts_her():
    tracker = HeroTracker()
    walk(tracker, 0.0, 4.0)                       # at 1.2 m/s along +x, x = 4.8 at t = 4
    misses = [tracker.update([], t) for t in np.arange(4.0, 6.0, 0.2)]
    assert misses[:6] == [None] * 6 and misses[6] == Lost()
    assert all(m is None for m in misses[7:])
    # 3 s on she comes out near x = 1.2 * 7: a look-alike far off does not count, she does
    event = tracker.update([person(-6.0, 0.0, 900), person(1.2 * 7.0, 0.2, 200)], 7.0)
    assert isinstance(event, Detected) and event.world[0] == pytest.approx(8.4)


def test_after_a_loss_someone_who_does_not_look_like_her_is_not_taken():
    tracker = HeroTracker()
    walk(tracker, 0.0, 4.0)
    for t in np.arange(4.0, 5.6, 0.2):
        tracker.update([], float(t))
    assert tracker.update([person(1.2 * 5.6, 0.0, appearance=OTHER)], 5.6) is None
    assert isinstance(tracker.update([person(1.2 * 5.8, 0.0)], 5.8), Detected)


def test_after_the_coast_only_her_look_brings_her_back():
    tracker = HeroTracker(settings=TrackSettings(coast=2.0))
    walk(tracker, 0.0, 2.0)
    for t in np.arange(2.0, 6.0, 0.2):
        tracker.update([], float(t))
    # 20 m away from any prediction: by look alone, the one dressed like her
    event = tracker.update([person(30.0, 5.0, 900, appearance=OTHER),
                            person(-20.0, 3.0, 100)], 6.0)
    assert isinstance(event, Detected) and event.world[:2] == (-20.0, 3.0)
    assert tracker.update([person(40.0, 0.0, appearance=OTHER)], 6.2) is None


def test_she_runs_stops_and_turns_back_without_being_dropped():
    tracker = HeroTracker()
    x, t, events = 0.0, 0.0, []
    for speed, seconds in ((1.2, 4.0), (3.0, 4.0), (0.0, 2.0), (-1.4, 4.0), (3.0, 3.0)):
        for _ in range(int(round(seconds / 0.2))):
            x += speed * 0.2
            t += 0.2
            events.append(tracker.update([person(x, 0.0)], t))
    assert all(isinstance(e, Detected) for e in events)


def test_timestamps_that_go_backwards_do_not_break_it():
    tracker = HeroTracker()
    assert isinstance(tracker.update([person(0, 0)], 10.0), Detected)
    assert isinstance(tracker.update([person(0.1, 0)], 9.0), Detected)
    assert tracker.predicted() is not None


def test_settings_are_checked():
    with pytest.raises(ValueError):
        TrackSettings(gate=0)
    with pytest.raises(ValueError):
        TrackSettings(resize=-1.0)
    with pytest.raises(ValueError):
        TrackSettings(evidence=-1.0)
    with pytest.raises(ValueError):
        HeroTracker(lost_after=0)
