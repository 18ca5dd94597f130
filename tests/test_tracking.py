"""The hero tracker: motion gate, appearance, loss and re-acquisition, on made-up candidates."""

from __future__ import annotations

import numpy as np
import pytest

from followme.follower import appearance
from followme.follower.appearance import Appearance, features, fit, hsv, similarity
from followme.follower.target import Target
from followme.follower.tracking import Detected, HeroTracker, Lost, TrackSettings


def look(top: tuple[int, int, int], bottom: tuple[int, int, int], head=None,
         rng: np.random.Generator | None = None) -> np.ndarray:
    """The raw features of a person 21 px tall in a ``top`` shirt (11 rows) and ``bottom``
    trousers, a ``head`` (default: the shirt's colour) in the top 3 rows, which are the head
    band; ``rng`` jitters every colour."""
    rgb = np.zeros((21, 10, 3), np.int32)
    rgb[:11], rgb[11:], rgb[:3] = top, bottom, head or top
    if rng is not None:
        rgb += rng.integers(-12, 13, size=3)
    rows, cols = np.nonzero(np.ones((21, 10), bool))
    return features(np.clip(rgb, 0, 255).astype(np.uint8)[rows, cols], rows)


HER_CLOTHES = ((210, 25, 25), (150, 20, 25))
HER = look(*HER_CLOTHES, head=(60, 40, 20))
ALIKE = look(*HER_CLOTHES, head=(230, 200, 120))  # her clothes, fair hair
OTHER = look((40, 90, 200), (60, 60, 60))


def fitted() -> Appearance:
    """A model fitted on jittered crops of six people, two of them in her clothes."""
    rng = np.random.default_rng(0)
    people = [(*HER_CLOTHES, (60, 40, 20)), (*HER_CLOTHES, (230, 200, 120)),
              ((40, 90, 200), (60, 60, 60), None), ((30, 160, 60), (200, 200, 200), None),
              ((220, 200, 40), (20, 20, 20), None), ((120, 60, 160), (90, 70, 40), None)]
    crops = [look(*who, rng=rng) for who in people for _ in range(40)]
    return fit(np.array(crops), np.repeat(np.arange(len(people)), 40), dims=5)


MODEL = fitted()


def new_tracker(**settings) -> HeroTracker:
    return HeroTracker(settings=TrackSettings(**settings), appearance=MODEL)


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


def test_features_are_three_bands_of_colour():
    assert features(np.zeros((4, 3), np.uint8), np.arange(4)) is None
    assert HER.shape == (appearance.FEATURES,)
    per_band = appearance.HISTOGRAM + 3
    head, torso, legs = HER[:per_band], HER[per_band:2 * per_band], HER[2 * per_band:]
    np.testing.assert_allclose(head[-3:], np.array([60, 40, 20]) / 255, atol=1e-6)
    np.testing.assert_allclose(torso[-3:], np.array(HER_CLOTHES[0]) / 255, atol=1e-6)
    np.testing.assert_allclose(legs[-3:], np.array(HER_CLOTHES[1]) / 255, atol=1e-6)
    assert head[:-3].sum() == pytest.approx(1.0)
    # her look-alike differs in the head band alone
    np.testing.assert_array_equal(ALIKE[per_band:], HER[per_band:])
    grey = hsv(np.array([[128, 128, 128], [255, 0, 0]], np.uint8))
    assert grey[0, 1] == 0 and grey[1].tolist() == [0.0, 1.0, 1.0]


def test_fit_finds_the_direction_that_parts_people():
    """Two people differ along axis 0 by less than everyone's own spread along axis 1: the
    first learned direction is axis 0, scaled to one person's spread."""
    rng = np.random.default_rng(1)
    n = 500
    x = rng.normal(size=(2 * n, 3)) * [0.1, 5.0, 0.1]
    x[n:, 0] += 1.0
    model = fit(x, np.repeat([0, 1], n), dims=4)
    assert model.dims == 1  # two people give one direction
    direction = model.projection[:, 0] / np.linalg.norm(model.projection[:, 0])
    assert abs(direction[0]) > 0.99
    z = model.embed(x)[:, 0]
    assert np.std(z[:n]) == pytest.approx(1.0, rel=0.1)
    assert abs(z[n:].mean() - z[:n].mean()) > 8  # 1.0 apart, in units of 0.1
    with pytest.raises(ValueError, match="at least 2 people"):
        fit(x, np.zeros(2 * n))


def test_similarity_of_a_crop_to_her_look():
    her = MODEL.embed(HER)
    assert similarity(her, her) == pytest.approx(1.0)
    assert similarity(her, MODEL.embed(OTHER)) < 1e-6
    assert similarity(her, MODEL.embed(ALIKE)) < 1e-3  # the hair tells them apart
    rng = np.random.default_rng(2)
    own = [similarity(her, MODEL.embed(look(*HER_CLOTHES, head=(60, 40, 20), rng=rng)))
           for _ in range(50)]
    assert np.median(own) > 0.05


def test_a_model_saves_loads_and_refuses_what_is_not_one(tmp_path):
    path = tmp_path / "appearance.npz"
    Appearance(np.zeros(appearance.FEATURES, np.float32),
               np.eye(appearance.FEATURES, 4, dtype=np.float32)).save(path)
    loaded = Appearance.load(path)
    assert loaded.dims == 4
    np.testing.assert_allclose(loaded.embed(HER), HER[:4])
    (tmp_path / "bad.npz").write_bytes(b"not numpy")
    with pytest.raises(ValueError, match="bad.npz: not an appearance model"):
        Appearance.load(tmp_path / "bad.npz")
    np.savez(tmp_path / "small.npz", mean=np.zeros(5), projection=np.eye(5, 2))
    with pytest.raises(ValueError, match="for 5 features"):
        Appearance.load(tmp_path / "small.npz")


def test_the_shipped_model_is_one():
    model = appearance.shipped()
    assert model is not None, f"{appearance.MODEL} is missing: scripts/fit_appearance.py"
    assert model.dims >= 2 and np.all(np.isfinite(model.projection))


def test_a_lookalike_beside_her_in_her_clothes_is_not_taken():
    """Another in her clothes, with other hair, walks 0.8 m beside her and is the bigger
    mask: inside the gate, her look picks her, and her look stays hers."""
    tracker = new_tracker()
    walk(tracker, 0.0, 4.0)
    events = walk(tracker, 4.0, 10.0,
                  others=lambda t: [person(1.2 * t, 0.8, 500, appearance=ALIKE)])
    assert all(isinstance(e, Detected) and abs(e.world[1]) < 0.1 for e in events)
    assert similarity(tracker.look, MODEL.embed(HER)) > 0.9
    assert similarity(tracker.look, MODEL.embed(ALIKE)) < 1e-3


def test_her_look_is_not_learned_from_a_choice_that_is_not_sure():
    """Her twin, the same look, walks 0.3 m beside her: either could be she, so neither crop
    teaches her look; alone again, she does."""
    tracker = new_tracker()
    walk(tracker, 0.0, 2.0)
    crops = tracker.crops
    walk(tracker, 2.0, 4.0, others=lambda t: [person(1.2 * t, 0.3, 300)])
    assert tracker.crops == crops
    walk(tracker, 4.0, 5.0)
    assert tracker.crops == crops + 5


def test_first_sighting_is_the_one_the_camera_looks_at():
    tracker = new_tracker()
    event = tracker.update([person(5, 5, 900, off_centre=0.4), person(0, 0, 200)], 0.0)
    assert event == Detected((0.0, 0.0, 1.0), person(0, 0, 200))


def test_a_bigger_lookalike_off_her_motion_is_not_taken():
    tracker = new_tracker()
    walk(tracker, 0.0, 4.0)
    # a look-alike twice her size, 2.5 m to her side, walking beside her
    events = walk(tracker, 4.0, 8.0, others=lambda t: [person(1.2 * t, 2.5, 900)])
    assert all(isinstance(e, Detected) and abs(e.world[1]) < 0.1 for e in events)


def test_crossing_lookalike_is_kept_apart_by_her_velocity():
    """A look-alike walks towards her on the same line and passes her: the filter's velocity
    keeps the right one after they meet."""
    tracker = new_tracker()
    walk(tracker, 0.0, 4.0)

    def oncoming(t):  # from x = 12 at t = 4, at 1.2 m/s the other way, 0.6 m to the side
        return [person(12.0 - 1.2 * (t - 4.0), 0.6, 400)]

    events = walk(tracker, 4.0, 12.0, others=oncoming)
    assert all(abs(e.world[1]) < 0.1 for e in events if isinstance(e, Detected))
    assert sum(isinstance(e, Detected) for e in events) >= len(events) - 2


def test_lost_on_the_seventh_miss_then_taken_back_where_her_motion_puts_her():
    tracker = new_tracker()
    walk(tracker, 0.0, 4.0)                       # at 1.2 m/s along +x, x = 4.8 at t = 4
    misses = [tracker.update([], t) for t in np.arange(4.0, 6.0, 0.2)]
    assert misses[:6] == [None] * 6 and misses[6] == Lost()
    assert all(m is None for m in misses[7:])
    # 3 s on she comes out near x = 1.2 * 7: a look-alike far off does not count, she does
    event = tracker.update([person(-6.0, 0.0, 900), person(1.2 * 7.0, 0.2, 200)], 7.0)
    assert isinstance(event, Detected) and event.world[0] == pytest.approx(8.4)


def test_after_a_loss_someone_who_does_not_look_like_her_is_not_taken():
    tracker = new_tracker()
    walk(tracker, 0.0, 4.0)
    for t in np.arange(4.0, 5.6, 0.2):
        tracker.update([], float(t))
    assert tracker.update([person(1.2 * 5.6, 0.0, appearance=OTHER)], 5.6) is None
    assert isinstance(tracker.update([person(1.2 * 5.8, 0.0)], 5.8), Detected)


def test_after_the_coast_only_her_look_brings_her_back():
    tracker = new_tracker(coast=2.0)
    walk(tracker, 0.0, 2.0)
    for t in np.arange(2.0, 6.0, 0.2):
        tracker.update([], float(t))
    # 20 m away from any prediction: by look alone, the one dressed like her
    event = tracker.update([person(30.0, 5.0, 900, appearance=OTHER),
                            person(-20.0, 3.0, 100)], 6.0)
    assert isinstance(event, Detected) and event.world[:2] == (-20.0, 3.0)
    assert tracker.update([person(40.0, 0.0, appearance=OTHER)], 6.2) is None


def test_she_runs_stops_and_turns_back_without_being_dropped():
    tracker = new_tracker()
    x, t, events = 0.0, 0.0, []
    for speed, seconds in ((1.2, 4.0), (3.0, 4.0), (0.0, 2.0), (-1.4, 4.0), (3.0, 3.0)):
        for _ in range(int(round(seconds / 0.2))):
            x += speed * 0.2
            t += 0.2
            events.append(tracker.update([person(x, 0.0)], t))
    assert all(isinstance(e, Detected) for e in events)


def test_timestamps_that_go_backwards_do_not_break_it():
    tracker = new_tracker()
    assert isinstance(tracker.update([person(0, 0)], 10.0), Detected)
    assert isinstance(tracker.update([person(0.1, 0)], 9.0), Detected)
    assert tracker.predicted() is not None


def test_settings_are_checked():
    with pytest.raises(ValueError):
        TrackSettings(gate=0)
    with pytest.raises(ValueError):
        HeroTracker(lost_after=0)
