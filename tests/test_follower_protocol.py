"""sensor_frame checking, the newest-frame-wins worker, the lost-after-K logic, and a fuzz test:
500 malformed messages against a live server, which must still answer valid frames correctly."""

import base64
import json
import socket
import threading
import time

import numpy as np
import pytest
import websocket

from follower_helpers import (
    SIZE,
    Collector,
    ColourSegmenter,
    QuadSimCamera,
    b64,
    encode,
    synthetic_frame,
    wait_until,
)
from followme.follower.config import FollowConfig
from followme.follower.quadsim.protocol import (
    MalformedFrame,
    QuadSimEvents,
    decode_depth,
    decode_rgb,
    follow_events,
    parse_sensor_frame,
)
from followme.follower.quadsim.server import ServerThread
from followme.follower.target import Target
from followme.follower.tracking import Detected, HeroTracker, Lost
from followme.follower.worker import FollowerStats, LatestFrameWorker

CAMERA = QuadSimCamera((0, 0, 10), (45, 0, 0))
HERO = CAMERA.point_at(150, 110, 14.0)


@pytest.fixture(scope="module")
def valid():
    return synthetic_frame(CAMERA, HERO)


def _reason(data, **kw):
    with pytest.raises(MalformedFrame) as e:
        parse_sensor_frame(data, **kw)
    return e.value.reason, str(e.value)


def test_a_valid_frame_parses(valid):
    f = parse_sensor_frame(valid)
    assert f.rgb[:2] == b"\xff\xd8" and f.depth[:4] == b"\x89PNG"
    assert (f.gimbal.x, f.gimbal.y, f.gimbal.z) == (0, 0, 10)
    assert decode_rgb(f.rgb).shape == (SIZE, SIZE, 3)
    assert decode_depth(f.depth).shape == (SIZE, SIZE)


def test_each_problem_is_named(valid):
    assert _reason("text")[0] == "payload"
    assert _reason([valid])[0] == "payload"
    for field in valid:
        reason, message = _reason({k: v for k, v in valid.items() if k != field})
        assert reason == "missing" and field in message
        reason, message = _reason({**valid, field: 12})
        assert reason == "type" and field in message
    assert _reason({**valid, "timestamp": "soon"})[0] == "number"
    assert _reason({**valid, "timestamp": "nan"})[0] == "number"
    reason, message = _reason({**valid, "gimbal_pose": "1,2,3"})
    assert reason == "number" and "gimbal_pose" in message
    reason, message = _reason({**valid, "rgb_image": "not base64!"})
    assert reason == "base64" and "rgb_image" in message
    assert _reason({**valid, "depth_image": ""})[0] == "base64"
    assert _reason(valid, max_bytes=1000)[0] == "oversize"


def test_a_decimal_comma_timestamp_is_read(valid):
    assert parse_sensor_frame({**valid, "timestamp": "1509562143,25"}).timestamp == 1509562143.25


@pytest.mark.parametrize("data,field,reason", [
    (b"not an image at all", "rgb", "image"),
    (encode(np.zeros((128, 128, 3), np.uint8)), "rgb", "size"),
    (encode(np.zeros((SIZE, SIZE), np.uint8)), "rgb", "channels"),
    (encode(np.zeros((SIZE, SIZE, 4), np.uint8), "PNG"), "rgb", "channels"),
    (encode(np.zeros((SIZE, SIZE, 3), np.uint8))[:300], "rgb", "image"),
    (encode(np.zeros((SIZE, SIZE, 3), np.uint8), "GIF"), "rgb", "image"),
    (encode(np.zeros((64, 64, 4), np.uint8), "PNG"), "depth", "size"),
    (encode(np.zeros((SIZE, SIZE), np.uint16), "PNG"), "depth", "channels"),
])
def test_bad_images_are_refused(data, field, reason):
    decode = decode_rgb if field == "rgb" else decode_depth
    with pytest.raises(MalformedFrame) as e:
        decode(data)
    assert e.value.reason == reason


def test_depth_takes_channel_0_of_grey_rgb_or_rgba():
    a = np.zeros((SIZE, SIZE, 4), np.uint8)
    a[..., 0], a[..., 1], a[..., 3] = 51, 200, 255
    assert (decode_depth(encode(a, "PNG")) == 51).all()
    assert (decode_depth(encode(a[..., :3], "PNG")) == 51).all()
    assert (decode_depth(encode(a[..., 0], "PNG")) == 51).all()


# --- the worker ---

def test_the_newest_frame_wins_and_clients_take_turns():
    gate, done, order = threading.Event(), threading.Event(), []
    dropped = []

    def process(key, item):
        if item == "block":
            gate.wait(5)
        order.append((key, item))
        if item == "last":
            done.set()

    w = LatestFrameWorker(process, on_drop=lambda k, i: dropped.append((k, i)))
    w.submit("a", "block")
    assert wait_until(lambda: w.waiting == 0)  # "block" is being processed
    for i in range(5):
        w.submit("a", f"a{i}")
    w.submit("b", "b0")
    w.submit("a", "a5")  # replaces a4 and keeps a's place ahead of b
    w.submit("c", "c0")
    w.forget("c")
    w.submit("b", "last")
    gate.set()
    assert done.wait(5)
    assert order == [("a", "block"), ("a", "a5"), ("b", "last")]
    assert dropped == [("a", f"a{i}") for i in range(5)] + [("c", "c0"), ("b", "b0")]
    w.close()


def test_the_worker_survives_a_failing_frame():
    seen = []

    def process(key, item):
        if item == "bad":
            raise RuntimeError("boom")
        seen.append(item)

    w = LatestFrameWorker(process)
    w.submit("a", "bad")
    assert wait_until(w.idle)
    w.submit("a", "good")
    assert wait_until(lambda: seen == ["good"])
    w.close()


def test_stats_snapshot_and_line():
    s = FollowerStats()
    s.count("received", 3)
    s.count("processed", 2)
    s.bad("base64")
    for ms in range(1, 101):
        s.latency(float(ms))
    snap = s.snapshot(reset_window=True)
    assert snap["malformed"] == 1 and snap["latency_p50_ms"] == pytest.approx(50.5)
    line = FollowerStats.format(snap)
    assert "received 3 processed 2 dropped 0 malformed 1 (base64 1)" in line and "p99" in line
    assert s.snapshot()["latency_samples"] == 0
    assert s.snapshot(whole_run=True)["latency_samples"] == 100


def test_lost_once_after_k_misses_following_a_sighting():
    hero = Target((1.0, 2.0, 0.0), (10.0, 10.0), 5.0, 50)
    t = HeroTracker(lost_after=3)
    assert t.update(None) is None  # never seen: nothing to lose
    assert t.update(hero) == Detected((1.0, 2.0, 0.0), hero)
    assert t.update(None) is None and t.update(None) is None
    assert t.update(None) == Lost()
    assert all(t.update(None) is None for _ in range(10))  # once
    t.update(hero)
    t.update(None)
    t.update(None)
    assert t.update(hero) == Detected(hero.world, hero)  # a sighting resets the count
    assert [t.update(None) for _ in range(3)][-1] == Lost()


def test_lost_on_the_seventh_miss_by_default_as_the_course():
    """follower.py: ``num_no_see += 1`` per miss, then ``if num_no_see > 6``: object_lost."""
    t = HeroTracker()
    t.update(Target((1.0, 2.0, 0.0), (10.0, 10.0), 5.0, 50))
    answers = [t.update(None) for _ in range(7)]
    assert answers == [None] * 6 + [Lost()]


def test_quadsim_events_say_detected_and_lost_with_markers():
    say = QuadSimEvents()
    assert say(None) == []
    events = say(Detected((1.0, 2.0, 0.0)))
    assert [e for e, _ in events] == ["object_detected", "create_box_marker"]
    assert events[0][1] == {"coords": [1.0, 2.0, 0.0]}
    marker = events[1][1]
    assert marker["pose"] == [1.0, 2.0, 0.0, 0.0, 0.0, 0.0] and marker["id"] == 0
    assert set(marker) == {"id", "pose", "dimensions", "color", "duration"}
    assert say(Detected((1.0, 2.0, 0.5)))[1][1]["id"] == 1
    assert say(Lost()) == [("object_lost", {"data": ""}), ("delete_marker", {"id": 1})]
    # and read back from the wire, as the sim's Socket.IO link does
    assert follow_events(events + say(Lost())) == [Detected((1.0, 2.0, 0.0)), Lost()]


# --- fuzz: 500 malformed messages at a live server ---

def _malformed_messages(valid: dict) -> list:
    """(args for emit) of every kind the issue lists, cycled to 500 in all."""
    rgb_small = b64(encode(np.zeros((128, 128, 3), np.uint8)))
    grey = b64(encode(np.zeros((SIZE, SIZE), np.uint8)))
    rgba = b64(encode(np.zeros((SIZE, SIZE, 4), np.uint8), "PNG"))
    truncated = b64(base64.b64decode(valid["rgb_image"])[:500])
    kinds = [
        ("sensor_frame", {**valid, "rgb_image": "%%% not base64 %%%"}),
        ("sensor_frame", {**valid, "depth_image": "abc"}),
        ("sensor_frame", {**valid, "rgb_image": b64(b"hello, not an image")}),
        ("sensor_frame", {**valid, "rgb_image": truncated}),
        ("sensor_frame", {**valid, "rgb_image": rgb_small}),
        ("sensor_frame", {**valid, "rgb_image": grey}),
        ("sensor_frame", {**valid, "rgb_image": rgba}),
        ("sensor_frame", {**valid, "depth_image": rgb_small}),
        ("sensor_frame", {**valid, "pose": "a,b,c,d,e,f"}),
        ("sensor_frame", {**valid, "gimbal_pose": "1,2,3,4,5"}),
        ("sensor_frame", {**valid, "gimbal_pose": "1,2,3,4,5,NaN"}),
        ("sensor_frame", {**valid, "timestamp": "yesterday"}),
        ("sensor_frame", {**valid, "timestamp": 12.5}),
        ("sensor_frame", {**valid, "rgb_image": None}),
        ("sensor_frame", {**valid, "pose": [1, 2, 3, 4, 5, 6]}),
        ("sensor_frame", {**valid, "depth_image": {"nested": True}}),
        ("sensor_frame", {k: v for k, v in valid.items() if k != "rgb_image"}),
        ("sensor_frame", {k: v for k, v in valid.items() if k != "gimbal_pose"}),
        ("sensor_frame", {}),
        ("sensor_frame", "a string"),
        ("sensor_frame", [1, 2, 3]),
        ("sensor_frame", 42),
        ("sensor_frame",),  # no payload at all
        ("sensor_frame", (valid, valid)),  # two arguments
    ]
    return [kinds[i % len(kinds)] for i in range(490)]


def _raw_junk(port: int) -> None:
    """Engine.IO-level junk, and a client that vanishes in the middle of a message."""
    ws = websocket.create_connection(
        f"ws://127.0.0.1:{port}/socket.io/?EIO=3&transport=websocket", timeout=5)
    ws.recv(), ws.recv()
    for junk in ("9nonsense", "4{not json", '42["sensor_frame", {', "42[]", '42["other", 1]',
                 "42" + json.dumps(["unknown_event", {"a": 1}])):
        ws.send(junk)
    ws.send_binary(b"\x00\xff\xfe")
    ws.close()
    # an upgrade, then half a WebSocket frame announcing 1 MB, then gone
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(b"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: 127.0.0.1\r\n"
              b"Upgrade: websocket\r\nConnection: Upgrade\r\n"
              b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
    s.recv(4096)
    s.sendall(b"\x81\xff" + (1_000_000).to_bytes(8, "big") + b"\x00" * 4 + b"4" * 1000)
    s.close()
    # plain garbage instead of HTTP
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(b"\x16\x03\x01 this is not http\r\n\r\n")
    s.close()


def test_fuzz_500_malformed_messages_then_valid_frames_are_answered(valid):
    cap = 256 * 1024
    config = FollowConfig(port=0, max_payload=cap, log_every=3600)
    with ServerThread(ColourSegmenter(160), config) as server:
        stats = server.stats
        flood = Collector(server.url)
        for args in _malformed_messages(valid):
            flood.emit(*args)
        big = {**valid, "rgb_image": "A" * (cap + 10)}  # over the cap, under the hard limit
        for _ in range(5):
            flood.emit("sensor_frame", big)  # websocket: skipped before JSON parsing
        polling = Collector(server.url, transports=("polling",))
        for i in range(5):  # long-polling: skipped by the frame check
            polling.emit("sensor_frame", big)  # one at a time: a POST batches what is queued
            assert wait_until(lambda i=i: stats.snapshot()["malformed_by_reason"].get(
                "oversize", 0) >= 6 + i, 10)
        _raw_junk(server.server.port)
        # a client that sends a frame and leaves before the answer
        assert wait_until(lambda: stats.received >= 500, 30), stats.snapshot()
        leaver = Collector(server.url)
        leaver.emit("sensor_frame", valid)
        assert wait_until(lambda: stats.received >= 501, 10), stats.snapshot()
        leaver.close()
        assert wait_until(lambda: server.server.worker.idle(), 10)
        time.sleep(0.2)  # malformed counts from the worker arrive via the event loop
        snap = stats.snapshot()
        assert snap["received"] == 501 and snap["errors"] == 0
        # image problems are found on the worker; some of those frames were dropped first
        assert snap["malformed"] + snap["dropped"] >= 500
        assert snap["malformed_by_reason"]["oversize"] == 10
        assert {"payload", "missing", "type", "number", "base64"} <= \
            set(snap["malformed_by_reason"])

        # the server still answers, correctly, on the connections it kept and on a new one
        fresh = Collector(server.url)
        for client in (flood, fresh, polling):
            before = len(client.named("object_detected"))
            client.emit("sensor_frame", valid)
            got = client.wait_for("object_detected", before + 1, timeout=10)
            assert len(got) == before + 1
            assert np.linalg.norm(np.array(got[-1]["coords"]) - HERO) < 0.25
        for c in (flood, fresh, polling):
            c.close()
